// SPDX-License-Identifier: MIT
// SlabCache slow paths: the depot (slab lists under depot_lock_), magazine binding,
// refill/flush, thread-exit drain and cache destruction. See slab_cache.hpp and
// thread_cache.hpp for the object model and the lock order.
#include <bioring/alloc/detail/slab_cache.hpp>

#include <bioring/alloc/detail/backing.hpp>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace bioring {
namespace detail {

enum : std::uint32_t { on_partial = 0, on_empty = 1, on_full = 2 };

struct alignas(64) Slab {
    SlabCache* cache;
    Slab* prev;
    Slab* next;
    void* free;           ///< free objects, linked through their first word
    std::uint32_t inuse;  ///< objects out of this slab
    std::uint32_t carved; ///< objects ever carved (lazy bump carving)
    std::uint32_t list;   ///< which depot list holds it
};
static_assert(sizeof(Slab) == SlabCache::header_bytes);

namespace {

void list_add(SlabList& l, Slab* s) noexcept {
    s->prev = nullptr;
    s->next = l.head;
    if (l.head != nullptr) {
        l.head->prev = s;
    }
    l.head = s;
    ++l.count;
}

void list_del(SlabList& l, Slab* s) noexcept {
    if (s->prev != nullptr) {
        s->prev->next = s->next;
    } else {
        l.head = s->next;
    }
    if (s->next != nullptr) {
        s->next->prev = s->prev;
    }
    s->prev = s->next = nullptr;
    --l.count;
}

std::atomic<std::uint32_t> g_next_tid{1};

// The part of a thread's cache state that needs a destructor: the magazines it owns and the
// slots for registry ids beyond fast_slots. Built on the thread's first bind (slow path).
struct ThreadOwner {
    std::vector<Magazine*> owned;
    std::vector<Magazine*> overflow; // indexed by id - fast_slots

    ~ThreadOwner() {
        std::lock_guard<std::mutex> g(magazine_lock());
        for (Magazine* m : owned) {
            if (m->cache.load(std::memory_order_relaxed) != nullptr) {
                unbind_magazine_locked(m);
            }
        }
        for (Magazine* m : owned) {
            delete[] m->hot->objs;
            m->hot->objs = nullptr;
        }
        // From here on this thread's frees and allocations go straight to the depots (a
        // static BioSet may still be freed after this destructor has run).
        tls_slots.dead = true;
        for (MagazineHot& h : tls_slots.hot) {
            h.nr.store(0, std::memory_order_relaxed);
            h.limit = 0;
        }
        tls_slots.mags.fill(nullptr);
        for (Magazine* m : owned) {
            delete m;
        }
        owned.clear();
        overflow.clear();
    }
};

thread_local ThreadOwner t_owner;

} // namespace

std::mutex& magazine_lock() noexcept {
    // Never destroyed: threads may exit (and drain) during or after static destruction.
    static std::mutex* m = new std::mutex;
    return *m;
}

std::uint32_t this_thread_id() noexcept {
    std::uint32_t t = tls_slots.tid;
    if (t == 0) {
        t = g_next_tid.fetch_add(1, std::memory_order_relaxed);
        if (t == 0) { // wrapped: 0 means "unassigned"
            t = g_next_tid.fetch_add(1, std::memory_order_relaxed);
        }
        tls_slots.tid = t;
        tls_slots.tid_tag = t << 8; // == (t mod 2^24) << 8 in 32 bits
    }
    return t;
}

void unbind_magazine_locked(Magazine* m) noexcept {
    SlabCache* c = m->cache.load(std::memory_order_relaxed);
    if (c != nullptr) {
        c->unbind_locked(m);
    }
}

} // namespace detail

using detail::Magazine;
using detail::Slab;

SlabCache::SlabCache(std::size_t object_size, std::uint32_t id)
    : slot_(id < detail::fast_slots ? id : static_cast<std::uint32_t>(detail::fast_slots)), id_(id),
      object_size_(object_size) {
    if (object_size == 0) {
        throw std::invalid_argument("SlabCache: object size 0 (must be 1.." +
                                    std::to_string(max_object_size) + " bytes)");
    }
    if (object_size > max_object_size) {
        throw std::invalid_argument("SlabCache: object size " + std::to_string(object_size) +
                                    " above SlabCache::max_object_size (" +
                                    std::to_string(max_object_size) + " bytes)");
    }
    stride_ = (object_size + align - 1) & ~(align - 1);
    // An odd number of cache lines: objects at a stride of 2^k lines fall on 64 >> k of the
    // L1's 64 sets (a 1 KiB stride: 4), so the first lines of 128 hot coroutine frames —
    // what a loop turn at QD 128 touches — would compete for 48 ways and miss on every
    // visit. An odd stride spreads them over all sets. Small objects keep their size (the
    // padding would cost more than the conflicts it avoids; at most 1/8 here).
    if (stride_ >= 8 * align && (stride_ / align) % 2 == 0) {
        stride_ += align;
    }
    // At least 8 objects per slab while slabs stay at most 8 MiB; beyond that one object
    // per slab is enough (such objects are rare, and the power-of-two rounding already
    // costs up to half a slab).
    std::size_t want = std::max(min_slab_bytes, header_bytes + 8 * stride_);
    if (want > (std::size_t{8} << 20)) {
        want = header_bytes + stride_;
    }
    slab_bytes_ = std::bit_ceil(want);
    objects_per_slab_ = (slab_bytes_ - header_bytes) / stride_;
    // Magazine: about 512 KiB of objects per thread, between 4 and 512 of them.
    const std::size_t cap = std::clamp<std::size_t>((512 * 1024) / stride_, 4, 512);
    cap_ = static_cast<std::uint32_t>(cap);
    slack_ = std::max<std::uint32_t>(1, cap_ / 4);
    batch_ = std::max<std::uint32_t>(1, cap_ / 2);
    name_ = "bio-" + std::to_string(object_size);
}

SlabCache::~SlabCache() {
    {
        std::lock_guard<std::mutex> g(detail::magazine_lock());
        while (magazines_ != nullptr) {
            unbind_locked(magazines_);
        }
    }
    Slab* all = nullptr;
    {
        std::lock_guard<std::mutex> g(depot_lock_);
        if (depot_out_ != 0) {
            std::fprintf(stderr, "bioring: slab cache %s destroyed with %zu objects in use\n",
                         name_.c_str(), depot_out_);
        }
        for (detail::SlabList* l : {&partial_, &empty_, &full_}) {
            while (l->head != nullptr) {
                Slab* s = l->head;
                detail::list_del(*l, s);
                s->next = all;
                all = s;
                ++slabs_released_;
            }
        }
    }
    release_slabs(all, slab_bytes_);
}

// ---- depot -------------------------------------------------------------------------------

Slab* SlabCache::new_slab_locked() noexcept {
    void* mem = detail::backing_alloc(slab_bytes_, slab_bytes_);
    if (mem == nullptr) {
        ++backing_failures_;
        return nullptr;
    }
    auto* s = ::new (mem) Slab{this, nullptr, nullptr, nullptr, 0, 0, detail::on_empty};
    detail::poison(static_cast<char*>(mem) + header_bytes, slab_bytes_ - header_bytes);
    detail::list_add(empty_, s);
    depot_free_ += objects_per_slab_;
    ++slabs_created_;
    return s;
}

std::size_t SlabCache::depot_alloc_locked(void** out, std::size_t n) noexcept {
    std::size_t got = 0;
    const auto nobj = static_cast<std::uint32_t>(objects_per_slab_);
    while (got < n) {
        Slab* s = partial_.head != nullptr ? partial_.head : empty_.head;
        if (s == nullptr) {
            s = new_slab_locked();
            if (s == nullptr) {
                break;
            }
        }
        while (got < n && s->inuse < nobj) {
            void* p = s->free;
            if (p != nullptr) {
                detail::unpoison(p, object_size_);
                s->free = *static_cast<void**>(p);
            } else {
                p = reinterpret_cast<char*>(s) + header_bytes + std::size_t{s->carved} * stride_;
                ++s->carved;
                detail::unpoison(p, object_size_);
            }
            out[got++] = p;
            ++s->inuse;
        }
        const std::uint32_t want = s->inuse == nobj ? detail::on_full : detail::on_partial;
        if (want != s->list) {
            detail::list_del(s->list == detail::on_empty ? empty_ : partial_, s);
            detail::list_add(want == detail::on_full ? full_ : partial_, s);
            s->list = want;
        }
    }
    depot_free_ -= got;
    depot_out_ += got;
    return got;
}

void SlabCache::depot_free_locked(void* p, Slab*& release) noexcept {
    auto* s = reinterpret_cast<Slab*>(reinterpret_cast<std::uintptr_t>(p) & ~(slab_bytes_ - 1));
    assert(s->cache == this && "object freed into the wrong slab cache");
    detail::unpoison(p, sizeof(void*));
    *static_cast<void**>(p) = s->free;
    detail::poison(p, object_size_);
    s->free = p;
    --s->inuse;
    ++depot_free_;
    --depot_out_;
    if (s->inuse == 0) {
        detail::list_del(s->list == detail::on_full ? full_ : partial_, s);
        if (empty_.count >= empty_slack) {
            // Idle beyond the slack: back to the system (outside the lock, by the caller).
            depot_free_ -= objects_per_slab_;
            ++slabs_released_;
            s->next = release;
            release = s;
        } else {
            detail::list_add(empty_, s);
            s->list = detail::on_empty;
        }
    } else if (s->list == detail::on_full) {
        detail::list_del(full_, s);
        detail::list_add(partial_, s);
        s->list = detail::on_partial;
    }
}

void SlabCache::release_slabs(Slab* list, std::size_t bytes) noexcept {
    while (list != nullptr) {
        Slab* next = list->next;
        detail::unpoison(list, bytes); // the backing may map this range again
        detail::backing_free(list, bytes, bytes);
        list = next;
    }
}

std::size_t SlabCache::alloc_batch(void** out, std::size_t n) noexcept {
    std::lock_guard<std::mutex> g(depot_lock_);
    const std::size_t got = depot_alloc_locked(out, n);
    direct_allocs_ += got;
    return got;
}

void SlabCache::free_batch(void* const* objs, std::size_t n) noexcept {
    Slab* release = nullptr;
    {
        std::lock_guard<std::mutex> g(depot_lock_);
        for (std::size_t i = 0; i < n; ++i) {
            if (objs[i] != nullptr) {
                depot_free_locked(objs[i], release);
                ++direct_frees_;
            }
        }
    }
    release_slabs(release, slab_bytes_);
}

// ---- magazines ---------------------------------------------------------------------------

namespace {

// Add @t's event counts (not `cached`, a level) to @to: a ThreadCacheStats (retired_) or
// a SlabCacheStats, which carries the same six counters.
template <class Totals>
void add_counts(Totals& to, const ThreadCacheStats& t) noexcept {
    to.allocations += t.allocations;
    to.frees += t.frees;
    to.refills += t.refills;
    to.flushes += t.flushes;
    to.remote_frees += t.remote_frees;
    to.reserve_hits += t.reserve_hits;
}

// Per-magazine counters, computed the same way for live and retiring magazines.
ThreadCacheStats magazine_stats(const Magazine* m) noexcept {
    ThreadCacheStats t;
    const detail::MagazineHot* h = m->hot;
    t.cached = h->nr.load(std::memory_order_relaxed);
    t.frees = h->frees.get();
    t.remote_frees = h->remote_frees.get();
    t.refills = m->refills.get();
    t.flushes = m->flushes.get();
    t.reserve_hits = m->reserve_hits.get();
    // Allocations are not counted on the fast path; every object that entered the magazine
    // (refilled or freed) either left it (allocated or flushed) or is still there. A reader
    // on another thread may see the parts at different moments: clamp at zero.
    const std::uint64_t in = m->refilled.get() + t.frees;
    const std::uint64_t out = m->flushed.get() + t.cached;
    t.allocations = in > out ? in - out : 0;
    return t;
}

} // namespace

Magazine* SlabCache::find_magazine() const noexcept {
    if (id_ < detail::fast_slots) {
        return detail::tls_slots.mags[id_];
    }
    if (detail::tls_slots.dead) {
        return nullptr;
    }
    auto& ov = detail::t_owner.overflow;
    const std::size_t i = id_ - detail::fast_slots;
    return i < ov.size() ? ov[i] : nullptr;
}

Magazine* SlabCache::bind_magazine() noexcept {
    if (detail::tls_slots.dead) [[unlikely]] {
        return nullptr;
    }
    Magazine* m = find_magazine();
    if (m != nullptr && m->cache.load(std::memory_order_relaxed) == this) {
        return m;
    }
    try {
        detail::ThreadOwner& owner = detail::t_owner; // registers the thread-exit drain
        std::lock_guard<std::mutex> g(detail::magazine_lock());
        if (m == nullptr) {
            auto mag = std::make_unique<Magazine>();
            mag->tid = detail::this_thread_id();
            owner.owned.reserve(owner.owned.size() + 1);
            if (id_ < detail::fast_slots) {
                mag->hot = &detail::tls_slots.hot[id_];
                detail::tls_slots.mags[id_] = mag.get();
            } else {
                mag->hot = &mag->own;
                const std::size_t i = id_ - detail::fast_slots;
                if (owner.overflow.size() <= i) {
                    owner.overflow.resize(i + 1, nullptr);
                }
                owner.overflow[i] = mag.get();
            }
            m = mag.release();
            owner.owned.push_back(m);
        } else if (m->cache.load(std::memory_order_relaxed) != nullptr) {
            // Only a cache with this id can be bound here, and a destroyed one unbinds; keep
            // going correctly anyway.
            detail::unbind_magazine_locked(m);
        }
        detail::MagazineHot* h = m->hot;
        const std::uint32_t limit = cap_ + slack_;
        if (m->capacity < limit) {
            void** objs = new void*[limit];
            delete[] h->objs;
            h->objs = objs;
            m->capacity = limit;
        }
        h->nr.store(0, std::memory_order_relaxed);
        // Overflow ids keep limit 0 in their TLS slot (the shared empty one), so they always
        // come here; their own hot part gets the real limit for the slow path to use.
        h->limit = limit;
        m->prev = nullptr;
        m->next = magazines_;
        if (magazines_ != nullptr) {
            magazines_->prev = m;
        }
        magazines_ = m;
        ++nr_magazines_;
        m->cache.store(this, std::memory_order_relaxed);
        return m;
    } catch (...) {
        // Out of memory for the magazine itself: the caller goes to the depot directly.
        return nullptr;
    }
}

void SlabCache::unbind_locked(Magazine* m) noexcept {
    detail::MagazineHot* h = m->hot;
    const std::uint32_t n = h->nr.load(std::memory_order_relaxed);
    if (n != 0) {
        Slab* release = nullptr;
        {
            std::lock_guard<std::mutex> g(depot_lock_);
            for (std::uint32_t i = 0; i < n; ++i) {
                depot_free_locked(h->objs[i], release);
            }
        }
        release_slabs(release, slab_bytes_);
        m->flushed.add(n);
        h->nr.store(0, std::memory_order_relaxed);
    }
    add_counts(retired_, magazine_stats(m));
    for (detail::OwnerCounter* c : {&h->frees, &h->remote_frees, &m->refilled, &m->flushed,
                                    &m->refills, &m->flushes, &m->reserve_hits}) {
        c->v.store(0, std::memory_order_relaxed);
    }
    h->limit = 0;
    m->cache.store(nullptr, std::memory_order_relaxed);
    if (m->prev != nullptr) {
        m->prev->next = m->next;
    } else {
        magazines_ = m->next;
    }
    if (m->next != nullptr) {
        m->next->prev = m->prev;
    }
    m->prev = m->next = nullptr;
    --nr_magazines_;
}

void* SlabCache::alloc_slow() noexcept {
    Magazine* m = bind_magazine();
    if (m == nullptr) {
        void* p = nullptr;
        alloc_batch(&p, 1);
        return p;
    }
    detail::MagazineHot* h = m->hot;
    std::uint32_t n = h->nr.load(std::memory_order_relaxed);
    if (n == 0) {
        {
            std::lock_guard<std::mutex> g(depot_lock_);
            n = static_cast<std::uint32_t>(depot_alloc_locked(h->objs, batch_));
        }
        if (n == 0) {
            return nullptr;
        }
        m->refills.add();
        m->refilled.add(n);
        for (std::uint32_t i = 0; i + 1 < n; ++i) {
            detail::poison(h->objs[i], object_size_); // they stay in the magazine
        }
    }
    h->nr.store(n - 1, std::memory_order_relaxed);
    return h->objs[n - 1];
}

void SlabCache::free_slow(void* p, std::uint32_t remote) noexcept {
    Magazine* m = bind_magazine();
    if (m == nullptr) {
        free_batch(&p, 1);
        return;
    }
    detail::MagazineHot* h = m->hot;
    std::uint32_t n = h->nr.load(std::memory_order_relaxed);
    if (n >= h->limit) {
        // Prune back to cap (block/bio.c bio_alloc_cache_prune): the newest go, so the
        // batch is contiguous at the top of objs.
        Slab* release = nullptr;
        {
            std::lock_guard<std::mutex> g(depot_lock_);
            for (std::uint32_t i = n - slack_; i < n; ++i) {
                depot_free_locked(h->objs[i], release);
            }
        }
        release_slabs(release, slab_bytes_);
        n -= slack_;
        m->flushes.add();
        m->flushed.add(slack_);
    }
    detail::poison(p, object_size_);
    h->objs[n] = p;
    h->nr.store(n + 1, std::memory_order_relaxed);
    h->frees.add();
    h->remote_frees.add(remote);
}

void SlabCache::note_reserve_hit() noexcept {
    // A thread that never bound a magazine for this cache gets one (so the hit is counted
    // somewhere); one that cannot (exiting, out of memory) goes uncounted per thread.
    Magazine* m = bind_magazine();
    if (m != nullptr) {
        m->reserve_hits.add();
    }
}

void SlabCache::drain_this_thread() noexcept {
    Magazine* m = find_magazine();
    if (m == nullptr || m->cache.load(std::memory_order_relaxed) != this) {
        return;
    }
    detail::MagazineHot* h = m->hot;
    const std::uint32_t n = h->nr.load(std::memory_order_relaxed);
    if (n == 0) {
        return;
    }
    Slab* release = nullptr;
    {
        std::lock_guard<std::mutex> g(depot_lock_);
        for (std::uint32_t i = 0; i < n; ++i) {
            depot_free_locked(h->objs[i], release);
        }
    }
    release_slabs(release, slab_bytes_);
    h->nr.store(0, std::memory_order_relaxed);
    m->flushes.add();
    m->flushed.add(n);
}

// ---- reports -----------------------------------------------------------------------------

SlabCacheStats SlabCache::stats() const {
    SlabCacheStats s;
    s.name = name_;
    s.object_size = object_size_;
    s.stride = stride_;
    s.slab_bytes = slab_bytes_;
    s.objects_per_slab = objects_per_slab_;
    std::size_t cached = 0;
    {
        std::lock_guard<std::mutex> g(detail::magazine_lock());
        add_counts(s, retired_);
        for (const Magazine* m = magazines_; m != nullptr; m = m->next) {
            const ThreadCacheStats t = magazine_stats(m);
            add_counts(s, t);
            cached += t.cached;
        }
        s.magazines = nr_magazines_;
    }
    std::lock_guard<std::mutex> g(depot_lock_);
    s.allocations += direct_allocs_;
    s.frees += direct_frees_;
    s.in_thread_caches = cached;
    s.in_use = depot_out_ >= cached ? depot_out_ - cached : 0;
    s.free_in_depot = depot_free_;
    s.slabs = partial_.count + empty_.count + full_.count;
    s.slabs_created = slabs_created_;
    s.slabs_released = slabs_released_;
    s.backing_failures = backing_failures_;
    return s;
}

ThreadCacheStats SlabCache::this_thread_stats() const noexcept {
    const Magazine* m = find_magazine();
    if (m == nullptr || m->cache.load(std::memory_order_relaxed) != this) {
        return ThreadCacheStats{};
    }
    return magazine_stats(m);
}

} // namespace bioring
