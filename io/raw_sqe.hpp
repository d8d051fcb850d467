// SPDX-License-Identifier: MIT
// The escape hatch: submit a caller-prepared io_uring SQE and await its CQE.
//
// For operations bioring has no awaiter for (fadvise, madvise, splice, xattrs, a newer
// opcode...). IO_URING ONLY: on the Asio backend (or any reactor where
// Reactor::native(OpCode::uring_raw) is false) co_await yields -EOPNOTSUPP.
// The SQE is copied into the ring as it is (flags, ioprio, personality, fixed-file index
// included) except user_data, which the reactor owns. The operation must post exactly
// ONE CQE: multishot operations and the IOSQE_IO_LINK, IOSQE_IO_HARDLINK and
// IOSQE_CQE_SKIP_SUCCESS flags are refused (-EINVAL, nothing submitted; use link() for
// chains). Whatever the SQE points at (buffers, paths, structs) must stay valid until
// co_await returns. IoOptions work as for other requests (deadline: LINK_TIMEOUT; stop:
// ASYNC_CANCEL). The result is the CQE's res, unretried (EINTR, EAGAIN included); a
// failure leaves last_error_message() naming the opcode.
#pragma once

#include <bioring/io/detail/io_op.hpp>
#include <bioring/io/io_options.hpp>
#include <bioring/runtime/detail/sqe.hpp>

#include <coroutine>

namespace bioring {

/// The kernel's 64-byte struct io_uring_sqe (same layout; cast a liburing io_uring_sqe*
/// to it, or fill it with liburing's io_uring_prep_* through such a cast).
using UringSqe = detail::RawSqe;

class RawSqeOp final : public detail::IoOp {
public:
    RawSqeOp(RawSqeOp&&) noexcept = default;
    /// Returns: true (-EINVAL) for refused flags. Context: awaiting coroutine.
    bool await_ready() noexcept;
    /// Submit. Returns: false when it completed at once.
    bool await_suspend(std::coroutine_handle<> waiter) noexcept;

private:
    friend RawSqeOp submit_sqe(const UringSqe& sqe, IoOptions o) noexcept;
    RawSqeOp(const UringSqe& sqe, IoOptions&& o) noexcept : IoOp(std::move(o)), sqe_(sqe) {}
    static void on_complete(Operation* op, int res) noexcept;

    UringSqe sqe_; ///< the copy the backend reads at submit
};

/// `IoResult r = co_await submit_sqe(sqe);` Context: a coroutine on a reactor thread;
/// allocates nothing. Returns (co_await): the CQE's res; -EINVAL (refused flags);
/// -EOPNOTSUPP (not io_uring); -ECANCELED (deadline, stop); -ENXIO (no reactor).
RawSqeOp submit_sqe(const UringSqe& sqe, IoOptions o = {}) noexcept;

} // namespace bioring
