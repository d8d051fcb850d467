// SPDX-License-Identifier: MIT
// CloseOp: the awaiter returned by DirectFile::close (an asynchronous close).
//
// The DirectFile gives up its descriptor when the close is submitted (it reads as closed
// from then on, and its destructor has nothing left to do). A fixed-file registration made
// on this reactor is dropped first. Close is neither retried nor cancellable: Linux
// releases the descriptor even when close reports EINTR, so EINTR is reported as success.
#pragma once

#include <bioring/io/detail/file_state.hpp>
#include <bioring/io/detail/io_op.hpp>

#include <coroutine>

namespace bioring {

class DirectFile;
class Socket;

class CloseOp final : public detail::IoOp {
public:
    /// Returns: true (result 0) when the file is already closed. Context: awaiting coroutine.
    bool await_ready() noexcept;
    /// Take the descriptor and submit the close. With no reactor on this thread the
    /// descriptor is closed synchronously instead (it must not leak).
    /// Returns: false when it completed at once.
    bool await_suspend(std::coroutine_handle<> waiter) noexcept;

private:
    friend class DirectFile;
    friend class Socket;
    class Socket;
    explicit CloseOp(detail::FileState& f) noexcept : IoOp(IoOptions{}), file_(&f) {}
    static void on_complete(Operation* op, int res) noexcept;

    detail::FileState* file_;
};

} // namespace bioring
