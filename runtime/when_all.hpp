// SPDX-License-Identifier: MIT
// when_all: start every task, resume the caller when the last one finishes (a latch of
// n + 1: the starter holds one count so a task that finishes synchronously cannot resume
// the caller before it has suspended). Tasks are started one after the other from the
// awaiting coroutine, each resumed once, so 10,000 synchronous tasks use no extra stack.
// Results (or the first exception, in task order) are collected once all have finished.
// Two forms: a vector of tasks of one type, and a variadic when_all(Task<A>, Task<B>, ...)
// over tasks of different types that yields a tuple (void -> std::monostate).
#pragma once

#include <bioring/runtime/task.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <new>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

namespace bioring {

namespace detail {

struct WhenAllLatch : DoneHook {
    explicit WhenAllLatch(std::size_t n) noexcept : count(n + 1) { fn = &arrive; }
    std::atomic<std::size_t> count;
    std::coroutine_handle<> awaiting{};

    static std::coroutine_handle<> arrive(DoneHook* h) noexcept {
        auto* self = static_cast<WhenAllLatch*>(h);
        std::coroutine_handle<> next = self->awaiting;
        // Paired with the starter's fetch_sub: the last arrival resumes the awaiter.
        if (self->count.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            return next;
        }
        return std::noop_coroutine();
    }
};

template <class T>
struct WhenAllStart {
    WhenAllStart(std::vector<Task<T>>& t) noexcept : tasks(t), latch(t.size()) {}
    std::vector<Task<T>>& tasks;
    WhenAllLatch latch;

    bool await_ready() const noexcept { return tasks.empty(); }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
        latch.awaiting = h;
        for (Task<T>& t : tasks) {
            if (!t) {
                latch.count.fetch_sub(1, std::memory_order_relaxed); // reported afterwards
                continue;
            }
            auto th = t.handle();
            th.promise().hook_ = &latch;
            th.resume();
        }
        return latch.count.fetch_sub(1, std::memory_order_acq_rel) != 1;
    }
    void await_resume() const noexcept {}
};

/// The value a task of T contributes to a tuple or variant: std::monostate for void.
template <class T>
using TaskValue = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// Starts N tasks of any types, task i with hooks[i] as its DoneHook, from the awaiting
/// coroutine; @latch (which the hooks end in) resumes it after the last one. Every handle
/// must be non-null.
template <std::size_t N>
struct StartEach {
    std::array<std::coroutine_handle<>, N> handles;
    std::array<PromiseBase*, N> promises;
    std::array<DoneHook*, N> hooks;
    WhenAllLatch* latch;

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
        latch->awaiting = h;
        for (std::size_t i = 0; i < N; ++i) {
            promises[i]->hook_ = hooks[i];
            handles[i].resume();
        }
        return latch->count.fetch_sub(1, std::memory_order_acq_rel) != 1;
    }
    void await_resume() const noexcept {}
};

template <class T>
PromiseBase* promise_of(const Task<T>& t) noexcept {
    return &t.handle().promise();
}

/// Returns: the finished task's value (std::monostate for void); rethrows its exception.
template <class T>
TaskValue<T> take_value(Task<T>& t) {
    if constexpr (std::is_void_v<T>) {
        t.handle().promise().take();
        return {};
    } else {
        return t.handle().promise().take();
    }
}

} // namespace detail

/// `auto [a, b] = co_await when_all(read_header(), count_blocks());` Run tasks of any
/// types concurrently; finish when all have finished.
/// Returns: the values in argument order, std::monostate for a Task<void>; rethrows the
/// first exception in argument order after every task has finished; throws std::bad_alloc
/// before starting any task when one of them is empty (its frame could not be allocated).
template <class... T>
requires(sizeof...(T) > 0) Task<std::tuple<detail::TaskValue<T>...>> when_all(Task<T>... tasks) {
    if ((!tasks || ...)) {
        throw std::bad_alloc();
    }
    constexpr std::size_t n = sizeof...(T);
    detail::WhenAllLatch latch(n);
    std::array<detail::DoneHook*, n> hooks;
    hooks.fill(&latch);
    co_await detail::StartEach<n>{
        {tasks.handle()...}, {detail::promise_of(tasks)...}, hooks, &latch};
    // Braced initialisation runs left to right: the first exception in argument order wins.
    co_return std::tuple<detail::TaskValue<T>...>{detail::take_value(tasks)...};
}

/// Run all @tasks concurrently; finish when all have finished.
/// Returns: nothing; rethrows the first exception in task order (std::bad_alloc for a
/// task whose frame could not be allocated) after every task has finished.
inline Task<void> when_all(std::vector<Task<void>> tasks) {
    co_await detail::WhenAllStart<void>(tasks);
    for (Task<void>& t : tasks) {
        if (!t) {
            throw std::bad_alloc();
        }
        t.handle().promise().take();
    }
}

/// As above, collecting the values in task order.
template <class T>
requires(!std::is_void_v<T>) Task<std::vector<T>> when_all(std::vector<Task<T>> tasks) {
    co_await detail::WhenAllStart<T>(tasks);
    std::vector<T> out;
    out.reserve(tasks.size());
    for (Task<T>& t : tasks) {
        if (!t) {
            throw std::bad_alloc();
        }
        out.push_back(t.handle().promise().take());
    }
    co_return out;
}

} // namespace bioring
