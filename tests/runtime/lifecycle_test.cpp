// SPDX-License-Identifier: MIT
// Runtime and Reactor lifecycle: stop() and the runtime-wide stop token, a bounded
// shutdown that names the tasks it abandons, sync_wait refused inside a running loop, the
// backend chosen through the options, and backend_report() describing running reactors.
#include <bioring/runtime/op_awaiter.hpp>
#include <bioring/runtime/runtime.hpp>
#include <bioring/runtime/sleep.hpp>
#include <bioring/runtime/spawn.hpp>

#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

using namespace bioring;
using namespace std::chrono_literals;

namespace {

std::chrono::milliseconds since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 t0);
}

} // namespace

TEST_CASE("Runtime::stop cancels a pending timer and a task that takes the stop token ends") {
    std::atomic<int> woke_with{1};
    std::atomic<int> finished{0};
    RuntimeOptions o;
    o.threads = 2;
    Runtime rt(o);
    std::stop_token tok = rt.stop_token();
    rt.run_on_all([&](unsigned) -> Task<void> {
        spawn([](std::stop_token st, std::atomic<int>* woke, std::atomic<int>* fin) -> Task<void> {
            while (!st.stop_requested()) {
                IoResult r = co_await sleep_for(1h);
                woke->store(r.res);
            }
            fin->fetch_add(1);
        }(tok, &woke_with, &finished));
        co_return;
    });
    CHECK_FALSE(tok.stop_requested());
    const auto t0 = std::chrono::steady_clock::now();
    rt.stop();
    CHECK(tok.stop_requested());
    CHECK(rt.shutdown() == 0);
    CHECK(since(t0) < 2s);
    CHECK(finished.load() == 2);
    CHECK(woke_with.load() == -ECANCELED); // the hour-long sleep was cancelled, not waited
}

TEST_CASE("stop() cancels in-flight I/O that would never complete (a read of an empty pipe)") {
    int p[2];
    REQUIRE(::pipe(p) == 0);
    std::atomic<int> result{1};
    {
        RuntimeOptions o;
        o.threads = 1;
        Runtime rt(o);
        rt.run_on_all([&](unsigned) -> Task<void> {
            spawn([](int fd, std::atomic<int>* out) -> Task<void> {
                static char buf[16];
                Operation op;
                op.code = OpCode::read;
                op.fd = fd;
                op.addr = buf;
                op.len = sizeof buf;
                IoResult r = co_await OpAwaiter(op);
                out->store(r.res);
            }(p[0], &result));
            co_return;
        });
        std::this_thread::sleep_for(50ms); // the read is in flight
        CHECK(result.load() == 1);
        const auto t0 = std::chrono::steady_clock::now();
        CHECK(rt.shutdown() == 0);
        CHECK(since(t0) < 2s);
    }
    CHECK(result.load() == -ECANCELED);
    ::close(p[0]);
    ::close(p[1]);
}

TEST_CASE("shutdown abandons a task that ignores cancellation after the grace period, by count") {
    RuntimeOptions o;
    o.threads = 2;
    o.stop_grace = 200ms;
    Runtime rt(o);
    std::atomic<long> turns{0};
    rt.run_on_all([&](unsigned shard) -> Task<void> {
        if (shard == 0) {
            spawn([](std::atomic<long>* n) -> Task<void> {
                for (;;) { // ignores every -ECANCELED: the pathological timer loop
                    (void)co_await sleep_for(10ms);
                    n->fetch_add(1);
                }
            }(&turns));
        }
        co_return;
    });
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(rt.shutdown() == 1);
    const auto took = since(t0);
    CHECK(took >= 200ms);
    CHECK(took < 3s);
    CHECK(turns.load() > 0);
    CHECK(rt.shutdown() == 1); // idempotent, same verdict
}

TEST_CASE("sync_wait inside a coroutine on a running reactor throws instead of nesting loops") {
    Reactor r;
    bool threw = false;
    std::string what;
    sync_wait([](bool* t, std::string* w) -> Task<void> {
        try {
            sync_wait([]() -> Task<int> { co_return 1; }());
        } catch (const std::logic_error& e) {
            *t = true;
            *w = e.what();
        }
        co_return;
    }(&threw, &what));
    CHECK(threw);
    CHECK(what.find("co_await the task instead") != std::string::npos);
    // Outside the loop, the same thread may sync_wait again.
    CHECK(sync_wait([]() -> Task<int> { co_return 7; }()) == 7);
}

TEST_CASE("ReactorOptions::backend picks the backend; BIORING_BACKEND overrides it") {
    const char* env = std::getenv("BIORING_BACKEND");
    ReactorOptions o;
    o.backend = BackendChoice::asio;
    std::thread([&] {
        Reactor r(o);
        if (env == nullptr) {
            CHECK(r.backend() == Backend::asio);
            CHECK(r.report().find("chosen by ReactorOptions::backend") != std::string::npos);
        } else {
            CHECK(std::string(backend_name(r.backend())) ==
                  (std::string(env) == "asio" ? "asio" : "io_uring"));
        }
    }).join();
}

TEST_CASE("a bad BIORING_BACKEND is refused with a message naming it") {
    const char* env = std::getenv("BIORING_BACKEND");
    const std::string saved = env != nullptr ? env : "";
    ::setenv("BIORING_BACKEND", "urnig", 1);
    std::string what;
    std::thread([&] {
        try {
            Reactor r;
        } catch (const std::invalid_argument& e) {
            what = e.what();
        }
    }).join();
    if (saved.empty()) {
        ::unsetenv("BIORING_BACKEND");
    } else {
        ::setenv("BIORING_BACKEND", saved.c_str(), 1);
    }
    CHECK(what.find("'urnig'") != std::string::npos);
}

TEST_CASE("backend_report() from main describes the running reactors, not a probe") {
    // No reactor on this thread and none running (each test case builds its own).
    const std::string idle = backend_report();
    CHECK(idle.rfind("no reactor running; a new one would use ", 0) == 0);
    RuntimeOptions o;
    o.threads = 2;
    o.reactor.ring_entries = 64;
    Runtime rt(o);
    const std::string running = backend_report();
    CHECK(running.rfind("2 reactors: ", 0) == 0);
    if (running.find("io_uring") != std::string::npos) {
        CHECK(running.find("64 entries") != std::string::npos); // the runtime's own rings
    }
}
