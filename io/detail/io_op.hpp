// SPDX-License-Identifier: MIT
// IoOp: the machinery shared by every io/ awaiter (ReadOp, WriteOp, FsyncOp, ...).
//
// An awaiter IS its completion record: it derives from the reactor's Operation, lives in
// the awaiting coroutine's frame and allocates nothing. Life of a request:
//   await_ready    validate (a refusal is an immediate value, nothing is submitted)
//   await_suspend  find this thread's reactor, fill the Operation, submit, then register
//                  the stop_callback (submit never completes inline, so the op is owned by
//                  the reactor before anyone can cancel it)
//   complete()     on the reactor thread: resubmit (EINTR, bounded EAGAIN, short transfer)
//                  or finish: drop the stop_callback (its destructor waits for a callback
//                  running on another thread), then resume the coroutine — inline, or,
//                  when stop was requested, through the reactor's ready queue so that a
//                  cancel still queued for this op's address is issued first and cannot
//                  hit the next request placed at the same address.
// The coroutine resumes only after the kernel's final completion, so the frame (and the
// buffer the caller owns) is never released while the kernel can still write to it.
// Threading: created, awaited and completed on one reactor thread; only the stop_callback
// runs elsewhere, and it only calls Reactor::cancel(), which is safe from any thread.
#pragma once

#include <bioring/io/io_options.hpp>
#include <bioring/runtime/operation.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/result.hpp>

#include <coroutine>
#include <cstdint>
#include <optional>
#include <stop_token>

namespace bioring::detail {

/// -EAGAIN completions are resubmitted at most this many times per request.
inline constexpr unsigned max_again = 1000;

class IoOp : protected Operation {
public:
    IoOp(const IoOp&) = delete;
    IoOp& operator=(const IoOp&) = delete;
    IoOp& operator=(IoOp&&) = delete;
    /// Awaiters are movable only before they are awaited (GCC 12 moves the operand of
    /// co_await into the frame); once submitted the reactor holds the op's address.
    IoOp(IoOp&& o) noexcept
        : Operation(static_cast<const Operation&>(o)), reactor_(o.reactor_), waiter_(o.waiter_),
          result_(o.result_), again_(o.again_), timeout_(o.timeout_), deadline_ns_(o.deadline_ns_),
          stop_(std::move(o.stop_)) {}

    /// Context: the awaiting coroutine. Returns: bytes moved (or 0) or -errno.
    IoResult await_resume() const noexcept { return result_; }

protected:
    explicit IoOp(IoOptions&& o) noexcept : timeout_(o.timeout), stop_(std::move(o.stop)) {}
    ~IoOp() = default;

    /// Complete without suspending (await_ready returns this).
    bool ready_with(int res) noexcept {
        result_.res = res;
        return true;
    }

    /// First half of await_suspend: find the reactor, record the waiter.
    /// Returns: false with the result set when the request cannot be submitted (no
    /// reactor on this thread, or the stop token is already stopped).
    bool attach(std::coroutine_handle<> waiter) noexcept;
    /// Second half of await_suspend, after the Operation is filled: submit it.
    /// Returns: true (the coroutine stays suspended until finish()).
    bool start() noexcept;
    /// Instead of start(), for a request that waits on something other than its own SQE
    /// (a multishot accept's next connection): submit this Operation as a TIMEOUT bounding
    /// the wait (IoOptions::timeout, or a far one when only the stop token can end it) and
    /// register the stop_callback, which cancels the timer. Its completion (0: expired,
    /// -ECANCELED: stopped or cancelled) comes to complete() like any other.
    /// Returns: false, with nothing submitted, when neither a timeout nor a stop token
    /// bounds the wait.
    bool start_wait_timer() noexcept;
    /// Submit the (updated) Operation again from complete(), with what is left of the
    /// deadline; finishes with -ECANCELED instead when the deadline passed or stop was
    /// requested in between.
    void resubmit() noexcept;
    /// From complete(): handle -EINTR (always resubmitted) and -EAGAIN (resubmitted up to
    /// max_again times). Returns: true when the result was consumed by a resubmission.
    bool retry_transient(int res, const char* op_name) noexcept;
    /// Final completion: store @res, drop the stop_callback, resume the waiter. The
    /// awaiter may be gone when this returns: touch nothing after it.
    void finish(int res) noexcept;

    Reactor* reactor_ = nullptr;

private:
    struct Canceller {
        IoOp* self;
        void operator()() const noexcept { self->reactor_->cancel(*self); }
    };

    std::coroutine_handle<> waiter_{};
    IoResult result_{};
    std::uint32_t again_ = 0;
    std::chrono::nanoseconds timeout_;
    std::uint64_t deadline_ns_ = 0; ///< CLOCK_MONOTONIC, 0 = none
    std::stop_token stop_;
    std::optional<std::stop_callback<Canceller>> on_stop_;
};

} // namespace bioring::detail
