// SPDX-License-Identifier: MIT
// SlabCache: object alignment and geometry, the depot's partial/empty lists and the release
// of empty slabs beyond the slack, very large objects, and the backing allocator in use.
#include <bioring/alloc/detail/slab_cache.hpp>

#include <bioring/alloc/detail/backing.hpp>
#include <bioring/alloc/slab_registry.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <set>
#include <vector>

using namespace bioring;

TEST_SUITE("alloc") {

    TEST_CASE("from 512 bytes up a slab stride is an odd number of cache lines") {
        // Frames at a 1 KiB stride would put the same line of every frame into 4 of the L1's
        // 64 sets; at an odd stride the objects of a slab start in as many sets as there are
        // objects (up to 64).
        SlabRegistry& reg = SlabRegistry::global();
        for (std::size_t size : {1017u, 2041u, 4097u}) { // sizes no other test uses
            CAPTURE(size);
            SlabCache* c = reg.find_or_create(size);
            CHECK((c->stride() / 64) % 2 == 1);
            CHECK(c->stride() - size < 128);
            const std::size_t n = std::min<std::size_t>(64, c->objects_per_slab());
            std::vector<void*> objs;
            std::set<std::uintptr_t> sets;
            for (std::size_t i = 0; i < n; ++i) {
                void* p = c->alloc();
                REQUIRE(p != nullptr);
                objs.push_back(p);
                sets.insert((reinterpret_cast<std::uintptr_t>(p) / 64) % 64);
            }
            CHECK(sets.size() == n);
            for (void* p : objs) {
                c->free(p);
            }
            reg.put(c);
        }
        SlabCache* small = reg.find_or_create(249); // 4 lines: padding would cost 25 %
        CHECK(small->stride() == 256);
        reg.put(small);
    }

    TEST_CASE("slab objects are 64-byte aligned distinct and carved from power-of-two slabs") {
        SlabRegistry& reg = SlabRegistry::global();
        for (std::size_t size : {1u, 63u, 65u, 200u, 1000u, 4096u, 65600u, 300000u}) {
            CAPTURE(size);
            SlabCache* c = reg.find_or_create(size + 7); // sizes of their own
            CHECK(c->stride() % 64 == 0);
            CHECK(c->stride() >= size + 7);
            CHECK(c->stride() < size + 7 + 128);
            CHECK((c->slab_bytes() & (c->slab_bytes() - 1)) == 0);
            CHECK(c->objects_per_slab() >= 1);
            CHECK(c->objects_per_slab() * c->stride() + SlabCache::header_bytes <= c->slab_bytes());
            std::vector<void*> objs;
            const std::size_t n = 3 * c->objects_per_slab() + 1;
            for (std::size_t i = 0; i < n; ++i) {
                void* p = i % 2 == 0 ? c->alloc() : nullptr;
                if (p == nullptr) {
                    REQUIRE(c->alloc_batch(&p, 1) == 1);
                }
                CHECK(reinterpret_cast<std::uintptr_t>(p) % 64 == 0);
                std::memset(p, static_cast<int>(i & 0xff), size + 7);
                objs.push_back(p);
            }
            std::vector<void*> sorted = objs;
            std::sort(sorted.begin(), sorted.end());
            for (std::size_t i = 1; i < sorted.size(); ++i) {
                REQUIRE(static_cast<char*>(sorted[i]) - static_cast<char*>(sorted[i - 1]) >=
                        static_cast<std::ptrdiff_t>(c->stride()));
            }
            for (std::size_t i = 0; i < objs.size(); ++i) {
                REQUIRE(static_cast<unsigned char*>(objs[i])[size + 6] == (i & 0xff));
                if (i % 2 == 0) {
                    c->free(objs[i]);
                } else {
                    c->free_batch(&objs[i], 1);
                }
            }
            reg.put(c);
        }
    }

    TEST_CASE("slab depot keeps a small slack of empty slabs and returns the rest to the backing") {
        SlabRegistry& reg = SlabRegistry::global();
        SlabCache* c = reg.find_or_create(5000);
        const std::size_t per = c->objects_per_slab();
        std::vector<void*> objs(10 * per);
        REQUIRE(c->alloc_batch(objs.data(), objs.size()) == objs.size());
        SlabCacheStats s = c->stats();
        CHECK(s.slabs == 10);
        CHECK(s.free_in_depot == 0);
        CHECK(s.in_use == 10 * per);
        // Free one object of every slab: all ten become partial, none is released.
        for (std::size_t i = 0; i < 10; ++i) {
            c->free_batch(&objs[i * per], 1);
            objs[i * per] = nullptr;
        }
        s = c->stats();
        CHECK(s.slabs == 10);
        CHECK(s.free_in_depot == 10);
        // Partial slabs are used before empty ones: a refill takes the holes first.
        std::vector<void*> again(10);
        REQUIRE(c->alloc_batch(again.data(), 10) == 10);
        CHECK(c->stats().slabs == 10);
        c->free_batch(again.data(), 10);
        c->free_batch(objs.data(), objs.size()); // nulls are skipped
        s = c->stats();
        CHECK(s.in_use == 0);
        CHECK(s.slabs == SlabCache::empty_slack);
        CHECK(s.slabs_released == 10 - SlabCache::empty_slack);
        CHECK(s.free_in_depot == SlabCache::empty_slack * per);
        reg.put(c);
    }

    TEST_CASE("slab cache of objects larger than 8 MiB uses one object per slab") {
        SlabRegistry& reg = SlabRegistry::global();
        SlabCache* c = reg.find_or_create(9u << 20);
        CHECK(c->objects_per_slab() == 1);
        CHECK(c->slab_bytes() == (16u << 20));
        void* a = c->alloc();
        void* b = c->alloc();
        REQUIRE(a != nullptr);
        REQUIRE(b != nullptr);
        std::memset(a, 1, 9u << 20);
        std::memset(b, 2, 9u << 20);
        CHECK(static_cast<unsigned char*>(a)[(9u << 20) - 1] == 1);
        c->free(a);
        c->free(b);
        reg.put(c);
    }

    TEST_CASE("slab backing allocator is named and mimalloc unless sanitized") {
        const std::string name = detail::backing_name();
        MESSAGE("backing: " << name);
#ifdef BIORING_SANITIZED
        CHECK(name.find("system") == 0);
#else
        // Debian's libmimalloc2.0 is a dependency of the project; BIORING_BACKING=system opts out.
        CHECK((name.find("mimalloc") == 0 ||
               name.find("BIORING_BACKING=system") != std::string::npos));
#endif
        void* p = detail::backing_alloc(1 << 20, 1 << 20);
        REQUIRE(p != nullptr);
        CHECK(reinterpret_cast<std::uintptr_t>(p) % (1 << 20) == 0);
        detail::backing_free(p, 1 << 20, 1 << 20);
    }

} // TEST_SUITE
