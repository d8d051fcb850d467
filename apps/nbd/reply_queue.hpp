// SPDX-License-Identifier: MIT
// ReplyQueue: the replies of one NBD connection, sent in the order they are queued, with
// as few sendmsg calls as the traffic allows (group commit, applied to the socket).
//
// A reply queued while no send is in flight is sent at once by its own request (a lone
// reply waits for nothing). A reply queued while a send is in flight waits; when that send
// completes, the first waiting reply's request sends every reply queued by then — up to
// max_segments iovec segments — in one sendmsg. Under load a reactor turn's worth of
// replies thus costs one send (one syscall, one wake-up of the client) instead of one
// each. Replies never interleave: one send is in flight at a time and each carries whole
// replies. A failed send is the sender's to handle (it breaks the connection).
//
// Protocol, for each reply (the request's coroutine):
//   ReplyQueue::Entry e{iov, niov};
//   if (co_await q.join(e)) {          // this request sends the next batch
//       ReplyQueue::Batch b = q.take(); // its own reply first
//       co_await <send b.iov, b.niov>;
//       q.finish(b);                    // the batch's requests and the next sender resumed
//   }
//   // here the send that carried this reply has completed
// Threads: one connection's reactor only (no locking). Resumptions go through the
// reactor's ready queue, so finish() never runs another request inside the caller.
#pragma once

#include <sys/uio.h>

#include <array>
#include <coroutine>
#include <cstdint>

namespace bioring::apps::nbd {

/// Resume @h from the running reactor's loop, not inside the caller's stack (inline when
/// the ready queue cannot grow). Context: a reactor thread.
void resume_later(std::coroutine_handle<> h) noexcept;

class ReplyQueue {
public:
    /// The most segments one batch sends (the kernel's UIO_MAXIOV).
    static constexpr int max_segments = 1024;

    /// One reply. @iov[0..niov) (1..max_segments segments) and the bytes they point at stay
    /// valid until join() has returned and, for the sender, until finish().
    struct Entry {
        const iovec* iov = nullptr;
        int niov = 0;
        bool zero_copy = false; ///< ask for a zero-copy send (a batch is zero copy if any asks)

        // Queue-private.
        Entry* next = nullptr;
        std::coroutine_handle<> waiter{};
        bool sent = false;
    };

    /// co_await join(e) queues @e. Yields true when the caller is the next sender (take(),
    /// send, finish()), false once another sender's batch has carried @e.
    class JoinAwaiter {
    public:
        JoinAwaiter(ReplyQueue& q, Entry& e) noexcept : q_(q), e_(e) {}
        bool await_ready() noexcept;
        void await_suspend(std::coroutine_handle<> h) noexcept { e_.waiter = h; }
        bool await_resume() const noexcept { return !e_.sent; }

    private:
        ReplyQueue& q_;
        Entry& e_;
    };

    /// A batch to send: the segments of whole replies, in queue order.
    struct Batch {
        const iovec* iov = nullptr;
        int niov = 0;
        unsigned replies = 0;
        bool zero_copy = false;
        Entry* first = nullptr; ///< the sender's own entry, heading the batch's list
    };

    ReplyQueue() noexcept = default;
    ReplyQueue(const ReplyQueue&) = delete;
    ReplyQueue& operator=(const ReplyQueue&) = delete;

    JoinAwaiter join(Entry& e) noexcept { return JoinAwaiter(*this, e); }
    /// The sender (join() yielded true): take the replies queued from its own on, into the
    /// queue's segment array (valid until finish()).
    Batch take() noexcept;
    /// The sender, after the batch's send: resume the other requests of @b, and make the
    /// first reply queued since the next sender (or end sending).
    void finish(const Batch& b) noexcept;

private:
    Entry* head_ = nullptr;
    Entry* tail_ = nullptr;
    bool sending_ = false; ///< false only while the queue is empty
    // Not value-initialised: an idle connection should not pay for touching 16 KiB.
    std::array<iovec, max_segments> segs_;
};

} // namespace bioring::apps::nbd
