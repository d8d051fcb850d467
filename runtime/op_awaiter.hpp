// SPDX-License-Identifier: MIT
// OpAwaiter: co_await one raw Operation on the current reactor, with or without
// std::stop_token cancellation; and CancelOnStop, the stop_token -> Reactor::cancel bridge
// that io/'s awaiters can embed. The awaiter is the completion record (it derives from
// Operation, so complete() finds it with a static_cast): it lives in the coroutine frame
// and nothing is allocated per operation.
#pragma once

#include <bioring/runtime/operation.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/result.hpp>

#include <cassert>
#include <cerrno>
#include <coroutine>
#include <new>
#include <stop_token>
#include <type_traits>

namespace bioring {

/// Cancels an Operation through its reactor when a stop is requested.
/// Usage: arm() right after Reactor::submit(), disarm() first thing in complete().
class CancelOnStop {
public:
    CancelOnStop() noexcept {}
    CancelOnStop(const CancelOnStop&) = delete;
    CancelOnStop& operator=(const CancelOnStop&) = delete;
    ~CancelOnStop() { assert(!armed_ && "destroyed while its operation is in flight"); }

    /// Context: owner thread. If a stop was already requested, cancel() runs now.
    /// Takes @st by reference: the usual token cannot stop, and copying it per operation
    /// would cost a branch (or an atomic increment) on the submit path for nothing.
    void arm(const std::stop_token& st, Reactor& r, Operation& op) {
        if (st.stop_possible()) {
            ::new (static_cast<void*>(&cb_)) std::stop_callback<Fn>(st, Fn{&r, &op});
            armed_ = true;
        }
    }
    /// Context: owner thread. Waits for a concurrently running cancel() to return.
    /// Inline test, out-of-line work: unarmed (the usual case) costs one branch on a byte
    /// that sits before the callback's storage, so a completion that was never armed reads
    /// no cache line of it; the completion path needs no registers saved for the rare reset.
    void disarm() noexcept {
        if (armed_) [[unlikely]] {
            disarm_slow();
        }
    }

private:
    struct Fn {
        Reactor* reactor;
        Operation* op;
        void operator()() const noexcept { reactor->cancel(*op); }
    };
    [[gnu::noinline]] void disarm_slow() noexcept {
        armed_ = false;
        cb_.~stop_callback<Fn>();
    }

    bool armed_ = false;
    union {
        std::stop_callback<Fn> cb_; ///< live while armed_
    };
};

/// `IoResult r = co_await OpAwaiter(op);` or `co_await OpAwaiter(op, stop);` runs a copy of
/// @op on Reactor::current(). The two forms are two types (deduced from the arguments):
/// OpAwaiter<false> holds no stop_token and tests none, so an operation that cannot be
/// stopped pays nothing for cancellation (bench/cachegrind.sh: 9 instructions per NOP).
/// Returns (from co_await): the kernel's result; -ECANCELED when @stop was requested first
/// or the op was cancelled or timed out (timeout_ns); -ENXIO with no reactor on this thread.
template <bool Stoppable = true>
class OpAwaiter : private Operation {
public:
    explicit OpAwaiter(const Operation& op) noexcept requires(!Stoppable) : Operation(op) {}
    OpAwaiter(const Operation& op, std::stop_token stop) noexcept requires(Stoppable)
        : Operation(op), stop_{std::move(stop), {}} {}
    OpAwaiter(const OpAwaiter&) = delete;
    OpAwaiter& operator=(const OpAwaiter&) = delete;

    /// Everything is decided in await_suspend, where the common case (a reactor, a token
    /// that cannot stop) costs one test.
    bool await_ready() const noexcept { return false; }
    /// Returns: false (resume at once with res_ set) when there is no reactor or the stop
    /// was already requested.
    bool await_suspend(std::coroutine_handle<> h) noexcept {
        Reactor* r = Reactor::current();
        bool slow = r == nullptr;
        if constexpr (Stoppable) {
            slow = slow || stop_.token.stop_possible();
        }
        if (slow) [[unlikely]] {
            return suspend_slow(h, r);
        }
        handle_ = h;
        complete = &on_complete;
        r->submit(*this);
        return true;
    }
    IoResult await_resume() const noexcept { return IoResult{res_}; }

    /// The operation as submitted (tests use it with Reactor::cancel()).
    Operation& operation() noexcept { return *this; }

private:
    [[gnu::noinline]] bool suspend_slow(std::coroutine_handle<> h, Reactor* r) noexcept {
        if (r == nullptr) {
            res_ = -ENXIO;
            return false;
        }
        if constexpr (Stoppable) {
            if (stop_.token.stop_requested()) {
                res_ = -ECANCELED;
                return false;
            }
        }
        handle_ = h;
        complete = &on_complete;
        r->submit(*this);
        if constexpr (Stoppable) {
            stop_.cancel.arm(stop_.token, *r, *this);
        }
        return true;
    }

    static void on_complete(Operation* op, int res) noexcept {
        auto* self = static_cast<OpAwaiter*>(op);
        if constexpr (Stoppable) {
            self->stop_.cancel.disarm();
        }
        self->res_ = res;
        self->handle_.resume();
    }

    struct StopState {
        std::stop_token token;
        CancelOnStop cancel; ///< last: an unarmed one is read only through its first byte
    };
    struct NoStop {};

    // After the Operation, in the order a completion reads them.
    std::coroutine_handle<> handle_{};
    int res_ = 0;
    [[no_unique_address]] std::conditional_t<Stoppable, StopState, NoStop> stop_;
};

OpAwaiter(const Operation&)->OpAwaiter<false>;
OpAwaiter(const Operation&, std::stop_token)->OpAwaiter<true>;

} // namespace bioring
