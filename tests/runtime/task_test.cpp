// SPDX-License-Identifier: MIT
// Task<T>: values, exceptions, laziness, lifetimes, the 1M-synchronous-await stack guard
// (bool-returning await_suspend), and frame placement in the front pad of a bioset object.
#include <bioring/runtime/task.hpp>

#include <bioring/alloc/failure_injector.hpp>
#include <bioring/alloc/slab_registry.hpp>
#include <bioring/runtime/op_awaiter.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/this_bio.hpp>
#include "support.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstring>
#include <stdexcept>
#include <string>

using namespace bioring;
using bioring::test::Counted;
using bioring::test::HandleAddress;
using bioring::test::slab_allocations;

namespace {

Task<int> forty_two() {
    co_return 42;
}
Task<std::string> text(std::string s) {
    co_return s + "!";
}
Task<int> add(int a) {
    int b = co_await forty_two();
    co_return a + b;
}
Task<void> throws_runtime_error() {
    throw std::runtime_error("boom");
    co_return;
}
Task<int> rethrows() {
    co_await throws_runtime_error();
    co_return 0;
}
Task<int> one() {
    co_return 1;
}
Task<void> nothing() {
    co_return;
}
Task<long> many_sync_awaits(int n) {
    long sum = 0;
    for (int i = 0; i < n; ++i) {
        sum += co_await one();
        co_await nothing();
    }
    co_return sum;
}

} // namespace

TEST_SUITE("runtime") {

    TEST_CASE("a task returns its value and a chain of tasks composes values") {
        CHECK(sync_wait(forty_two()) == 42);
        CHECK(sync_wait(add(8)) == 50);
        CHECK(sync_wait(text("hi")) == "hi!");
    }

    TEST_CASE("an exception thrown in a task reaches the awaiter through a chain") {
        CHECK_THROWS_WITH_AS(sync_wait(throws_runtime_error()), "boom", std::runtime_error);
        CHECK_THROWS_WITH_AS(sync_wait(rethrows()), "boom", std::runtime_error);
    }

    TEST_CASE("a task is lazy and a task that is never awaited frees its frame") {
        Counted::reset();
        bool started = false;
        {
            auto t = [](bool* s, Counted c) -> Task<void> {
                *s = true;
                (void)c;
                co_return;
            }(&started, Counted{1});
            CHECK(static_cast<bool>(t));
            CHECK_FALSE(started);
            CHECK(Counted::alive() == 1); // the parameter copy lives in the frame
        }
        CHECK_FALSE(started);
        CHECK(Counted::alive() == 0);
    }

    TEST_CASE("counted lifetimes leave nothing alive after values and exceptions") {
        Counted::reset();
        {
            Reactor r;
            auto make = [](int i) -> Task<Counted> {
                Counted local(i);
                co_return Counted(i * 2);
            };
            auto outer = [&]() -> Task<int> {
                int s = 0;
                for (int i = 0; i < 100; ++i) {
                    Counted c = co_await make(i);
                    s += c.id;
                }
                co_return s;
            };
            CHECK(sync_wait(outer()) == 9900);
            auto failing = [](Counted c) -> Task<Counted> {
                throw std::logic_error("no");
                co_return c;
            };
            CHECK_THROWS_AS(sync_wait(failing(Counted{3})), std::logic_error);
        }
        CHECK(Counted::alive() == 0);
    }

    TEST_CASE("one million synchronously completing awaits do not overflow the stack") {
        // The guard against stack overflow on synchronous completions: it runs in Release,
        // Debug+ASan and TSan alike.
        CHECK(sync_wait(many_sync_awaits(1'000'000)) == 1'000'000);
    }

    TEST_CASE("nested awaits that finish inline or later on one reactor resume each parent once") {
        // Each level either finishes inside its parent's await (the handshake's thread-local
        // word is cleared) or suspends on a NOP that completes from the reactor loop (the
        // word is left alone and the final awaiter resumes the parent), in every pairing,
        // three levels deep. A parent resumed twice, or never, shows in the counts.
        Reactor r;
        int resumed[3] = {0, 0, 0};
        auto leaf = [&](bool suspend) -> Task<int> {
            if (suspend) {
                const IoResult res = co_await OpAwaiter(Operation{});
                CHECK(res.res == 0);
            }
            ++resumed[2];
            co_return 1;
        };
        auto mid = [&](int i) -> Task<int> {
            int n = co_await leaf(i % 2 == 0);
            ++resumed[1];
            n += co_await leaf(i % 3 == 0);
            ++resumed[1];
            co_return n;
        };
        auto top = [&]() -> Task<int> {
            int n = 0;
            for (int i = 0; i < 600; ++i) {
                n += co_await mid(i);
                ++resumed[0];
            }
            co_return n;
        };
        CHECK(sync_wait(top()) == 1200);
        CHECK(resumed[0] == 600);
        CHECK(resumed[1] == 1200);
        CHECK(resumed[2] == 1200);
        CHECK(r.counters().ops_completed == 600 / 2 + 600 / 3);
        // Every awaiter put back the word it found: none is left naming a finished frame.
        CHECK(detail::tl_context.inline_child == nullptr);
    }

    TEST_CASE("a task created where no reactor runs gets a heap frame and a null this_bio") {
        REQUIRE(Reactor::current() == nullptr);
        REQUIRE(default_bioset() == nullptr);
        auto t = []() -> Task<Bio*> { co_return co_await this_bio; }();
        CHECK(sync_wait(std::move(t)) == nullptr);
    }

    TEST_CASE("a request frame sits in the front pad with its Bio right behind it") {
        Reactor r;
        BioSet bs(4, 1024);
        auto req = [](BioSet& set, int x) -> Task<int> {
            Bio* bio = co_await this_bio;
            void* self = co_await HandleAddress{};
            REQUIRE(bio != nullptr);
            CHECK(bio->set == &set);
            CHECK(bio->frame == self);
            // The frame is inside the object's front region, right-aligned against the Bio.
            auto* frame = static_cast<char*>(self);
            CHECK(frame >= static_cast<char*>(bio->front()));
            CHECK(frame < reinterpret_cast<char*>(bio));
            CHECK(reinterpret_cast<std::uintptr_t>(frame) % 64 == 0);
            co_return x + 1;
        };
        const std::uint64_t before = r.counters().requests_allocated;
        CHECK(sync_wait(req(bs, 1)) == 2);
        CHECK(r.counters().requests_allocated >= before + 1);

        // Without a BioSet& argument, the thread's default bioset (the reactor's) is used.
        auto plain = []() -> Task<bool> {
            Bio* bio = co_await this_bio;
            co_return bio != nullptr && bio->set == default_bioset();
        };
        CHECK(sync_wait(plain()));
    }

    TEST_CASE("a frame bigger than the front pad is still exactly one allocation") {
        Reactor r;
        BioSet bs(2, 64);
        auto big = [](BioSet&) -> Task<std::size_t> {
            std::array<char, 4096> scratch;
            std::memset(scratch.data(), 7, scratch.size());
            Bio* bio = co_await this_bio;
            void* self = co_await HandleAddress{};
            REQUIRE(bio != nullptr);
            CHECK(bio->frame == self);
            CHECK((bio->alloc_flags & BioSet::flag_oversized) != 0);
            CHECK(bio->front_pad > 64);
            co_await HandleAddress{}; // keep scratch alive across a suspension point
            co_return bio->front_pad + static_cast<std::size_t>(scratch[100]);
        };
        auto t = big(bs); // created outside the measurement of sync_wait's own driver
        const std::uint64_t before = slab_allocations();
        auto t2 = big(bs);
        const std::uint64_t after = slab_allocations();
        CHECK(after - before == 1);
        CHECK(sync_wait(std::move(t)) >= 4096);
        CHECK(sync_wait(std::move(t2)) >= 4096);
    }

    TEST_CASE("a frame that cannot be allocated gives an empty task that throws bad_alloc") {
        Reactor r;
        BioSet bs(0, 512);
        FailureInjector::fail_always();
        auto t = [](BioSet&) -> Task<int> { co_return 1; }(bs);
        FailureInjector::off();
        CHECK_FALSE(static_cast<bool>(t));
        auto awaiter = [](Task<int> inner) -> Task<int> { co_return co_await inner; };
        CHECK_THROWS_AS(sync_wait(awaiter(std::move(t))), std::bad_alloc);
        // The throw comes out of the co_await in the awaiting coroutine, which catches it and
        // goes on awaiting other tasks.
        auto recovers = [](Task<int> inner) -> Task<int> {
            int r = 0;
            try {
                r = co_await inner;
            } catch (const std::bad_alloc&) {
                r = -1;
            }
            auto one = []() -> Task<int> { co_return 1; };
            co_return r + co_await one();
        };
        CHECK(sync_wait(recovers(Task<int>())) == 0);
    }

} // TEST_SUITE
