// SPDX-License-Identifier: MIT
// RangeLock (range_lock.hpp): two intrusive lists under one mutex; grants are delivered
// after the mutex is dropped, to the reactor each waiter suspended on.
#include "apps/nbd/range_lock.hpp"

namespace bioring::apps::nbd {

void RangeLock::link(Hold*& head, Hold*& tail, Hold& h) noexcept {
    h.prev_ = tail;
    h.next_ = nullptr;
    (tail != nullptr ? tail->next_ : head) = &h;
    tail = &h;
}

void RangeLock::unlink(Hold*& head, Hold*& tail, Hold& h) noexcept {
    (h.prev_ != nullptr ? h.prev_->next_ : head) = h.next_;
    (h.next_ != nullptr ? h.next_->prev_ : tail) = h.prev_;
    h.prev_ = h.next_ = nullptr;
}

bool RangeLock::conflicts_locked(const Hold& h, const Hold* stop_at) const noexcept {
    for (const Hold* o = held_head_; o != nullptr; o = o->next_) {
        if (h.overlaps(*o)) {
            return true;
        }
    }
    for (const Hold* o = wait_head_; o != nullptr && o != stop_at; o = o->next_) {
        if (h.overlaps(*o)) {
            return true; // an earlier waiter on these blocks goes first
        }
    }
    return false;
}

bool RangeLock::try_acquire(Hold& h) noexcept {
    std::lock_guard g(mu_);
    if (conflicts_locked(h, nullptr)) {
        return false;
    }
    link(held_head_, held_tail_, h);
    h.held_ = true;
    return true;
}

bool RangeLock::Hold::await_suspend(std::coroutine_handle<> h) noexcept {
    RangeLock& l = *lock_;
    std::lock_guard g(l.mu_);
    if (!l.conflicts_locked(*this, nullptr)) {
        link(l.held_head_, l.held_tail_, *this);
        held_ = true;
        return false;
    }
    handle_ = h;
    reactor_ = Reactor::current();
    run = &on_run;
    queued_ = true;
    ++l.waits_;
    link(l.wait_head_, l.wait_tail_, *this);
    return true;
}

void RangeLock::Hold::on_run(RemoteTask* t) noexcept {
    static_cast<Hold*>(t)->handle_.resume();
}

void RangeLock::Hold::release() noexcept {
    if (!held_) {
        return;
    }
    RangeLock& l = *lock_;
    Hold* grants = nullptr;
    {
        std::lock_guard g(l.mu_);
        unlink(l.held_head_, l.held_tail_, *this);
        held_ = false;
        Hold* w = l.wait_head_;
        while (w != nullptr) {
            Hold* nextw = w->next_;
            if (!l.conflicts_locked(*w, w)) {
                unlink(l.wait_head_, l.wait_tail_, *w);
                link(l.held_head_, l.held_tail_, *w);
                w->held_ = true;
                w->queued_ = false;
                w->RemoteTask::next = grants;
                grants = w;
            }
            w = nextw;
        }
    }
    while (grants != nullptr) {
        Hold* w = grants;
        grants = static_cast<Hold*>(w->RemoteTask::next);
        w->RemoteTask::next = nullptr;
        if (Reactor::current() == w->reactor_) {
            try {
                w->reactor_->post(w->handle_);
                continue;
            } catch (...) {
                // no memory to grow the ready queue: the remote path allocates nothing
            }
        }
        w->reactor_->post_remote(*w); // w may run (and vanish) at once: not touched after
    }
}

std::uint64_t RangeLock::waits() const noexcept {
    std::lock_guard g(mu_);
    return waits_;
}

} // namespace bioring::apps::nbd
