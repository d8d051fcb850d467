// SPDX-License-Identifier: MIT
// Per-thread magazines in front of the slab caches (block/bio.c's per-cpu bio_alloc_cache,
// Bonwick's magazines).
//
// Every thread has one Magazine per slab cache it has used: a stack of free objects
// (objs[0..nr)) with a limit of cap + slack. alloc pops, free pushes; neither takes a lock
// nor does an atomic read-modify-write (nr is a relaxed atomic only so that reports may read
// it). An empty magazine refills `batch` objects from the depot in one locked trip; a full
// one (nr == cap + slack) flushes `slack` objects back, pruning to cap — the kernel's
// ALLOC_CACHE_MAX/ALLOC_CACHE_SLACK hysteresis, so a thread hovering around the limit
// does not bounce on the depot lock.
//
// Lookup: the cache's registry id indexes a constinit thread_local array of the magazines'
// hot parts (ids past fast_slots use an overflow table in the slow path). Unbound slots have
// nr == limit == 0, so the fast path is one TLS load and one compare, and anything unusual
// lands in the out-of-line slow path.
//
// Lifetime (lock order: registry lock -> magazine_lock() -> depot lock):
// - a magazine is owned by its thread and freed at thread exit, after its objects have been
//   flushed to their cache's depot and it has been unlinked from the cache;
// - a cache links its live magazines; when it is destroyed it flushes and unbinds them all
//   (nr = limit = 0, cache = nullptr) under magazine_lock(), so a thread that exits later, or
//   a new cache that reuses the registry id, never sees the dead cache. Both sides take
//   magazine_lock(), which is why neither can free something the other is still reading.
// - a free from a thread other than the allocating one simply goes into the freeing thread's
//   magazine: slab objects belong to the cache, not to a thread, and flow back to the depot
//   in batches.
#pragma once

#include <bioring/alloc/stats.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace bioring {

class SlabCache;

namespace detail {

inline constexpr std::size_t fast_slots = 256; ///< registry ids below this use the TLS array

/// The part of a magazine the fast paths touch, 32 bytes. For registry ids below
/// fast_slots it lives in the thread's TLS array (no pointer to chase); for larger ids in
/// the Magazine itself (those always go through the slow path).
struct MagazineHot {
    std::atomic<std::uint32_t> nr{0}; ///< objects in objs; written by the owner (and by a
                                      ///< destroying cache under magazine_lock())
    std::uint32_t limit = 0;          ///< cap + slack; 0 while unbound, so pushes go slow
    void** objs = nullptr;            ///< limit entries
    OwnerCounter frees;               ///< objects pushed by free()
    OwnerCounter remote_frees;        ///< ... of which another thread allocated
};
static_assert(sizeof(MagazineHot) == 32);

/// One thread's magazine for one cache. Allocations are not counted on the fast path: they
/// follow from allocations = refilled + frees - flushed - nr.
struct Magazine {
    MagazineHot* hot = nullptr; ///< the TLS slot, or &own
    MagazineHot own;
    std::atomic<SlabCache*> cache{nullptr}; ///< bound cache; written under magazine_lock()
    Magazine* prev = nullptr;               ///< cache's magazine list, under magazine_lock()
    Magazine* next = nullptr;
    std::uint32_t capacity = 0; ///< entries allocated in hot->objs
    std::uint32_t tid = 0;      ///< owning thread's number
    OwnerCounter refilled;      ///< objects brought in by refills
    OwnerCounter flushed;       ///< objects sent back by flushes and drains
    OwnerCounter refills;
    OwnerCounter flushes;
    OwnerCounter reserve_hits; ///< counted by BioSet (slow path)
};

struct ThreadSlots {
    std::array<MagazineHot, fast_slots + 1> hot; ///< [fast_slots] stays empty: nr = limit = 0
    std::array<Magazine*, fast_slots> mags;      ///< the magazine behind hot[i], if any
    std::uint32_t tid;                           ///< this thread's number, 0 until first use
    /// (tid mod 2^24) << 8, set with tid: how a BioSet records the allocating thread in
    /// Bio::alloc_flags, kept ready so that its free tests "this thread's, no flag" with one
    /// xor against the whole word.
    std::uint32_t tid_tag;
    bool dead; ///< set once the thread's caches are drained
};

// Zero-initialised: every slot is empty and full at once, so both fast paths go slow until
// the slow path binds a magazine. initial-exec: alloc/ is a static library linked into
// executables, so the TLS block is known at load time and the fast path is one %fs-relative
// load, with no __tls_get_addr call. (The price: bioring::alloc cannot live in a shared
// library loaded later with dlopen — its ~10 KiB of TLS would not fit the static surplus.)
[[gnu::tls_model("initial-exec")]] inline constinit thread_local ThreadSlots tls_slots{};

/// The lock that guards magazine <-> cache links (see the file comment for the order).
std::mutex& magazine_lock() noexcept;

/// Returns: this thread's number (assigned on first call; never 0).
std::uint32_t this_thread_id() noexcept;

} // namespace detail
} // namespace bioring
