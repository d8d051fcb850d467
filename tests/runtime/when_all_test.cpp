// SPDX-License-Identifier: MIT
// when_all: fan-out of synchronous and asynchronous tasks, 10,000 of them, values in task
// order, the first exception, and every frame freed.
#include <bioring/runtime/when_all.hpp>

#include <bioring/runtime/sleep.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include "support.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <stdexcept>

using namespace bioring;
using namespace std::chrono_literals;
using bioring::test::Counted;

namespace {

Task<int> value(int i) {
    co_return i;
}
Task<int> slow_value(int i) {
    co_await sleep_for(std::chrono::microseconds(i % 7));
    co_return i;
}
Task<void> bump(int* n) {
    ++*n;
    co_return;
}
Task<void> slow_bump(int* n) {
    co_await sleep_for(1ms);
    ++*n;
}

} // namespace

TEST_SUITE("runtime") {

    TEST_CASE("when_all of ten thousand synchronous void tasks runs each once") {
        int n = 0;
        auto t = [&]() -> Task<void> {
            std::vector<Task<void>> v;
            for (int i = 0; i < 10'000; ++i) {
                v.push_back(bump(&n));
            }
            co_await when_all(std::move(v));
        };
        sync_wait(t());
        CHECK(n == 10'000);
    }

    TEST_CASE("when_all of ten thousand value tasks keeps task order") {
        auto t = []() -> Task<std::vector<int>> {
            std::vector<Task<int>> v;
            for (int i = 0; i < 10'000; ++i) {
                v.push_back(i % 2 ? value(i) : slow_value(i));
            }
            co_return co_await when_all(std::move(v));
        };
        auto out = sync_wait(t());
        REQUIRE(out.size() == 10'000);
        bool ordered = true;
        for (int i = 0; i < 10'000; ++i) {
            ordered = ordered && out[static_cast<std::size_t>(i)] == i;
        }
        CHECK(ordered);
    }

    TEST_CASE("when_all waits for asynchronous tasks") {
        int n = 0;
        auto t = [&]() -> Task<void> {
            std::vector<Task<void>> v;
            for (int i = 0; i < 100; ++i) {
                v.push_back(slow_bump(&n));
            }
            co_await when_all(std::move(v));
            CHECK(n == 100);
        };
        sync_wait(t());
        CHECK(n == 100);
    }

    TEST_CASE("when_all of nothing completes at once") {
        CHECK(sync_wait(when_all(std::vector<Task<int>>{})).empty());
        sync_wait(when_all(std::vector<Task<void>>{}));
    }

    TEST_CASE("when_all rethrows the first exception after every task finished") {
        Counted::reset();
        int finished = 0;
        auto fails = [](int i, int* done, Counted c) -> Task<int> {
            co_await sleep_for(std::chrono::milliseconds(i));
            ++*done;
            (void)c;
            if (i % 3 == 1) {
                throw std::runtime_error("task " + std::to_string(i));
            }
            co_return i;
        };
        auto t = [&]() -> Task<std::vector<int>> {
            std::vector<Task<int>> v;
            for (int i = 0; i < 6; ++i) {
                v.push_back(fails(i, &finished, Counted{i}));
            }
            co_return co_await when_all(std::move(v));
        };
        CHECK_THROWS_WITH_AS(sync_wait(t()), "task 1", std::runtime_error);
        CHECK(finished == 6);
        CHECK(Counted::alive() == 0);
    }

} // TEST_SUITE
