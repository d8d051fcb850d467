// SPDX-License-Identifier: MIT
// Zero-copy sends (Socket::send_all_zc, sendmsg_all_zc): every byte arrives in order; on
// io_uring with IORING_OP_SEND_ZC over TCP the request returns only after the kernel's
// notification that it gave the buffer back (the reactor's zc_notifications counter has
// moved when co_await returns), so the caller may overwrite the buffer at once; a Unix
// socket, which the kernel refuses zero copy on, gets the bytes by a plain send and is
// marked; errors end the request like send_all's, and a deadline too, except that a
// zero-copy request still waits for the kernel to give its pages back. The same tests run on the
// Asio backend (BIORING_BACKEND=asio), where *_zc are plain sends.
#include <bioring/io/listener.hpp>
#include <bioring/io/socket.hpp>

#include <bioring/io/error_message.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sleep.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>
#include <bioring/runtime/when_all.hpp>
#include "tests/io/io_support.hpp"
#include "tests/io/socket_support.hpp"

#include <doctest/doctest.h>

#include <sys/uio.h>

#include <chrono>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

using namespace bioring;
using namespace bioring::test;
using namespace std::chrono_literals;

namespace {

bool message_has(const std::string& what) {
    return std::string(last_error_message()).find(what) != std::string::npos;
}

std::uint64_t notifications() {
    return Reactor::current()->counters().zc_notifications;
}

/// Receive @n bytes from @s and compare them with the pattern of @seed.
Task<void> expect_pattern(Socket& s, std::size_t n, unsigned seed) {
    std::vector<std::byte> in(n), want(n);
    fill_pattern(want.data(), n, 0, seed);
    const IoResult r = co_await s.recv_exact(in.data(), n);
    CHECK(r.res == static_cast<int>(n));
    CHECK(std::memcmp(in.data(), want.data(), n) == 0);
}

/// Send @n bytes of pattern @seed with send_all_zc (or, @vectored, sendmsg_all_zc of a
/// 16-byte header and the rest: an NBD read reply's shape); overwrite the buffer the
/// moment co_await returns. Returns: the notifications counted while it was awaited.
Task<std::uint64_t> send_then_scribble(Socket& s, std::size_t n, unsigned seed, bool vectored) {
    std::vector<std::byte> out(n);
    fill_pattern(out.data(), n, 0, seed);
    const std::uint64_t before = notifications();
    IoResult w{0};
    if (vectored) {
        const iovec v[2] = {{out.data(), 16}, {out.data() + 16, n - 16}};
        w = co_await s.sendmsg_all_zc(v, 2);
    } else {
        w = co_await s.send_all_zc(out.data(), n);
    }
    const std::uint64_t seen = notifications() - before;
    CHECK(w.res == static_cast<int>(n));
    std::memset(out.data(), 0xee, n); // the kernel must be done with these pages
    co_return seen;
}

} // namespace

TEST_SUITE("io") {

    TEST_CASE("send_all_zc and sendmsg_all_zc over TCP: every byte arrives, and co_await "
              "returns only after the kernel's buffer notification") {
        for (Net n : {Net::v4, Net::v6}) {
            auto l = listen_on(n);
            if (!l) {
                continue;
            }
            INFO(net_name(n));
            sync_wait([&]() -> Task<void> {
                auto [server, client] = co_await connected_pair(*l);
                REQUIRE(server.is_open());
                REQUIRE(client.is_open());
                const bool zc = Reactor::current()->has_send_zc();
                unsigned seed = 1;
                // 4 KiB and 256 KiB (the fio sizes the NBD bench uses), 4 MiB (several
                // partial sends: larger than the socket buffer, received concurrently).
                for (std::size_t size : {4096u, 262144u, 4u << 20}) {
                    for (bool vectored : {false, true}) {
                        INFO("size ", size, vectored ? " sendmsg_all_zc" : " send_all_zc");
                        ++seed;
                        std::vector<Task<void>> t;
                        std::uint64_t seen = 0;
                        t.push_back([](Socket& s, std::size_t n, unsigned seed, bool v,
                                       std::uint64_t& seen) -> Task<void> {
                            seen = co_await send_then_scribble(s, n, seed, v);
                        }(server, size, seed, vectored, seen));
                        t.push_back(expect_pattern(client, size, seed));
                        co_await when_all(std::move(t));
                        if (zc) {
                            // At least one notification per zero-copy send was handled
                            // before the request completed: none is left for a finished
                            // request, and the buffer was free when it was overwritten.
                            CHECK(seen >= 1);
                        } else {
                            CHECK(seen == 0); // Asio, or a kernel without SEND_ZC
                        }
                    }
                }
                CHECK_FALSE(server.zero_copy_refused());
                // Send, overwrite, only then let the peer read (32 KiB: within the socket
                // buffers): what it reads is what was sent, never the overwrite.
                constexpr std::size_t size = 32768;
                const std::uint64_t seen = co_await send_then_scribble(server, size, 99, false);
                CHECK(seen >= (zc ? 1u : 0u));
                co_await expect_pattern(client, size, 99);
            }());
        }
    }

    TEST_CASE("send_all_zc on a Unix socket: the kernel refuses zero copy, the bytes go out "
              "by a plain send and the socket remembers") {
        sync_wait([]() -> Task<void> {
            auto p = Socket::pair("zc");
            REQUIRE(p);
            Socket& a = p->first;
            Socket& b = p->second;
            const bool zc = Reactor::current()->has_send_zc();
            for (unsigned round = 0; round < 3; ++round) {
                std::vector<Task<void>> t;
                t.push_back([](Socket& s, unsigned seed) -> Task<void> {
                    co_await send_then_scribble(s, 300000, seed, seed % 2 == 0);
                }(a, 10 + round));
                t.push_back(expect_pattern(b, 300000, 10 + round));
                co_await when_all(std::move(t));
                // io_uring with SEND_ZC: the first request learned EOPNOTSUPP; elsewhere
                // nothing was ever asked of the kernel.
                CHECK(a.zero_copy_refused() == zc);
            }
        }());
    }

    TEST_CASE("send_all_zc errors: a peer reset fails it with EPIPE or ECONNRESET naming the "
              "request; a deadline cancels one the peer never reads; a closed socket is EBADF") {
        auto l = listen_on(Net::v4);
        REQUIRE(l);
        sync_wait([&]() -> Task<void> {
            {
                auto [server, client] = co_await connected_pair(*l);
                REQUIRE(client.is_open());
                server.reset(); // RST
                co_await sleep_for(20ms);
                std::vector<std::byte> big(1 << 20);
                const IoResult w = co_await client.send_all_zc(big.data(), big.size());
                CHECK((w.res == -EPIPE || w.res == -ECONNRESET));
                CHECK(message_has("send_all_zc"));
                CHECK(message_has(client.name()));
            }
            {
                // 64 MiB to a peer that reads nothing: the socket buffers fill and the
                // request waits; its deadline passes at 100 ms, but the kernel still holds
                // the pages of what it queued. With zero copy the request must not return
                // before they are given back, which happens only when the connection is
                // torn down (the peer's reset at 300 ms); a copying send returns at the
                // deadline. The buffer is freed right after co_await returns.
                auto [server, client] = co_await connected_pair(*l);
                REQUIRE(client.is_open());
                const bool zc = Reactor::current()->has_send_zc();
                bool reset_done = false;
                std::vector<Task<void>> t;
                t.push_back([](Socket& c, bool& reset_done, bool zc) -> Task<void> {
                    std::vector<std::byte> big(64u << 20);
                    IoOptions o;
                    o.timeout = 100ms;
                    const IoResult w = co_await c.send_all_zc(big.data(), big.size(), std::move(o));
                    CHECK((w.res == -ECANCELED || w.res == -ECONNRESET || w.res == -EPIPE));
                    CHECK(message_has("send_all_zc"));
                    CHECK(reset_done == zc);
                }(client, reset_done, zc));
                t.push_back([](Socket& s, bool& reset_done) -> Task<void> {
                    co_await sleep_for(300ms);
                    reset_done = true;
                    s.reset();
                }(server, reset_done));
                co_await when_all(std::move(t));
                co_await sleep_for(20ms); // a stray CQE for the finished request: ASan
            }
            Socket closed;
            std::byte b[8] = {};
            CHECK((co_await closed.send_all_zc(b, sizeof b)).res == -EBADF);
            const iovec v[1] = {{b, sizeof b}};
            CHECK((co_await closed.sendmsg_all_zc(v, 1)).res == -EBADF);
        }());
    }
}
