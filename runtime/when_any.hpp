// SPDX-License-Identifier: MIT
// when_any: run tasks of any types concurrently; the first to finish (with a value or an
// exception) wins and the others are asked to stop through a std::stop_source the caller
// owns and whose tokens the caller gave to the tasks.
//
// Structured: when_any returns only after every task has finished, so no frame outlives it
// and nothing is detached. A task that takes no token (or ignores it) is awaited to its
// end; its result and any exception it throws are dropped. The stop is requested on the
// thread where the winner finished, at the moment it finishes; stop callbacks run there
// (bioring's awaiters turn them into cancellations on their own reactors).
#pragma once

#include <bioring/runtime/task.hpp>
#include <bioring/runtime/when_all.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <new>
#include <stop_token>
#include <utility>
#include <variant>

namespace bioring {

/// The outcome of when_any: which task won and its value (std::monostate for void).
template <class... T>
struct WhenAnyResult {
    std::size_t index = 0;                       ///< argument position of the winner
    std::variant<detail::TaskValue<T>...> value; ///< holds alternative `index`
};

namespace detail {

struct WhenAnyState {
    static constexpr std::size_t none = ~std::size_t{0};
    std::atomic<std::size_t> winner{none};
    std::stop_source* stop = nullptr;
    WhenAllLatch* latch = nullptr;
};

/// DoneHook of task @index: the first to arrive records itself and requests the stop, then
/// every task arrives at the shared latch.
struct WhenAnyHook : DoneHook {
    WhenAnyState* state = nullptr;
    std::size_t index = 0;
    WhenAnyHook() noexcept { fn = &arrive; }
    static std::coroutine_handle<> arrive(DoneHook* h) noexcept {
        auto* self = static_cast<WhenAnyHook*>(h);
        WhenAnyState* st = self->state;
        std::size_t expected = WhenAnyState::none;
        if (st->winner.compare_exchange_strong(expected, self->index, std::memory_order_acq_rel)) {
            st->stop->request_stop();
        }
        return WhenAllLatch::arrive(st->latch); // last: the state may go right after
    }
};

template <class V, std::size_t I, class T>
void set_winner(V& out, Task<T>& t) {
    if constexpr (std::is_void_v<T>) {
        t.handle().promise().take();
        out.template emplace<I>();
    } else {
        out.template emplace<I>(t.handle().promise().take());
    }
}

} // namespace detail

/// `auto r = co_await when_any(src, read_with(src.get_token()), sleep_task(src.get_token()));`
/// Run the tasks concurrently; when the first one finishes, call @stop.request_stop().
/// Context: a coroutine (tasks start on the calling thread).
/// Returns: the winner's index and value once every task has finished; rethrows the
/// winner's exception (the losers' outcomes are dropped); throws std::bad_alloc before
/// starting any task when one of them is empty.
template <class... T>
requires(sizeof...(T) > 0) Task<WhenAnyResult<T...>> when_any(std::stop_source stop,
                                                              Task<T>... tasks) {
    if ((!tasks || ...)) {
        throw std::bad_alloc();
    }
    constexpr std::size_t n = sizeof...(T);
    detail::WhenAllLatch latch(n);
    detail::WhenAnyState state;
    state.stop = &stop;
    state.latch = &latch;
    std::array<detail::WhenAnyHook, n> any_hooks;
    std::array<detail::DoneHook*, n> hooks;
    for (std::size_t i = 0; i < n; ++i) {
        any_hooks[i].state = &state;
        any_hooks[i].index = i;
        hooks[i] = &any_hooks[i];
    }
    co_await detail::StartEach<n>{
        {tasks.handle()...}, {detail::promise_of(tasks)...}, hooks, &latch};
    WhenAnyResult<T...> out;
    out.index = state.winner.load(std::memory_order_acquire);
    std::tuple<Task<T>&...> ts{tasks...};
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        ((out.index == I ? detail::set_winner<decltype(out.value), I>(out.value, std::get<I>(ts))
                         : void()),
         ...);
    }
    (std::index_sequence_for<T...>{});
    co_return out;
}

} // namespace bioring
