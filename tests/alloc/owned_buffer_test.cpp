// SPDX-License-Identifier: MIT
// OwnedBuffer: a move-only handle that gives its buffer back to the pool on every path
// (scope exit, move assignment, an exception), exactly once.
#include <bioring/alloc/buffer_pool.hpp>

#include <doctest/doctest.h>

#include <stdexcept>
#include <type_traits>
#include <utility>

using namespace bioring;

namespace {

/// Buffers of the 1-page class currently handed out by the pool, seen through its counters:
/// carved so far minus those free in the pool and in this thread's cache. The thread cache
/// is drained first so the pool's free list is the whole truth.
std::size_t one_page_in_use() {
    BufferPool& pool = BufferPool::global();
    pool.drain_this_thread();
    const BufferClassStats s = pool.class_stats(0);
    return static_cast<std::size_t>(s.carved) - s.free_in_pool;
}

} // namespace

TEST_SUITE("alloc") {

    TEST_CASE("OwnedBuffer is move-only and frees its buffer exactly once") {
        static_assert(!std::is_copy_constructible_v<OwnedBuffer>);
        static_assert(std::is_nothrow_move_constructible_v<OwnedBuffer>);
        const std::size_t before = one_page_in_use();
        {
            OwnedBuffer a = OwnedBuffer::alloc(100);
            REQUIRE(a);
            CHECK(a.capacity() == 4096);
            CHECK(a.span().size() == 4096);
            CHECK(reinterpret_cast<std::uintptr_t>(a.data()) % 4096 == 0);
            CHECK(one_page_in_use() == before + 1);
            OwnedBuffer b = std::move(a);
            CHECK_FALSE(a); // NOLINT(bugprone-use-after-move): moved-from is empty by contract
            CHECK(b);
            OwnedBuffer c = OwnedBuffer::alloc(4096);
            CHECK(one_page_in_use() == before + 2);
            c = std::move(b); // c's own buffer goes back now
            CHECK(one_page_in_use() == before + 1);
        }
        CHECK(one_page_in_use() == before);
    }

    TEST_CASE("OwnedBuffer is freed when an exception unwinds past it; release() hands it over") {
        const std::size_t before = one_page_in_use();
        try {
            OwnedBuffer a = OwnedBuffer::alloc(1);
            REQUIRE(a);
            throw std::runtime_error("unwind");
        } catch (const std::runtime_error&) {
        }
        CHECK(one_page_in_use() == before);

        OwnedBuffer d = OwnedBuffer::alloc(1);
        Buffer raw = d.release();
        CHECK_FALSE(d);
        CHECK(raw);
        CHECK(one_page_in_use() == before + 1); // the caller owns it now
        BufferPool::global().free(raw);
        CHECK(one_page_in_use() == before);
        d.reset(); // empty: a no-op
        CHECK(one_page_in_use() == before);
    }

    TEST_CASE("an OwnedBuffer too large for any class is empty and frees nothing") {
        OwnedBuffer big = OwnedBuffer::alloc(BufferPool::max_buffer + 1);
        CHECK_FALSE(big);
        CHECK(big.data() == nullptr);
        CHECK(big.capacity() == 0);
    }

} // TEST_SUITE
