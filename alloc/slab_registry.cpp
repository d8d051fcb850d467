// SPDX-License-Identifier: MIT
// SlabRegistry implementation. Caches are destroyed under the registry lock so that their
// id cannot be handed to a new cache while the old one is still unbinding magazines
// (lock order: registry -> magazine_lock() -> depot).
#include <bioring/alloc/slab_registry.hpp>

#include <bioring/alloc/detail/backing.hpp>

#include <cassert>
#include <cstdio>
#include <stdexcept>

namespace bioring {

SlabRegistry& SlabRegistry::global() {
    // Immortal on purpose (see the header).
    static SlabRegistry* r = new SlabRegistry;
    return *r;
}

SlabCache* SlabRegistry::find_or_create(std::size_t object_size) {
    if (object_size == 0) {
        throw std::invalid_argument("SlabRegistry::find_or_create: object size 0 (must be 1.." +
                                    std::to_string(SlabCache::max_object_size) + " bytes)");
    }
    std::lock_guard<std::mutex> g(lock_);
    std::size_t free_index = entries_.size();
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        Entry& e = entries_[i];
        if (e.cache == nullptr) {
            if (free_index == entries_.size()) {
                free_index = i;
            }
        } else if (e.object_size == object_size) {
            ++e.refs;
            return e.cache.get();
        }
    }
    if (free_index == entries_.size()) {
        entries_.emplace_back(); // may throw bad_alloc; nothing changed yet
    }
    Entry& e = entries_[free_index];
    e.cache.reset(new SlabCache(object_size, static_cast<std::uint32_t>(free_index)));
    e.object_size = object_size;
    e.refs = 1;
    ++live_;
    return e.cache.get();
}

void SlabRegistry::put(SlabCache* cache) noexcept {
    if (cache == nullptr) {
        return;
    }
    std::lock_guard<std::mutex> g(lock_);
    const std::size_t i = cache->id();
    if (i >= entries_.size() || entries_[i].cache.get() != cache) {
        assert(!"SlabRegistry::put of a cache it does not hold");
        return;
    }
    Entry& e = entries_[i];
    if (--e.refs == 0) {
        e.cache.reset(); // drains magazines, frees slabs; the entry is free for reuse after
        e.object_size = 0;
        --live_;
    }
}

std::vector<SlabCacheStats> SlabRegistry::stats() const {
    std::vector<SlabCacheStats> out;
    std::lock_guard<std::mutex> g(lock_);
    for (const Entry& e : entries_) {
        if (e.cache != nullptr) {
            out.push_back(e.cache->stats());
            out.back().refs = e.refs;
        }
    }
    return out;
}

std::string SlabRegistry::slabinfo() const {
    std::string out = "slabinfo - backing: ";
    out += detail::backing_name();
    char line[256];
    std::snprintf(line, sizeof line, ", %llu bytes from backing\n",
                  static_cast<unsigned long long>(detail::backing_bytes()));
    out += line;
    std::snprintf(line, sizeof line, "%-14s %9s %9s %9s %9s %7s %5s %11s %9s %9s %9s %8s\n",
                  "# name", "objsize", "in_use", "depot", "threads", "slabs", "refs", "allocs",
                  "refills", "flushes", "remote", "rsv_hits");
    out += line;
    for (const SlabCacheStats& s : stats()) {
        std::snprintf(line, sizeof line,
                      "%-14s %9zu %9zu %9zu %9zu %7zu %5zu %11llu %9llu %9llu %9llu %8llu\n",
                      s.name.c_str(), s.object_size, s.in_use, s.free_in_depot, s.in_thread_caches,
                      s.slabs, s.refs, static_cast<unsigned long long>(s.allocations),
                      static_cast<unsigned long long>(s.refills),
                      static_cast<unsigned long long>(s.flushes),
                      static_cast<unsigned long long>(s.remote_frees),
                      static_cast<unsigned long long>(s.reserve_hits));
        out += line;
    }
    return out;
}

std::size_t SlabRegistry::refs(const SlabCache* cache) const {
    std::lock_guard<std::mutex> g(lock_);
    // Compare pointers only: a cache that was destroyed must not be dereferenced.
    for (const Entry& e : entries_) {
        if (cache != nullptr && e.cache.get() == cache) {
            return e.refs;
        }
    }
    return 0;
}

std::size_t SlabRegistry::cache_count() const {
    std::lock_guard<std::mutex> g(lock_);
    return live_;
}

std::size_t SlabRegistry::capacity() const {
    std::lock_guard<std::mutex> g(lock_);
    return entries_.size();
}

} // namespace bioring
