// SPDX-License-Identifier: MIT
// THE ONE-ALLOCATION PROOF. After a warm-up, 100,000 request coroutines each write and read
// back 4 KiB of an O_DIRECT file on /dev/shm (raw Operations, READ_FIXED/WRITE_FIXED on a
// BufferPool buffer where the backend has registered buffers). Counted across them:
//   - slab allocations (SlabRegistry totals): exactly one per request, the frame + Bio;
//   - global heap calls: zero per request. Every global operator new/delete form is
//     replaced below, and every malloc-family call made by this binary and the bioring
//     static libraries linked into it is wrapped at link time (tests/runtime/tests.cmake:
//     -Wl,--wrap=malloc,...). Calls made from inside shared libraries (libstdc++'s own
//     malloc use, liburing) are not seen by --wrap; their operator new calls are.
// Both backends are held to zero (BIORING_BACKEND=asio runs it on the fallback): there the
// blocking calls' handlers cross threads, and their memory comes from the backend's own
// cross-thread pool (runtime/handler_pool.hpp), never from malloc; before it, the fallback
// made 6 heap calls per request (3 per operation: a set node's alloc and free, and one
// handler post that Asio's per-thread recycling could not serve). The two structures that
// got it there are checked on their own below: the handler pool across threads, the
// in-flight table against a reference.
// The synchronisation primitives (Event, Semaphore, Mutex, Channel) are held to the same
// rule: after a warm-up, waits that really suspend — on one reactor and woken from another
// reactor thread — make no heap call.
#include <bioring/runtime/reactor.hpp>

#include <bioring/alloc/buffer_pool.hpp>
#include <bioring/alloc/slab_registry.hpp>
#include <bioring/runtime/detail/handler_pool.hpp>
#include <bioring/runtime/channel.hpp>
#include <bioring/runtime/event.hpp>
#include <bioring/runtime/mutex.hpp>
#include <bioring/runtime/op_awaiter.hpp>
#include <bioring/runtime/runtime.hpp>
#include <bioring/runtime/semaphore.hpp>
#include <bioring/runtime/when_all.hpp>
#include <bioring/runtime/detail/op_set.hpp>
#include <bioring/runtime/spawn.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/this_bio.hpp>
#include "support.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {
std::atomic<std::uint64_t> g_heap_calls{0};
inline void count() noexcept {
    g_heap_calls.fetch_add(1, std::memory_order_relaxed);
}
} // namespace

extern "C" {
void* __real_malloc(std::size_t);
void __real_free(void*);
void* __real_calloc(std::size_t, std::size_t);
void* __real_realloc(void*, std::size_t);
int __real_posix_memalign(void**, std::size_t, std::size_t);
void* __real_aligned_alloc(std::size_t, std::size_t);
void* __real_memalign(std::size_t, std::size_t);

void* __wrap_malloc(std::size_t n) {
    count();
    return __real_malloc(n);
}
void __wrap_free(void* p) {
    if (p) {
        count();
    }
    __real_free(p);
}
void* __wrap_calloc(std::size_t a, std::size_t b) {
    count();
    return __real_calloc(a, b);
}
void* __wrap_realloc(void* p, std::size_t n) {
    count();
    return __real_realloc(p, n);
}
int __wrap_posix_memalign(void** p, std::size_t a, std::size_t n) {
    count();
    return __real_posix_memalign(p, a, n);
}
void* __wrap_aligned_alloc(std::size_t a, std::size_t n) {
    count();
    return __real_aligned_alloc(a, n);
}
void* __wrap_memalign(std::size_t a, std::size_t n) {
    count();
    return __real_memalign(a, n);
}
}

// Global operator new/delete replacements (counted; they use the real allocator directly
// so one call is counted once).
void* operator new(std::size_t n) {
    count();
    if (void* p = __real_malloc(n ? n : 1)) {
        return p;
    }
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
    return ::operator new(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    count();
    return __real_malloc(n ? n : 1);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept {
    return ::operator new(n, t);
}
void* operator new(std::size_t n, std::align_val_t a) {
    count();
    void* p = nullptr;
    if (__real_posix_memalign(&p, std::max<std::size_t>(static_cast<std::size_t>(a), sizeof(void*)),
                              n ? n : 1) != 0) {
        throw std::bad_alloc();
    }
    return p;
}
void* operator new[](std::size_t n, std::align_val_t a) {
    return ::operator new(n, a);
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    count();
    void* p = nullptr;
    if (__real_posix_memalign(&p, std::max<std::size_t>(static_cast<std::size_t>(a), sizeof(void*)),
                              n ? n : 1) != 0) {
        return nullptr;
    }
    return p;
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t& t) noexcept {
    return ::operator new(n, a, t);
}
void operator delete(void* p) noexcept {
    if (p) {
        count();
        __real_free(p);
    }
}
void operator delete[](void* p) noexcept {
    ::operator delete(p);
}
void operator delete(void* p, std::size_t) noexcept {
    ::operator delete(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    ::operator delete(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
    ::operator delete(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
    ::operator delete(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
    ::operator delete(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
    ::operator delete(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    ::operator delete(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    ::operator delete(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
    ::operator delete(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
    ::operator delete(p);
}

using namespace bioring;
using bioring::test::slab_allocations;

namespace {

constexpr std::size_t block = 4096;
constexpr std::size_t file_blocks = 1024;
constexpr int queue_depth = 32; // at most 32: the slots are bits of a uint32_t
static_assert(queue_depth <= 32 && file_blocks % queue_depth == 0);

struct Pipeline {
    Reactor* reactor = nullptr;
    int fd = -1;
    int in_flight = 0;
    int done = 0;
    int errors = 0;
    int one_alloc_frames = 0; // requests whose frame sat in the bioset's front pad
    std::coroutine_handle<> waiter{};
    std::uint32_t busy_slots = 0; // bit s: a live request owns file column s

    unsigned take_slot() noexcept {
        const auto s = static_cast<unsigned>(__builtin_ctz(~busy_slots)); // in_flight <= 32
        busy_slots |= 1u << s;
        return s;
    }
    void put_slot(unsigned s) noexcept { busy_slots &= ~(1u << s); }

    // Suspends the producer until in_flight drops below @limit.
    struct Below {
        Pipeline* p;
        int limit;
        bool await_ready() const noexcept { return p->in_flight < limit; }
        void await_suspend(std::coroutine_handle<> h) noexcept { p->waiter = h; }
        void await_resume() const noexcept {}
    };
    void finished() {
        --in_flight;
        ++done;
        if (waiter) {
            reactor->post(std::exchange(waiter, {})); // capacity reserved: no allocation
        }
    }
};

Operation rw(OpCode code, Pipeline& p, Buffer b, std::uint64_t off) {
    Operation op;
    op.code = code;
    op.fd = p.fd;
    op.addr = b.data;
    op.len = block;
    op.offset = off;
    const int idx = p.reactor->buffer_index(b.data, block);
    op.buf_index = static_cast<std::int16_t>(idx);
    return op;
}

// One request: the frame (with its Bio) is the only allocation; the buffer comes from the
// BufferPool's per-thread cache.
Task<void> request(BioSet& bs, Pipeline* p, std::uint64_t i) {
    Bio* bio = co_await this_bio;
    if (bio != nullptr && bio->set == &bs) {
        ++p->one_alloc_frames;
    }
    Buffer b = BufferPool::global().alloc(block);
    if (!b) {
        ++p->errors;
        p->finished();
        co_return;
    }
    // A block no other live request touches: a request can be held up arbitrarily long (on
    // the Asio backend a preempted pool worker holds its operation while the others run a
    // thousand requests), so i % file_blocks alone let request i + file_blocks overwrite
    // this block between our write and read. The slot (one of queue_depth, free while this
    // request lives) picks a column, i the row.
    const unsigned slot = p->take_slot();
    const std::uint64_t off = ((i % (file_blocks / queue_depth)) * queue_depth + slot) * block;
    std::memset(b.data, static_cast<int>(i & 0xff), block);
    std::memcpy(b.data, &i, sizeof i);
    IoResult w = co_await OpAwaiter(rw(OpCode::write, *p, b, off));
    std::memset(b.data, 0xee, block);
    IoResult r = co_await OpAwaiter(rw(OpCode::read, *p, b, off));
    std::uint64_t back = 0;
    std::memcpy(&back, b.data, sizeof back);
    if (w.res != static_cast<int>(block) || r.res != static_cast<int>(block) || back != i ||
        b.data[block - 1] != static_cast<std::byte>(i & 0xff)) {
        ++p->errors;
    }
    BufferPool::global().free(b);
    p->put_slot(slot);
    p->finished();
}

Task<void> run(BioSet& bs, Pipeline* p, std::uint64_t first, std::uint64_t n) {
    for (std::uint64_t i = first; i < first + n; ++i) {
        while (p->in_flight >= queue_depth) {
            co_await Pipeline::Below{p, queue_depth};
        }
        ++p->in_flight;
        spawn(request(bs, p, i));
    }
    while (p->in_flight > 0) {
        co_await Pipeline::Below{p, 1};
    }
}

/// Ping-pong between two coroutines through every primitive; each round makes every wait
/// below suspend (the partner is always already queued when it is woken, which `suspended`
/// counts). @heap_mark receives g_heap_calls after @warm rounds.
struct PingPong {
    Event a{EventMode::auto_reset};
    Event b{EventMode::auto_reset};
    Semaphore s1{0};
    Semaphore s2{0};
    Mutex mu;
    Channel<std::uint64_t> ch{1};
    std::atomic<std::uint64_t> suspended{0};
    std::uint64_t heap_mark = 0;
    std::uint64_t bad = 0; // wrong results; written by `ping` only
};

struct yield_now {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { Reactor::current()->post(h); }
    void await_resume() const noexcept {}
};

/// Spins (yielding to the loop) until @n coroutines wait on @w (receivers, for a Channel).
template <class W>
Task<void> until_waiting(W& w, std::size_t n) {
    for (;;) {
        std::size_t now;
        if constexpr (requires { w.waiting_receivers(); }) {
            now = w.waiting_receivers();
        } else {
            now = w.waiting();
        }
        if (now >= n) {
            co_return;
        }
        co_await yield_now{};
    }
}

Task<void> ping(PingPong* p, std::uint64_t warm, std::uint64_t rounds) {
    for (std::uint64_t i = 0; i < warm + rounds; ++i) {
        if (i == warm) {
            p->heap_mark = g_heap_calls.load();
        }
        co_await until_waiting(p->b, 1);
        p->suspended += 1;
        p->b.set();
        p->bad += (co_await p->a.wait()).ok() ? 0 : 1;

        co_await until_waiting(p->s2, 1);
        p->suspended += 1;
        p->s2.release();
        Permit got = co_await p->s1.acquire();
        p->bad += got ? 0 : 1;
        got.detach(); // consumed: the partner releases the next one

        {
            MutexGuard g = co_await p->mu.lock();
            co_await until_waiting(p->mu, 1); // the partner queues behind us
            p->suspended += 1;
        }
        co_await until_waiting(p->ch, 1);
        p->suspended += 1;
        p->bad += (co_await p->ch.send(i)).ok() ? 0 : 1;
    }
}

Task<void> pong(PingPong* p, std::uint64_t total) {
    for (std::uint64_t i = 0; i < total; ++i) {
        (void)co_await p->b.wait();
        co_await until_waiting(p->a, 1);
        p->suspended += 1;
        p->a.set();

        Permit got = co_await p->s2.acquire();
        got.detach();
        co_await until_waiting(p->s1, 1);
        p->suspended += 1;
        p->s1.release();

        while (!p->mu.is_locked()) { // queue behind ping's hold
            co_await yield_now{};
        }
        { MutexGuard g = co_await p->mu.lock(); }
        std::optional<std::uint64_t> v = co_await p->ch.receive();
        if (!v || *v != i) {
            p->suspended += 1'000'000'000; // fails the exact count below
        }
    }
}

} // namespace

TEST_SUITE("runtime") {

    TEST_CASE("Event, Semaphore, Mutex and Channel waits make no heap call in steady state") {
        constexpr std::uint64_t warm = 200;
        constexpr std::uint64_t rounds = 5'000;
        SUBCASE("one reactor") {
            Reactor reactor;
            PingPong p;
            Task<void> ta = ping(&p, warm, rounds);
            Task<void> tb = pong(&p, warm + rounds);
            sync_wait(when_all(std::move(ta), std::move(tb)));
            const std::uint64_t heap = g_heap_calls.load() - p.heap_mark;
            MESSAGE("heap calls over " << rounds << " rounds (" << p.suspended.load()
                                       << " suspended waits in all): " << heap);
            CHECK(p.bad == 0);
            CHECK(p.suspended.load() == 6 * (warm + rounds));
            // The window ends inside sync_wait, before it returns: only the driver's teardown
            // (no heap) and when_all's result collection lie between.
            CHECK(heap == 0);
        }
        SUBCASE("woken from another reactor thread") {
            RuntimeOptions o;
            o.threads = 2;
            Runtime rt(o);
            PingPong p;
            std::atomic<std::uint64_t> heap_end{0};
            rt.run_on_all([&](unsigned shard) -> Task<void> {
                if (shard == 0) {
                    co_await ping(&p, warm, rounds);
                    heap_end = g_heap_calls.load();
                } else {
                    co_await pong(&p, warm + rounds);
                }
            });
            const std::uint64_t heap = heap_end.load() - p.heap_mark;
            MESSAGE("heap calls over " << rounds << " cross-reactor rounds: " << heap);
            CHECK(p.bad == 0);
            CHECK(p.suspended.load() == 6 * (warm + rounds));
            CHECK(heap == 0);
        }
    }

    TEST_CASE("one hundred thousand O_DIRECT requests take one slab allocation each and no heap") {
        const std::string path = "/dev/shm/bioring-alloc-count-" + std::to_string(::getpid());
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0600);
        if (fd < 0) {
            BIORING_SKIP("O_DIRECT on /dev/shm refused (older kernel)");
        }
        ::unlink(path.c_str());
        REQUIRE(::ftruncate(fd, static_cast<off_t>(file_blocks * block)) == 0);

        Reactor reactor;
        BioSet bs(64, 1024);
        Pipeline p;
        p.reactor = &reactor;
        p.fd = fd;

        // Warm-up: fills the thread caches (slabs, buffers, ring, ready queue capacity).
        constexpr std::uint64_t warm = 5'000;
        sync_wait(run(bs, &p, 0, warm));
        REQUIRE(p.errors == 0);

        constexpr std::uint64_t n = 100'000;
        Task<void> measured = run(bs, &p, warm, n); // created before the window
        const std::uint64_t slabs_before = slab_allocations();
        const std::uint64_t reqs_before = reactor.counters().requests_allocated;
        const int frames_before = p.one_alloc_frames;
        const std::uint64_t heap_before = g_heap_calls.load();
        sync_wait(std::move(measured));
        const std::uint64_t heap_after = g_heap_calls.load();
        const std::uint64_t slabs_after = slab_allocations();
        ::close(fd);

        CHECK(p.errors == 0);
        CHECK(p.done == static_cast<int>(warm + n));
        CHECK(p.one_alloc_frames - frames_before == static_cast<int>(n));
        // sync_wait's own driver frame is the one allocation that is not a request.
        MESSAGE("slab allocations: " << (slabs_after - slabs_before) << " for " << n
                                     << " requests; heap calls: " << (heap_after - heap_before)
                                     << "; backend: " << reactor.report());
        CHECK(slabs_after - slabs_before == n + 1);
        CHECK(reactor.counters().requests_allocated - reqs_before == n + 1);
        CHECK(heap_after - heap_before == 0);
    }

    TEST_CASE("the Asio backend's handler pool recycles blocks freed on another thread without the "
              "heap") {
        using bioring::detail::HandlerAllocator;
        using bioring::detail::HandlerPool;
        constexpr std::size_t depth = 64; // blocks in flight between the two threads at most
        HandlerPool pool(depth);
        const std::size_t carved = pool.blocks();
        REQUIRE(carved >= depth);

        // A bounded single-producer single-consumer ring hands blocks to a freeing thread, as
        // the reactor hands a posted handler to a pool worker.
        struct Ring {
            void* slot[depth] = {};
            std::atomic<std::uint64_t> head{0}; // consumer
            std::atomic<std::uint64_t> tail{0}; // producer
        };
        auto ring = std::make_unique<Ring>();
        constexpr std::uint64_t n = 200'000;
        std::atomic<bool> go{false};
        std::atomic<int> bad{0};
        std::uint64_t heap_at_end = 0;
        std::thread consumer([&] {
            while (!go.load(std::memory_order_acquire)) {
            }
            HandlerAllocator<std::uint64_t> a(pool);
            for (std::uint64_t i = 0; i < n; ++i) {
                while (ring->head.load(std::memory_order_relaxed) ==
                       ring->tail.load(std::memory_order_acquire)) {
                }
                const std::uint64_t h = ring->head.load(std::memory_order_relaxed);
                auto* p = static_cast<std::uint64_t*>(ring->slot[h % depth]);
                if (p[0] != i || p[15] != ~i) {
                    bad.fetch_add(1, std::memory_order_relaxed);
                }
                a.deallocate(p, 16);
                ring->head.store(h + 1, std::memory_order_release);
            }
            // Read here, not after join(): the exiting thread frees std::thread's own state (a
            // heap call) at a moment the main thread cannot order its read against. Every heap
            // call of the producer's loop happens before this (the acquire of the last tail).
            heap_at_end = g_heap_calls.load();
        });
        const std::uint64_t heap0 = g_heap_calls.load();
        go.store(true, std::memory_order_release);
        HandlerAllocator<std::uint64_t> a(pool);
        int misaligned = 0;
        for (std::uint64_t i = 0; i < n; ++i) {
            while (ring->tail.load(std::memory_order_relaxed) -
                       ring->head.load(std::memory_order_acquire) ==
                   depth) {
            }
            std::uint64_t* p = a.allocate(16); // 128 bytes: a whole block
            misaligned += reinterpret_cast<std::uintptr_t>(p) % HandlerPool::block_align != 0;
            p[0] = i;
            p[15] = ~i;
            const std::uint64_t t = ring->tail.load(std::memory_order_relaxed);
            ring->slot[t % depth] = p;
            ring->tail.store(t + 1, std::memory_order_release);
        }
        consumer.join();
        const std::uint64_t heap = heap_at_end - heap0;
        MESSAGE("heap calls for " << n << " cross-thread handler blocks: " << heap);
        CHECK(bad.load() == 0);
        CHECK(misaligned == 0);
        CHECK(heap == 0);
        CHECK(pool.blocks() == carved); // never grew: depth blocks were enough

        // A request larger than a block goes to the heap and back (one call each way), and an
        // empty pool grows by one chunk (one call) instead of failing.
        const std::uint64_t heap1 = g_heap_calls.load();
        void* big = pool.allocate(HandlerPool::block_size + 1, 16);
        pool.deallocate(big, HandlerPool::block_size + 1, 16);
        CHECK(g_heap_calls.load() - heap1 == 2);
        std::vector<void*> held;
        held.reserve(carved + 1);
        const std::uint64_t heap2 = g_heap_calls.load();
        for (std::size_t i = 0; i <= carved; ++i) {
            held.push_back(pool.allocate(HandlerPool::block_size, 16));
        }
        CHECK(g_heap_calls.load() - heap2 == 1);
        CHECK(pool.blocks() == carved + HandlerPool::chunk_blocks);
        for (void* b : held) {
            pool.deallocate(b, HandlerPool::block_size, 16);
        }
    }

    TEST_CASE("the Asio backend's in-flight table agrees with a reference set and allocates only "
              "to grow") {
        using bioring::detail::OpSet;
        constexpr std::size_t n_ops = 4096;
        std::vector<Operation> ops(n_ops); // real, densely packed addresses
        std::vector<char> in(n_ops, 0);    // the reference
        std::size_t size = 0;
        OpSet set(256);
        const std::size_t cap0 = set.capacity();
        REQUIRE(cap0 >= 512);
        std::mt19937_64 rng(42);
        auto check_all = [&] {
            int wrong = 0;
            for (std::size_t k = 0; k < n_ops; ++k) {
                wrong += set.contains(&ops[k]) != (in[k] != 0);
            }
            return wrong;
        };

        // Steady state: at most 256 in flight, random insert/erase churn (erase of an absent
        // entry included, as cancel() may name a completed operation): no heap call.
        const std::uint64_t heap0 = g_heap_calls.load();
        int wrong = 0;
        for (int step = 0; step < 200'000; ++step) {
            const std::size_t k = rng() % n_ops;
            if (in[k] == 0 && size < 256) {
                set.insert(&ops[k]);
                in[k] = 1;
                ++size;
            } else {
                set.erase(&ops[k]);
                size -= in[k] != 0;
                in[k] = 0;
            }
            if (step % 10'000 == 0) {
                wrong += check_all();
            }
        }
        CHECK(g_heap_calls.load() - heap0 == 0);
        CHECK(set.size() == size);
        CHECK(set.capacity() == cap0);
        CHECK(wrong == 0);
        CHECK(check_all() == 0);

        // Past the expected depth it grows (allocating) and keeps every entry.
        for (std::size_t k = 0; k < n_ops; ++k) {
            set.insert(&ops[k]);
            in[k] = 1;
        }
        CHECK(set.size() == n_ops);
        CHECK(set.capacity() >= 2 * n_ops);
        CHECK(check_all() == 0);
        for (std::size_t k = 0; k < n_ops; k += 2) {
            set.erase(&ops[k]);
            in[k] = 0;
        }
        CHECK(set.size() == n_ops / 2);
        CHECK(check_all() == 0);
    }

} // TEST_SUITE
