// SPDX-License-Identifier: MIT
// FailureInjector: always / every N-th / after N bytes, with the failures counted, and
// its effect on a slab cache's trips to the backing allocator.
#include <bioring/alloc/failure_injector.hpp>

#include <bioring/alloc/slab_registry.hpp>

#include <doctest/doctest.h>

#include <vector>

using namespace bioring;

TEST_SUITE("alloc") {

    TEST_CASE("alloc failure injector fails always every nth call or after n bytes and counts") {
        const std::uint64_t f0 = FailureInjector::failures();
        CHECK_FALSE(FailureInjector::should_fail(100));

        FailureInjector::fail_always();
        CHECK(FailureInjector::should_fail(1));
        CHECK(FailureInjector::should_fail(1 << 20));
        CHECK(FailureInjector::failures() == f0 + 2);

        FailureInjector::fail_every(3);
        std::vector<bool> got;
        for (int i = 0; i < 9; ++i) {
            got.push_back(FailureInjector::should_fail(64));
        }
        CHECK(got == std::vector<bool>{false, false, true, false, false, true, false, false, true});
        CHECK(FailureInjector::failures() == f0 + 5);

        FailureInjector::fail_after_bytes(100);
        CHECK_FALSE(FailureInjector::should_fail(60));
        CHECK_FALSE(FailureInjector::should_fail(40));
        CHECK(FailureInjector::should_fail(1));
        CHECK(FailureInjector::should_fail(50));
        CHECK(FailureInjector::failures() == f0 + 7);

        FailureInjector::fail_every(0); // means off
        CHECK_FALSE(FailureInjector::should_fail(1));
        FailureInjector::off();
        CHECK_FALSE(FailureInjector::should_fail(1));
        CHECK(FailureInjector::failures() == f0 + 7);
    }

    TEST_CASE("alloc failure injector makes a slab cache fail only when it needs a new slab") {
        SlabRegistry& reg = SlabRegistry::global();
        SlabCache* c = reg.find_or_create(3000);
        std::vector<void*> objs(c->objects_per_slab());
        REQUIRE(c->alloc_batch(objs.data(), objs.size()) == objs.size()); // exactly one slab
        FailureInjector::fail_always();
        void* extra = nullptr;
        CHECK(c->alloc_batch(&extra, 1) == 0); // a second slab is refused
        CHECK(c->stats().backing_failures == 1);
        c->free_batch(objs.data(), 1);
        CHECK(c->alloc_batch(&extra, 1) == 1); // a freed object needs no backing
        FailureInjector::off();
        objs[0] = extra;
        c->free_batch(objs.data(), objs.size());
        CHECK(c->stats().in_use == 0);
        reg.put(c);
    }

} // TEST_SUITE
