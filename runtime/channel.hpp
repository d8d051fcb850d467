// SPDX-License-Identifier: MIT
// Channel<T>: a bounded multi-producer multi-consumer queue for coroutines on any reactor.
//   `IoResult r = co_await ch.send(value, stop);`   waits while the buffer is full
//   `std::optional<T> v = co_await ch.receive(stop);` waits while it is empty
//   `ch.close();`                                   no more sends; buffered items drain
// The buffer (capacity items) is allocated once, by the constructor; sends and receives
// allocate nothing (a waiting sender keeps its value in its awaiter, a waiting receiver
// gets the value moved straight into its awaiter). Both sides are FIFO: a sender blocked on
// a full buffer keeps its place, and a free slot goes to the oldest blocked sender before a
// newcomer. Waiters can be cancelled through a std::stop_token and are resumed on their own
// reactor (runtime/detail/wait_queue.hpp).
#pragma once

#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/result.hpp>
#include <bioring/runtime/detail/wait_queue.hpp>

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <system_error>
#include <type_traits>
#include <utility>

namespace bioring {

template <class T>
class Channel {
    static_assert(std::is_nothrow_move_constructible_v<T>,
                  "Channel<T> moves items under its lock: T's move must not throw");

public:
    /// Context: any thread. Returns: throws std::invalid_argument when @capacity is 0
    /// (a rendezvous channel is not provided), std::bad_alloc when the buffer cannot be had.
    explicit Channel(std::size_t capacity) : cap_(capacity) {
        if (capacity == 0) {
            throw std::invalid_argument("bioring::Channel: capacity must be at least 1");
        }
        buf_ = std::make_unique<std::optional<T>[]>(capacity);
    }
    /// Context: no sender or receiver may be queued.
    ~Channel() = default;
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;

    class [[nodiscard]] SendAwaiter : private detail::Waiter {
    public:
        SendAwaiter(Channel& c, T&& v, std::stop_token stop) noexcept
            : Waiter(std::move(stop)), ch_(c), value_(std::move(v)) {}
        bool await_ready() const noexcept { return false; }
        bool await_suspend(std::coroutine_handle<> h) {
            if (stop_requested_early()) {
                return false;
            }
            detail::WakeList wake;
            bool wait = false;
            {
                std::lock_guard lk(ch_.mu_);
                if (ch_.closed_) {
                    result = -EPIPE;
                    return false;
                }
                if (!ch_.receivers_.empty()) { // the buffer is empty: hand over directly
                    auto* r = ReceiveAwaiter::from(ch_.receivers_.pop_front());
                    r->slot_.emplace(std::move(*value_));
                    r->result = 0;
                    wake.push(*r);
                } else if (ch_.count_ < ch_.cap_ && ch_.senders_.empty()) {
                    ch_.push(std::move(*value_));
                } else {
                    Reactor* re = Reactor::current();
                    if (re == nullptr) {
                        result = -ENXIO;
                        return false;
                    }
                    enqueue(ch_.mu_, ch_.senders_, *re, h);
                    wait = true;
                }
                result = 0;
            }
            if (wait) {
                arm();
                return true;
            }
            wake.resume_all();
            return false;
        }
        IoResult await_resume() noexcept {
            finish();
            return IoResult{result};
        }

    private:
        friend class Channel;
        static SendAwaiter* from(detail::WaitNode* n) noexcept {
            return static_cast<SendAwaiter*>(static_cast<detail::Waiter*>(n));
        }
        Channel& ch_;
        std::optional<T> value_;
    };

    class [[nodiscard]] ReceiveAwaiter : private detail::Waiter {
    public:
        ReceiveAwaiter(Channel& c, std::stop_token stop) noexcept
            : Waiter(std::move(stop)), ch_(c) {}
        bool await_ready() const noexcept { return false; }
        bool await_suspend(std::coroutine_handle<> h) {
            if (stop_requested_early()) {
                return false;
            }
            detail::WakeList wake;
            bool wait = false;
            {
                std::lock_guard lk(ch_.mu_);
                if (ch_.count_ > 0) {
                    slot_.emplace(ch_.pop());
                    // A slot is free: the oldest blocked sender's value moves into it.
                    if (!ch_.senders_.empty()) {
                        auto* s = SendAwaiter::from(ch_.senders_.pop_front());
                        ch_.push(std::move(*s->value_));
                        s->result = 0;
                        wake.push(*s);
                    }
                    result = 0;
                } else if (ch_.closed_) {
                    result = -EPIPE;
                    return false;
                } else {
                    Reactor* re = Reactor::current();
                    if (re == nullptr) {
                        result = -ENXIO;
                        return false;
                    }
                    enqueue(ch_.mu_, ch_.receivers_, *re, h);
                    wait = true;
                }
            }
            if (wait) {
                arm();
                return true;
            }
            wake.resume_all();
            return false;
        }
        std::optional<T> await_resume() noexcept {
            finish();
            return std::move(slot_); // empty unless result == 0
        }

    private:
        friend class Channel;
        static ReceiveAwaiter* from(detail::WaitNode* n) noexcept {
            return static_cast<ReceiveAwaiter*>(static_cast<detail::Waiter*>(n));
        }
        Channel& ch_;
        std::optional<T> slot_;
    };

    /// `IoResult r = co_await ch.send(std::move(v), stop);`
    /// Context: a coroutine; a wait that must suspend needs a reactor on the thread.
    /// Returns (from co_await): 0 when the item was buffered or handed to a receiver;
    /// -EPIPE when the channel was closed before that (the item is dropped); -ECANCELED
    /// when @stop was requested first (the item is dropped); -ENXIO when it had to wait with
    /// no reactor.
    SendAwaiter send(T v,
                     std::stop_token stop = {}) noexcept(std::is_nothrow_move_constructible_v<T>) {
        return SendAwaiter(*this, std::move(v), std::move(stop));
    }
    /// `while (std::optional<T> v = co_await ch.receive(stop)) { ... }`
    /// Context: a coroutine; a wait that must suspend needs a reactor on the thread.
    /// Returns (from co_await): the oldest item; empty once the channel is closed and
    /// drained, or when @stop was requested before an item was handed over (tell the two
    /// apart with stop.stop_requested() or closed()), or when it had to wait on a thread
    /// with no reactor (a programming error).
    ReceiveAwaiter receive(std::stop_token stop = {}) noexcept {
        return ReceiveAwaiter(*this, std::move(stop));
    }
    /// Close the channel: later sends fail with -EPIPE, blocked senders resume with -EPIPE
    /// (their items dropped), blocked receivers resume empty; items already buffered
    /// can still be received. Idempotent. Context: any thread.
    void close() noexcept {
        detail::WakeList wake;
        {
            std::lock_guard lk(mu_);
            closed_ = true;
            while (detail::WaitNode* w = senders_.pop_front()) {
                w->result = -EPIPE;
                wake.push(*w);
            }
            while (detail::WaitNode* w = receivers_.pop_front()) {
                w->result = -EPIPE;
                wake.push(*w);
            }
        }
        wake.resume_all();
    }

    std::size_t capacity() const noexcept { return cap_; }
    /// Returns: items buffered now (a snapshot). Context: any thread.
    std::size_t size() const noexcept {
        std::lock_guard lk(mu_);
        return count_;
    }
    /// Returns: senders blocked on a full buffer now (a snapshot). Context: any thread.
    std::size_t waiting_senders() const noexcept {
        std::lock_guard lk(mu_);
        return senders_.size();
    }
    /// Returns: receivers blocked on an empty buffer now (a snapshot). Context: any thread.
    std::size_t waiting_receivers() const noexcept {
        std::lock_guard lk(mu_);
        return receivers_.size();
    }
    /// Returns: whether close() was called. Context: any thread.
    bool closed() const noexcept {
        std::lock_guard lk(mu_);
        return closed_;
    }

private:
    void push(T&& v) noexcept {
        buf_[(head_ + count_) % cap_].emplace(std::move(v));
        ++count_;
    }
    T pop() noexcept {
        std::optional<T>& s = buf_[head_];
        T v = std::move(*s);
        s.reset();
        head_ = (head_ + 1) % cap_;
        --count_;
        return v;
    }

    mutable std::mutex mu_;
    const std::size_t cap_;
    std::unique_ptr<std::optional<T>[]> buf_;
    std::size_t head_ = 0;
    std::size_t count_ = 0;
    bool closed_ = false;
    detail::WaitQueue senders_;   ///< blocked on a full buffer, with their items
    detail::WaitQueue receivers_; ///< blocked on an empty buffer
};

} // namespace bioring
