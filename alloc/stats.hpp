// SPDX-License-Identifier: MIT
// Counters of the allocator, per slab cache, per thread (per cache) and per bioset.
//
// Per-thread counters live in the thread's magazine and are written only by their thread,
// with a relaxed load + store (no atomic read-modify-write, so no lock prefix on x86); other
// threads read them with relaxed loads for reports. They are folded into the cache's totals
// when the magazine drains (thread exit or cache destruction), so totals never go back.
// The fast paths count frees (and remote frees) only; a magazine's allocations are derived
// as refilled + frees - flushed - cached, since every object that entered it left or stayed.
//
// Remote (cross-thread) frees are counted by BioSet, which records the allocating thread in
// the Bio for free and compares it on free (one TLS load). Bare SlabCache objects have no
// header to record it in; for them the producer/consumer traffic shows up as refills on one
// thread and flushes on the other.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace bioring {

namespace detail {

/// A counter with one writer (its thread) and any number of relaxed readers.
struct OwnerCounter {
    std::atomic<std::uint64_t> v{0};
    void add(std::uint64_t n = 1) noexcept {
        v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    std::uint64_t get() const noexcept { return v.load(std::memory_order_relaxed); }
};

} // namespace detail

/// One thread's traffic through one slab cache.
struct ThreadCacheStats {
    std::uint64_t allocations = 0;  ///< objects handed out through the magazine
    std::uint64_t frees = 0;        ///< objects taken back into the magazine
    std::uint64_t refills = 0;      ///< batch refills from the depot
    std::uint64_t flushes = 0;      ///< batch flushes to the depot
    std::uint64_t remote_frees = 0; ///< frees of objects another thread allocated (BioSet only)
    std::uint64_t reserve_hits = 0; ///< BioSet allocations this thread took from a reserve
    std::uint32_t cached = 0;       ///< objects in the magazine now
};

/// A slab cache's totals, as slabinfo() prints them.
struct SlabCacheStats {
    std::string name;
    std::size_t object_size = 0; ///< requested size
    std::size_t stride = 0;      ///< object size rounded up to 64
    std::size_t slab_bytes = 0;  ///< bytes per slab (a power of two)
    std::size_t objects_per_slab = 0;
    std::size_t in_use = 0;           ///< handed out to users (including bioset reserves)
    std::size_t free_in_depot = 0;    ///< free objects in the depot's slabs
    std::size_t in_thread_caches = 0; ///< free objects in threads' magazines
    std::size_t slabs = 0;            ///< slabs held now
    std::size_t refs = 0;             ///< registry references (users of the cache)
    std::size_t magazines = 0;        ///< live thread magazines bound to the cache
    std::uint64_t allocations = 0;    ///< objects handed out (magazines + direct)
    std::uint64_t frees = 0;          ///< objects returned (magazines + direct)
    std::uint64_t refills = 0;
    std::uint64_t flushes = 0;
    std::uint64_t remote_frees = 0;
    std::uint64_t reserve_hits = 0; ///< BioSet reserve hits on objects of this cache
    std::uint64_t slabs_created = 0;
    std::uint64_t slabs_released = 0;
    std::uint64_t backing_failures = 0; ///< slab requests the backing allocator refused
};

/// A bioset's reserve (mempool) state and traffic.
struct BioSetStats {
    std::size_t reserve_nr = 0;        ///< objects in the reserve now
    std::size_t pool_size = 0;         ///< the reserve's target
    std::uint64_t reserve_hits = 0;    ///< allocations served by the reserve
    std::uint64_t reserve_refills = 0; ///< frees that went into the reserve
    std::uint64_t uncached_frees = 0;  ///< "don't rob": frees that bypassed the thread cache
    std::uint64_t failures = 0;        ///< allocations that returned nullptr
    std::uint64_t waits = 0;           ///< waiters queued
    std::uint64_t wakes = 0;           ///< waiters woken by a free
    std::uint64_t oversized = 0;       ///< allocations from an oversized cache
};

} // namespace bioring
