// SPDX-License-Identifier: MIT
// Semaphore: a counting semaphore for coroutines, usable from every reactor of a process.
// `Permit p = co_await sem.acquire(stop);` waits for a permit and returns it as an RAII
// object that gives it back when destroyed. It is the concurrency limit of bioring: the
// bounded spawn (runtime/spawn.hpp) takes a permit per request and returns it when the
// request's frame is freed.
//
// Fair (FIFO): release() hands a permit straight to the oldest waiter; a newcomer never
// takes it while anyone waits. The uncontended acquire and release take the mutex once and
// allocate nothing; a wait allocates nothing either (the node is in the awaiter). Waiters
// are resumed on their own reactor (runtime/detail/wait_queue.hpp).
#pragma once

#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/task.hpp>
#include <bioring/runtime/detail/wait_queue.hpp>

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <mutex>
#include <stop_token>
#include <system_error>
#include <utility>

namespace bioring {

class Semaphore;

/// One permit of a Semaphore, or the reason there is none. Move-only; the destructor
/// releases a held permit (on whatever thread it runs).
class [[nodiscard]] Permit {
public:
    Permit() noexcept = default;
    Permit(Permit&& o) noexcept : sem_(std::exchange(o.sem_, nullptr)), err_(o.err_) {}
    Permit& operator=(Permit&& o) noexcept {
        if (this != &o) {
            release();
            sem_ = std::exchange(o.sem_, nullptr);
            err_ = o.err_;
        }
        return *this;
    }
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() { release(); }

    /// Returns: true when a permit is held.
    bool ok() const noexcept { return sem_ != nullptr; }
    explicit operator bool() const noexcept { return ok(); }
    /// Returns: why no permit is held: ECANCELED (the stop_token was requested), ENXIO (the
    /// wait had to suspend on a thread without a reactor), EAGAIN (try_acquire found none);
    /// an empty error_code when a permit is held or after release().
    std::error_code error() const noexcept {
        return err_ == 0 ? std::error_code{} : std::error_code(err_, std::generic_category());
    }
    /// Give the permit back now (no-op when none is held). Context: any thread.
    inline void release() noexcept;
    /// Keep the permit taken without releasing it (it must be given back with
    /// Semaphore::release() later). Returns: whether one was held.
    bool detach() noexcept { return std::exchange(sem_, nullptr) != nullptr; }

private:
    friend class Semaphore;
    explicit Permit(Semaphore* s) noexcept : sem_(s) {}
    explicit Permit(int neg_errno) noexcept : err_(-neg_errno) {}
    Semaphore* sem_ = nullptr;
    int err_ = 0; ///< positive errno when no permit is held for a reason
};

class Semaphore {
public:
    /// Context: any thread. @permits is the number available at first.
    explicit Semaphore(std::size_t permits) noexcept : count_(permits) {
        spawn_hook_.fn = &SpawnHook::on_done;
        spawn_hook_.sem = this;
    }
    /// Context: no waiter may be queued and no Permit of it alive.
    ~Semaphore() = default;
    Semaphore(const Semaphore&) = delete;
    Semaphore& operator=(const Semaphore&) = delete;

    class [[nodiscard]] AcquireAwaiter : private detail::Waiter {
    public:
        AcquireAwaiter(Semaphore& s, std::stop_token stop) noexcept
            : Waiter(std::move(stop)), sem_(s) {}
        bool await_ready() const noexcept { return false; }
        bool await_suspend(std::coroutine_handle<> h) {
            if (stop_requested_early()) {
                return false;
            }
            {
                std::lock_guard lk(sem_.mu_);
                if (sem_.count_ > 0 && sem_.q_.empty()) {
                    --sem_.count_;
                    result = 0;
                    return false;
                }
                Reactor* r = Reactor::current();
                if (r == nullptr) {
                    result = -ENXIO;
                    return false;
                }
                enqueue(sem_.mu_, sem_.q_, *r, h);
            }
            arm();
            return true;
        }
        Permit await_resume() noexcept {
            finish();
            return result == 0 ? Permit(&sem_) : Permit(result);
        }

    protected:
        Semaphore& sem_;
    };

    /// `Permit p = co_await sem.acquire(stop);` Takes a permit, waiting (FIFO) while none
    /// is free. Context: a coroutine; a wait that must suspend needs a reactor on the thread.
    /// Returns (from co_await): a held Permit; or an empty one whose error() is ECANCELED
    /// when @stop was requested before a permit was granted (a stop that comes after the
    /// grant is ignored: the permit is held), ENXIO when it had to wait with no reactor.
    AcquireAwaiter acquire(std::stop_token stop = {}) noexcept {
        return AcquireAwaiter(*this, std::move(stop));
    }
    /// Returns: a held Permit when one is free and nobody waits, else an empty one (EAGAIN).
    /// Context: any thread.
    Permit try_acquire() noexcept {
        std::lock_guard lk(mu_);
        if (count_ > 0 && q_.empty()) {
            --count_;
            return Permit(this);
        }
        return Permit(-EAGAIN);
    }
    /// Give back @n permits: each goes to the oldest waiter, the rest become available.
    /// Context: any thread; waiters are resumed on their own reactors, never inline here.
    void release(std::size_t n = 1) noexcept {
        detail::WakeList wake;
        {
            std::lock_guard lk(mu_);
            for (; n > 0 && !q_.empty(); --n) {
                detail::WaitNode* w = q_.pop_front();
                w->result = 0;
                wake.push(*w);
            }
            count_ += n;
        }
        wake.resume_all();
    }
    /// Returns: permits free now (a snapshot). Context: any thread.
    std::size_t available() const noexcept {
        std::lock_guard lk(mu_);
        return count_;
    }
    /// Returns: coroutines queued now (a snapshot). Context: any thread.
    std::size_t waiting() const noexcept {
        std::lock_guard lk(mu_);
        return q_.size();
    }

    /// Internal (bounded spawn): a DoneHook that releases one permit of this semaphore
    /// after a detached task's frame is freed.
    detail::DoneHook* spawn_hook() noexcept { return &spawn_hook_; }

private:
    struct SpawnHook : detail::DoneHook {
        Semaphore* sem = nullptr;
        static std::coroutine_handle<> on_done(detail::DoneHook* h) noexcept {
            static_cast<SpawnHook*>(h)->sem->release();
            return std::noop_coroutine();
        }
    };

    mutable std::mutex mu_;
    std::size_t count_;
    detail::WaitQueue q_;
    SpawnHook spawn_hook_;
};

inline void Permit::release() noexcept {
    if (Semaphore* s = std::exchange(sem_, nullptr)) {
        s->release();
    }
}

} // namespace bioring
