// SPDX-License-Identifier: MIT
// spawn: detached requests. spawn(task) starts a task that frees its own frame when it
// ends (an escaping exception is printed and counted: detached_exceptions()).
//
// What bounds what:
//   - spawn(Semaphore&, f, args...) bounds how many requests are in flight: it takes a
//     permit before it builds the request and the permit comes back when the request's frame
//     is freed. This is the concurrency limit.
//   - spawn(BioSet&, f, args...) bounds nothing in normal operation. The bioset's pool_size
//     is a reserve (mempool, as in the kernel), not a cap: frames come from the slab cache
//     and its backing allocator first, so 20,000 requests on BioSet(pool_size = 1) all run
//     at once. Only when the cache, the backing allocator and the reserve all fail (the Task
//     comes back empty) does it wait on BioSet::Waiter for the next free instead of failing:
//     it guarantees forward progress under memory pressure, it does not limit concurrency.
// The two compose: build with the BioSet inside f and bound with the Semaphore.
#pragma once

#include <bioring/alloc/bioset.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/result.hpp>
#include <bioring/runtime/semaphore.hpp>
#include <bioring/runtime/task.hpp>

#include <coroutine>
#include <new>
#include <stdexcept>
#include <stop_token>
#include <type_traits>
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
Task<IoResult> spawn_limited(Semaphore* sem, std::stop_token stop, F* f, A... args) {
    Permit permit = co_await sem->acquire(std::move(stop));
    if (!permit) {
        co_return IoResult{-permit.error().value()};
    }
    Task<void> t = (*f)(args...);
    if (!t) {
        throw std::bad_alloc(); // the permit goes back with `permit`
    }
    permit.detach(); // now owned by the request: its DoneHook releases it
    start_detached(std::move(t), sem->spawn_hook());
    co_return IoResult{0};
}

template <class F, class... A>
Task<void> spawn_bounded(BioSet* bs, F* f, A... args) {
    if (Reactor::current() == nullptr) {
        throw std::logic_error("bioring::spawn(BioSet&, ...): no reactor on this thread");
    }
    for (;;) {
        Task<void> t = (*f)(*bs, args...);
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
/// frame comes from the thread's default bioset, not from @bs. @f is used by reference and
/// must outlive the requests it builds: a coroutine lambda's captures live in the lambda
/// object, not in the request's frame (a temporary lambda would leave the request reading
/// freed memory).
/// Returns: throws what f throws; std::logic_error without a reactor.
template <class F, class... A>
Task<void> spawn(BioSet& bs, F&& f, A... args) {
    return detail::spawn_bounded(&bs, &f, std::move(args)...);
}

/// `co_await spawn(limit, stop, f, i);` Take a permit of @limit (waiting, FIFO, while none is
/// free), then build a request with f(args...) and start it detached; the permit is given
/// back when the request has finished and its frame is freed (on the thread it finished
/// on). So at most the semaphore's permits' worth of requests spawned through it are in
/// flight at any time. @limit must outlive every request spawned through it. @f is used by
/// reference, not copied: a lambda coroutine reads its captures through the lambda object,
/// so a capturing @f must outlive the requests it builds (name it; don't pass a temporary).
/// Context: a coroutine on a reactor thread (a wait needs one). This task's own frame
/// comes from the thread's default bioset.
/// Returns: 0 once the request has been started; -ECANCELED when @stop was requested
/// before a permit was granted (nothing is built); -ENXIO when it had to wait with no
/// reactor; throws what f throws, std::bad_alloc when f returns an empty task (in both
/// cases the permit is given back).
template <class F, class... A>
Task<IoResult> spawn(Semaphore& limit, std::stop_token stop, F&& f, A... args) {
    return detail::spawn_limited(&limit, std::move(stop), &f, std::move(args)...);
}
/// As above, without cancellation: `co_await spawn(limit, f, i);`
template <class F, class... A>
requires(!std::is_same_v<std::decay_t<F>, std::stop_token>) Task<IoResult> spawn(Semaphore& limit,
                                                                                 F&& f, A... args) {
    return detail::spawn_limited(&limit, std::stop_token{}, &f, std::move(args)...);
}

} // namespace bioring
