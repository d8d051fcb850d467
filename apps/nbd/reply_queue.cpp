// SPDX-License-Identifier: MIT
// ReplyQueue (reply_queue.hpp): the queue of one connection's replies and its batches.
#include "apps/nbd/reply_queue.hpp"

#include <bioring/runtime/reactor.hpp>

#include <algorithm>
#include <cassert>

namespace bioring::apps::nbd {

void resume_later(std::coroutine_handle<> h) noexcept {
    try {
        Reactor::current()->post(h);
    } catch (...) {
        h.resume(); // no memory to grow the ready queue: resume inline instead
    }
}

bool ReplyQueue::JoinAwaiter::await_ready() noexcept {
    e_.next = nullptr;
    e_.sent = false;
    if (q_.tail_ != nullptr) {
        q_.tail_->next = &e_;
    } else {
        q_.head_ = &e_;
    }
    q_.tail_ = &e_;
    if (!q_.sending_) { // nothing in flight: the queue held nothing, send at once
        q_.sending_ = true;
        return true;
    }
    return false;
}

ReplyQueue::Batch ReplyQueue::take() noexcept {
    assert(head_ != nullptr && sending_);
    Batch b;
    b.iov = segs_.data();
    b.first = head_;
    Entry* last = nullptr;
    Entry* e = head_;
    // The sender's own reply always fits (at most max_segments segments); the others join
    // while whole replies fit.
    while (e != nullptr && (b.replies == 0 || b.niov + e->niov <= max_segments)) {
        std::copy_n(e->iov, e->niov, segs_.data() + b.niov);
        b.niov += e->niov;
        b.zero_copy = b.zero_copy || e->zero_copy;
        ++b.replies;
        last = e;
        e = e->next;
    }
    last->next = nullptr; // the batch is its own list now; joins go after the queue's tail
    head_ = e;
    if (e == nullptr) {
        tail_ = nullptr;
    }
    return b;
}

void ReplyQueue::finish(const Batch& b) noexcept {
    // Read each link before resuming: a resumed request may end and free its entry.
    for (Entry* e = b.first; e != nullptr;) {
        Entry* const next = e->next;
        e->sent = true;
        if (e != b.first) {
            resume_later(e->waiter);
        }
        e = next;
    }
    if (head_ != nullptr) {
        resume_later(head_->waiter); // not sent yet: it wakes as the next sender
    } else {
        sending_ = false;
    }
}

} // namespace bioring::apps::nbd
