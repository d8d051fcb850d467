// SPDX-License-Identifier: MIT
// SlabRegistry: one cache per size, reference counts, destruction with the last user,
// entry reuse, growth across many sizes, the slabinfo report, bad input.
#include <bioring/alloc/slab_registry.hpp>

#include <bioring/alloc/detail/backing.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

using namespace bioring;

TEST_SUITE("alloc") {

    TEST_CASE("slab registry shares one cache per size and refcounts it") {
        SlabRegistry& reg = SlabRegistry::global();
        const std::size_t before = reg.cache_count();
        SlabCache* a = reg.find_or_create(777);
        SlabCache* b = reg.find_or_create(777);
        SlabCache* c = reg.find_or_create(778);
        CHECK(a == b);
        CHECK(a != c);
        CHECK(a->object_size() == 777);
        CHECK(a->stride() == 832);
        CHECK(reg.refs(a) == 2);
        CHECK(reg.refs(c) == 1);
        CHECK(reg.cache_count() == before + 2);
        reg.put(b);
        CHECK(reg.refs(a) == 1);
        CHECK(reg.cache_count() == before + 2);
        reg.put(a); // last reference: destroyed
        CHECK(reg.cache_count() == before + 1);
        CHECK(reg.refs(a) == 0);
        reg.put(c);
        CHECK(reg.cache_count() == before);
        reg.put(nullptr); // a no-op
    }

    TEST_CASE("slab registry destroys a cache with its last user and returns its slabs") {
        SlabRegistry& reg = SlabRegistry::global();
        const std::uint64_t bytes0 = detail::backing_bytes();
        SlabCache* c = reg.find_or_create(4000);
        std::vector<void*> objs(100);
        REQUIRE(c->alloc_batch(objs.data(), objs.size()) == objs.size());
        for (int i = 0; i < 50; ++i) {
            void* p = c->alloc(); // through this thread's magazine
            REQUIRE(p != nullptr);
            c->free(p);
        }
        CHECK(detail::backing_bytes() > bytes0);
        c->free_batch(objs.data(), objs.size());
        reg.put(c); // drains this thread's magazine and frees every slab
        CHECK(detail::backing_bytes() == bytes0);
        // A new cache of the same size starts from nothing.
        SlabCache* d = reg.find_or_create(4000);
        CHECK(d->stats().slabs == 0);
        void* p = d->alloc();
        REQUIRE(p != nullptr);
        d->free(p);
        reg.put(d);
    }

    TEST_CASE("slab registry reuses freed entries and grows across 500 sizes without losing any") {
        SlabRegistry& reg = SlabRegistry::global();
        const std::size_t live0 = reg.cache_count();
        SlabCache* first = reg.find_or_create(90001);
        const std::uint32_t id = first->id();
        reg.put(first);
        SlabCache* reused = reg.find_or_create(90002);
        CHECK(reused->id() == id); // the freed entry came back
        reg.put(reused);

        std::vector<SlabCache*> caches;
        for (std::size_t i = 0; i < 500; ++i) {
            caches.push_back(reg.find_or_create(100000 + 8 * i));
        }
        CHECK(reg.cache_count() == live0 + 500);
        CHECK(reg.capacity() >= live0 + 500);
        for (std::size_t i = 0; i < caches.size(); ++i) {
            // Every entry survived the growth: a second lookup finds the same cache.
            SlabCache* again = reg.find_or_create(100000 + 8 * i);
            REQUIRE(again == caches[i]);
            CHECK(reg.refs(again) == 2);
            reg.put(again);
            // Ids past the thread-local fast slots work too (through the slow path).
            void* p = caches[i]->alloc();
            REQUIRE(p != nullptr);
            CHECK(reinterpret_cast<std::uintptr_t>(p) % 64 == 0);
            caches[i]->free(p);
        }
        const std::size_t capacity = reg.capacity();
        for (SlabCache* c : caches) {
            reg.put(c);
        }
        CHECK(reg.cache_count() == live0);
        // Growth never shrinks the table; new caches reuse its entries.
        SlabCache* again = reg.find_or_create(123457);
        CHECK(reg.capacity() == capacity);
        CHECK(again->id() < capacity);
        reg.put(again);
    }

    TEST_CASE(
        "slab registry slabinfo reports name size in use depot thread caches slabs and refs") {
        SlabRegistry& reg = SlabRegistry::global();
        SlabCache* c = reg.find_or_create(1984);
        SlabCache* c2 = reg.find_or_create(1984);
        void* held = c->alloc();
        REQUIRE(held != nullptr);
        void* cached = c->alloc();
        c->free(cached); // stays in this thread's magazine
        const SlabCacheStats s = c->stats();
        CHECK(s.in_use == 1);
        CHECK(s.in_thread_caches == c->refill_batch() - 1);
        CHECK(s.free_in_depot == s.slabs * s.objects_per_slab - s.in_use - s.in_thread_caches);
        CHECK(s.slabs >= 1);
        CHECK(s.allocations == 2);
        CHECK(s.frees == 1);
        CHECK(s.refills == 1);
        const std::string info = reg.slabinfo();
        CHECK(info.find("backing: ") != std::string::npos);
        CHECK(info.find(detail::backing_name()) != std::string::npos);
        const std::size_t at = info.find("bio-1984 ");
        REQUIRE(at != std::string::npos);
        const std::string line = info.substr(at, info.find('\n', at) - at);
        char name[32];
        std::size_t size = 0, in_use = 0, depot = 0, threads = 0, slabs = 0, refs = 0;
        REQUIRE(std::sscanf(line.c_str(), "%31s %zu %zu %zu %zu %zu %zu", name, &size, &in_use,
                            &depot, &threads, &slabs, &refs) == 7);
        CHECK(size == 1984);
        CHECK(in_use == 1);
        CHECK(depot == s.free_in_depot);
        CHECK(threads == s.in_thread_caches);
        CHECK(slabs == s.slabs);
        CHECK(refs == 2);
        c->free(held);
        reg.put(c2);
        reg.put(c);
    }

    TEST_CASE("slab registry refuses a zero-size slab cache with invalid_argument") {
        SlabRegistry& reg = SlabRegistry::global();
        const std::size_t before = reg.cache_count();
        CHECK_THROWS_AS(reg.find_or_create(0), std::invalid_argument);
        try {
            reg.find_or_create(SlabCache::max_object_size + 1);
            FAIL("an object above the limit was accepted");
        } catch (const std::invalid_argument& e) {
            CHECK(std::string(e.what()).find("max_object_size") != std::string::npos);
        }
        CHECK(reg.cache_count() == before);
    }

} // TEST_SUITE
