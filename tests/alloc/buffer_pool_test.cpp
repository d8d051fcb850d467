// SPDX-License-Identifier: MIT
// BufferPool: size classes, 4 KiB alignment, arena index and containment (what io_uring
// registration relies on), cross-thread frees and thread-exit drain, and the reserve of
// the largest class under injected failure.
#include <bioring/alloc/buffer_pool.hpp>

#include <bioring/alloc/failure_injector.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

using namespace bioring;

namespace {

bool inside_arena(const BufferPool& pool, const Buffer& b) {
    const iovec a = pool.arena(b.arena);
    const auto base = reinterpret_cast<std::uintptr_t>(a.iov_base);
    const auto p = reinterpret_cast<std::uintptr_t>(b.data);
    return a.iov_base != nullptr && p >= base && p + b.capacity <= base + a.iov_len;
}

struct InjectorGuard {
    ~InjectorGuard() { FailureInjector::off(); }
};

} // namespace

TEST_SUITE("alloc") {

    TEST_CASE("buffer classes give the smallest fitting 4096-aligned buffer inside its arena") {
        BufferPool& pool = BufferPool::global();
        struct Case {
            std::size_t bytes;
            std::uint32_t capacity;
            int size_class;
        };
        const Case cases[] = {
            {0, 4096, 0},          {1, 4096, 0},        {4096, 4096, 0},     {4097, 16384, 1},
            {16384, 16384, 1},     {16385, 65536, 2},   {65536, 65536, 2},   {65537, 262144, 3},
            {262144, 262144, 3},   {262145, 524288, 4}, {524288, 524288, 4}, {524289, 1048576, 5},
            {1048576, 1048576, 5},
        };
        std::vector<Buffer> held;
        for (const Case& c : cases) {
            CAPTURE(c.bytes);
            CHECK(BufferPool::size_class(c.bytes) == c.size_class);
            Buffer b = pool.alloc(c.bytes);
            REQUIRE(b);
            CHECK(b.capacity == c.capacity);
            CHECK(b.size_class == c.size_class);
            CHECK(reinterpret_cast<std::uintptr_t>(b.data) % BufferPool::page_size == 0);
            CHECK(b.arena < pool.arena_count());
            CHECK(inside_arena(pool, b));
            std::memset(b.data, 0xab, b.capacity);
            held.push_back(b);
        }
        CHECK(BufferPool::size_class(BufferPool::max_buffer + 1) == -1);
        CHECK_FALSE(pool.alloc(BufferPool::max_buffer + 1));
        CHECK(pool.arena(BufferPool::max_arenas).iov_base == nullptr);
        // No two buffers overlap.
        std::sort(held.begin(), held.end(),
                  [](const Buffer& a, const Buffer& b) { return a.data < b.data; });
        for (std::size_t i = 1; i < held.size(); ++i) {
            CHECK(held[i - 1].data + held[i - 1].capacity <= held[i].data);
        }
        for (const Buffer& b : held) {
            pool.free(b);
        }
        pool.free(Buffer{}); // a no-op
    }

    TEST_CASE("buffer arenas are 32 MiB and every buffer of many knows its arena") {
        BufferPool& pool = BufferPool::global();
        std::vector<Buffer> held;
        for (int i = 0; i < 40; ++i) { // 40 MiB of 1 MiB buffers: more than one arena
            Buffer b = pool.alloc(BufferPool::max_buffer);
            REQUIRE(b);
            held.push_back(b);
        }
        CHECK(pool.arena_count() >= 2);
        for (std::size_t i = 0; i < pool.arena_count(); ++i) {
            const iovec a = pool.arena(i);
            CHECK(a.iov_len == BufferPool::arena_bytes);
            CHECK(reinterpret_cast<std::uintptr_t>(a.iov_base) % BufferPool::page_size == 0);
        }
        for (const Buffer& b : held) {
            CHECK(inside_arena(pool, b));
            b.data[0] = std::byte{1};
            b.data[b.capacity - 1] = std::byte{2};
        }
        for (const Buffer& b : held) {
            pool.free(b);
        }
    }

    TEST_CASE("buffer freed on another thread and a thread's buffer cache drains at exit") {
        BufferPool& pool = BufferPool::global();
        const std::size_t free0 = pool.class_stats(1).free_in_pool;
        const std::uint64_t carved0 = pool.class_stats(1).carved;
        std::vector<Buffer> held;
        std::thread t([&] {
            for (int i = 0; i < 20; ++i) {
                held.push_back(pool.alloc(8192));
            }
        });
        t.join(); // t's cache (refilled in halves) went back to the pool at exit
        for (const Buffer& b : held) {
            CHECK(b);
        }
        std::thread u([&] {
            for (const Buffer& b : held) {
                pool.free(b); // cross-thread: into u's cache, then the pool at u's exit
            }
        });
        u.join();
        const BufferClassStats s = pool.class_stats(1);
        CHECK(s.free_in_pool == free0 + (s.carved - carved0));
    }

    TEST_CASE("buffer 256-page class falls back to its reserve when no arena memory is left") {
        InjectorGuard guard;
        BufferPool& pool = BufferPool::global();
        pool.drain_this_thread();
        REQUIRE(pool.class_stats(5).reserve_nr == BufferPool::reserve_target);
        FailureInjector::fail_always(); // no new arena
        std::vector<Buffer> held;
        for (;;) {
            Buffer b = pool.alloc(BufferPool::max_buffer);
            if (!b) {
                break;
            }
            CHECK(inside_arena(pool, b));
            held.push_back(b);
            REQUIRE(held.size() <= BufferPool::max_arenas * 32);
        }
        BufferClassStats s = pool.class_stats(5);
        CHECK(s.reserve_nr == 0);
        CHECK(s.reserve_hits >= BufferPool::reserve_target);
        CHECK(s.failures >= 1);
        // A free refills the reserve first, and the next allocation takes it from there.
        pool.free(held.back());
        held.pop_back();
        CHECK(pool.class_stats(5).reserve_nr == 1);
        Buffer again = pool.alloc(BufferPool::max_buffer);
        CHECK(again);
        held.push_back(again);
        FailureInjector::off();
        for (const Buffer& b : held) {
            pool.free(b);
        }
        pool.drain_this_thread();
        CHECK(pool.class_stats(5).reserve_nr == BufferPool::reserve_target);
    }

} // TEST_SUITE
