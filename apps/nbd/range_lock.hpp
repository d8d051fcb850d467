// SPDX-License-Identifier: MIT
// RangeLock: exclusive locks on byte ranges, for a layer's read-modify-write.
//
// A layer that widens a write to whole blocks (read the edges, patch, write back) would
// lose a concurrent write to the same blocks; every mutating request therefore holds the
// block-aligned range it touches for its duration. Overlapping holders exclude each other;
// disjoint ranges proceed in parallel. Waiters are granted in arrival order among those
// that overlap (a waiter is not overtaken by a later one that overlaps it), so no request
// starves. The waiter is the awaiter in the request's frame (no allocation); it is
// resumed on the reactor it waits on, from whichever thread releases the range.
// THREADING: lock()/release from any reactor thread; one mutex guards the lists.
#pragma once

#include <bioring/runtime/reactor.hpp>

#include <coroutine>
#include <cstdint>
#include <mutex>

namespace bioring::apps::nbd {

class RangeLock {
public:
    /// The awaiter that holds [begin, end) once co_await returns; released by its
    /// destructor (or release()). Keep it as a named local: `auto g = lk.lock(a, b);
    /// co_await g;`. Context: a coroutine on a reactor thread.
    class Hold : public RemoteTask {
    public:
        Hold(RangeLock& l, std::uint64_t begin, std::uint64_t end) noexcept
            : lock_(&l), begin_(begin), end_(end) {}
        Hold(const Hold&) = delete;
        Hold& operator=(const Hold&) = delete;
        ~Hold() { release(); }

        bool await_ready() noexcept { return lock_->try_acquire(*this); }
        bool await_suspend(std::coroutine_handle<> h) noexcept;
        void await_resume() const noexcept {}
        /// Release now (idempotent).
        void release() noexcept;

    private:
        friend class RangeLock;
        static void on_run(RemoteTask* t) noexcept;
        bool overlaps(const Hold& o) const noexcept { return begin_ < o.end_ && o.begin_ < end_; }

        RangeLock* lock_;
        std::uint64_t begin_, end_;
        Hold* prev_ = nullptr;
        Hold* next_ = nullptr;
        Reactor* reactor_ = nullptr;
        std::coroutine_handle<> handle_{};
        bool held_ = false;
        bool queued_ = false;
    };

    RangeLock() = default;
    RangeLock(const RangeLock&) = delete;
    RangeLock& operator=(const RangeLock&) = delete;

    /// Returns: the awaiter for [begin, end) (begin < end).
    Hold lock(std::uint64_t begin, std::uint64_t end) noexcept { return Hold(*this, begin, end); }

    /// Counters: acquisitions that had to wait (reports and tests).
    std::uint64_t waits() const noexcept;

private:
    bool try_acquire(Hold& h) noexcept;
    bool conflicts_locked(const Hold& h, const Hold* stop_at) const noexcept;
    static void link(Hold*& head, Hold*& tail, Hold& h) noexcept;
    static void unlink(Hold*& head, Hold*& tail, Hold& h) noexcept;

    mutable std::mutex mu_;
    Hold* held_head_ = nullptr;
    Hold* held_tail_ = nullptr;
    Hold* wait_head_ = nullptr;
    Hold* wait_tail_ = nullptr;
    std::uint64_t waits_ = 0;
};

} // namespace bioring::apps::nbd
