// SPDX-License-Identifier: MIT
// Event: a coroutine event usable from every reactor of a process.
//   manual reset: set() wakes every waiter and stays set until reset(); a wait on a set
//                 event returns at once.
//   auto reset:   set() wakes the oldest waiter only (the event stays unset), or, when
//                 nobody waits, leaves the event set for the next wait, which consumes it.
// Waiters are FIFO, allocate nothing (the node is in the awaiter), can be cancelled through
// a std::stop_token and are resumed on their own reactor (runtime/detail/wait_queue.hpp).
#pragma once

#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/result.hpp>
#include <bioring/runtime/detail/wait_queue.hpp>

#include <cerrno>
#include <coroutine>
#include <mutex>
#include <stop_token>

namespace bioring {

enum class EventMode { manual_reset, auto_reset };

class Event {
public:
    /// Context: any thread.
    explicit Event(EventMode mode = EventMode::manual_reset, bool initially_set = false) noexcept
        : mode_(mode), set_(initially_set) {}
    /// Context: no waiter may be queued.
    ~Event() = default;
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

    class [[nodiscard]] WaitAwaiter : private detail::Waiter {
    public:
        WaitAwaiter(Event& e, std::stop_token stop) noexcept : Waiter(std::move(stop)), ev_(e) {}
        bool await_ready() const noexcept { return false; }
        bool await_suspend(std::coroutine_handle<> h) {
            if (stop_requested_early()) {
                return false;
            }
            {
                std::lock_guard lk(ev_.mu_);
                if (ev_.set_) {
                    if (ev_.mode_ == EventMode::auto_reset) {
                        ev_.set_ = false;
                    }
                    result = 0;
                    return false;
                }
                Reactor* r = Reactor::current();
                if (r == nullptr) {
                    result = -ENXIO;
                    return false;
                }
                enqueue(ev_.mu_, ev_.q_, *r, h);
            }
            arm();
            return true;
        }
        IoResult await_resume() noexcept {
            finish();
            return IoResult{result};
        }

    private:
        Event& ev_;
    };

    /// `IoResult r = co_await ev.wait(stop);`
    /// Context: a coroutine; a wait that must suspend needs a reactor on the thread.
    /// Returns (from co_await): 0 when the event was set (for auto reset: this waiter
    /// consumed it); -ECANCELED when @stop was requested first; -ENXIO when it had to wait
    /// with no reactor.
    WaitAwaiter wait(std::stop_token stop = {}) noexcept {
        return WaitAwaiter(*this, std::move(stop));
    }

    /// Set the event (see the modes above). Context: any thread; waiters are resumed on
    /// their own reactors, never inline here.
    void set() noexcept {
        detail::WakeList wake;
        {
            std::lock_guard lk(mu_);
            if (mode_ == EventMode::manual_reset) {
                set_ = true;
                while (detail::WaitNode* w = q_.pop_front()) {
                    w->result = 0;
                    wake.push(*w);
                }
            } else if (detail::WaitNode* w = q_.pop_front()) {
                w->result = 0;
                wake.push(*w);
            } else {
                set_ = true;
            }
        }
        wake.resume_all();
    }
    /// Clear the event. Context: any thread.
    void reset() noexcept {
        std::lock_guard lk(mu_);
        set_ = false;
    }
    /// Returns: whether the event is set now (a snapshot). Context: any thread.
    bool is_set() const noexcept {
        std::lock_guard lk(mu_);
        return set_;
    }
    /// Returns: coroutines waiting now (a snapshot). Context: any thread.
    std::size_t waiting() const noexcept {
        std::lock_guard lk(mu_);
        return q_.size();
    }

private:
    mutable std::mutex mu_;
    detail::WaitQueue q_;
    const EventMode mode_;
    bool set_;
};

} // namespace bioring
