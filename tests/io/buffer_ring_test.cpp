// SPDX-License-Identifier: MIT
// Socket::recv_select through a reactor's BufferRing: the bytes land in one of the ring's
// buffers and the caller gets its id; EOF, errors and cancellation hold no buffer; a ring
// whose buffers are all held fails the next receive with -ENOBUFS and serves again once one
// is given back; on io_uring (the kernel picks when data arrives) receives that wait hold
// no buffer at all. The same tests run on the Asio backend (BIORING_BACKEND=asio), where
// the ring hands a buffer to each receive when it starts.
#include <bioring/io/socket.hpp>

#include <bioring/runtime/buffer_ring.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sleep.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>
#include <bioring/runtime/when_all.hpp>
#include "tests/io/io_support.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

using namespace bioring;
using namespace bioring::test;
using namespace std::chrono_literals;

namespace {

std::pair<Socket, Socket> socket_pair() {
    auto p = Socket::pair();
    REQUIRE(p);
    return std::move(*p);
}

} // namespace

TEST_SUITE("io") {

    TEST_CASE("recv_select: the bytes land in a ring buffer named by its id; EOF holds none") {
        sync_wait([]() -> Task<void> {
            BufferRing& ring = Reactor::current()->buffer_ring(4, 4096);
            CHECK(ring.count() == 4);
            CHECK(ring.buffer_size() == 4096);
            CHECK(&Reactor::current()->buffer_ring(8, 4096) == &ring); // one per size
            auto [a, b] = socket_pair();
            const std::string msg = "hello, provided buffers";
            REQUIRE((co_await a.send_all(msg.data(), msg.size())).res == int(msg.size()));
            SelectedRecv r = co_await b.recv_select(ring);
            REQUIRE(r.result.res == int(msg.size()));
            REQUIRE(r.id >= 0);
            CHECK(r.id < 4);
            CHECK(r.data == ring.data(unsigned(r.id)));
            CHECK(std::memcmp(r.data, msg.data(), msg.size()) == 0);
            CHECK(ring.held() == 1);
            ring.give_back(unsigned(r.id));
            CHECK(ring.held() == 0);
            co_await a.close();
            SelectedRecv eof = co_await b.recv_select(ring);
            CHECK(eof.result.res == 0);
            CHECK(eof.id == -1);
            CHECK(eof.data == nullptr);
            CHECK(ring.held() == 0);
            // A closed socket: -EBADF at once, nothing held.
            co_await b.close();
            SelectedRecv bad = co_await b.recv_select(ring);
            CHECK(bad.result.res == -EBADF);
            CHECK(ring.held() == 0);
        }());
    }

    TEST_CASE("recv_select: with every buffer held the next receive gets ENOBUFS, and a buffer "
              "given back serves the rest of the stream in order") {
        sync_wait([]() -> Task<void> {
            BufferRing& ring = Reactor::current()->buffer_ring(2, 64);
            auto [a, b] = socket_pair();
            std::vector<std::byte> out(200);
            fill_pattern(out.data(), out.size(), 0, 7);
            REQUIRE((co_await a.send_all(out.data(), out.size())).res == 200);
            SelectedRecv r1 = co_await b.recv_select(ring);
            SelectedRecv r2 = co_await b.recv_select(ring);
            REQUIRE(r1.result.res == 64);
            REQUIRE(r2.result.res == 64);
            CHECK(r1.id != r2.id);
            CHECK(std::memcmp(r1.data, out.data(), 64) == 0);
            CHECK(std::memcmp(r2.data, out.data() + 64, 64) == 0);
            CHECK(ring.held() == 2);
            SelectedRecv none = co_await b.recv_select(ring);
            CHECK(none.result.res == -ENOBUFS);
            CHECK(none.id == -1);
            ring.give_back(unsigned(r1.id));
            SelectedRecv r3 = co_await b.recv_select(ring);
            REQUIRE(r3.result.res == 64);
            CHECK(r3.id == r1.id);
            CHECK(std::memcmp(r3.data, out.data() + 128, 64) == 0);
            ring.give_back(unsigned(r2.id));
            ring.give_back(unsigned(r3.id));
            SelectedRecv r4 = co_await b.recv_select(ring);
            REQUIRE(r4.result.res == 8);
            CHECK(std::memcmp(r4.data, out.data() + 192, 8) == 0);
            ring.give_back(unsigned(r4.id));
            CHECK(ring.held() == 0);
        }());
    }

    TEST_CASE("recv_select: a deadline or a stop ends a waiting receive with ECANCELED and "
              "no buffer held") {
        sync_wait([]() -> Task<void> {
            BufferRing& ring = Reactor::current()->buffer_ring(4, 512);
            auto [a, b] = socket_pair();
            IoOptions o;
            o.timeout = 20ms;
            SelectedRecv r = co_await b.recv_select(ring, o);
            CHECK(r.result.res == -ECANCELED);
            CHECK(r.id == -1);
            CHECK(ring.held() == 0);
            std::stop_source stop;
            std::vector<Task<void>> t;
            t.push_back([](Socket& s, BufferRing& ring, std::stop_token st) -> Task<void> {
                IoOptions o;
                o.stop = st;
                SelectedRecv r = co_await s.recv_select(ring, o);
                CHECK(r.result.res == -ECANCELED);
                CHECK(r.id == -1);
            }(b, ring, stop.get_token()));
            t.push_back([](std::stop_source& stop) -> Task<void> {
                co_await sleep_for(10ms);
                stop.request_stop();
            }(stop));
            co_await when_all(std::move(t));
            CHECK(ring.held() == 0);
            // The socket still works afterwards.
            const char x = 'x';
            REQUIRE((co_await a.send_all(&x, 1)).res == 1);
            SelectedRecv ok = co_await b.recv_select(ring);
            REQUIRE(ok.result.res == 1);
            CHECK(char(*ok.data) == 'x');
            ring.give_back(unsigned(ok.id));
        }());
    }

    TEST_CASE("recv_select: on io_uring 16 waiting receives share a ring of 2 buffers, which "
              "the kernel picks only when data arrives") {
        sync_wait([]() -> Task<void> {
            BufferRing& ring = Reactor::current()->buffer_ring(2, 256);
            if (!ring.kernel_picks()) {
                skip("the ring hands buffers out itself here (Asio backend, or the kernel "
                     "refused the registration): a waiting receive holds one");
                co_return;
            }
            constexpr int n = 16;
            std::vector<std::pair<Socket, Socket>> pairs;
            for (int i = 0; i < n; ++i) {
                pairs.push_back(socket_pair());
            }
            std::vector<SelectedRecv> got(n);
            std::vector<Task<void>> t;
            for (int i = 0; i < n; ++i) {
                t.push_back([](Socket& s, BufferRing& ring, SelectedRecv& out) -> Task<void> {
                    out = co_await s.recv_select(ring);
                }(pairs[i].second, ring, got[i]));
            }
            t.push_back([](std::vector<std::pair<Socket, Socket>>& pairs, BufferRing& ring,
                           std::vector<SelectedRecv>& got) -> Task<void> {
                co_await sleep_for(20ms);
                CHECK(ring.held() == 0); // 16 receives in flight, no buffer taken
                // Data for two of them: each gets a buffer.
                for (int i : {3, 11}) {
                    const char c = char('a' + i);
                    co_await pairs[i].first.send_all(&c, 1);
                }
                while (got[3].result.res == 0 || got[11].result.res == 0) {
                    co_await sleep_for(1ms);
                }
                CHECK(ring.held() == 2);
                for (int i : {3, 11}) {
                    CHECK(got[i].result.res == 1);
                    CHECK(char(*got[i].data) == char('a' + i));
                    ring.give_back(unsigned(got[i].id));
                }
                // The rest end at EOF, holding nothing.
                for (auto& p : pairs) {
                    co_await p.first.close();
                }
            }(pairs, ring, got));
            co_await when_all(std::move(t));
            for (int i = 0; i < n; ++i) {
                if (i != 3 && i != 11) {
                    CHECK(got[i].result.res == 0);
                    CHECK(got[i].id == -1);
                }
            }
            CHECK(ring.held() == 0);
        }());
    }

    TEST_CASE("buffer_ring: a count that is not a power of two or a size of 0 is refused") {
        sync_wait([]() -> Task<void> {
            CHECK_THROWS_AS(Reactor::current()->buffer_ring(3, 4096), std::invalid_argument);
            CHECK_THROWS_AS(Reactor::current()->buffer_ring(4, 0), std::invalid_argument);
            CHECK_THROWS_AS(Reactor::current()->buffer_ring(4, BufferRing::max_size + 1),
                            std::invalid_argument);
            co_return;
        }());
    }

} // TEST_SUITE
