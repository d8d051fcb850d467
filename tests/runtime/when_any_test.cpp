// SPDX-License-Identifier: MIT
// when_any (first to finish wins, the others are stopped and awaited), the variadic
// when_all over tasks of different types, and with_timeout (deadline first: timed out and
// the task cancelled through its token; task first: its value and the timer cancelled).
#include <bioring/runtime/event.hpp>
#include <bioring/runtime/runtime.hpp>
#include <bioring/runtime/sleep.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/when_all.hpp>
#include <bioring/runtime/when_any.hpp>
#include <bioring/runtime/with_timeout.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <tuple>
#include <variant>

using namespace bioring;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

Task<int> wait_event(Event& e, std::stop_token st, int* res) {
    *res = (co_await e.wait(std::move(st))).res;
    co_return 1;
}
Task<std::string> sleep_then(std::chrono::nanoseconds d, std::string v) {
    co_await sleep_for(d);
    co_return v;
}
Task<void> sleep_void(std::chrono::nanoseconds d, std::stop_token st, int* res) {
    *res = (co_await sleep_for(d, std::move(st))).res;
}
Task<int> throw_after(std::chrono::nanoseconds d) {
    co_await sleep_for(d);
    throw std::runtime_error("boom");
}
Task<int> value_now(int v) {
    co_return v;
}

} // namespace

TEST_SUITE("runtime") {

    TEST_CASE("when_any: the first to finish wins, the others are stopped and awaited") {
        sync_wait([]() -> Task<void> {
            Event never;
            std::stop_source src;
            int ev_res = 1;
            int sl_res = 1;
            const auto t0 = Clock::now();
            auto r = co_await when_any(src, wait_event(never, src.get_token(), &ev_res),
                                       sleep_then(2ms, "timer"),
                                       sleep_void(10s, src.get_token(), &sl_res));
            CHECK(Clock::now() - t0 < 5s);
            CHECK(r.index == 1);
            CHECK(std::get<1>(r.value) == "timer");
            CHECK(ev_res == -ECANCELED); // the losers saw the stop before when_any returned
            CHECK(sl_res == -ECANCELED);
            CHECK(never.waiting() == 0);

            // A synchronous winner stops the others before they even start waiting.
            std::stop_source s2;
            int e2 = 1;
            auto r2 = co_await when_any(s2, value_now(5), wait_event(never, s2.get_token(), &e2));
            CHECK(r2.index == 0);
            CHECK(std::get<0>(r2.value) == 5);
            CHECK(e2 == -ECANCELED);

            // A winner's exception is rethrown; a loser that takes no token is awaited.
            std::stop_source s3;
            bool threw = false;
            try {
                co_await when_any(s3, throw_after(1ms), sleep_then(5ms, "late"));
            } catch (const std::runtime_error& e) {
                threw = std::string(e.what()) == "boom";
            }
            CHECK(threw);
        }());
    }

    TEST_CASE("when_all over tasks of different types returns a tuple; first exception wins") {
        sync_wait([]() -> Task<void> {
            int res = 1;
            auto all =
                co_await when_all(value_now(3), sleep_then(1ms, "x"), sleep_void(1ms, {}, &res));
            CHECK(std::get<0>(all) == 3);
            CHECK(std::get<1>(all) == "x");
            CHECK(std::is_same_v<std::tuple_element_t<2, decltype(all)>, std::monostate>);
            CHECK(res == 0);
            bool threw = false;
            try {
                co_await when_all(sleep_then(1ms, "y"), throw_after(2ms), value_now(1));
            } catch (const std::runtime_error&) {
                threw = true;
            }
            CHECK(threw);
            // The vector form keeps working beside it.
            std::vector<Task<int>> v;
            v.push_back(value_now(1));
            v.push_back(value_now(2));
            std::vector<int> values = co_await when_all(std::move(v));
            CHECK(values == std::vector<int>{1, 2});
        }());
    }

    TEST_CASE("with_timeout: deadline first cancels the task; task first returns its value") {
        sync_wait([]() -> Task<void> {
            std::stop_source src;
            int res = 1;
            auto t0 = Clock::now();
            std::optional<std::monostate> r =
                co_await with_timeout(sleep_void(10s, src.get_token(), &res), 5ms, src);
            CHECK(Clock::now() - t0 < 5s);
            CHECK_FALSE(r.has_value());
            CHECK(res == -ECANCELED);

            t0 = Clock::now();
            std::optional<std::string> v = co_await with_timeout(sleep_then(1ms, "ok"), 10s);
            CHECK(Clock::now() - t0 < 5s); // the 10 s timer was cancelled, not awaited
            REQUIRE(v.has_value());
            CHECK(*v == "ok");

            // A task that takes no token is awaited to its end, and still reported timed out.
            std::optional<std::string> late = co_await with_timeout(sleep_then(20ms, "late"), 1ms);
            CHECK_FALSE(late.has_value());

            bool threw = false;
            try {
                co_await with_timeout(throw_after(1ms), 10s);
            } catch (const std::runtime_error&) {
                threw = true;
            }
            CHECK(threw);
        }());
    }

    TEST_CASE("with_timeout across reactors: the task finishes on another shard") {
        RuntimeOptions o;
        o.threads = 2;
        Runtime rt(o);
        Event ev;
        auto results = rt.run_on_all<int>([&](unsigned shard) -> Task<int> {
            if (shard == 1) {
                co_return 0;
            }
            std::stop_source src;
            auto moved = [&](std::stop_token st) -> Task<int> {
                co_await rt.switch_to(1);
                co_return (co_await ev.wait(std::move(st))).res;
            };
            std::optional<int> r = co_await with_timeout(moved(src.get_token()), 5ms, src);
            co_return r ? 1 : 2;
        });
        CHECK(results[0] == 2);
    }

} // TEST_SUITE
