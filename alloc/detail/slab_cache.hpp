// SPDX-License-Identifier: MIT
// SlabCache: fixed-size objects carved from large slabs (the kernel's kmem_cache).
//
// Object model: a slab is a power-of-two sized, equally aligned block from the backing
// allocator (mimalloc, or aligned_alloc/mmap; see backing.hpp). Its first 64 bytes are the
// slab header; objects follow at a stride of round_up(object_size, 64) — one line more when
// that is an even number of lines from 512 bytes up, so equally hot parts of many objects
// spread over all cache sets — so every object is cache-line aligned and its slab is found
// by masking the address. Free objects of a slab
// are a singly linked list through their first word, and the slab is carved lazily (a bump
// index), so a fresh slab touches no memory beyond its header.
//
// The depot (under depot_lock_) keeps slabs on three lists — partial, empty, full — and
// hands out partial slabs first (to keep empty ones empty). Empty slabs beyond
// empty_slack go back to the backing allocator.
//
// Threads: alloc()/free() go through the calling thread's magazine (thread_cache.hpp) and
// are lock-free on a hit; refill/flush take depot_lock_. alloc_batch()/free_batch() go to
// the depot directly (BioSet uses them for its reserve and for objects that must never be
// cached per thread). Any thread may free any object.
//
// ASan builds poison free objects and the padding past object_size (poison.hpp).
//
// Lifetime: created and destroyed only by the SlabRegistry (find_or_create / put).
#pragma once

#include <bioring/alloc/detail/poison.hpp>
#include <bioring/alloc/stats.hpp>
#include <bioring/alloc/detail/thread_cache.hpp>

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

namespace bioring {

namespace detail {
struct Slab;
/// Flush @m to its cache and unbind it (thread exit). Under magazine_lock().
void unbind_magazine_locked(Magazine* m) noexcept;
struct SlabList {
    Slab* head = nullptr;
    std::size_t count = 0;
};
} // namespace detail

class SlabCache {
public:
    static constexpr std::size_t align = 64;        ///< object alignment and stride unit
    static constexpr std::size_t header_bytes = 64; ///< slab header
    static constexpr std::size_t min_slab_bytes = 64 * 1024;
    static constexpr std::size_t empty_slack = 2; ///< empty slabs kept for reuse
    static constexpr std::size_t max_object_size = std::size_t{1} << 30; ///< 1 GiB

    /// Flushes every thread's magazine for this cache and frees all slabs. Objects still in
    /// use are reported on stderr (and become dangling, as with kmem_cache_destroy).
    ~SlabCache();
    SlabCache(const SlabCache&) = delete;
    SlabCache& operator=(const SlabCache&) = delete;

    /// Allocate one object (64-byte aligned, object_size() bytes, contents undefined).
    /// Context: any thread; lock-free when the thread's magazine is not empty.
    /// Returns: nullptr when the depot is empty and the backing allocator fails.
    void* alloc() noexcept { return alloc_at(slot_); }

    /// Free @p (non-null, from this cache) into the calling thread's magazine.
    /// \param remote 1 when the caller knows @p was allocated on another thread (counted).
    /// Context: any thread; lock-free unless the magazine is full.
    void free(void* p, std::uint32_t remote = 0) noexcept { free_at(slot_, p, remote); }

    /// alloc() with the magazine slot given by the caller (slot() cached next to the cache
    /// pointer saves one dependent load on the hot path; BioSet does that).
    void* alloc_at(std::uint32_t slot) noexcept {
        if (void* p = pop_at(slot)) [[likely]] {
            return p;
        }
        return alloc_slow();
    }
    /// alloc_at()'s magazine hit alone. Returns: nullptr when the magazine is empty (or the
    /// slot unbound); alloc_at() then refills it.
    void* pop_at(std::uint32_t slot) noexcept {
        detail::MagazineHot& h = detail::tls_slots.hot[slot];
        const std::uint32_t n = h.nr.load(std::memory_order_relaxed);
        if (n == 0) [[unlikely]] {
            return nullptr;
        }
        h.nr.store(n - 1, std::memory_order_relaxed);
        void* p = h.objs[n - 1];
        // A magazine holds objects only. Said to the optimiser, so that the callers' "empty?"
        // tests are decided on this path at compile time.
        assert(p != nullptr);
        if (p == nullptr) {
            __builtin_unreachable();
        }
        detail::unpoison(p, object_size_);
        return p;
    }
    /// free() with the magazine slot given by the caller.
    void free_at(std::uint32_t slot, void* p, std::uint32_t remote = 0) noexcept {
        assert(p != nullptr && slot == slot_);
        detail::MagazineHot& h = detail::tls_slots.hot[slot];
        const std::uint32_t limit = h.limit; // before nr: GCC otherwise builds h's address twice
        const std::uint32_t n = h.nr.load(std::memory_order_relaxed);
        if (n < limit) [[likely]] {
            detail::poison(p, object_size_);
            h.objs[n] = p;
            h.nr.store(n + 1, std::memory_order_relaxed);
            h.frees.add();
            if (remote != 0) [[unlikely]] {
                h.remote_frees.add();
            }
            return;
        }
        free_slow(p, remote);
    }
    /// Returns: the magazine slot of this cache (see alloc_at()).
    std::uint32_t slot() const noexcept { return slot_; }

    /// Take up to @n objects straight from the depot (no thread cache).
    /// Context: any thread; takes the depot lock; may call the backing allocator.
    /// Returns: how many were stored in @out (fewer than @n only if the backing failed).
    std::size_t alloc_batch(void** out, std::size_t n) noexcept;
    /// Return @n objects straight to the depot (no thread cache).
    /// Context: any thread; takes the depot lock.
    void free_batch(void* const* objs, std::size_t n) noexcept;

    /// Count a BioSet reserve hit on this cache for the calling thread (slow path only).
    void note_reserve_hit() noexcept;

    /// Return the calling thread's magazine to the depot (e.g. before a thread idles).
    /// Context: any thread.
    void drain_this_thread() noexcept;

    std::size_t object_size() const noexcept { return object_size_; }
    std::size_t stride() const noexcept { return stride_; }
    std::size_t slab_bytes() const noexcept { return slab_bytes_; }
    std::size_t objects_per_slab() const noexcept { return objects_per_slab_; }
    std::uint32_t id() const noexcept { return id_; }
    const std::string& name() const noexcept { return name_; }
    /// Magazine parameters: prune back to cap after reaching cap + slack; refill batch.
    std::uint32_t magazine_cap() const noexcept { return cap_; }
    std::uint32_t magazine_slack() const noexcept { return slack_; }
    std::uint32_t refill_batch() const noexcept { return batch_; }

    /// Returns: totals (refs is filled by the registry).
    /// Context: any thread; takes magazine_lock() and the depot lock.
    SlabCacheStats stats() const;
    /// Returns: the calling thread's counters for this cache (zero if it never used it).
    ThreadCacheStats this_thread_stats() const noexcept;

private:
    friend class SlabRegistry;

    /// Build a cache for objects of @object_size bytes under registry id @id (private: the
    /// id selects the threads' magazine slot, so only the registry may hand one out).
    /// Context: the SlabRegistry, under its lock.
    /// Returns: throws std::invalid_argument for a zero size or one too large to slab.
    SlabCache(std::size_t object_size, std::uint32_t id);

    [[gnu::noinline]] void* alloc_slow() noexcept;
    [[gnu::noinline]] void free_slow(void* p, std::uint32_t remote) noexcept;
    detail::Magazine* bind_magazine() noexcept;
    detail::Magazine* find_magazine() const noexcept;
    void unbind_locked(detail::Magazine* m) noexcept; // under magazine_lock()
    friend void detail::unbind_magazine_locked(detail::Magazine* m) noexcept;

    std::size_t depot_alloc_locked(void** out, std::size_t n) noexcept;
    void depot_free_locked(void* p, detail::Slab*& release) noexcept;
    detail::Slab* new_slab_locked() noexcept;
    static void release_slabs(detail::Slab* list, std::size_t bytes) noexcept;

    // Immutable after construction; the fast path reads only slot_.
    std::uint32_t slot_;
    std::uint32_t id_;
    std::size_t object_size_;
    std::size_t stride_;
    std::size_t slab_bytes_;
    std::size_t objects_per_slab_;
    std::uint32_t cap_;
    std::uint32_t slack_;
    std::uint32_t batch_;
    std::string name_;

    // Depot, under depot_lock_.
    mutable std::mutex depot_lock_;
    detail::SlabList partial_;
    detail::SlabList empty_;
    detail::SlabList full_;
    std::size_t depot_free_ = 0; ///< free objects in the depot's slabs
    std::size_t depot_out_ = 0;  ///< objects out of the depot (in magazines or in use)
    std::uint64_t slabs_created_ = 0;
    std::uint64_t slabs_released_ = 0;
    std::uint64_t backing_failures_ = 0;
    std::uint64_t direct_allocs_ = 0;
    std::uint64_t direct_frees_ = 0;

    // Magazines bound to this cache and the folded counters of retired ones, under
    // magazine_lock().
    detail::Magazine* magazines_ = nullptr;
    std::size_t nr_magazines_ = 0;
    ThreadCacheStats retired_{};
};

} // namespace bioring
