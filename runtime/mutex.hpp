// SPDX-License-Identifier: MIT
// Mutex: an asynchronous mutual-exclusion lock for coroutines on any reactor.
// `MutexGuard g = co_await mu.lock(stop);` suspends (never blocks the thread) until the
// lock is free, and the guard unlocks when destroyed. It is a Semaphore of one permit, so it
// has the same properties: FIFO hand-off (unlock passes the lock straight to the oldest
// waiter), no allocation, std::stop_token cancellation, waiters resumed on their own
// reactor. Not recursive; the guard may be destroyed on another thread than the locker's
// (after switch_to) — the lock belongs to the guard, not to a thread.
#pragma once

#include <bioring/runtime/semaphore.hpp>

#include <coroutine>
#include <stop_token>
#include <system_error>
#include <utility>

namespace bioring {

/// Ownership of a Mutex, or the reason it is not held. Move-only; unlocks when destroyed.
class [[nodiscard]] MutexGuard {
public:
    MutexGuard() noexcept = default;
    explicit MutexGuard(Permit p) noexcept : p_(std::move(p)) {}
    /// Returns: true while the lock is held.
    bool owns_lock() const noexcept { return p_.ok(); }
    explicit operator bool() const noexcept { return owns_lock(); }
    /// Returns: ECANCELED, ENXIO or EAGAIN (see Permit::error()) when not held.
    std::error_code error() const noexcept { return p_.error(); }
    /// Unlock now (no-op when not held). Context: any thread.
    void unlock() noexcept { p_.release(); }

private:
    Permit p_;
};

class Mutex {
public:
    Mutex() noexcept = default;
    Mutex(const Mutex&) = delete;
    Mutex& operator=(const Mutex&) = delete;

    struct [[nodiscard]] LockAwaiter {
        Semaphore::AcquireAwaiter a;
        bool await_ready() const noexcept { return false; }
        bool await_suspend(std::coroutine_handle<> h) { return a.await_suspend(h); }
        MutexGuard await_resume() noexcept { return MutexGuard(a.await_resume()); }
    };
    /// `MutexGuard g = co_await mu.lock(stop);`
    /// Context: a coroutine; a wait that must suspend needs a reactor on the thread.
    /// Returns (from co_await): a guard that owns the lock, or (not owning) error()
    /// ECANCELED when @stop was requested before the lock was granted, ENXIO when it had to
    /// wait with no reactor.
    LockAwaiter lock(std::stop_token stop = {}) noexcept {
        return LockAwaiter{sem_.acquire(std::move(stop))};
    }
    /// Returns: an owning guard when the lock is free and nobody waits, else a non-owning
    /// one (EAGAIN). Context: any thread.
    MutexGuard try_lock() noexcept { return MutexGuard(sem_.try_acquire()); }
    /// Returns: whether the lock is held now (a snapshot). Context: any thread.
    bool is_locked() const noexcept { return sem_.available() == 0; }
    /// Returns: coroutines waiting for the lock now (a snapshot). Context: any thread.
    std::size_t waiting() const noexcept { return sem_.waiting(); }

private:
    Semaphore sem_{1};
};

} // namespace bioring
