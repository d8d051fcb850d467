// SPDX-License-Identifier: MIT
// spawn: detached requests. spawn(task) starts a task that frees its own frame when it
// ends (an escaping exception is printed and counted: detached_exceptions()). The bounded
// form builds each request from a BioSet and, when the pool and the backing allocator are
// exhausted (the Task comes back empty), waits on BioSet::Waiter for the next free instead
// of failing — the bioset's pool_size bounds how many requests are in flight.
#pragma once

#include <bioring/alloc/bioset.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/task.hpp>

#include <coroutine>
#include <new>
#include <stdexcept>
#include <utility>

namespace bioring {

/// Start @t detached on the calling thread (it runs until its first suspension now).
/// Context: normally a reactor thread. Returns: throws std::bad_alloc for an empty task.
inline void spawn(Task<void> t) {
    if (!t) {
        throw std::bad_alloc();
    }
    detail::start_detached(std::move(t));
}

namespace detail {

/// Suspends until @bs frees an object (BioSet::Waiter), resuming on the waiting reactor.
struct PoolWaiter : BioSet::Waiter, RemoteTask {
    explicit PoolWaiter(BioSet& b) noexcept : bs(b) {}
    BioSet& bs;
    Reactor* reactor = nullptr;
    std::coroutine_handle<> handle{};

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
        handle = h;
        reactor = Reactor::current();
        BioSet::Waiter::wake = &on_wake;
        RemoteTask::run = &on_run;
        return bs.wait(*this); // false: an object is free now, retry at once
    }
    void await_resume() const noexcept {}

    static void on_wake(BioSet::Waiter* w) noexcept {
        auto* self = static_cast<PoolWaiter*>(w);
        if (Reactor::current() == self->reactor) {
            // Freed on our own thread (the usual case): no lock, no eventfd.
            try {
                self->reactor->post(self->handle);
                return;
            } catch (...) {
                // no memory to grow the ready queue: take the allocation-free remote path
            }
        }
        self->reactor->post_remote(*self); // the freeing thread may be any thread
    }
    static void on_run(RemoteTask* t) noexcept { static_cast<PoolWaiter*>(t)->handle.resume(); }
};

template <class F, class... A>
Task<void> spawn_bounded(BioSet* bs, F f, A... args) {
    if (Reactor::current() == nullptr) {
        throw std::logic_error("bioring::spawn(BioSet&, ...): no reactor on this thread");
    }
    for (;;) {
        Task<void> t = f(*bs, args...);
        if (t) {
            spawn(std::move(t));
            co_return;
        }
        co_await PoolWaiter(*bs);
    }
}

} // namespace detail

/// Build a request with f(bs, args...) and spawn it; when its frame cannot be allocated,
/// wait for a free in @bs and try again. Completes once the request has been started.
/// Context: a coroutine on a reactor thread: `co_await spawn(bs, f, i);`. This task's own
/// frame comes from the thread's default bioset, not from @bs.
/// Returns: throws what f throws; std::logic_error without a reactor.
template <class F, class... A>
Task<void> spawn(BioSet& bs, F f, A... args) {
    return detail::spawn_bounded(&bs, std::move(f), std::move(args)...);
}

} // namespace bioring
