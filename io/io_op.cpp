// SPDX-License-Identifier: MIT
// IoOp: submission, retry and completion shared by every io/ awaiter (see io_op.hpp).
#include <bioring/io/detail/io_op.hpp>

#include <bioring/io/error_message.hpp>

#include <cerrno>
#include <ctime>

namespace bioring::detail {
namespace {

std::uint64_t monotonic_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

} // namespace

bool IoOp::attach(std::coroutine_handle<> waiter) noexcept {
    reactor_ = Reactor::current();
    if (reactor_ == nullptr) [[unlikely]] {
        set_error_message("bioring: I/O awaited on a thread without a reactor (drive it with "
                          "sync_wait() or a Runtime)");
        result_.res = -ENXIO;
        return false;
    }
    if (stop_.stop_requested()) {
        result_.res = -ECANCELED;
        return false;
    }
    waiter_ = waiter;
    return true;
}

bool IoOp::start() noexcept {
    if (timeout_.count() > 0) {
        timeout_ns = static_cast<std::uint64_t>(timeout_.count());
        deadline_ns_ = monotonic_ns() + timeout_ns;
    } else {
        timeout_ns = 0;
    }
    reactor_->submit(*this);
    // After submit: the reactor owns the op, and completion cannot happen before this
    // function returns (never inline), so a callback fired right here cancels a real op.
    if (stop_.stop_possible()) {
        on_stop_.emplace(stop_, Canceller{this});
    }
    return true;
}

bool IoOp::start_wait_timer() noexcept {
    const bool stoppable = stop_.stop_possible();
    if (timeout_.count() <= 0 && !stoppable) {
        return false;
    }
    // Only the stop token can end it: a timer that never expires in practice (one year).
    constexpr std::uint64_t far_ns = 365ull * 24 * 3600 * 1'000'000'000ull;
    code = OpCode::timeout;
    fixed_file = false;
    timeout_ns = timeout_.count() > 0 ? static_cast<std::uint64_t>(timeout_.count()) : far_ns;
    deadline_ns_ = 0;
    reactor_->submit(*this);
    if (stoppable) {
        on_stop_.emplace(stop_, Canceller{this});
    }
    return true;
}

void IoOp::resubmit() noexcept {
    if (deadline_ns_ != 0) {
        const std::uint64_t now = monotonic_ns();
        if (now >= deadline_ns_) {
            finish(-ECANCELED);
            return;
        }
        timeout_ns = deadline_ns_ - now;
    }
    // A cancel that raced with the previous completion found nothing to cancel: honour it.
    if (stop_.stop_requested()) {
        finish(-ECANCELED);
        return;
    }
    reactor_->submit(*this);
}

bool IoOp::retry_transient(int res, const char* op_name) noexcept {
    if (res == -EINTR) {
        resubmit();
        return true;
    }
    if (res == -EAGAIN) {
        if (++again_ <= max_again) {
            resubmit();
            return true;
        }
        set_error_message("bioring: %s still got EAGAIN after %u resubmissions", op_name,
                          max_again);
    }
    return false;
}

void IoOp::finish(int res) noexcept {
    result_.res = res;
    // Destroying the stop_callback deregisters it; if it is running right now on the
    // thread that requested stop, the destructor waits for it (so it never touches a dead op).
    on_stop_.reset();
    const std::coroutine_handle<> waiter = waiter_;
    if (stop_.stop_requested()) [[unlikely]] {
        // The callback ran: if it ran on another thread its Reactor::cancel() was posted
        // to this reactor and is still queued, carrying only this op's address. Resuming
        // now could let the coroutine submit a new op at the same address before that
        // stale cancel is issued, and the cancel would hit the wrong request. The loop
        // issues posted cancels before it runs ready coroutines, so resume from there.
        try {
            reactor_->post(waiter);
            return;
        } catch (...) {
            // No room in the ready queue: resume inline (the stale cancel then risks
            // cancelling a later request, which completes with -ECANCELED; nothing unsafe).
        }
    }
    waiter.resume();
}

} // namespace bioring::detail
