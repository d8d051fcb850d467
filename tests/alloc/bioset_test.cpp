// SPDX-License-Identifier: MIT
// BioSet: front-pad layout, sharing, the reserve (mempool) under injected failures, the
// "don't rob starving biosets" rule, waiters, oversized objects and bad input.
// Each test uses its own front_pad so that its slab cache is its own even when the whole
// file runs in one process.
#include <bioring/alloc/bioset.hpp>

#include <bioring/alloc/failure_injector.hpp>
#include <bioring/alloc/slab_registry.hpp>

#include "tests/support/skip.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

using namespace bioring;

namespace {

// Turns the injector off however a test ends.
struct InjectorGuard {
    ~InjectorGuard() { FailureInjector::off(); }
};

std::uintptr_t addr(const void* p) {
    return reinterpret_cast<std::uintptr_t>(p);
}

// Allocate until the set returns null (with the backing failing): everything it can give.
std::vector<Bio*> exhaust(BioSet& bs) {
    std::vector<Bio*> held;
    for (;;) {
        Bio* b = bs.alloc();
        if (b == nullptr) {
            break;
        }
        held.push_back(b);
        REQUIRE(held.size() < 100000); // the depot must run dry eventually
    }
    return held;
}

struct TestWaiter : BioSet::Waiter {
    std::atomic<int> woken{0};
    std::atomic<bool> on_other_thread{false};
    std::thread::id waiter_thread = std::this_thread::get_id();
    static void on_wake(BioSet::Waiter* w) noexcept {
        auto* t = static_cast<TestWaiter*>(w);
        t->on_other_thread.store(std::this_thread::get_id() != t->waiter_thread);
        t->woken.fetch_add(1, std::memory_order_release);
    }
    TestWaiter() { wake = &on_wake; }
};

} // namespace

TEST_SUITE("alloc") {

    TEST_CASE("bioset front pad arithmetic puts the Bio at object plus a 64-byte aligned pad") {
        for (std::size_t pad : {0u, 1u, 63u, 64u, 100u, 4096u, 4100u, 65536u}) {
            CAPTURE(pad);
            BioSet bs(2, pad);
            const std::size_t want = (pad + 63) / 64 * 64;
            CHECK(bs.front_pad() == want);
            CHECK(bs.object_size() == want + sizeof(Bio));
            CHECK(bs.pool_size() == 2);
            std::vector<Bio*> bios;
            for (int i = 0; i < 40; ++i) {
                Bio* b = bs.alloc();
                REQUIRE(b != nullptr);
                CHECK(addr(b) % 64 == 0);
                CHECK(addr(b->front()) % 64 == 0);
                CHECK(addr(b) - addr(b->front()) == want);
                CHECK(Bio::from_front(b->front(), bs.front_pad()) == b);
                CHECK(b->set == &bs);
                CHECK(b->cache == bs.cache());
                CHECK(b->front_pad == want);
                CHECK(b->frame == nullptr);
                CHECK(b->private_data == nullptr);
                // Fill the whole object; a neighbour overlapping it would be caught below.
                std::memset(b->front(), i + 1, want);
                b->private_data = reinterpret_cast<void*>(static_cast<std::uintptr_t>(i));
                bios.push_back(b);
            }
            for (std::size_t i = 0; i < bios.size(); ++i) {
                Bio* b = bios[i];
                CHECK(b->private_data == reinterpret_cast<void*>(static_cast<std::uintptr_t>(i)));
                const auto* f = static_cast<const unsigned char*>(b->front());
                for (std::size_t k = 0; k < want; k += 61) {
                    REQUIRE(f[k] == static_cast<unsigned char>(i + 1));
                }
            }
            for (Bio* b : bios) {
                bs.free(b);
            }
            bs.free(nullptr); // a no-op
        }
    }

    TEST_CASE("two biosets of one size share a slab cache and its references") {
        SlabRegistry& reg = SlabRegistry::global();
        const std::size_t before = reg.cache_count();
        {
            BioSet a(1, 320);
            BioSet b(3, 300); // rounds to 320 too
            CHECK(a.cache() == b.cache());
            CHECK(reg.refs(a.cache()) == 2);
            CHECK(reg.cache_count() == before + 1);
            Bio* x = a.alloc();
            Bio* y = b.alloc();
            REQUIRE(x != nullptr);
            REQUIRE(y != nullptr);
            CHECK(x->set == &a);
            CHECK(y->set == &b);
            a.free(x);
            b.free(y);
            // Reserve objects count as in use from the slab's point of view.
            CHECK(a.cache()->stats().in_use == 4);
        }
        CHECK(reg.cache_count() == before);
    }

    TEST_CASE("bioset alloc_cached serves only magazine hits and writes every Bio field afresh") {
        BioSet a(0, 7 * 64);
        BioSet b(0, 7 * 64 - 10); // same size: the two share the cache and its magazine
        REQUIRE(a.cache() == b.cache());
        // Above the pad: never the cached path (alloc(size) takes the oversized one).
        CHECK(a.alloc_cached(a.front_pad() + 1) == nullptr);

        // A thread that has not used the cache has an empty (unbound) magazine: no hit, and
        // alloc() binds and refills it.
        std::thread([&] {
            CHECK(a.alloc_cached(64) == nullptr);
            Bio* x = a.alloc();
            REQUIRE(x != nullptr);
            a.free(x);
        }).join();

        Bio* x = a.alloc();
        REQUIRE(x != nullptr);
        const ThreadCacheStats before = a.cache()->this_thread_stats();
        x->private_data = &a;
        x->frame = x->front();
        a.free(x);
        // LIFO magazine: the object just freed comes back, now as b's, with nothing of its
        // last use left in the Bio.
        Bio* y = b.alloc_cached(b.front_pad());
        REQUIRE(y == x);
        CHECK(y->set == &b);
        CHECK(y->cache == b.cache());
        CHECK(y->front_pad == b.front_pad());
        CHECK(y->frame == nullptr);
        CHECK(y->private_data == nullptr);
        CHECK(BioSet::alloc_thread(y) == BioSet::alloc_thread(x));
        b.free(y);
        const ThreadCacheStats after = a.cache()->this_thread_stats();
        CHECK(after.frees - before.frees == 2);
        CHECK(after.allocations - before.allocations == 1);
        CHECK(after.remote_frees == before.remote_frees); // both frees on the allocating thread
    }

    TEST_CASE(
        "a free on another thread is counted as remote, one on the allocating thread is not") {
        BioSet bs(0, 9 * 64);
        Bio* mine = bs.alloc();
        Bio* theirs = nullptr;
        REQUIRE(mine != nullptr);
        std::thread([&] { theirs = bs.alloc(); }).join();
        REQUIRE(theirs != nullptr);
        CHECK(BioSet::alloc_thread(theirs) != BioSet::alloc_thread(mine));
        const ThreadCacheStats before = bs.cache()->this_thread_stats();
        bs.free(mine);
        CHECK(bs.cache()->this_thread_stats().remote_frees == before.remote_frees);
        bs.free(theirs);
        const ThreadCacheStats after = bs.cache()->this_thread_stats();
        CHECK(after.remote_frees - before.remote_frees == 1);
        CHECK(after.frees - before.frees == 2);
        CHECK(after.cached == before.cached + 2); // both into this thread's magazine
    }

    TEST_CASE("bioset oversized alloc uses a registry cache of the larger size held by the set") {
        SlabRegistry& reg = SlabRegistry::global();
        const std::size_t before = reg.cache_count();
        {
            BioSet bs(1, 128);
            Bio* small = bs.alloc(100);
            REQUIRE(small != nullptr);
            CHECK(small->front_pad == 128);
            Bio* big = bs.alloc(1000);
            REQUIRE(big != nullptr);
            CHECK(big->front_pad == 1024);
            CHECK(addr(big) - addr(big->front()) == 1024);
            CHECK((big->alloc_flags & BioSet::flag_oversized) != 0);
            CHECK(big->cache != bs.cache());
            CHECK(big->cache->object_size() == 1024 + sizeof(Bio));
            std::memset(big->front(), 0x5a, 1000);
            // A second oversized alloc of a size rounding the same way reuses the cache.
            Bio* big2 = bs.alloc(1010);
            REQUIRE(big2 != nullptr);
            CHECK(big2->cache == big->cache);
            CHECK(reg.cache_count() == before + 2);
            CHECK(reg.refs(big->cache) == 1);
            bs.free(big);
            bs.free(big2);
            bs.free(small);
            CHECK(bs.stats().oversized == 2);
            // Many distinct oversized sizes (past the lock-free table) stay correct.
            for (std::size_t s = 2048; s < 2048 + 40 * 64; s += 64) {
                Bio* o = bs.alloc(s);
                REQUIRE(o != nullptr);
                CHECK(o->front_pad == s);
                bs.free(o);
            }
            CHECK(reg.cache_count() == before + 2 + 40);
        }
        CHECK(reg.cache_count() == before);
    }

    TEST_CASE("bioset bad input throws invalid_argument naming the limit") {
        try {
            BioSet bs(0, BioSet::max_front_pad + 1);
            FAIL("front_pad above the limit was accepted");
        } catch (const std::invalid_argument& e) {
            CHECK(std::string(e.what()).find("max_front_pad") != std::string::npos);
        }
        try {
            BioSet bs(BioSet::max_pool_size + 1, 64);
            FAIL("pool_size above the limit was accepted");
        } catch (const std::invalid_argument& e) {
            CHECK(std::string(e.what()).find("max_pool_size") != std::string::npos);
        }
        // The limits themselves and a pool of 0 are fine.
        BioSet zero(0, BioSet::max_front_pad);
        Bio* b = zero.alloc();
        REQUIRE(b != nullptr);
        CHECK(b->front_pad == BioSet::max_front_pad);
        zero.free(b);
        CHECK(zero.stats().reserve_nr == 0);
    }

    TEST_CASE(
        "bioset construction fails with bad_alloc when the mempool reserve cannot be filled") {
        InjectorGuard guard;
        SlabRegistry& reg = SlabRegistry::global();
        const std::size_t before = reg.cache_count();
        FailureInjector::fail_always();
        CHECK_THROWS_AS(BioSet(8, 5 * 64), std::bad_alloc);
        FailureInjector::off();
        CHECK(reg.cache_count() == before); // the half-built set dropped its cache
    }

    TEST_CASE("mempool reserve keeps a loop holding pool_size objects going for 1000000 iterations "
              "with allocation failing") {
        InjectorGuard guard;
        constexpr std::size_t pool = 32;
        BioSet bs(pool, 17 * 64);
        FailureInjector::fail_always();
        const std::uint64_t failures_before = FailureInjector::failures();

        // Take everything: the depot's leftovers, then the reserve, then null.
        std::vector<Bio*> held = exhaust(bs);
        CHECK(held.size() >= pool);
        CHECK(bs.stats().reserve_hits == pool);
        CHECK(bs.cache()->this_thread_stats().reserve_hits == pool);
        CHECK(bs.cache()->stats().reserve_hits == pool);
        CHECK(bs.stats().reserve_nr == 0);
        CHECK(FailureInjector::failures() > failures_before);
        for (Bio* b : held) {
            bs.free(b);
        }
        CHECK(bs.stats().reserve_nr == pool); // frees refilled the reserve first

        std::vector<Bio*> ring(pool, nullptr);
        std::size_t nulls = 0;
        for (std::size_t i = 0; i < 1000000; ++i) {
            Bio*& slot = ring[i % pool];
            bs.free(slot);
            slot = bs.alloc();
            nulls += slot == nullptr;
        }
        CHECK(nulls == 0);
        for (Bio*& b : ring) {
            bs.free(b);
        }
        FailureInjector::off();
        CHECK(bs.stats().reserve_nr == pool);
        CHECK(bs.stats().failures == 1); // only the one that ended exhaust()
    }

    TEST_CASE(
        "mempool objects taken while the bioset reserve is short never go to a thread cache") {
        InjectorGuard guard;
        constexpr std::size_t pool = 8;
        BioSet bs(pool, 19 * 64);
        SlabCache* cache = bs.cache();
        FailureInjector::fail_always();
        std::vector<Bio*> held = exhaust(bs); // reserve now empty
        FailureInjector::off();
        REQUIRE(bs.stats().reserve_nr == 0);

        // The backing works again, but the reserve is short: the object is flagged.
        Bio* x = bs.alloc();
        REQUIRE(x != nullptr);
        CHECK((x->alloc_flags & BioSet::flag_no_cache) != 0);
        CHECK((x->alloc_flags & BioSet::flag_reserve) == 0);

        // Every reserve object comes back: the reserve refills and the magazine is untouched.
        std::size_t reserve_objects = 0;
        for (Bio* b : held) {
            reserve_objects += (b->alloc_flags & BioSet::flag_reserve) != 0;
            bs.free(b);
        }
        CHECK(reserve_objects == pool);
        CHECK(bs.stats().reserve_nr == pool);
        const std::uint64_t uncached0 = bs.stats().uncached_frees;

        // x was taken while the reserve was short: with the reserve full it goes to the depot,
        // not to this thread's magazine.
        const std::uint32_t cached1 = cache->this_thread_stats().cached;
        bs.free(x);
        CHECK(cache->this_thread_stats().cached == cached1);
        CHECK(bs.stats().uncached_frees == uncached0 + 1);

        // With the reserve full, an ordinary object is cached per thread again.
        Bio* y = bs.alloc();
        REQUIRE(y != nullptr);
        CHECK((y->alloc_flags & BioSet::flag_no_cache) == 0);
        const std::uint32_t cached2 = cache->this_thread_stats().cached;
        bs.free(y);
        CHECK(cache->this_thread_stats().cached == cached2 + 1);
    }

    TEST_CASE("mempool waiter on an empty bioset is woken by a free on another thread") {
        InjectorGuard guard;
        constexpr std::size_t pool = 4;
        BioSet bs(pool, 21 * 64);
        FailureInjector::fail_always();
        std::vector<Bio*> held = exhaust(bs);
        REQUIRE(bs.alloc() == nullptr);

        TestWaiter w;
        REQUIRE(bs.wait(w));
        CHECK(bs.stats().waits == 1);

        Bio* victim = held.back();
        held.pop_back();
        std::thread freer([&] { bs.free(victim); });
        freer.join();
        CHECK(w.woken.load(std::memory_order_acquire) == 1);
        CHECK(w.on_other_thread.load());
        CHECK(bs.stats().wakes == 1);

        // The woken allocation now succeeds, with the backing still failing.
        Bio* got = bs.alloc();
        REQUIRE(got != nullptr);
        held.push_back(got);

        // A cancelled waiter is not woken; wait() refuses to queue while the reserve has objects.
        TestWaiter c;
        REQUIRE(bs.wait(c));
        CHECK(bs.cancel_wait(c));
        CHECK_FALSE(bs.cancel_wait(c));
        bs.free(held.back());
        held.pop_back();
        CHECK(c.woken.load() == 0);
        TestWaiter n;
        CHECK_FALSE(bs.wait(n)); // that free went to the reserve
        for (Bio* b : held) {
            bs.free(b);
        }
        FailureInjector::off();
    }

    TEST_CASE("bioset with pool 0 wakes a waiter through the depot") {
        InjectorGuard guard;
        BioSet bs(0, 23 * 64);
        bs.free(bs.alloc()); // carve a slab while the backing still works
        FailureInjector::fail_always();
        std::vector<Bio*> held = exhaust(bs);
        REQUIRE(!held.empty());
        TestWaiter w;
        REQUIRE(bs.wait(w)); // pool 0: nothing in reserve, it always queues
        std::thread freer([&] { bs.free(held.back()); });
        freer.join();
        held.pop_back();
        CHECK(w.woken.load(std::memory_order_acquire) == 1);
        // The freed object went to the shared depot, where this thread's refill finds it.
        Bio* got = bs.alloc();
        CHECK(got != nullptr);
        bs.free(got);
        for (Bio* b : held) {
            bs.free(b);
        }
    }

    TEST_CASE("bioset waiter is woken by the free of an oversized object") {
        InjectorGuard guard;
        BioSet bs(0, 27 * 64);
        const std::size_t frame = 40 * 64; // bigger than the pad: every object is oversized
        bs.free(bs.alloc(frame));          // carve a slab while the backing works
        FailureInjector::fail_always();
        std::vector<Bio*> held;
        for (Bio* b; (b = bs.alloc(frame)) != nullptr;) {
            held.push_back(b);
            REQUIRE(held.size() < 100000);
        }
        REQUIRE(!held.empty());
        TestWaiter w;
        REQUIRE(bs.wait(w));
        std::thread freer([&] { bs.free(held.back()); });
        freer.join();
        held.pop_back();
        CHECK(w.woken.load(std::memory_order_acquire) == 1);
        CHECK(w.on_other_thread.load());
        Bio* got = bs.alloc(frame); // the freed object waits in the shared depot
        REQUIRE(got != nullptr);
        CHECK(got->front_pad == frame);
        held.push_back(got);
        for (Bio* b : held) {
            bs.free(b);
        }
    }

    TEST_CASE("bioset free into the wrong set trips an assertion in debug builds") {
#ifdef NDEBUG
        BIORING_SKIP("assertions are compiled out (NDEBUG)");
#else
        BioSet a(0, 25 * 64);
        BioSet b(0, 25 * 64);
        Bio* x = a.alloc();
        REQUIRE(x != nullptr);
        std::fflush(nullptr);
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            // Silence the expected assertion message.
            std::freopen("/dev/null", "w", stderr);
            b.free(x);
            ::_exit(0); // not reached when the assertion fires
        }
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        CHECK(WIFSIGNALED(status));
        CHECK(WTERMSIG(status) == SIGABRT);
        a.free(x);
#endif
    }

} // TEST_SUITE
