// SPDX-License-Identifier: MIT
// OpenOp: the awaiter returned by DirectFile::open_async.
//
// The openat(2) runs on the ring (on the Asio backend, on its pool), so a slow open (NFS,
// a cold dentry, O_CREAT on a busy directory, O_TRUNC of a large file) does not block the
// reactor. What follows the open stays synchronous on the reactor thread: fstat and the
// O_DIRECT alignment probe (statx(STATX_DIOALIGN) on the open descriptor, and for block
// devices an ioctl or a sysfs read) — cached-inode calls that do no device I/O.
// The path is copied into the awaiter (one allocation, as DirectFile keeps it anyway).
#pragma once

#include <bioring/io/detail/io_op.hpp>

#include <coroutine>
#include <string>

namespace bioring {

class DirectFile;
struct OpenOptions;
struct OpenResult;

namespace detail {

/// The O_* flags of @o (O_CLOEXEC included). Defined in direct_file.cpp.
int open_flags(const OpenOptions& o) noexcept;

} // namespace detail

class OpenOp final : public detail::IoOp {
public:
    OpenOp(OpenOp&&) noexcept = default;

    /// Returns: true (refused: truncate without write) without submitting.
    bool await_ready() noexcept;
    /// Submit the openat. Returns: false when it completed at once.
    bool await_suspend(std::coroutine_handle<> waiter) noexcept;
    /// Returns: the open file (res 0), or res = -errno and a closed file, with
    /// last_error_message() naming the path, the flags and the reason. Context: the
    /// awaiting coroutine; allocates (the DirectFile's path); never throws.
    OpenResult await_resume() noexcept;

private:
    friend class DirectFile;
    OpenOp(std::string path, int flags, unsigned perms, bool direct, IoOptions&& o)
        : IoOp(std::move(o)), path_(std::move(path)), flags_(flags), perms_(perms),
          direct_(direct) {}
    static void on_complete(Operation* op, int res) noexcept;

    std::string path_;
    int flags_;
    unsigned perms_;
    bool direct_;
};

} // namespace bioring
