// SPDX-License-Identifier: MIT
// File-system operations on the ring: unlink, rmdir, mkdir, rename (renameat2 flags) and
// statx, as awaiters in namespace bioring::fs.
//
// Each is one IORING_OP_{UNLINKAT,MKDIRAT,RENAMEAT,STATX} (on the Asio backend, the same
// syscall on its pool), so a slow directory operation does not block the reactor. Paths
// are relative to the current directory (AT_FDCWD) unless absolute. The awaiter keeps a
// pointer to each path string (and to the statx buffer): they must stay valid until
// co_await returns — a temporary in the co_await expression does. Nothing is allocated.
// ERRORS: co_await yields IoResult{0} or -errno (ENOENT, EEXIST, ENOTDIR, EXDEV, ...);
// last_error_message() names the operation, the path(s) and the reason. EINTR and EAGAIN
// are resubmitted (EAGAIN at most 1000 times).
// To open a file without blocking, see DirectFile::open_async.
#pragma once

#include <bioring/io/detail/io_op.hpp>
#include <bioring/io/io_options.hpp>

#include <fcntl.h>
#include <sys/stat.h>

#include <coroutine>
#include <string>

namespace bioring::fs {

/// renameat2(2) flags.
enum class RenameFlags : unsigned {
    none = 0,
    noreplace = 1, ///< RENAME_NOREPLACE: fail with -EEXIST if the target exists
    exchange = 2,  ///< RENAME_EXCHANGE: swap the two paths atomically (both must exist)
};

inline constexpr RenameFlags operator|(RenameFlags a, RenameFlags b) noexcept {
    return static_cast<RenameFlags>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}

/// The awaiter of every operation here. Context: a coroutine on a reactor thread.
class PathOp final : public detail::IoOp {
public:
    PathOp(PathOp&&) noexcept = default;
    /// Returns: false (always submitted; the kernel judges the paths).
    bool await_ready() const noexcept { return false; }
    /// Submit. Returns: false when it completed at once (no reactor, already stopped).
    bool await_suspend(std::coroutine_handle<> waiter) noexcept;

    /// Internal (the functions below): @op filled but for fd and complete.
    PathOp(const Operation& op, const char* name, const char* path, const char* path2,
           IoOptions&& o) noexcept;

private:
    static void on_complete(Operation* op, int res) noexcept;

    const char* name_;
    const char* path_;
    const char* path2_; ///< rename's target, or nullptr
};

/// unlink(2) @path (not a directory: -EISDIR). Returns (co_await): 0 or -errno.
PathOp unlink(const std::string& path, IoOptions o = {}) noexcept;
/// rmdir(2) @path (an empty directory). Returns (co_await): 0 or -errno (-ENOTEMPTY, ...).
PathOp rmdir(const std::string& path, IoOptions o = {}) noexcept;
/// mkdir(2) @path with permissions @mode (umask applies). Returns: 0 or -errno (-EEXIST).
PathOp mkdir(const std::string& path, unsigned mode = 0755, IoOptions o = {}) noexcept;
/// renameat2(2) @from to @to with @flags. Returns (co_await): 0 or -errno: -EEXIST
/// (noreplace, target exists), -ENOENT (exchange, target missing), -EXDEV (another
/// filesystem), -EINVAL (noreplace together with exchange, or flags the filesystem lacks).
PathOp rename(const std::string& from, const std::string& to, RenameFlags flags = RenameFlags::none,
              IoOptions o = {}) noexcept;
/// statx(2) of @path into @out, asking for @mask (STATX_*) with AT_* @flags
/// (AT_SYMLINK_NOFOLLOW, ...). Returns (co_await): 0 or -errno; @out is filled on 0.
PathOp statx(const std::string& path, struct ::statx& out, unsigned mask = STATX_BASIC_STATS,
             int flags = 0, IoOptions o = {}) noexcept;

} // namespace bioring::fs
