// SPDX-License-Identifier: MIT
// spawn: detached tasks free themselves and report escaping exceptions; the bounded form
// never has more than pool_size requests in flight when the backing allocator fails, and
// every request still completes.
#include <bioring/runtime/spawn.hpp>

#include <bioring/alloc/failure_injector.hpp>
#include <bioring/runtime/sleep.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/this_bio.hpp>
#include "support.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <stdexcept>

using namespace bioring;
using namespace std::chrono_literals;
using bioring::test::Counted;

namespace {

struct Flight {
    int now = 0;
    int peak = 0;
    int done = 0;
    int from_reserve = 0;
};

Task<void> request(BioSet& bs, Flight* f, int i) {
    Bio* bio = co_await this_bio;
    if (bio != nullptr && bio->set == &bs && (bio->alloc_flags & BioSet::flag_reserve)) {
        ++f->from_reserve;
    }
    ++f->now;
    f->peak = std::max(f->peak, f->now);
    co_await sleep_for(std::chrono::microseconds(50 + i % 100));
    --f->now;
    ++f->done;
}

Task<void> counted_sleep(Counted c, int* done) {
    co_await sleep_for(1ms);
    (void)c;
    ++*done;
}

Task<void> thrower() {
    co_await sleep_for(1ms);
    throw std::runtime_error("spawned and failed");
}

} // namespace

TEST_SUITE("runtime") {

    TEST_CASE("spawned tasks run detached and free their frames") {
        Counted::reset();
        int done = 0;
        {
            Reactor r;
            auto t = [&]() -> Task<void> {
                for (int i = 0; i < 100; ++i) {
                    spawn(counted_sleep(Counted{i}, &done));
                }
                co_return;
            };
            sync_wait(t());
            r.drain(); // waits for their timers
        }
        CHECK(done == 100);
        CHECK(Counted::alive() == 0);
    }

    TEST_CASE("an exception escaping a spawned task is reported and counted") {
        Reactor r;
        const auto before = detached_exceptions();
        auto t = []() -> Task<void> {
            spawn(thrower());
            co_return;
        };
        sync_wait(t());
        r.drain();
        CHECK(detached_exceptions() == before + 1);
    }

    TEST_CASE("spawning an empty task throws bad_alloc") {
        CHECK_THROWS_AS(spawn(Task<void>{}), std::bad_alloc);
    }

    TEST_CASE("bounded spawn waits for the pool when allocation fails and never exceeds it") {
        Reactor r;
        constexpr std::size_t pool = 4;
        BioSet bs(pool, 2048);
        Flight f;
        // Take every object the slab cache and the reserve can give without the backing
        // allocator, then give back exactly `pool`: they refill the reserve first, so from now
        // on the reserve is all there is.
        FailureInjector::fail_always();
        std::vector<Bio*> hoard;
        hoard.reserve(4096);
        while (Bio* b = bs.alloc()) {
            hoard.push_back(b);
        }
        REQUIRE(hoard.size() >= pool);
        for (std::size_t i = 0; i < pool; ++i) {
            bs.free(hoard.back());
            hoard.pop_back();
        }
        auto producer = [&]() -> Task<void> {
            for (int i = 0; i < 300; ++i) {
                co_await spawn(bs, request, &f, i);
            }
        };
        sync_wait(producer());
        r.drain();
        FailureInjector::off();
        for (Bio* b : hoard) {
            bs.free(b);
        }
        CHECK(f.done == 300);
        CHECK(f.peak <= static_cast<int>(pool));
        CHECK(f.peak == static_cast<int>(pool)); // the pool was the limit, and it was reached
        CHECK(f.now == 0);
        CHECK(f.from_reserve == 300);
        CHECK(r.counters().reserve_hits >= 300);
    }

} // TEST_SUITE
