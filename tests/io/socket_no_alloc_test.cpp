// SPDX-License-Identifier: MIT
// Socket requests allocate nothing: after warm-up, a ping-pong of 4 KiB messages between
// two coroutines over a TCP connection (send_all, recv_exact, sendmsg_all and recv, with a
// deadline and a stop token on every request, the receiver usually waiting before the data
// arrives) makes zero calls into the C heap — on io_uring and on the Asio backend.
#include <bioring/io/listener.hpp>
#include <bioring/io/socket.hpp>

#include <bioring/io/error_message.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>
#include <bioring/runtime/when_all.hpp>
#include "tests/io/heap_hooks.hpp"
#include "tests/io/io_support.hpp"
#include "tests/io/socket_support.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stop_token>
#include <string>
#include <vector>

using namespace bioring;
using namespace bioring::test;
using namespace std::chrono_literals;

namespace {

constexpr int warmup = 1000;
constexpr int measured = 20000;
constexpr std::size_t msg = 4096;

struct Window {
    std::uint64_t heap0 = 0;
    std::uint64_t heap = 0;
    int failures = 0;
};

IoOptions opts(std::stop_token st) {
    IoOptions o;
    o.timeout = 10s;
    o.stop = std::move(st);
    return o;
}

// Receives each message, then echoes it as two segments.
Task<void> pong(Socket& s, std::stop_token st, Window& w) {
    std::vector<std::byte> buf(msg);
    for (int i = 0; i < warmup + measured; ++i) {
        if ((co_await s.recv_exact(buf.data(), msg, opts(st))).res != static_cast<int>(msg)) {
            ++w.failures;
            co_return;
        }
        const iovec v[2] = {{buf.data(), 100}, {buf.data() + 100, msg - 100}};
        if ((co_await s.sendmsg_all(v, 2, opts(st))).res != static_cast<int>(msg)) {
            ++w.failures;
            co_return;
        }
    }
}

// Sends each message and waits for the echo; measures the heap over the last `measured`.
Task<void> ping(Socket& s, std::stop_token st, Window& w) {
    std::vector<std::byte> out(msg), in(msg);
    fill_pattern(out.data(), msg, 0, 9);
    for (int i = 0; i < warmup + measured; ++i) {
        if (i == warmup) {
            w.heap0 = heap_calls.load();
        }
        if ((co_await s.send_all(out.data(), msg, opts(st))).res != static_cast<int>(msg)) {
            ++w.failures;
            co_return;
        }
        std::size_t got = 0;
        while (got < msg) { // one recv at a time: the single-transfer form too
            const IoResult r = co_await s.recv(in.data() + got, msg - got, opts(st));
            if (r.res <= 0) {
                ++w.failures;
                co_return;
            }
            got += r.bytes();
        }
    }
    w.heap = heap_calls.load() - w.heap0;
}

} // namespace

TEST_SUITE("io") {

    TEST_CASE("socket requests make no heap allocation in steady state") {
#if defined(BIORING_SANITIZED)
        skip("sanitizer builds replace malloc; the heap-call count runs in Release only");
        return;
#else
        const std::uint64_t probe0 = heap_calls.load();
        void* volatile probe = std::malloc(16);
        std::free(probe);
        REQUIRE(heap_calls.load() - probe0 >= 1);

        auto l = listen_on(Net::v4);
        REQUIRE(l);
        std::stop_source src;
        Window w;
        Backend backend = Backend::uring;
        sync_wait([&]() -> Task<void> {
            backend = Reactor::current()->backend();
            Result<Socket> c = co_await Socket::connect(l->address());
            Result<Socket> a = co_await l->accept();
            REQUIRE(c.has_value());
            REQUIRE(a.has_value());
            std::vector<Task<void>> t;
            t.push_back(pong(*a, src.get_token(), w));
            t.push_back(ping(*c, src.get_token(), w));
            co_await when_all(std::move(t));
        }());
        CHECK(w.failures == 0);
        MESSAGE("backend: ", std::string(backend_name(backend)), "; heap calls over ", measured,
                " round trips: ", w.heap);
        CHECK(w.heap == 0);
#endif
    }

} // TEST_SUITE
