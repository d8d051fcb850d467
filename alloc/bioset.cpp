// SPDX-License-Identifier: MIT
// BioSet slow paths: construction (reserve fill), the reserve (mempool), the "don't rob
// starving biosets" free, waiters, and oversized objects. The fast paths are inline in
// bioset.hpp; the rules are in its header comment.
#include <bioring/alloc/bioset.hpp>

#include <bioring/alloc/detail/poison.hpp>
#include <bioring/alloc/slab_registry.hpp>

#include <stdexcept>
#include <string>

namespace bioring {

namespace {
constexpr std::size_t round_up64(std::size_t n) noexcept {
    return (n + 63) & ~std::size_t{63};
}
} // namespace

BioSet::BioSet(std::size_t pool_size, std::size_t front_pad)
    : pool_size_(pool_size), front_pad_(round_up64(front_pad)) {
    if (front_pad > max_front_pad) {
        throw std::invalid_argument("BioSet: front_pad " + std::to_string(front_pad) +
                                    " above BioSet::max_front_pad (" +
                                    std::to_string(max_front_pad) + " bytes)");
    }
    if (pool_size > max_pool_size) {
        throw std::invalid_argument("BioSet: pool_size " + std::to_string(pool_size) +
                                    " above BioSet::max_pool_size (" +
                                    std::to_string(max_pool_size) + " objects)");
    }
    SlabRegistry& reg = SlabRegistry::global();
    cache_ = reg.find_or_create(object_size());
    slot_ = cache_->slot();
    if (pool_size_ != 0) {
        reserve_ = new (std::nothrow) void*[pool_size_];
        std::size_t got = 0;
        if (reserve_ != nullptr) {
            got = cache_->alloc_batch(reserve_, pool_size_);
        }
        if (got < pool_size_) {
            // A half-built set unwinds here: give back what was taken, drop the cache.
            if (reserve_ != nullptr) {
                cache_->free_batch(reserve_, got);
                delete[] reserve_;
            }
            reg.put(cache_);
            throw std::bad_alloc();
        }
        reserve_nr_ = pool_size_;
        for (std::size_t i = 0; i < reserve_nr_; ++i) {
            detail::poison(reserve_[i], cache_->object_size()); // free until taken
        }
    }
    std::lock_guard<std::mutex> g(lock_);
    update_slow_locked();
}

BioSet::~BioSet() {
    SlabRegistry& reg = SlabRegistry::global();
    assert(wait_head_ == nullptr && "BioSet destroyed with waiters queued");
    if (reserve_ != nullptr) {
        cache_->free_batch(reserve_, reserve_nr_);
        delete[] reserve_;
    }
    const std::size_t n = oversized_nr_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i) {
        reg.put(oversized_[i].cache.load(std::memory_order_relaxed));
    }
    for (auto& e : oversized_more_) {
        reg.put(e.second);
    }
    reg.put(cache_);
}

void BioSet::update_slow_locked() noexcept {
    const std::uint32_t s = (reserve_nr_ < pool_size_ ? slow_reserve_low : 0u) |
                            (wait_head_ != nullptr ? slow_waiters : 0u);
    slow_.store(s, std::memory_order_relaxed);
}

Bio* BioSet::alloc_reserve() noexcept {
    void* obj = nullptr;
    {
        std::lock_guard<std::mutex> g(lock_);
        if (reserve_nr_ != 0) {
            obj = reserve_[--reserve_nr_];
            update_slow_locked();
        }
    }
    if (obj == nullptr) {
        failures_.fetch_add(1, std::memory_order_relaxed);
        return nullptr;
    }
    detail::unpoison(obj, cache_->object_size());
    reserve_hits_.fetch_add(1, std::memory_order_relaxed);
    cache_->note_reserve_hit();
    return init_bio(obj, front_pad_, cache_, flag_no_cache | flag_reserve);
}

SlabCache* BioSet::oversized_cache(std::size_t pad) noexcept {
    // Lock-free lookup among the published slots (acquire pairs with the release below, so
    // the slot's pad and cache are visible once its index is).
    const std::size_t n = oversized_nr_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i) {
        if (oversized_[i].pad.load(std::memory_order_relaxed) == pad) {
            return oversized_[i].cache.load(std::memory_order_relaxed);
        }
    }
    std::lock_guard<std::mutex> g(lock_);
    const std::size_t n2 = oversized_nr_.load(std::memory_order_relaxed);
    for (std::size_t i = n; i < n2; ++i) {
        if (oversized_[i].pad.load(std::memory_order_relaxed) == pad) {
            return oversized_[i].cache.load(std::memory_order_relaxed);
        }
    }
    for (auto& e : oversized_more_) {
        if (e.first == pad) {
            return e.second;
        }
    }
    SlabCache* c = nullptr;
    try {
        c = SlabRegistry::global().find_or_create(pad + sizeof(Bio));
        if (n2 < oversized_slots) {
            oversized_[n2].pad.store(pad, std::memory_order_relaxed);
            oversized_[n2].cache.store(c, std::memory_order_relaxed);
            oversized_nr_.store(n2 + 1, std::memory_order_release); // pairs with the acquire above
        } else {
            oversized_more_.emplace_back(pad, c);
        }
    } catch (...) {
        if (c != nullptr) {
            SlabRegistry::global().put(c);
        }
        return nullptr;
    }
    return c;
}

Bio* BioSet::alloc_oversized(std::size_t front_size) noexcept {
    if (front_size > SlabCache::max_object_size - sizeof(Bio) - 64) {
        failures_.fetch_add(1, std::memory_order_relaxed);
        return nullptr;
    }
    const std::size_t pad = round_up64(front_size);
    SlabCache* c = oversized_cache(pad);
    void* obj = c != nullptr ? c->alloc() : nullptr;
    if (obj == nullptr) {
        failures_.fetch_add(1, std::memory_order_relaxed);
        return nullptr;
    }
    oversized_allocs_.fetch_add(1, std::memory_order_relaxed);
    return init_bio(obj, pad, c, flag_oversized);
}

void BioSet::free_other(Bio* bio) noexcept {
    if (((bio->alloc_flags & (flag_no_cache | flag_oversized)) |
         slow_.load(std::memory_order_relaxed)) == 0) {
        // No flag, no slow state: the tag differed, so another thread allocated it. It goes
        // into this thread's magazine (slab objects belong to the cache, not to a thread).
        cache_->free_at(slot_, bio->front(), 1);
        return;
    }
    free_slow(bio);
}

void BioSet::free_slow(Bio* bio) noexcept {
    void* obj = bio->front();
    SlabCache* c = bio->cache;
    const std::uint32_t f = bio->alloc_flags;
    const std::uint32_t remote = (f >> 8) != (detail::tls_slots.tid & tid_mask);
    if (c != cache_) {
        // Oversized: no reserve. A waiter may be waiting for exactly this size (a set whose
        // frames outgrow its pad), so wake one, with the object in the shared depot.
        Waiter* w = nullptr;
        if ((slow_.load(std::memory_order_relaxed) & slow_waiters) != 0) {
            std::lock_guard<std::mutex> g(lock_);
            w = pop_waiter_locked();
            update_slow_locked();
        }
        if (w == nullptr) {
            c->free(obj, remote);
            return;
        }
        c->free_batch(&obj, 1);
        wakes_.fetch_add(1, std::memory_order_relaxed);
        w->wake(w); // outside lock_
        return;
    }
    Waiter* w = nullptr;
    bool stored = false;
    {
        std::lock_guard<std::mutex> g(lock_);
        if (reserve_nr_ < pool_size_) {
            detail::poison(obj, c->object_size());
            reserve_[reserve_nr_++] = obj;
            stored = true;
        }
        w = pop_waiter_locked();
        update_slow_locked();
    }
    if (stored) {
        reserve_refills_.fetch_add(1, std::memory_order_relaxed);
    } else if ((f & flag_no_cache) != 0 || w != nullptr) {
        // Don't rob: the object goes where every thread (and the waiter) can find it.
        c->free_batch(&obj, 1);
        uncached_frees_.fetch_add(1, std::memory_order_relaxed);
    } else {
        c->free(obj, remote);
    }
    if (w != nullptr) {
        wakes_.fetch_add(1, std::memory_order_relaxed);
        w->wake(w); // outside lock_: it may call alloc() at once
    }
}

BioSet::Waiter* BioSet::pop_waiter_locked() noexcept {
    Waiter* w = wait_head_;
    if (w != nullptr) {
        wait_head_ = w->next;
        if (wait_head_ == nullptr) {
            wait_tail_ = nullptr;
        }
        w->next = nullptr;
    }
    return w;
}

bool BioSet::wait(Waiter& w) noexcept {
    std::lock_guard<std::mutex> g(lock_);
    if (reserve_nr_ != 0) {
        return false;
    }
    w.next = nullptr;
    if (wait_tail_ != nullptr) {
        wait_tail_->next = &w;
    } else {
        wait_head_ = &w;
    }
    wait_tail_ = &w;
    waits_.fetch_add(1, std::memory_order_relaxed);
    update_slow_locked();
    return true;
}

bool BioSet::cancel_wait(Waiter& w) noexcept {
    std::lock_guard<std::mutex> g(lock_);
    Waiter* prev = nullptr;
    for (Waiter* it = wait_head_; it != nullptr; prev = it, it = it->next) {
        if (it == &w) {
            (prev != nullptr ? prev->next : wait_head_) = it->next;
            if (wait_tail_ == it) {
                wait_tail_ = prev;
            }
            it->next = nullptr;
            update_slow_locked();
            return true;
        }
    }
    return false;
}

BioSetStats BioSet::stats() const {
    BioSetStats s;
    {
        std::lock_guard<std::mutex> g(lock_);
        s.reserve_nr = reserve_nr_;
    }
    s.pool_size = pool_size_;
    s.reserve_hits = reserve_hits_.load(std::memory_order_relaxed);
    s.reserve_refills = reserve_refills_.load(std::memory_order_relaxed);
    s.uncached_frees = uncached_frees_.load(std::memory_order_relaxed);
    s.failures = failures_.load(std::memory_order_relaxed);
    s.waits = waits_.load(std::memory_order_relaxed);
    s.wakes = wakes_.load(std::memory_order_relaxed);
    s.oversized = oversized_allocs_.load(std::memory_order_relaxed);
    return s;
}

} // namespace bioring
