// SPDX-License-Identifier: MIT
// The waiter machinery shared by Event, Semaphore, Mutex and Channel: an intrusive FIFO of
// WaitNodes (the nodes live in the awaiters, i.e. in the waiting coroutines' frames, so a
// wait allocates nothing), the rule that wakes a node on its own reactor, and Waiter, the
// awaiter base that adds std::stop_token cancellation and unlinks itself when destroyed.
//
// Locking. Each primitive guards its state and its queues with one std::mutex; a node's
// queue links, `queued` and `result` are written only under that mutex. Wakers unlink
// nodes under the mutex, collect them in a WakeList and resume them after dropping it.
//
// Resumption. A node is always resumed by its own reactor's loop, never inline on the
// waker's thread: from the owner thread through Reactor::post (the ready queue), from any
// other thread through Reactor::post_remote with the RemoteTask embedded in the node. So a
// wake costs no allocation (the ready queue keeps its capacity) and a coroutine never runs
// on a thread other than the one it waited on.
//
// Cancellation. A stop_callback registered after the node is queued takes the mutex and,
// if the node is still queued, unlinks it, sets result = -ECANCELED and resumes it as a
// waker would. Cancel and wake race only on `queued`, under the mutex: whichever comes
// first decides the result; the other does nothing.
#pragma once

#include <bioring/runtime/reactor.hpp>

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <mutex>
#include <optional>
#include <stop_token>

namespace bioring::detail {

/// One waiting coroutine. Links and result are guarded by the owning primitive's mutex.
struct WaitNode : RemoteTask {
    WaitNode* wq_prev = nullptr;
    WaitNode* wq_next = nullptr;
    Reactor* reactor = nullptr; ///< where the coroutine waits and is resumed
    std::coroutine_handle<> handle{};
    int result = 0; ///< 0 = granted, else -errno (-ECANCELED, -EPIPE, ...)
    bool queued = false;
};

/// Intrusive doubly linked FIFO of WaitNodes. Not thread-safe: the owner's mutex guards it.
class WaitQueue {
public:
    bool empty() const noexcept { return head_ == nullptr; }
    std::size_t size() const noexcept { return size_; }
    WaitNode* front() const noexcept { return head_; }

    void push_back(WaitNode& n) noexcept {
        n.wq_next = nullptr;
        n.wq_prev = tail_;
        if (tail_ != nullptr) {
            tail_->wq_next = &n;
        } else {
            head_ = &n;
        }
        tail_ = &n;
        n.queued = true;
        ++size_;
    }
    /// Returns: the oldest node, unlinked; nullptr when empty.
    WaitNode* pop_front() noexcept {
        WaitNode* n = head_;
        if (n != nullptr) {
            remove(*n);
        }
        return n;
    }
    /// Unlink @n, which must be in this queue.
    void remove(WaitNode& n) noexcept {
        (n.wq_prev != nullptr ? n.wq_prev->wq_next : head_) = n.wq_next;
        (n.wq_next != nullptr ? n.wq_next->wq_prev : tail_) = n.wq_prev;
        n.wq_prev = n.wq_next = nullptr;
        n.queued = false;
        --size_;
    }

private:
    WaitNode* head_ = nullptr;
    WaitNode* tail_ = nullptr;
    std::size_t size_ = 0;
};

/// Resume @n's coroutine on its own reactor, later (never inline here).
/// Context: any thread; @n must be unlinked and its result set; after the call nothing may
/// touch @n (its coroutine may already run on another thread).
inline void resume_waiter(WaitNode& n) noexcept {
    if (Reactor::current() == n.reactor) {
        try {
            n.reactor->post(n.handle);
            return;
        } catch (...) {
            // no memory to grow the ready queue: the remote path allocates nothing
        }
    }
    n.run = [](RemoteTask* t) noexcept { static_cast<WaitNode*>(t)->handle.resume(); };
    n.reactor->post_remote(n);
}

/// Nodes unlinked under a primitive's mutex, resumed in FIFO order once it is dropped.
class WakeList {
public:
    void push(WaitNode& n) noexcept {
        n.wq_next = nullptr;
        (tail_ != nullptr ? tail_->wq_next : head_) = &n;
        tail_ = &n;
    }
    /// Context: without the primitive's mutex held.
    void resume_all() noexcept {
        for (WaitNode* n = head_; n != nullptr;) {
            WaitNode* next = n->wq_next; // read before the node may vanish
            resume_waiter(*n);
            n = next;
        }
        head_ = tail_ = nullptr;
    }

private:
    WaitNode* head_ = nullptr;
    WaitNode* tail_ = nullptr;
};

/// Awaiter base: a WaitNode with an optional stop_token. Protocol for a primitive's awaiter:
/// in await_suspend, take the mutex, try the fast path; else enqueue(), drop the mutex, then
/// arm(); in await_resume, call finish() first.
///
/// Destroying a waiting coroutine (its frame holds this Waiter) is allowed while the node
/// is queued: the destructor unlinks it. Once a wake or a cancel has unlinked it, the
/// coroutine must be resumed before it is destroyed (its resumption is already posted).
class Waiter : public WaitNode {
public:
    explicit Waiter(std::stop_token stop) noexcept : token_(std::move(stop)) {}
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;
    ~Waiter() {
        cb_.reset(); // waits for a callback running on another thread
        if (mu_ != nullptr) {
            std::lock_guard lk(*mu_);
            if (queued) {
                q_->remove(*this);
            }
        }
    }

protected:
    /// Returns: true when a stop was requested before the wait began (result is set).
    bool stop_requested_early() noexcept {
        if (token_.stop_possible() && token_.stop_requested()) [[unlikely]] {
            result = -ECANCELED;
            return true;
        }
        return false;
    }
    /// Queue this waiter on @q for @h on @r. Context: @mu held.
    void enqueue(std::mutex& mu, WaitQueue& q, Reactor& r, std::coroutine_handle<> h) noexcept {
        mu_ = &mu;
        q_ = &q;
        reactor = &r;
        handle = h;
        result = 0;
        q.push_back(*this);
    }
    /// Register the stop callback. Context: after enqueue(), without the mutex held; may
    /// cancel at once (the coroutine is then resumed by the loop with -ECANCELED).
    void arm() {
        if (token_.stop_possible()) {
            cb_.emplace(token_, Cancel{this});
        }
    }
    /// Context: await_resume, on the waiting reactor. The node is unlinked (a waker or the
    /// canceller did it before posting the resumption, which orders it before us).
    void finish() noexcept {
        cb_.reset();
        mu_ = nullptr;
    }

private:
    struct Cancel {
        Waiter* w;
        void operator()() const noexcept { w->cancel(); }
    };
    void cancel() noexcept {
        {
            std::lock_guard lk(*mu_);
            if (!queued) {
                return; // already woken: the wake's result stands
            }
            q_->remove(*this);
            result = -ECANCELED;
        }
        resume_waiter(*this);
    }

    std::stop_token token_;
    std::mutex* mu_ = nullptr; ///< set while enqueued (until finish())
    WaitQueue* q_ = nullptr;
    std::optional<std::stop_callback<Cancel>> cb_;
};

} // namespace bioring::detail
