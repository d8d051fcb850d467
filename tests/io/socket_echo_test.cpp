// SPDX-License-Identifier: MIT
// Sockets carry data between reactors: an echo with every transfer form, a 64 MiB
// checksummed bulk transfer and 500 concurrent connections, over TCP on 127.0.0.1 and
// [::1] and over a Unix socket, with the server on one reactor thread of a Runtime and the
// client on the other.
#include <bioring/io/listener.hpp>
#include <bioring/io/socket.hpp>

#include <bioring/io/error_message.hpp>
#include <bioring/runtime/runtime.hpp>
#include <bioring/runtime/task.hpp>
#include <bioring/runtime/when_all.hpp>
#include "tests/io/io_support.hpp"
#include "tests/io/socket_support.hpp"

#include <doctest/doctest.h>

#include <sys/uio.h>

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

using namespace bioring;
using namespace bioring::test;

namespace {

// Echo every byte back until the peer shuts down, then shut down too.
Task<void> echo_server(Listener& l, std::atomic<int>& errors) {
    Result<Socket> s = co_await l.accept();
    if (!s) {
        MESSAGE(std::string(last_error_message()));
        ++errors;
        co_return;
    }
    std::vector<std::byte> buf(70000);
    for (;;) {
        const IoResult r = co_await s->recv(buf.data(), buf.size());
        if (r.res == 0) {
            break;
        }
        if (!r.ok()) {
            MESSAGE(std::string(last_error_message()));
            ++errors;
            co_return;
        }
        const IoResult w = co_await s->send_all(buf.data(), r.bytes());
        if (w.res != r.res) {
            MESSAGE(std::string(last_error_message()));
            ++errors;
            co_return;
        }
    }
    if ((co_await s->shutdown(SHUT_WR)).res != 0 || (co_await s->close()).res != 0) {
        ++errors;
    }
}

// Send messages of several sizes with each send form and check the echo.
Task<void> echo_client(const SocketAddress& at, std::atomic<int>& errors) {
    Result<Socket> s = co_await Socket::connect(at);
    if (!s) {
        MESSAGE(std::string(last_error_message()));
        ++errors;
        co_return;
    }
    CHECK(s->peer_address().to_string() == at.to_string());
    for (std::size_t size : {1u, 100u, 4096u, 65537u, 300000u}) {
        std::vector<std::byte> out(size), in(size);
        fill_pattern(out.data(), size, 0, static_cast<unsigned>(size));
        // send_all + recv_exact
        CHECK((co_await s->send_all(out.data(), size)).res == static_cast<int>(size));
        CHECK((co_await s->recv_exact(in.data(), size)).res == static_cast<int>(size));
        CHECK(std::memcmp(out.data(), in.data(), size) == 0);
        // sendmsg_all of three segments + recvmsg_exact into two different ones
        const std::size_t a = size / 3, b = size / 3;
        const iovec wv[3] = {
            {out.data(), a}, {out.data() + a, b}, {out.data() + a + b, size - a - b}};
        const std::size_t c = size / 2;
        std::memset(in.data(), 0, size);
        const iovec rv[2] = {{in.data(), c}, {in.data() + c, size - c}};
        CHECK((co_await s->sendmsg_all(wv, 3)).res == static_cast<int>(size));
        CHECK((co_await s->recvmsg_exact(rv, 2)).res == static_cast<int>(size));
        CHECK(std::memcmp(out.data(), in.data(), size) == 0);
        // one send + one recv each: short counts are legal, the loop gathers them
        std::size_t sent = 0;
        while (sent < size) {
            const IoResult w = co_await s->send(out.data() + sent, size - sent);
            if (w.res <= 0) {
                ++errors;
                co_return;
            }
            sent += w.bytes();
        }
        std::size_t got = 0;
        while (got < size) {
            const iovec one{in.data() + got, size - got};
            const IoResult r = co_await s->recvmsg(&one, 1);
            if (r.res <= 0) {
                ++errors;
                co_return;
            }
            got += r.bytes();
        }
        CHECK(std::memcmp(out.data(), in.data(), size) == 0);
    }
    CHECK((co_await s->shutdown(SHUT_WR)).res == 0);
    std::byte tail[16];
    CHECK((co_await s->recv(tail, sizeof tail)).res == 0); // the server's EOF
    CHECK((co_await s->close()).res == 0);
    CHECK(!s->is_open());
}

constexpr std::size_t bulk_bytes = 64u << 20;

// Receive the stream in odd-sized pieces (recvmsg_exact over two segments) until EOF,
// then answer with the byte count and the checksum.
Task<void> bulk_server(Listener& l, std::atomic<int>& errors) {
    Result<Socket> s = co_await l.accept();
    if (!s) {
        MESSAGE(std::string(last_error_message()));
        ++errors;
        co_return;
    }
    std::vector<std::byte> buf(100000 + 31);
    StreamHash h;
    std::uint64_t total = 0;
    for (;;) {
        const iovec v[2] = {{buf.data(), 100000}, {buf.data() + 100000, 31}};
        const IoResult r = co_await s->recvmsg_exact(v, 2);
        if (!r.ok()) {
            MESSAGE(std::string(last_error_message()));
            ++errors;
            co_return;
        }
        h.add(buf.data(), r.bytes());
        total += r.bytes();
        if (r.bytes() < buf.size()) {
            break; // EOF inside this piece
        }
    }
    const std::uint64_t answer[2] = {total, h.h};
    if ((co_await s->send_all(answer, sizeof answer)).res != static_cast<int>(sizeof answer)) {
        ++errors;
    }
}

Task<void> bulk_client(const SocketAddress& at, std::atomic<int>& errors) {
    Result<Socket> s = co_await Socket::connect(at);
    if (!s) {
        MESSAGE(std::string(last_error_message()));
        ++errors;
        co_return;
    }
    constexpr std::size_t chunk = 1u << 20;
    std::vector<std::byte> buf(chunk);
    StreamHash h;
    for (std::size_t off = 0; off < bulk_bytes; off += chunk) {
        fill_pattern(buf.data(), chunk, off, 7);
        h.add(buf.data(), chunk);
        const IoResult w = co_await s->send_all(buf.data(), chunk);
        if (w.res != static_cast<int>(chunk)) {
            MESSAGE(std::string(last_error_message()));
            ++errors;
            co_return;
        }
    }
    CHECK((co_await s->shutdown(SHUT_WR)).res == 0);
    std::uint64_t answer[2] = {};
    CHECK((co_await s->recv_exact(answer, sizeof answer)).res == static_cast<int>(sizeof answer));
    CHECK(answer[0] == bulk_bytes);
    CHECK(answer[1] == h.h);
}

// One connection of the many: 64 bytes unique to it, echoed back.
Task<void> small_client(const SocketAddress& at, unsigned i, std::atomic<int>& ok) {
    Result<Socket> s = co_await Socket::connect(at);
    if (!s) {
        MESSAGE(std::string(last_error_message()));
        co_return;
    }
    std::byte out[64], in[64];
    fill_pattern(out, sizeof out, i * 64u, 3);
    if ((co_await s->send_all(out, sizeof out)).res == 64 &&
        (co_await s->recv_exact(in, sizeof in)).res == 64 && std::memcmp(out, in, 64) == 0) {
        ++ok;
    }
}

Task<void> small_echo(Socket s) {
    std::byte buf[64];
    const IoResult r = co_await s.recv_exact(buf, sizeof buf);
    if (r.res == 64) {
        co_await s.send_all(buf, sizeof buf);
    }
}

void run_across_reactors(Net n, const char* what,
                         Task<void> (*server)(Listener&, std::atomic<int>&),
                         Task<void> (*client)(const SocketAddress&, std::atomic<int>&)) {
    auto l = listen_on(n);
    if (!l) {
        return;
    }
    INFO(net_name(n), " ", what, " via ", l->address().to_string());
    RuntimeOptions ro;
    ro.threads = 2;
    Runtime rt(ro);
    std::atomic<int> errors{0};
    const SocketAddress at = l->address();
    rt.run_on_all([&](unsigned shard) -> Task<void> {
        return shard == 0 ? server(*l, errors) : client(at, errors);
    });
    CHECK(errors.load() == 0);
}

} // namespace

TEST_SUITE("io") {

    TEST_CASE("echo across two reactors: send/recv, send_all/recv_exact, sendmsg/recvmsg, EOF") {
        for (Net n : {Net::v4, Net::v6, Net::unix_socket}) {
            run_across_reactors(n, "echo", echo_server, echo_client);
        }
    }

    TEST_CASE("64 MiB bulk transfer across two reactors arrives complete and in order (checksum)") {
        for (Net n : {Net::v4, Net::v6, Net::unix_socket}) {
            run_across_reactors(n, "bulk", bulk_server, bulk_client);
        }
    }

    TEST_CASE("500 concurrent connections each get their own bytes back") {
        constexpr unsigned conns = 500;
        if (raise_fd_limit(2 * conns + 64) < 2 * conns + 64) {
            skip("RLIMIT_NOFILE too low for 1000 sockets");
            return;
        }
        for (Net n : {Net::v4, Net::unix_socket}) {
            auto l = listen_on(n);
            REQUIRE(l);
            INFO(net_name(n));
            RuntimeOptions ro;
            ro.threads = 2;
            Runtime rt(ro);
            std::atomic<int> ok{0};
            std::atomic<int> accepted{0};
            const SocketAddress at = l->address();
            rt.run_on_all([&](unsigned shard) -> Task<void> {
                std::vector<Task<void>> tasks;
                if (shard == 0) {
                    for (unsigned i = 0; i < conns; ++i) {
                        Result<Socket> s = co_await l->accept();
                        if (!s) {
                            MESSAGE(std::string(last_error_message()));
                            break;
                        }
                        ++accepted;
                        tasks.push_back(small_echo(std::move(*s)));
                    }
                } else {
                    for (unsigned i = 0; i < conns; ++i) {
                        tasks.push_back(small_client(at, i, ok));
                    }
                }
                co_await when_all(std::move(tasks));
            });
            CHECK(accepted.load() == static_cast<int>(conns));
            CHECK(ok.load() == static_cast<int>(conns));
        }
    }

} // TEST_SUITE
