// SPDX-License-Identifier: MIT
// SlabRegistry: the process-wide table of slab caches, one per object size
// (block/bio.c's bio_slabs with bio_find_or_create_slab / bio_put_slab).
//
// find_or_create(size) returns the one cache of that exact size, creating it on first use,
// and takes a reference; put() drops it and destroys the cache with its last user. An
// entry's index is the cache's id (which indexes the threads' magazine slots); freed
// entries are reused, and the table grows (a vector, under the lock) without losing any.
// Thread-safe: one mutex, taken only when biosets are created or destroyed and for reports.
// The global registry is never destroyed, so biosets with static storage duration and
// threads that exit late can still put their caches.
#pragma once

#include <bioring/alloc/detail/slab_cache.hpp>
#include <bioring/alloc/stats.hpp>

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace bioring {

class SlabRegistry {
public:
    /// Returns: the process-wide registry.
    /// Context: any thread.
    static SlabRegistry& global();

    SlabRegistry(const SlabRegistry&) = delete;
    SlabRegistry& operator=(const SlabRegistry&) = delete;

    /// Find the cache for objects of @object_size bytes or create it; takes a reference.
    /// Context: any thread; takes the registry lock; may allocate.
    /// Returns: the cache (never null). Throws std::invalid_argument for size 0 or above
    /// SlabCache::max_object_size, std::bad_alloc when the table cannot grow.
    SlabCache* find_or_create(std::size_t object_size);

    /// Drop a reference taken by find_or_create(); the last one destroys the cache (all its
    /// objects must have been freed). Null is a no-op.
    /// Context: any thread; takes the registry lock.
    void put(SlabCache* cache) noexcept;

    /// Returns: a slabinfo-style report: the backing allocator, then one line per cache with
    /// name, object size, objects in use, free in the depot, in thread caches, slabs, refs.
    std::string slabinfo() const;

    /// Returns: a snapshot of every live cache's stats (refs filled in).
    std::vector<SlabCacheStats> stats() const;
    /// Returns: the references on @cache (0 if it is not registered).
    std::size_t refs(const SlabCache* cache) const;
    /// Returns: live caches.
    std::size_t cache_count() const;
    /// Returns: entries in the table (live + free for reuse); never shrinks.
    std::size_t capacity() const;

private:
    // Only global() exists: a cache's id selects the threads' magazine slot, so two
    // registries would hand out the same ids and their caches would share magazines.
    SlabRegistry() = default;
    ~SlabRegistry() = default;

    struct Entry {
        std::size_t object_size = 0;
        std::size_t refs = 0;
        std::unique_ptr<SlabCache> cache; // null: free entry
    };
    mutable std::mutex lock_;
    std::vector<Entry> entries_;
    std::size_t live_ = 0;
};

} // namespace bioring
