// SPDX-License-Identifier: MIT
// BufferPool implementation: arenas and chunks under lock_, intrusive class free lists,
// per-thread caches (a thread_local with a destructor that drains into the immortal pool),
// and the 256-page reserve.
#include <bioring/alloc/buffer_pool.hpp>

#include <bioring/alloc/failure_injector.hpp>

#include <algorithm>
#include <new>

#include <sys/mman.h>

namespace bioring {

namespace {

constexpr std::array<std::uint32_t, BufferPool::class_count> cache_cap{32, 16, 8, 4, 2, 2};
constexpr std::size_t cache_max = 32;
constexpr std::size_t big_class = BufferPool::class_count - 1;

} // namespace

struct BufferThreadCache {
    std::array<std::array<Buffer, cache_max>, BufferPool::class_count> objs{};
    std::array<std::uint32_t, BufferPool::class_count> nr{};
    ~BufferThreadCache() {
        BufferPool& pool = BufferPool::global();
        for (std::size_t c = 0; c < BufferPool::class_count; ++c) {
            pool.flush(objs[c].data(), nr[c]);
            nr[c] = 0;
        }
        t_dead = true;
    }
    // Set once this thread's cache is gone: later calls (static destructors) go to the pool.
    static constinit thread_local bool t_dead;
};

constinit thread_local bool BufferThreadCache::t_dead = false;

namespace {
thread_local BufferThreadCache t_buffers;
} // namespace

BufferPool& BufferPool::global() {
    static BufferPool* p = new BufferPool();
    return *p;
}

BufferPool::BufferPool() noexcept {
    std::lock_guard<std::mutex> g(lock_);
    for (std::size_t i = 0; i < reserve_target; ++i) {
        Buffer b = pop_locked(big_class);
        if (!b) {
            break; // no memory at start-up: the reserve stays short and refills from frees
        }
        reserve_[reserve_nr_++] = b;
    }
    reserve_short_.store(reserve_target - reserve_nr_, std::memory_order_relaxed);
}

int BufferPool::size_class(std::size_t bytes) noexcept {
    for (std::size_t c = 0; c < class_count; ++c) {
        if (bytes <= class_pages[c] * page_size) {
            return static_cast<int>(c);
        }
    }
    return -1;
}

std::size_t BufferPool::arena_count() const noexcept {
    return arena_count_.load(std::memory_order_acquire);
}

iovec BufferPool::arena(std::size_t index) const noexcept {
    // acquire pairs with the release in take_chunk_locked(): a published index has its iovec.
    if (index >= arena_count_.load(std::memory_order_acquire)) {
        return iovec{nullptr, 0};
    }
    return arenas_[index];
}

bool BufferPool::take_chunk_locked(std::size_t c) noexcept {
    std::size_t n = arena_count_.load(std::memory_order_relaxed);
    if (n == 0 || chunk_next_ + chunk_bytes > arena_bytes) {
        if (n == max_arenas || FailureInjector::should_fail(arena_bytes)) {
            return false;
        }
        void* mem = ::mmap(nullptr, arena_bytes, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) {
            return false;
        }
        arenas_[n] = iovec{mem, arena_bytes};
        arena_count_.store(n + 1, std::memory_order_release); // pairs with arena()'s acquire
        ++n;
        chunk_next_ = 0;
    }
    const std::size_t a = n - 1;
    auto* base = static_cast<std::byte*>(arenas_[a].iov_base) + chunk_next_;
    chunk_next_ += chunk_bytes;
    const std::size_t size = class_pages[c] * page_size;
    ClassState& cs = classes_[c];
    // Push in reverse so buffers come out in address order.
    for (std::size_t off = chunk_bytes; off >= size; off -= size) {
        auto* node = reinterpret_cast<FreeNode*>(base + off - size);
        node->next = cs.free;
        node->arena = a;
        cs.free = node;
        ++cs.nr_free;
        ++cs.carved;
    }
    return true;
}

Buffer BufferPool::pop_locked(std::size_t c) noexcept {
    ClassState& cs = classes_[c];
    if (cs.free == nullptr && !take_chunk_locked(c)) {
        return Buffer{};
    }
    FreeNode* node = cs.free;
    cs.free = node->next;
    --cs.nr_free;
    Buffer b;
    b.data = reinterpret_cast<std::byte*>(node);
    b.capacity = static_cast<std::uint32_t>(class_pages[c] * page_size);
    b.arena = static_cast<std::uint16_t>(node->arena);
    b.size_class = static_cast<std::uint8_t>(c);
    return b;
}

void BufferPool::push_locked(const Buffer& b) noexcept {
    ClassState& cs = classes_[b.size_class];
    auto* node = reinterpret_cast<FreeNode*>(b.data);
    node->next = cs.free;
    node->arena = b.arena;
    cs.free = node;
    ++cs.nr_free;
}

std::size_t BufferPool::refill(std::size_t c, Buffer* out, std::size_t n) noexcept {
    std::lock_guard<std::mutex> g(lock_);
    std::size_t got = 0;
    while (got < n) {
        Buffer b = pop_locked(c);
        if (!b) {
            break;
        }
        out[got++] = b;
    }
    if (got == 0 && c == big_class && reserve_nr_ != 0) {
        out[got++] = reserve_[--reserve_nr_];
        reserve_short_.store(reserve_target - reserve_nr_, std::memory_order_relaxed);
        classes_[c].reserve_hits.fetch_add(1, std::memory_order_relaxed);
    }
    return got;
}

void BufferPool::flush(const Buffer* in, std::size_t n) noexcept {
    if (n == 0) {
        return;
    }
    std::lock_guard<std::mutex> g(lock_);
    for (std::size_t i = 0; i < n; ++i) {
        if (in[i].size_class == big_class && reserve_nr_ < reserve_target) {
            reserve_[reserve_nr_++] = in[i];
            reserve_short_.store(reserve_target - reserve_nr_, std::memory_order_relaxed);
        } else {
            push_locked(in[i]);
        }
    }
}

Buffer BufferPool::alloc(std::size_t bytes) noexcept {
    const int ci = size_class(bytes);
    if (ci < 0) {
        return Buffer{};
    }
    const auto c = static_cast<std::size_t>(ci);
    if (BufferThreadCache::t_dead) [[unlikely]] {
        Buffer b;
        if (refill(c, &b, 1) == 0) {
            classes_[c].failures.fetch_add(1, std::memory_order_relaxed);
            return Buffer{};
        }
        return b;
    }
    BufferThreadCache& tc = t_buffers;
    std::uint32_t n = tc.nr[c];
    if (n != 0) [[likely]] {
        tc.nr[c] = n - 1;
        return tc.objs[c][n - 1];
    }
    n = static_cast<std::uint32_t>(
        refill(c, tc.objs[c].data(), std::max<std::uint32_t>(1, cache_cap[c] / 2)));
    if (n == 0) {
        classes_[c].failures.fetch_add(1, std::memory_order_relaxed);
        return Buffer{};
    }
    tc.nr[c] = n - 1;
    return tc.objs[c][n - 1];
}

void BufferPool::free(Buffer b) noexcept {
    if (!b) {
        return;
    }
    const std::size_t c = b.size_class;
    // The reserve is refilled first: a short reserve sends 256-page buffers to the pool.
    const bool to_reserve = c == big_class && reserve_short_.load(std::memory_order_relaxed) != 0;
    if (to_reserve || BufferThreadCache::t_dead) [[unlikely]] {
        flush(&b, 1);
        return;
    }
    BufferThreadCache& tc = t_buffers;
    std::uint32_t n = tc.nr[c];
    if (n == cache_cap[c]) {
        const std::uint32_t half = std::max<std::uint32_t>(1, cache_cap[c] / 2);
        flush(tc.objs[c].data() + n - half, half);
        n -= half;
    }
    tc.objs[c][n] = b;
    tc.nr[c] = n + 1;
}

void BufferPool::drain_this_thread() noexcept {
    if (BufferThreadCache::t_dead) {
        return;
    }
    BufferThreadCache& tc = t_buffers;
    for (std::size_t c = 0; c < class_count; ++c) {
        flush(tc.objs[c].data(), tc.nr[c]);
        tc.nr[c] = 0;
    }
}

BufferClassStats BufferPool::class_stats(std::size_t c) const {
    BufferClassStats s;
    if (c >= class_count) {
        return s;
    }
    std::lock_guard<std::mutex> g(lock_);
    const ClassState& cs = classes_[c];
    s.bytes = class_pages[c] * page_size;
    s.carved = cs.carved;
    s.free_in_pool = cs.nr_free;
    s.reserve_nr = c == big_class ? reserve_nr_ : 0;
    s.reserve_hits = cs.reserve_hits.load(std::memory_order_relaxed);
    s.failures = cs.failures.load(std::memory_order_relaxed);
    return s;
}

} // namespace bioring
