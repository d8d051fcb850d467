// SPDX-License-Identifier: MIT
// MultishotAccept: the armed multishot accept, its descriptor queue and waiters
// (io/detail/multishot_accept.hpp).
#include <bioring/io/detail/multishot_accept.hpp>

#include <bioring/io/detail/socket_op.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <new>

namespace bioring::detail {
namespace {

// Cleared by the first multishot accept that completes with -EINVAL before any multishot
// CQE of the process succeeded: the kernel predates IORING_ACCEPT_MULTISHOT (Linux 5.19).
// Process-wide: every ring runs on the same kernel.
std::atomic<bool> g_supported{true};
std::atomic<bool> g_confirmed{false}; ///< a multishot accept produced a descriptor

} // namespace

MultishotAccept::MultishotAccept(int listen_fd) {
    fd = listen_fd;
    fixed_file = false;
    mode = SOCK_CLOEXEC | SOCK_NONBLOCK;
    complete = &MultishotAccept::on_cqe;
    // Room for the bound plus what arrives between the cancel and its last CQE; push()
    // grows it (rarely) if more come.
    ring_.assign(2 * queue_bound, -1);
    retire_task_.run = &MultishotAccept::run_retire;
    retire_task_.self = this;
}

MultishotAccept* MultishotAccept::create(int listen_fd) noexcept {
    try {
        return new MultishotAccept(listen_fd);
    } catch (...) {
        return nullptr;
    }
}

bool MultishotAccept::supported() noexcept {
    return g_supported.load(std::memory_order_relaxed);
}

bool MultishotAccept::claim(Reactor& r) noexcept {
    const std::uint64_t id = r.id();
    std::uint64_t cur = owner_.load(std::memory_order_acquire);
    if (cur == id) {
        return true;
    }
    if (cur != 0 || !owner_.compare_exchange_strong(cur, id, std::memory_order_acq_rel)) {
        return false;
    }
    reactor_ = &r;
    return true;
}

bool MultishotAccept::can_wait() const noexcept {
    return supported() && !retired_ && reactor_->backend() == Backend::uring &&
           !reactor_->stopping() && !reactor_->closing();
}

int MultishotAccept::pop() noexcept {
    if (count_ == 0) {
        return -1;
    }
    const int fd = ring_[head_];
    head_ = (head_ + 1) & (ring_.size() - 1);
    --count_;
    if (!armed_ && count_ <= queue_bound / 2 && can_wait()) {
        arm(); // it was stopped by a full queue: the backlog may hold more
    }
    return fd;
}

void MultishotAccept::push(int fd) noexcept {
    if (count_ == ring_.size()) [[unlikely]] {
        // More arrived between the cancel and the last CQE than the slack holds.
        try {
            std::vector<int> bigger(ring_.size() * 2, -1);
            for (std::size_t i = 0; i < count_; ++i) {
                bigger[i] = ring_[(head_ + i) & (ring_.size() - 1)];
            }
            ring_.swap(bigger);
            head_ = 0;
        } catch (...) {
            ::close(fd); // no memory: the client sees its connection closed
            return;
        }
    }
    ring_[(head_ + count_) & (ring_.size() - 1)] = fd;
    ++count_;
}

void MultishotAccept::close_queued() noexcept {
    while (count_ > 0) {
        ::close(ring_[head_]);
        head_ = (head_ + 1) & (ring_.size() - 1);
        --count_;
    }
}

void MultishotAccept::arm() noexcept {
    armed_ = true;
    in_kernel_.store(true, std::memory_order_relaxed);
    cancelling_ = false;
    reactor_flags_ = 0;
    reactor_->submit_multishot(*this);
}

void MultishotAccept::wait(AcceptOp& w) noexcept {
    w.next_ = nullptr;
    if (last_ != nullptr) {
        last_->next_ = &w;
    } else {
        first_ = &w;
    }
    last_ = &w;
    if (!armed_) {
        arm();
    }
}

void MultishotAccept::unwait(AcceptOp& w) noexcept {
    AcceptOp* prev = nullptr;
    for (AcceptOp* a = first_; a != nullptr; prev = a, a = a->next_) {
        if (a == &w) {
            (prev != nullptr ? prev->next_ : first_) = a->next_;
            if (last_ == a) {
                last_ = prev;
            }
            return;
        }
    }
}

AcceptOp* MultishotAccept::take_waiter() noexcept {
    AcceptOp* w = first_;
    first_ = w->next_;
    if (first_ == nullptr) {
        last_ = nullptr;
    }
    w->next_ = nullptr;
    return w;
}

void MultishotAccept::on_cqe(Operation* op, int res) noexcept {
    auto* self = static_cast<MultishotAccept*>(op);
    const bool more = (self->reactor_flags_ & op_more) != 0;
    if (!more) {
        self->armed_ = false;
        self->cancelling_ = false;
    }
    int error = 0; // to hand to one waiter
    bool refused = false;
    if (res >= 0) {
        g_confirmed.store(true, std::memory_order_relaxed);
        if (self->retired_) {
            ::close(res);
        } else {
            self->push(res);
        }
    } else if (res == -EINVAL && !more && !g_confirmed.load(std::memory_order_relaxed)) {
        g_supported.store(false, std::memory_order_relaxed);
        refused = true;
    } else if (res != -ECONNABORTED && res != -EINTR && res != -EAGAIN && res != -ENOBUFS &&
               res != -ECANCELED) {
        error = res; // EMFILE, ENFILE, ...: what a single-shot accept would report
    }

    if (!more) {
        if (self->retired_) {
            self->close_queued();
            delete self; // the Listener is gone; so are its waiters (its contract)
            return;
        }
        if (self->reactor_->closing() || self->reactor_->stopping()) {
            // The reactor stops or goes away: give the state up (queued descriptors stay
            // queued for the next owner); it is not re-armed below.
            self->reactor_ = nullptr;
            self->owner_.store(0, std::memory_order_release);
        }
    }

    // Hand descriptors to waiters. Waiters are taken off the list before any is resumed:
    // a resumed coroutine may accept again or close the listener (retire() this state).
    AcceptOp* done = nullptr;
    AcceptOp* done_last = nullptr;
    auto collect = [&](AcceptOp* w, int r) {
        w->delivered_ = r;
        (done_last != nullptr ? done_last->next_ : done) = w;
        done_last = w;
    };
    while (self->first_ != nullptr && self->count_ > 0) {
        const int fd = self->ring_[self->head_];
        self->head_ = (self->head_ + 1) & (self->ring_.size() - 1);
        --self->count_;
        collect(self->take_waiter(), fd);
    }
    if (error != 0 && self->first_ != nullptr) {
        collect(self->take_waiter(), error);
    }
    if (self->first_ != nullptr && !self->armed_) {
        const int why = refused ? AcceptOp::fallback : self->reactor_ == nullptr ? -ECANCELED : 0;
        if (why == 0 && self->can_wait()) {
            self->arm();
        } else {
            while (self->first_ != nullptr) {
                collect(self->take_waiter(), why != 0 ? why : -ECANCELED);
            }
        }
    } else if (!more && error == 0 && !refused && self->reactor_ != nullptr &&
               self->count_ < queue_bound && self->can_wait()) {
        self->arm(); // the kernel ended it (ENOBUFS, CQ overflow, ...): keep accepting
    }
    if (self->armed_ && !self->cancelling_ && self->count_ >= queue_bound) {
        // Full: let further clients wait in the listen backlog until accept() drains it.
        self->cancelling_ = true;
        self->reactor_->cancel_multishot(*self);
    }
    self->in_kernel_.store(self->armed_, std::memory_order_release);
    // `self` may be freed by a resumed coroutine (or another thread's retire()) from here on.
    while (done != nullptr) {
        AcceptOp* w = done;
        done = w->next_;
        w->next_ = nullptr;
        const int r = w->delivered_;
        w->delivered_ = AcceptOp::none;
        w->deliver(r);
    }
}

void MultishotAccept::retire_here() noexcept {
    retired_ = true;
    close_queued();
    if (!armed_) {
        delete this;
        return;
    }
    if (!cancelling_) {
        cancelling_ = true;
        reactor_->cancel_multishot(*this);
    }
}

void MultishotAccept::run_retire(RemoteTask* t) noexcept {
    static_cast<RetireTask*>(t)->self->retire_here();
}

void MultishotAccept::retire(MultishotAccept* m) noexcept {
    const std::uint64_t owner = m->owner_.load(std::memory_order_acquire);
    const Reactor* here = Reactor::current();
    if (owner == 0 || (here != nullptr && here->id() == owner) ||
        !m->in_kernel_.load(std::memory_order_acquire)) {
        m->retire_here();
        return;
    }
    m->reactor_->post_remote(m->retire_task_); // the owner's thread does it
}

} // namespace bioring::detail
