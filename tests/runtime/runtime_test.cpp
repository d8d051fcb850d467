// SPDX-License-Identifier: MIT
// Runtime: reactor threads, run_on_all, cross-thread switch_to (MSG_RING or eventfd),
// cross-thread completion of awaited tasks, shutdown with I/O in flight, counters.
#include <bioring/runtime/runtime.hpp>

#include <bioring/runtime/sleep.hpp>
#include <bioring/runtime/spawn.hpp>
#include <bioring/runtime/when_all.hpp>
#include "support.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <stdexcept>
#include <thread>

using namespace bioring;
using namespace std::chrono_literals;
using bioring::test::Counted;

namespace {

RuntimeOptions threads(unsigned n, bool pin = false) {
    RuntimeOptions o;
    o.threads = n;
    o.pin = pin;
    return o;
}

unsigned shard_of(Runtime& rt) {
    for (unsigned i = 0; i < rt.size(); ++i) {
        if (Reactor::current() == &rt.reactor(i)) {
            return i;
        }
    }
    return ~0u;
}

Task<int> value_of(int v) {
    co_return v;
}

// Hops to the other reactor, then awaits a task that finishes inline there.
Task<int> hop_then_inline(Runtime& rt, int k) {
    co_await rt.switch_to(1 - shard_of(rt));
    co_return co_await value_of(k) + 1;
}

// Awaits a hopping child, hops back or not, then awaits an inline child where it is.
Task<int> hop_middle(Runtime& rt, int k, bool back) {
    const unsigned start = shard_of(rt);
    int v = co_await hop_then_inline(rt, k);
    if (back) {
        co_await rt.switch_to(start);
    }
    co_return v + co_await value_of(k);
}

} // namespace

TEST_SUITE("runtime") {

    TEST_CASE("run_on_all runs one task per reactor thread and returns values in shard order") {
        Runtime rt(threads(3));
        REQUIRE(rt.size() == 3);
        std::mutex mu;
        std::set<std::thread::id> threads;
        auto values = rt.run_on_all<unsigned>([&](unsigned shard) -> Task<unsigned> {
            {
                std::lock_guard lk(mu);
                threads.insert(std::this_thread::get_id());
            }
            co_await sleep_for(1ms);
            co_return shard * 10 + (Reactor::current() == &rt.reactor(shard) ? 1 : 0);
        });
        CHECK(values == std::vector<unsigned>{1, 11, 21});
        CHECK(threads.size() == 3);
        CHECK(threads.count(std::this_thread::get_id()) == 0);
    }

    TEST_CASE("run_on_all rethrows an exception from a shard") {
        Runtime rt(threads(2));
        CHECK_THROWS_WITH_AS(rt.run_on_all([](unsigned shard) -> Task<void> {
            co_await sleep_for(1ms);
            if (shard == 1) {
                throw std::runtime_error("shard 1 failed");
            }
        }),
                             "shard 1 failed", std::runtime_error);
        // The runtime is still usable afterwards.
        CHECK(rt.run_on_all<int>([](unsigned) -> Task<int> { co_return 7; }).size() == 2);
    }

    TEST_CASE("switch_to moves a coroutine between reactor threads and back") {
        Runtime rt(threads(2, true));
        auto hops = rt.run_on_all<int>([&](unsigned shard) -> Task<int> {
            if (shard != 0) {
                co_return 0;
            }
            int ok = 0;
            for (int i = 0; i < 1000; ++i) {
                const unsigned to = static_cast<unsigned>(i + 1) % 2;
                co_await rt.switch_to(to);
                ok += shard_of(rt) == to;
            }
            co_await rt.switch_to(0);
            co_return ok;
        });
        CHECK(hops[0] == 1000);
    }

    TEST_CASE("an awaited task that finishes on another thread resumes its parent exactly once") {
        Runtime rt(threads(2));
        auto res = rt.run_on_all<int>([&](unsigned shard) -> Task<int> {
            int ok = 0;
            for (int i = 0; i < 2000; ++i) {
                // The child hops away: the parent's await_suspend and the child's final
                // awaiter race for the state on two threads.
                auto child = [&](unsigned from) -> Task<unsigned> {
                    co_await rt.switch_to(1 - from);
                    co_return shard_of(rt);
                };
                const unsigned here = shard_of(rt);
                unsigned there = co_await child(here);
                // The parent goes on where the child finished, or on its own thread when the
                // child finished before the parent had suspended: either is a reactor thread.
                const unsigned now = shard_of(rt);
                ok += there == 1 - here && (now == here || now == there);
            }
            co_await rt.switch_to(shard);
            co_return ok;
        });
        CHECK(res[0] == 2000);
        CHECK(res[1] == 2000);
    }

    TEST_CASE("a chain of awaited tasks hopping between reactors resumes every parent once") {
        // Both reactors run the chain at once: a leaf finishes on the other thread while the
        // thread that awaited it may still be inside its await, the middle task's parent is
        // resumed on either thread, and inline awaits run on both threads in between, so
        // each thread's handshake word is set and cleared while the other finishes tasks.
        Runtime rt(threads(2));
        auto res = rt.run_on_all<int>([&](unsigned shard) -> Task<int> {
            int ok = 0;
            for (int i = 0; i < 1000; ++i) {
                const int v = co_await hop_middle(rt, i, i % 2 == 0);
                ok += v == 2 * i + 1;
            }
            co_await rt.switch_to(shard);
            co_return ok;
        });
        CHECK(res[0] == 1000);
        CHECK(res[1] == 1000);
    }

    TEST_CASE("when_all children that finish on other threads are all collected") {
        Runtime rt(threads(2));
        auto res = rt.run_on_all<int>([&](unsigned shard) -> Task<int> {
            if (shard != 0) {
                co_return 0;
            }
            std::vector<Task<int>> v;
            for (int i = 0; i < 500; ++i) {
                v.push_back([](Runtime& r, int k) -> Task<int> {
                    co_await r.switch_to(static_cast<unsigned>(k) % 2);
                    co_await sleep_for(std::chrono::microseconds(k % 5));
                    co_return k;
                }(rt, i));
            }
            auto out = co_await when_all(std::move(v));
            co_await rt.switch_to(0);
            int sum = 0;
            for (int x : out) {
                sum += x;
            }
            co_return sum;
        });
        CHECK(res[0] == 499 * 500 / 2);
    }

    TEST_CASE("shutdown waits for in-flight I/O of detached tasks and frees them") {
        Counted::reset();
        std::atomic<int> done{0};
        {
            Runtime rt(threads(2));
            rt.run_on_all([&](unsigned) -> Task<void> {
                for (int i = 0; i < 50; ++i) {
                    spawn([](std::atomic<int>* d, Counted c, int k) -> Task<void> {
                        co_await sleep_for(std::chrono::milliseconds(20 + k % 30));
                        (void)c;
                        d->fetch_add(1);
                    }(&done, Counted{i}, i));
                }
                co_return; // returns while 50 timers per shard are still in flight
            });
            CHECK(done.load() < 100);
            rt.shutdown();
            CHECK(done.load() == 100);
        }
        CHECK(Counted::alive() == 0);
    }

    TEST_CASE("switch_to wakes sleeping reactors through the eventfd when MSG_RING is off") {
        RuntimeOptions o = threads(2);
        o.reactor.msg_ring = false;
        Runtime rt(o);
        CHECK(rt.reactor(0).report().find("MSG_RING") == std::string::npos);
        auto hops = rt.run_on_all<int>([&](unsigned shard) -> Task<int> {
            if (shard != 0) {
                co_return 0;
            }
            int ok = 0;
            for (int i = 0; i < 300; ++i) {
                const unsigned to = static_cast<unsigned>(i + 1) % 2;
                co_await rt.switch_to(to);
                ok += shard_of(rt) == to;
            }
            co_await rt.switch_to(0);
            co_return ok;
        });
        CHECK(hops[0] == 300);
    }

    TEST_CASE("runtime counters sum the reactors") {
        Runtime rt(threads(2));
        rt.run_on_all([](unsigned) -> Task<void> {
            for (int i = 0; i < 10; ++i) {
                co_await sleep_for(std::chrono::microseconds(10));
            }
        });
        ReactorCounters c = rt.counters();
        CHECK(c.ops_completed >= 20);
        CHECK(c.sqes_submitted >= 20);
        CHECK(c.requests_allocated >= 2);
        rt.shutdown();
        ReactorCounters after = rt.counters(); // the final values survive shutdown
        CHECK(after.ops_completed >= c.ops_completed);
        CHECK(after.requests_allocated >= c.requests_allocated);
    }

    TEST_CASE("a runtime with the default thread count has one reactor per core") {
        Runtime rt;
        unsigned hw = std::thread::hardware_concurrency();
        CHECK(rt.size() == (hw == 0 ? 1 : hw));
    }

} // TEST_SUITE
