// SPDX-License-Identifier: MIT
// BioSet rules that a one-line slip would break without any other test noticing: an
// ordinary object (not a reserve one) refills a short reserve when freed, an oversized
// object never lands in the regular cache, and a cancelled waiter at the tail of the wait
// list leaves the list whole for the next waiter. Each case uses a front_pad no other test
// uses, so its slab cache is its own.
#include <bioring/alloc/bioset.hpp>

#include <bioring/alloc/failure_injector.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <vector>

using namespace bioring;

namespace {

struct InjectorGuard {
    ~InjectorGuard() { FailureInjector::off(); }
};

struct CountingWaiter : BioSet::Waiter {
    std::atomic<int> woken{0};
    static void on_wake(BioSet::Waiter* w) noexcept {
        static_cast<CountingWaiter*>(w)->woken.fetch_add(1, std::memory_order_relaxed);
    }
    CountingWaiter() { wake = &on_wake; }
};

// With the backing failing, take everything the set can give (depot leftovers, then the
// reserve) until alloc() returns null.
std::vector<Bio*> exhaust(BioSet& bs) {
    std::vector<Bio*> held;
    for (Bio* b; (b = bs.alloc()) != nullptr;) {
        held.push_back(b);
        REQUIRE(held.size() < 100000);
    }
    return held;
}

bool overlaps(const void* a, std::size_t alen, const void* b, std::size_t blen) {
    const auto x = reinterpret_cast<std::uintptr_t>(a);
    const auto y = reinterpret_cast<std::uintptr_t>(b);
    return x < y + blen && y < x + alen;
}

} // namespace

TEST_SUITE("alloc") {

    TEST_CASE("bioset free of an ordinary object refills a short reserve before anything else") {
        InjectorGuard guard;
        constexpr std::size_t pool = 4;
        BioSet bs(pool, 29 * 64);
        // Ordinary objects, taken while the reserve is full: no flag, they would normally go
        // back to this thread's magazine.
        std::vector<Bio*> ordinary;
        for (int i = 0; i < 3; ++i) {
            Bio* b = bs.alloc();
            REQUIRE(b != nullptr);
            REQUIRE((b->alloc_flags & (BioSet::flag_no_cache | BioSet::flag_reserve)) == 0);
            ordinary.push_back(b);
        }
        FailureInjector::fail_always();
        std::vector<Bio*> held = exhaust(bs); // the reserve is empty now
        REQUIRE(bs.stats().reserve_nr == 0);
        const std::uint64_t refills0 = bs.stats().reserve_refills;

        // Each ordinary free goes to the reserve, not to the magazine.
        for (std::size_t i = 0; i < ordinary.size(); ++i) {
            bs.free(ordinary[i]);
            CHECK(bs.stats().reserve_nr == i + 1);
        }
        CHECK(bs.stats().reserve_refills == refills0 + ordinary.size());
        // The backing still fails: what the reserve got back is what the next allocs return.
        for (std::size_t i = 0; i < ordinary.size(); ++i) {
            Bio* b = bs.alloc();
            REQUIRE(b != nullptr);
            CHECK((b->alloc_flags & BioSet::flag_reserve) != 0);
            held.push_back(b);
        }
        CHECK(bs.alloc() == nullptr);
        FailureInjector::off();
        for (Bio* b : held) {
            bs.free(b);
        }
        CHECK(bs.stats().reserve_nr == pool);
    }

    TEST_CASE(
        "bioset free of an oversized object returns it to its own cache, not the regular one") {
        BioSet bs(1, 31 * 64);
        SlabCache* regular = bs.cache();
        const std::size_t regular_in_use = regular->stats().in_use;
        Bio* big = bs.alloc(4 * 1024);
        REQUIRE(big != nullptr);
        REQUIRE(big->cache != regular);
        SlabCache* big_cache = big->cache;
        const std::size_t big_size = big_cache->object_size();
        void* big_obj = big->front();
        CHECK(big_cache->stats().in_use == 1);
        bs.free(big);
        CHECK(big_cache->stats().in_use == 0);
        CHECK(regular->stats().in_use == regular_in_use);
        // Neither the regular magazine nor its depot hands out memory of the oversized object.
        std::vector<Bio*> regulars;
        for (int i = 0; i < 64; ++i) {
            Bio* b = bs.alloc();
            REQUIRE(b != nullptr);
            CHECK_FALSE(overlaps(b->front(), bs.object_size(), big_obj, big_size));
            regulars.push_back(b);
        }
        for (Bio* b : regulars) {
            bs.free(b);
        }
        // And the oversized cache gives the object back to the next oversized alloc.
        Bio* again = bs.alloc(4 * 1024);
        REQUIRE(again != nullptr);
        CHECK(again->cache == big_cache);
        bs.free(again);
    }

    TEST_CASE("bioset waiter queued after a cancelled tail waiter is still woken") {
        InjectorGuard guard;
        BioSet bs(2, 33 * 64);
        FailureInjector::fail_always();
        std::vector<Bio*> held = exhaust(bs);
        REQUIRE(held.size() >= 3);

        // The only waiter (head and tail) is cancelled; the next one must still be found.
        CountingWaiter a;
        REQUIRE(bs.wait(a));
        REQUIRE(bs.cancel_wait(a));
        CountingWaiter b;
        REQUIRE(bs.wait(b));
        bs.free(held.back()); // goes to the reserve and wakes one waiter
        held.pop_back();
        CHECK(a.woken.load() == 0);
        CHECK(b.woken.load() == 1);
        held.push_back(bs.alloc()); // b retries: the reserve object
        REQUIRE(held.back() != nullptr);

        // Two waiters, the tail one cancelled: a third joins behind the head, in order.
        CountingWaiter c, d, e;
        REQUIRE(bs.wait(c));
        REQUIRE(bs.wait(d));
        REQUIRE(bs.cancel_wait(d));
        REQUIRE(bs.wait(e));
        bs.free(held.back());
        held.pop_back();
        CHECK(c.woken.load() == 1);
        CHECK(e.woken.load() == 0);
        bs.free(held.back());
        held.pop_back();
        CHECK(e.woken.load() == 1);
        CHECK(d.woken.load() == 0);
        CHECK(bs.stats().wakes == 3);
        FailureInjector::off();
        for (Bio* x : held) {
            bs.free(x);
        }
    }

    TEST_CASE("bioset reserve object freed once the reserve is full again skips the thread cache") {
        InjectorGuard guard;
        constexpr std::size_t pool = 2;
        BioSet bs(pool, 35 * 64);
        SlabCache* cache = bs.cache();
        std::vector<Bio*> ordinary;
        for (std::size_t i = 0; i < pool; ++i) {
            ordinary.push_back(bs.alloc());
            REQUIRE(ordinary.back() != nullptr);
        }
        FailureInjector::fail_always();
        std::vector<Bio*> held = exhaust(bs);
        FailureInjector::off();
        std::vector<Bio*> reserve;
        for (Bio* b : held) {
            if ((b->alloc_flags & BioSet::flag_reserve) != 0) {
                reserve.push_back(b);
            }
        }
        REQUIRE(reserve.size() == pool);
        for (Bio* b : ordinary) {
            bs.free(b); // refills the reserve
        }
        REQUIRE(bs.stats().reserve_nr == pool);

        // Reserve full, no waiter: a reserve object still frees to the depot, where a starving
        // set finds it, never into this thread's magazine.
        const std::uint32_t cached0 = cache->this_thread_stats().cached;
        const std::uint64_t uncached0 = bs.stats().uncached_frees;
        bs.free(reserve[0]);
        CHECK(cache->this_thread_stats().cached == cached0);
        CHECK(bs.stats().uncached_frees == uncached0 + 1);
        for (Bio* b : held) {
            if (b != reserve[0]) {
                bs.free(b);
            }
        }
    }

} // TEST_SUITE
