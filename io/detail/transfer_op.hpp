// SPDX-License-Identifier: MIT
// TransferOp: the awaiter behind read, write, readv and writev.
//
// It moves the whole request or reaches end of file: a short transfer is resubmitted for
// the remainder from the completion callback, with the alignment kept. For O_DIRECT a
// remainder can only be submitted when the bytes done so far are a multiple of the offset
// alignment; a short count that is not (a file's unaligned tail) ends a read with what was
// read, and fails a write with -EIO, because the rest cannot be written with O_DIRECT.
// Vectored requests never copy or edit the caller's iovec array: after a short count the
// partly done segment is finished with a plain read/write, then the following segments go
// out as one readv/writev again. Buffers inside a registered arena (BufferPool::global())
// are moved with READ_FIXED/WRITE_FIXED.
// The caller's buffer, iovec array and DirectFile must stay valid until co_await returns.
#pragma once

#include <bioring/io/detail/file_state.hpp>
#include <bioring/io/detail/io_op.hpp>
#include <bioring/io/detail/iov_cursor.hpp>
#include <bioring/io/write_flags.hpp>

#include <sys/uio.h>

#include <coroutine>
#include <cstddef>
#include <cstdint>

namespace bioring::detail {

class TransferOp : public IoOp {
public:
    /// Validate; a refused request completes at once with -EINVAL (or -EBADF on a closed
    /// file), an empty one with 0. Context: awaiting coroutine; never allocates.
    bool await_ready() noexcept;
    /// Submit. Context: a reactor thread. Returns: false when it completed at once.
    bool await_suspend(std::coroutine_handle<> waiter) noexcept;

protected:
    TransferOp(const FileState& f, bool write, void* buf, std::size_t len, std::uint64_t offset,
               IoOptions&& o, WriteFlags flags = WriteFlags::none) noexcept
        : IoOp(std::move(o)), file_(&f), buf_(static_cast<std::byte*>(buf)), offset0_(offset),
          total_(len), rw_flags_(static_cast<std::uint32_t>(flags)), write_(write) {}
    TransferOp(const FileState& f, bool write, const iovec* iov, int iovcnt, std::uint64_t offset,
               IoOptions&& o, WriteFlags flags = WriteFlags::none) noexcept
        : IoOp(std::move(o)), file_(&f), cur_{iov, iovcnt}, offset0_(offset),
          rw_flags_(static_cast<std::uint32_t>(flags)), write_(write), vector_(true) {}

private:
    static void on_complete(Operation* op, int res) noexcept;
    const char* name() const noexcept;
    void advance(std::size_t n) noexcept;
    bool remainder_aligned() const noexcept;
    void prepare_next() noexcept;
    void target_segment(std::byte* base, std::size_t len) noexcept;

    const FileState* file_;
    std::byte* buf_ = nullptr; ///< contiguous form
    IovCursor cur_;            ///< vectored form
    std::uint64_t offset0_;
    std::size_t total_ = 0;      ///< bytes requested
    std::size_t done_ = 0;       ///< bytes completed so far
    std::uint32_t rw_flags_ = 0; ///< WriteFlags (writes only): OpCode::write_flags/writev_flags
    bool write_;
    bool vector_ = false;
};

} // namespace bioring::detail
