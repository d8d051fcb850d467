// SPDX-License-Identifier: MIT
// BioSet: the kernel's bio_set in user space (block/bio.c bioset_init, mm/mempool.c).
//
// Objects of front_pad + sizeof(Bio) bytes come from the process-wide SlabRegistry's cache
// of that size, through the calling thread's magazine (no lock, no atomic RMW on the hot
// path); two biosets of one size share the cache. The caller gets the Bio at
// object + front_pad; free() rewinds by bio->front_pad, so the front region (a coroutine
// frame) and the Bio reach each other in O(1). front_pad is rounded up to 64, so the Bio is
// cache-line aligned like the object.
//
// Reserve (mempool): pool_size objects are taken from the slab at construction and used
// only when the cache and the backing allocator fail. A free refills the reserve first. An
// object allocated while the reserve is below pool_size is flagged (flag_no_cache) and its
// free never goes into a thread cache, only into the reserve or the depot — kernel commit
// 759aa12f "bio: don't rob starving biosets of bios": a thread cache would hide the
// object from the set that is starving. A Waiter queued with wait() is woken by the next
// free that takes the slow path; with pool_size > 0 that is guaranteed to come, because every
// reserve object in flight is flagged and so frees through the slow path.
//
// Fast paths read shared state only with relaxed loads: slow_ (bit 0: reserve below
// pool_size, bit 1: waiters queued). Both bits are written under lock_; a stale read only
// sends one object through the cache instead of the reserve (or the reverse), which the
// reserve rule above tolerates. Everything else — reserve, waiter list, oversized caches —
// is under lock_, and wake() runs after lock_ is dropped.
//
// Objects larger than the pad (alloc(front_size)) come from a registry cache of
// round_up(front_size, 64) + sizeof(Bio) bytes that the set holds a reference on until it is
// destroyed; they have no reserve, always free through the slow path, and their free also
// wakes a waiter (with the object in the shared depot), so a set whose coroutine frames
// outgrow its pad still gets "wait, don't fail".
#pragma once

#include <bioring/alloc/bio.hpp>
#include <bioring/alloc/detail/slab_cache.hpp>
#include <bioring/alloc/stats.hpp>

#include <array>
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

namespace bioring {

class BioSet {
public:
    static constexpr std::size_t max_front_pad = 64 * 1024; ///< front_pad limit (bytes)
    static constexpr std::size_t max_pool_size = 1u << 20;  ///< pool_size limit (objects)

    /// Bits of Bio::alloc_flags (bits 8..31 hold the allocating thread's number, mod 2^24).
    static constexpr std::uint32_t flag_no_cache = 1u << 0;  ///< never into a thread cache
    static constexpr std::uint32_t flag_reserve = 1u << 1;   ///< taken from the reserve
    static constexpr std::uint32_t flag_oversized = 1u << 2; ///< from an oversized cache

    /// Create a bioset of objects with a front region of @front_pad bytes (rounded up to 64).
    /// \param pool_size objects held in reserve (0: no reserve), filled at construction.
    /// \param front_pad bytes in front of each Bio; at most max_front_pad.
    /// Context: any thread; may allocate; may block on the registry lock.
    /// Returns: throws std::invalid_argument naming the limit for a front_pad or pool_size
    /// above its maximum; std::bad_alloc if the reserve cannot be filled.
    BioSet(std::size_t pool_size, std::size_t front_pad);
    /// All objects must have been freed. Drops the set's references on its slab caches.
    ~BioSet();
    BioSet(const BioSet&) = delete;
    BioSet& operator=(const BioSet&) = delete;

    /// Allocate one object; its Bio is returned, the front region is bio->front().
    /// Context: any thread; never blocks; lock-free on the thread-cache hit path.
    /// Returns: nullptr when the backing allocator fails and the reserve is empty.
    Bio* alloc() noexcept {
        void* obj = cache_->alloc_at(slot_);
        if (obj == nullptr) [[unlikely]] {
            return alloc_reserve();
        }
        // Taken while the reserve is short: the free must go back to the reserve.
        const std::uint32_t no_cache = slow_.load(std::memory_order_relaxed) & slow_reserve_low;
        return init_bio(obj, front_pad_, cache_, no_cache);
    }

    /// Allocate an object whose front region holds at least @front_size bytes. Up to
    /// front_pad() this is alloc(); above it the object comes from the registry's cache of
    /// round_up(front_size, 64) + sizeof(Bio) bytes (held by this set until it is
    /// destroyed), still one allocation, with bio->front_pad telling which pad was used.
    /// Oversized objects have no reserve.
    /// Returns: nullptr on failure (as alloc()).
    Bio* alloc(std::size_t front_size) noexcept {
        if (front_size <= front_pad_) [[likely]] {
            return alloc();
        }
        return alloc_oversized(front_size);
    }

    /// alloc(@front_size)'s lock-free path alone: a pop from the calling thread's magazine,
    /// for callers that keep the rest of their own set-up off the hot path too
    /// (runtime/task.hpp's frame allocation).
    /// Context: any thread; never blocks, takes no lock.
    /// Returns: the Bio; nullptr when this path cannot serve (@front_size above front_pad(),
    /// the magazine empty): alloc(front_size) then takes the slow paths.
    Bio* alloc_cached(std::size_t front_size) noexcept {
        if (front_size > front_pad_) [[unlikely]] {
            return nullptr;
        }
        void* obj = cache_->pop_at(slot_);
        if (obj == nullptr) [[unlikely]] {
            return nullptr;
        }
        const std::uint32_t no_cache = slow_.load(std::memory_order_relaxed) & slow_reserve_low;
        return init_bio(obj, front_pad_, cache_, no_cache);
    }

    /// Free an object of this set (either size); null is a no-op. Refills the reserve
    /// first, then wakes one waiter.
    /// Context: any thread (a free on a thread other than the allocating one is fine).
    /// Debug builds assert that @bio belongs to this set.
    void free(Bio* bio) noexcept {
        if (bio == nullptr) {
            return;
        }
        assert(bio->set == this && "Bio freed into a BioSet that did not allocate it");
        // One test for the common case: allocated by this thread (the tag matches), no flag
        // set, no slow state (no reserve to refill, no waiter).
        const std::uint32_t f = bio->alloc_flags;
        if (((f ^ detail::tls_slots.tid_tag) | slow_.load(std::memory_order_relaxed)) == 0)
            [[likely]] {
            cache_->free_at(slot_, reinterpret_cast<char*>(bio) - front_pad_);
            return;
        }
        free_other(bio);
    }

    /// An allocation waiting for a free (the runtime's hook for "wait, don't fail").
    struct Waiter {
        void (*wake)(Waiter*) noexcept = nullptr; ///< called once, on the freeing thread
        Waiter* next = nullptr;                   ///< alloc/-private
    };

    /// Queue @w to be woken after the next free of an object of this set.
    /// Context: any thread. wake() runs on the thread that frees, outside any lock the
    /// caller could hold; it must not free into this set, it may retry alloc() or post.
    /// Returns: false, without queueing, when an object is available now (retry alloc()).
    bool wait(Waiter& w) noexcept;
    /// Remove @w if it is still queued. Returns: true if it was removed (it will not wake).
    bool cancel_wait(Waiter& w) noexcept;

    std::size_t front_pad() const noexcept { return front_pad_; }
    std::size_t pool_size() const noexcept { return pool_size_; }
    std::size_t object_size() const noexcept { return front_pad_ + sizeof(Bio); }

    /// Returns: the slab cache of this set's regular objects.
    SlabCache* cache() const noexcept { return cache_; }
    /// Returns: reserve state and counters. Context: any thread; takes lock_.
    BioSetStats stats() const;
    /// Returns: the number (mod 2^24) of the thread that allocated @bio.
    static std::uint32_t alloc_thread(const Bio* bio) noexcept { return bio->alloc_flags >> 8; }

private:
    static constexpr std::uint32_t slow_reserve_low = 1u << 0; // == flag_no_cache on purpose
    static constexpr std::uint32_t slow_waiters = 1u << 1;
    static constexpr std::uint32_t tid_mask = (1u << 24) - 1;
    static_assert(slow_reserve_low == flag_no_cache);

    // Each field written once (no zeroing first): this runs on every allocation.
    Bio* init_bio(void* obj, std::size_t pad, SlabCache* c, std::uint32_t flags) noexcept {
        return ::new (static_cast<char*>(obj) + pad)
            Bio{.set = this,
                .cache = c,
                .front_pad = static_cast<std::uint32_t>(pad),
                .alloc_flags = flags | detail::tls_slots.tid_tag,
                .frame = nullptr,
                .private_data = nullptr};
    }
    [[gnu::noinline]] Bio* alloc_reserve() noexcept;
    [[gnu::noinline]] Bio* alloc_oversized(std::size_t front_size) noexcept;
    [[gnu::noinline]] void free_other(Bio* bio) noexcept;
    void free_slow(Bio* bio) noexcept;
    SlabCache* oversized_cache(std::size_t pad) noexcept;
    void update_slow_locked() noexcept;
    Waiter* pop_waiter_locked() noexcept;

    std::size_t pool_size_;
    std::size_t front_pad_;

    // Read on every fast path; written only under lock_.
    SlabCache* cache_ = nullptr;
    std::uint32_t slot_ = 0; ///< cache_->slot(), next to cache_ to save a dependent load
    std::atomic<std::uint32_t> slow_{0};

    // Slow-path state, on its own cache line so that taking the lock does not invalidate
    // the line the fast paths read.
    alignas(64) mutable std::mutex lock_;
    void** reserve_ = nullptr;   ///< pool_size_ entries
    std::size_t reserve_nr_ = 0; ///< under lock_
    Waiter* wait_head_ = nullptr;
    Waiter* wait_tail_ = nullptr;

    struct Oversized {
        std::atomic<std::size_t> pad{0};
        std::atomic<SlabCache*> cache{nullptr};
    };
    static constexpr std::size_t oversized_slots = 16;
    std::array<Oversized, oversized_slots> oversized_{};
    std::atomic<std::size_t> oversized_nr_{0};                       ///< published slots
    std::vector<std::pair<std::size_t, SlabCache*>> oversized_more_; ///< under lock_

    std::atomic<std::uint64_t> reserve_hits_{0};
    std::atomic<std::uint64_t> reserve_refills_{0};
    std::atomic<std::uint64_t> uncached_frees_{0};
    std::atomic<std::uint64_t> failures_{0};
    std::atomic<std::uint64_t> waits_{0};
    std::atomic<std::uint64_t> wakes_{0};
    std::atomic<std::uint64_t> oversized_allocs_{0};
};

} // namespace bioring
