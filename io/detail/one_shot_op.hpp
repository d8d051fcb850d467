// SPDX-License-Identifier: MIT
// OneShotOp: an awaiter for a request that moves no data (fsync, fdatasync, fallocate,
// ftruncate, sync_file_range).
//
// One submission; -EINTR and (bounded) -EAGAIN are resubmitted, any other result is final
// (a failure leaves last_error_message() naming the operation, the file and the reason).
// The DirectFile must stay valid until co_await returns.
#pragma once

#include <bioring/io/detail/file_state.hpp>
#include <bioring/io/detail/io_op.hpp>

#include <coroutine>

namespace bioring::detail {

class OneShotOp : public IoOp {
public:
    /// Returns: true (with -EBADF) on a closed file. Context: awaiting coroutine.
    bool await_ready() noexcept;
    /// Submit. Context: a reactor thread. Returns: false when it completed at once.
    bool await_suspend(std::coroutine_handle<> waiter) noexcept;

protected:
    OneShotOp(const FileState& f, OpCode c, IoOptions&& o) noexcept
        : IoOp(std::move(o)), file_(&f) {
        code = c;
    }

private:
    static void on_complete(Operation* op, int res) noexcept;
    const char* name() const noexcept;

    const FileState* file_;
};

} // namespace bioring::detail
