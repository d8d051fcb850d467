// SPDX-License-Identifier: MIT
// MultishotAccept: a Listener's io_uring multishot accept and its queue of accepted
// descriptors (Listener::accept, AcceptOp).
//
// One IORING_ACCEPT_MULTISHOT SQE keeps accepting; each CQE's descriptor goes to the
// oldest waiting AcceptOp, or, with none waiting, to a FIFO queue that accept() takes from
// without a syscall or an SQE. The queue is bounded (queue_bound): when it is full the
// multishot is cancelled and not re-armed, so further clients wait in the kernel's listen
// backlog (nothing is closed), and it is re-armed once accept() has drained the queue to
// half. It is re-armed too when the kernel ends it (a CQE without IORING_CQE_F_MORE:
// -ENOBUFS, -ECANCELED, ...), except on a reactor that is stopping or being destroyed.
// A kernel that refuses the flag (the first multishot accept of the process completes
// with -EINVAL) turns it off for the whole process: every accept is single-shot after.
//
// Ownership. The state belongs to one reactor at a time (the first whose accept() arms
// it; owner_ holds its id): only that reactor's thread touches it; accept() on any other
// reactor is single-shot and leaves it alone. A reactor being destroyed cancels the
// multishot and gives the state up (a later reactor may claim it; queued descriptors stay
// queued). The Listener allocates it once, on the first multishot accept, and hands it to
// retire() when it closes: queued descriptors are closed and an armed multishot is
// cancelled; the state frees itself at the multishot's last CQE, closing any descriptor
// that still arrives. retire() from a thread other than the owner's posts that work to
// the owner reactor while the multishot is armed (that reactor must not be in its
// destructor at the time); a disarmed state is freed right there.
// A reactor that stops or is destroyed gives up ownership at the multishot's last CQE. One
// destroyed while the multishot was disarmed with the state owned (queue full, or an error
// with no waiter) keeps it: accept() on later reactors is then single-shot, and the queued
// descriptors are closed with the listener.
#pragma once

#include <bioring/runtime/operation.hpp>
#include <bioring/runtime/reactor.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace bioring::detail {

class AcceptOp;

class MultishotAccept final : private Operation {
public:
    /// Descriptors queued while nobody awaits before the multishot is stopped.
    static constexpr std::size_t queue_bound = 64;

    /// Returns: a new state for listening socket @listen_fd, or nullptr when out of memory.
    /// Context: any thread.
    static MultishotAccept* create(int listen_fd) noexcept;
    /// Returns: whether the kernel is still believed to take IORING_ACCEPT_MULTISHOT.
    static bool supported() noexcept;

    /// Make reactor @r the owner unless another reactor owns the state.
    /// Returns: whether @r owns it now. Context: @r's thread.
    bool claim(Reactor& r) noexcept;
    /// Returns: the oldest queued descriptor (ownership passes to the caller), or -1.
    /// Context: the owner's thread.
    int pop() noexcept;
    /// Returns: whether a waiter may be queued: the owner is io_uring, neither stopping
    /// nor being destroyed, and the kernel has not refused the flag. Context: owner thread.
    bool can_wait() const noexcept;
    /// Queue @w for the next descriptor (arming the multishot if it is not).
    /// Context: the owner's thread, after can_wait().
    void wait(AcceptOp& w) noexcept;
    /// Take @w out of the waiters (its wait timer ended first). Context: owner thread.
    void unwait(AcceptOp& w) noexcept;
    /// The Listener closes: see the header comment. @m may be gone when this returns.
    /// Context: any thread; the listener's accept() is not awaited any more.
    static void retire(MultishotAccept* m) noexcept;

private:
    explicit MultishotAccept(int listen_fd);
    static void on_cqe(Operation* op, int res) noexcept;
    static void run_retire(RemoteTask* t) noexcept;
    void retire_here() noexcept;
    void arm() noexcept;
    void push(int fd) noexcept;
    void close_queued() noexcept;
    AcceptOp* take_waiter() noexcept;

    Reactor* reactor_ = nullptr;          ///< the owner (valid while owner_ != 0)
    std::atomic<std::uint64_t> owner_{0}; ///< Reactor::id() of the owner, 0 = none
    std::vector<int> ring_;               ///< queued descriptors: a ring, size a power of 2
    std::size_t head_ = 0;                ///< index of the oldest
    std::size_t count_ = 0;
    AcceptOp* first_ = nullptr; ///< waiters, oldest first (intrusive through AcceptOp::next_)
    AcceptOp* last_ = nullptr;
    bool armed_ = false; ///< the SQE is in the kernel (until its CQE without MORE)
    /// armed_ as other threads may read it (retire()): set by arm(), cleared at the end of
    /// the last CQE's handling, after which the owner's thread no longer touches the state
    /// unless an accept() is awaited.
    std::atomic<bool> in_kernel_{false};
    bool cancelling_ = false; ///< an ASYNC_CANCEL for it is on its way
    bool retired_ = false;    ///< the Listener let go: free at the last CQE
    struct RetireTask : RemoteTask {
        MultishotAccept* self = nullptr;
    };
    RetireTask retire_task_{};
};

} // namespace bioring::detail
