// SPDX-License-Identifier: MIT
// with_timeout: run a task against a deadline. A timer (sleep_for, so IORING_OP_TIMEOUT or
// an asio::steady_timer) runs beside the task; when it fires first it requests @stop, the
// stop_source whose token the caller gave to the task, and the result is empty. When
// the task finishes first the timer is cancelled. Either way with_timeout returns only
// after both have finished: a task that ignores its token is awaited to its end.
#pragma once

#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sleep.hpp>
#include <bioring/runtime/task.hpp>
#include <bioring/runtime/when_all.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>

namespace bioring {

namespace detail {

/// Returns: true when the deadline passed (then @on_fire was requested), false when the
/// timer was cancelled first.
inline Task<bool> deadline_timer(std::chrono::nanoseconds d, std::stop_token cancel,
                                 std::stop_source on_fire) {
    const IoResult r = co_await sleep_for(d, std::move(cancel));
    if (r.res == 0) {
        on_fire.request_stop();
        co_return true;
    }
    co_return false;
}

/// Awaits @t, then (also when it throws) cancels the timer.
template <class T>
Task<T> cancel_timer_after(Task<T> t, std::stop_source timer) {
    struct CancelTimer {
        std::stop_source& s;
        ~CancelTimer() { s.request_stop(); }
    } guard{timer};
    if constexpr (std::is_void_v<T>) {
        co_await t;
    } else {
        co_return co_await t;
    }
}

} // namespace detail

/// `std::optional<IoResult> r = co_await with_timeout(read_task(src.get_token()), 50ms, src);`
/// Run @task with a deadline of @d from now; at the deadline, @stop.request_stop() (pass a
/// source without state, the default, when the task takes no token: it is then awaited to
/// its end). Costs one heap allocation per call (the timer's stop state) besides the frames.
/// Context: a coroutine on a reactor thread (the timer runs on it).
/// Returns: the task's value (std::monostate for a Task<void>); empty (timed out) when the
/// deadline passed before the task finished — its value is then dropped; at the boundary
/// either answer may come; rethrows the task's exception; throws std::logic_error without a
/// reactor.
template <class T>
Task<std::optional<detail::TaskValue<T>>>
with_timeout(Task<T> task, std::chrono::nanoseconds d,
             std::stop_source stop = std::stop_source(std::nostopstate)) {
    if (Reactor::current() == nullptr) {
        throw std::logic_error("bioring::with_timeout: no reactor on this thread");
    }
    if (!task) {
        throw std::bad_alloc();
    }
    std::stop_source timer;
    auto both = co_await when_all(detail::deadline_timer(d, timer.get_token(), stop),
                                  detail::cancel_timer_after(std::move(task), timer));
    if (std::get<0>(both)) {
        co_return std::nullopt;
    }
    co_return std::optional<detail::TaskValue<T>>(std::move(std::get<1>(both)));
}

} // namespace bioring
