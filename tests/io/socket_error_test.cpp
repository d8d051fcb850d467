// SPDX-License-Identifier: MIT
// Sockets when things go wrong: a peer reset, a half-close, cancellation of a pending
// accept and recv (stop_token, from this thread and from another), deadlines on a recv and
// on a connect that the kernel cannot finish (a full backlog), a refused connection, a
// vanished peer (EPIPE, never SIGPIPE), closed sockets, bad addresses, and the Unix
// listener's file (mode 0600, a stale file replaced, a live one or a regular file kept).
// Only loopback and Unix sockets.
#include <bioring/io/listener.hpp>
#include <bioring/io/socket.hpp>

#include <bioring/io/error_message.hpp>
#include <bioring/runtime/sleep.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>
#include <bioring/runtime/when_all.hpp>
#include "tests/io/io_support.hpp"
#include "tests/io/socket_support.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

using namespace bioring;
using namespace bioring::test;
using namespace std::chrono_literals;

namespace {

bool message_has(const std::string& what) {
    return std::string(last_error_message()).find(what) != std::string::npos;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

TEST_SUITE("io") {

    TEST_CASE(
        "a peer reset fails the pending recv with ECONNRESET; sends to it fail without SIGPIPE") {
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
                std::vector<Task<void>> t;
                t.push_back([](Socket& c) -> Task<void> {
                    std::byte buf[64];
                    const IoResult r =
                        co_await c.recv(buf, sizeof buf); // pending when the RST comes
                    CHECK(r.res == -ECONNRESET);
                    CHECK(message_has("recv"));
                    CHECK(message_has(c.name()));
                    // The connection is gone: sending fails (EPIPE or ECONNRESET), the process
                    // gets no SIGPIPE (MSG_NOSIGNAL), and the error names the operation.
                    std::vector<std::byte> big(1 << 20);
                    const IoResult w = co_await c.send_all(big.data(), big.size());
                    CHECK((w.res == -EPIPE || w.res == -ECONNRESET));
                    CHECK(message_has("send_all"));
                }(client));
                t.push_back([](Socket& s) -> Task<void> {
                    co_await sleep_for(20ms);
                    s.reset(); // SO_LINGER {1, 0} + close: an RST
                    CHECK(!s.is_open());
                }(server));
                co_await when_all(std::move(t));
            }());
        }
    }

    TEST_CASE("half-close: after shutdown(SHUT_WR) the peer reads EOF and can still send back") {
        for (Net n : {Net::v4, Net::unix_socket}) {
            auto l = listen_on(n);
            REQUIRE(l);
            INFO(net_name(n));
            sync_wait([&]() -> Task<void> {
                auto [server, client] = co_await connected_pair(*l);
                CHECK((co_await client.send_all("ping", 4)).res == 4);
                CHECK((co_await client.shutdown(SHUT_WR)).res == 0);
                char buf[8] = {};
                CHECK((co_await server.recv_exact(buf, 4)).res == 4);
                CHECK(std::string(buf, 4) == "ping");
                CHECK((co_await server.recv(buf, sizeof buf)).res == 0); // EOF
                CHECK((co_await server.recv_exact(buf, 4)).res == 0);    // still EOF
                CHECK((co_await server.send_all("pong", 4)).res == 4);   // the other way is open
                CHECK((co_await server.close()).res == 0);
                // recv_exact reports the bytes it got before EOF: fewer than asked.
                char in[8] = {};
                CHECK((co_await client.recv_exact(in, sizeof in)).res == 4);
                CHECK(std::string(in, 4) == "pong");
                CHECK((co_await client.recv(in, sizeof in)).res == 0);
            }());
        }
    }

    TEST_CASE(
        "a pending accept is cancelled by its stop_token, from this thread and from another") {
        auto l = listen_on(Net::v4);
        REQUIRE(l);
        sync_wait([&]() -> Task<void> {
            std::stop_source src;
            std::vector<Task<void>> t;
            t.push_back([](Listener& l, std::stop_token st) -> Task<void> {
                IoOptions o;
                o.stop = st;
                const auto t0 = std::chrono::steady_clock::now();
                Result<Socket> s = co_await l.accept(std::move(o));
                CHECK(!s.has_value());
                CHECK(s.error().value() == ECANCELED);
                CHECK(ms_since(t0) >= 15.0);
                CHECK(message_has("accept on 127.0.0.1:"));
                CHECK(message_has("cancelled"));
            }(*l, src.get_token()));
            t.push_back([](std::stop_source& src) -> Task<void> {
                co_await sleep_for(20ms);
                src.request_stop();
            }(src));
            co_await when_all(std::move(t));

            // Stop requested by a thread that is not a reactor.
            std::stop_source remote;
            std::thread stopper([&] {
                std::this_thread::sleep_for(20ms);
                remote.request_stop();
            });
            IoOptions o;
            o.stop = remote.get_token();
            Result<Socket> s = co_await l->accept(std::move(o));
            stopper.join();
            CHECK(!s.has_value());
            CHECK(s.error().value() == ECANCELED);
            // The listener still works after the cancellations.
            auto [a, c] = co_await connected_pair(*l);
            CHECK(a.is_open());
            CHECK(c.is_open());
        }());
    }

    TEST_CASE("a pending recv is cancelled by its stop_token and no byte is lost to it") {
        for (Net n : {Net::v4, Net::unix_socket}) {
            auto l = listen_on(n);
            REQUIRE(l);
            INFO(net_name(n));
            sync_wait([&]() -> Task<void> {
                auto [server, client] = co_await connected_pair(*l);
                std::stop_source src;
                std::vector<Task<void>> t;
                t.push_back([](Socket& s, std::stop_token st) -> Task<void> {
                    char buf[16];
                    IoOptions o;
                    o.stop = st;
                    const IoResult r = co_await s.recv(buf, sizeof buf, std::move(o));
                    CHECK(r.res == -ECANCELED);
                    CHECK(message_has("recv of 16 bytes from"));
                    CHECK(message_has("cancelled"));
                }(server, src.get_token()));
                t.push_back([](std::stop_source& src) -> Task<void> {
                    co_await sleep_for(20ms);
                    src.request_stop();
                }(src));
                co_await when_all(std::move(t));
                // A stop already requested refuses the request without submitting it.
                IoOptions stopped;
                stopped.stop = src.get_token();
                char buf[16] = {};
                CHECK((co_await server.recv(buf, sizeof buf, stopped)).res == -ECANCELED);
                // The connection is intact: the next recv gets the next bytes.
                CHECK((co_await client.send_all("after", 5)).res == 5);
                CHECK((co_await server.recv_exact(buf, 5)).res == 5);
                CHECK(std::string(buf, 5) == "after");
            }());
        }
    }

    TEST_CASE("a recv deadline passes with ECANCELED when no data comes") {
        auto l = listen_on(Net::v4);
        REQUIRE(l);
        sync_wait([&]() -> Task<void> {
            auto [server, client] = co_await connected_pair(*l);
            IoOptions o;
            o.timeout = 50ms;
            char buf[16];
            const auto t0 = std::chrono::steady_clock::now();
            const IoResult r = co_await server.recv_exact(buf, sizeof buf, o);
            const double ms = ms_since(t0);
            CHECK(r.res == -ECANCELED);
            CHECK(ms >= 45.0);
            CHECK(ms < 5000.0);
            // The deadline covers the whole request: a partial arrival does not restart it.
            CHECK((co_await client.send_all("abc", 3)).res == 3);
            o.timeout = 50ms;
            CHECK((co_await server.recv_exact(buf, sizeof buf, o)).res == -ECANCELED);
            CHECK(message_has("after 3 bytes"));
        }());
    }

    TEST_CASE("a connect that cannot finish (full backlog) ends at its deadline") {
        // listen(1) and no accept: the kernel queues a couple of connections, then drops SYNs,
        // so a further connect stays in SYN_SENT until the deadline cancels it. Loopback only.
        ListenOptions lo;
        lo.backlog = 1;
        auto l = listen_on(Net::v4, lo);
        REQUIRE(l);
        sync_wait([&]() -> Task<void> {
            std::vector<Socket> queued;
            bool timed_out = false;
            for (int i = 0; i < 16 && !timed_out; ++i) {
                IoOptions o;
                o.timeout = 200ms;
                const auto t0 = std::chrono::steady_clock::now();
                Result<Socket> s = co_await Socket::connect(l->address(), o);
                if (s) {
                    queued.push_back(std::move(*s));
                    continue;
                }
                CHECK(s.error().value() == ECANCELED);
                CHECK(ms_since(t0) >= 190.0);
                CHECK(message_has("connect to " + l->address().to_string()));
                timed_out = true;
            }
            CHECK(timed_out);
            CHECK(!queued.empty());
        }());
    }

    TEST_CASE("a refused connection, a closed socket and bad addresses are reported by name") {
        auto l = listen_on(Net::v4);
        REQUIRE(l);
        const SocketAddress gone = l->address();
        l->close();
        CHECK(!l->is_open());
        sync_wait([&]() -> Task<void> {
            Result<Socket> s = co_await Socket::connect(gone);
            CHECK(!s.has_value());
            CHECK(s.error().value() == ECONNREFUSED);
            CHECK(message_has("connect to " + gone.to_string()));
            Result<Socket> none = co_await Socket::connect(SocketAddress{});
            CHECK(none.error().value() == EAFNOSUPPORT);
            Result<Socket> a = co_await l->accept();
            CHECK(a.error().value() == EBADF);
            CHECK(message_has("closed listener"));

            Socket closed;
            char buf[4];
            CHECK((co_await closed.recv(buf, 4)).res == -EBADF);
            CHECK(message_has("recv on a closed socket"));
            CHECK((co_await closed.send_all(buf, 4)).res == -EBADF);
            CHECK((co_await closed.shutdown()).res == -EBADF);
            CHECK((co_await closed.close()).res == 0);
            auto p = Socket::pair("pair");
            REQUIRE(p);
            CHECK((co_await p->first.shutdown(42)).res == -EINVAL);
            CHECK((co_await p->first.send(buf, std::size_t{0x80000000})).res == -EINVAL);
            CHECK((co_await p->first.recvmsg(nullptr, -1)).res == -EINVAL);
            CHECK((co_await p->first.recv(buf, 0)).res == 0);
            // A vanished peer: EPIPE, and no SIGPIPE kills the test.
            CHECK((co_await p->second.close()).res == 0);
            CHECK((co_await p->first.send_all("x", 1)).res == -EPIPE);
            CHECK(message_has("send_all of 1 bytes to pair a"));
        }());

        CHECK(SocketAddress::parse("127.0.0.1:10809")->to_string() == "127.0.0.1:10809");
        CHECK(SocketAddress::parse("[::1]:80")->to_string() == "[::1]:80");
        CHECK(SocketAddress::parse("localhost:80")->port() == 80);
        CHECK(SocketAddress::parse("unix:/tmp/x.sock")->path() == "/tmp/x.sock");
        CHECK(SocketAddress::parse("/run/y.sock")->family() == AF_UNIX);
        CHECK(SocketAddress::parse("127.0.0.1:65536").error().value() == EINVAL);
        CHECK(message_has("'127.0.0.1:65536'"));
        CHECK(SocketAddress::parse("127.0.0.1").error().value() == EINVAL);
        CHECK(SocketAddress::parse("::1:80").error().value() == EINVAL);
        CHECK(SocketAddress::parse("[::1]80").error().value() == EINVAL);
        CHECK(SocketAddress::parse(":80").error().value() == EINVAL);
        CHECK(SocketAddress::parse("no-such-host.invalid:80").error().value() == EHOSTUNREACH);
        CHECK(SocketAddress::unix_path(std::string(108, 'a')).error().value() == ENAMETOOLONG);
        CHECK(SocketAddress::ip("1.2.3", 1).error().value() == EINVAL);
    }

    TEST_CASE(
        "listen errors name the address; a Unix socket file is 0600, stale ones are replaced") {
        auto l = listen_on(Net::v4);
        REQUIRE(l);
        try {
            Listener::listen(l->address());
            FAIL("a second listener on the same port");
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == EADDRINUSE);
            CHECK(std::string(e.what()).find(l->address().to_string()) != std::string::npos);
        }

        const std::string path = unix_socket_path();
        const SocketAddress at = SocketAddress::unix_path(path).value();
        {
            ::umask(0); // the mode must not depend on the umask
            Listener u = Listener::listen(at);
            struct stat st {};
            REQUIRE(::stat(path.c_str(), &st) == 0);
            CHECK(S_ISSOCK(st.st_mode));
            CHECK((st.st_mode & 07777) == 0600);
            ::umask(022);
            // A live socket is never taken over.
            CHECK_THROWS_AS(Listener::listen(at), std::system_error);
            CHECK(::access(path.c_str(), F_OK) == 0);
        }
        CHECK(::access(path.c_str(), F_OK) != 0); // the destructor unlinked it

        // A stale socket file (its server died without unlinking) is replaced.
        const int raw = ::socket(AF_UNIX, SOCK_STREAM, 0);
        REQUIRE(::bind(raw, at.data(), at.size()) == 0);
        ::close(raw);
        REQUIRE(::access(path.c_str(), F_OK) == 0);
        {
            ListenOptions o;
            o.unix_mode = 0660;
            Listener u = Listener::listen(at, o);
            struct stat st {};
            REQUIRE(::stat(path.c_str(), &st) == 0);
            CHECK((st.st_mode & 07777) == 0660);
        }
        // A regular file is never removed.
        std::ofstream(path) << "data";
        CHECK_THROWS_AS(Listener::listen(at), std::system_error);
        CHECK(::access(path.c_str(), F_OK) == 0);
        ::unlink(path.c_str());
    }

} // TEST_SUITE
