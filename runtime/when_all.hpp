// SPDX-License-Identifier: MIT
// when_all: start every task, resume the caller when the last one finishes (a latch of
// n + 1: the starter holds one count so a task that finishes synchronously cannot resume
// the caller before it has suspended). Tasks are started one after the other from the
// awaiting coroutine, each resumed once, so 10,000 synchronous tasks use no extra stack.
// Results (or the first exception, in task order) are collected once all have finished.
#pragma once

#include <bioring/runtime/task.hpp>

#include <atomic>
#include <cstddef>
#include <new>
#include <type_traits>
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

} // namespace detail

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
    requires(!std::is_void_v<T>)
Task<std::vector<T>> when_all(std::vector<Task<T>> tasks) {
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
