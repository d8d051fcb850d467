// SPDX-License-Identifier: MIT
// Listener::accept with io_uring's multishot accept and its queue, and the single-shot path
// (ListenOptions::multishot_accept = false) under the same tests; on the Asio backend
// (BIORING_BACKEND=asio) both run Asio's accept. Clients are plain blocking sockets on
// other threads (or on this one, before any accept): real TCP and Unix connections.
#include <bioring/io/listener.hpp>
#include <bioring/io/socket.hpp>

#include <bioring/io/detail/multishot_accept.hpp>
#include <bioring/io/error_message.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sleep.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>
#include "tests/io/heap_hooks.hpp"
#include "tests/io/io_support.hpp"
#include "tests/io/socket_support.hpp"

#include <doctest/doctest.h>

#include <dirent.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

using namespace bioring;
using namespace bioring::test;
using namespace std::chrono_literals;

namespace {

/// Open descriptors of this process (/proc/self/fd, less the directory's own).
int open_fds() {
    DIR* d = ::opendir("/proc/self/fd");
    REQUIRE(d != nullptr);
    int n = 0;
    while (const dirent* e = ::readdir(d)) {
        if (e->d_name[0] != '.') {
            ++n;
        }
    }
    ::closedir(d);
    return n - 1;
}

/// A blocking client connection to @at (the kernel completes it into the listen backlog
/// whether or not anyone accepts). Returns: the descriptor, or -errno.
int connect_to(const SocketAddress& at) {
    const int fd = ::socket(at.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    if (::connect(fd, at.data(), at.size()) < 0) {
        const int e = errno;
        ::close(fd);
        return -e;
    }
    return fd;
}

/// Connect and send the 4-byte @tag, so the server can tell which client it accepted.
int connect_tagged(const SocketAddress& at, std::uint32_t tag) {
    const int fd = connect_to(at);
    if (fd >= 0 && ::send(fd, &tag, sizeof tag, MSG_NOSIGNAL) != sizeof tag) {
        ::close(fd);
        return -EIO;
    }
    return fd;
}

ListenOptions mode(bool multishot) {
    ListenOptions o;
    o.multishot_accept = multishot;
    return o;
}

std::string mode_name(bool multishot) {
    return multishot ? "multishot" : "single-shot";
}

/// Accept @n connections and read each one's tag, in accept order.
Task<std::vector<std::uint32_t>> accept_tags(Listener& l, int n) {
    std::vector<std::uint32_t> tags;
    for (int i = 0; i < n; ++i) {
        IoOptions o;
        o.timeout = 10s;
        Result<Socket> s = co_await l.accept(std::move(o));
        if (!s) {
            MESSAGE(std::string(last_error_message()));
            co_return tags;
        }
        std::uint32_t tag = 0;
        if ((co_await s->recv_exact(&tag, sizeof tag)).res != sizeof tag) {
            co_return tags;
        }
        tags.push_back(tag);
    }
    co_return tags;
}

Task<int> accept_one_result(Listener& l, IoOptions o) {
    Result<Socket> s = co_await l.accept(std::move(o));
    co_return s ? 0 : s.error().value();
}

} // namespace

TEST_SUITE("io") {

    TEST_CASE("connections made before the first accept are all accepted, in order") {
        constexpr int n = 100; // more than MultishotAccept::queue_bound
        for (bool ms : {true, false}) {
            for (Net net : {Net::v4, Net::unix_socket}) {
                INFO(mode_name(ms), " ", net_name(net));
                Reactor r;
                auto l = listen_on(net, mode(ms));
                REQUIRE(l);
                std::vector<int> clients;
                for (int i = 0; i < n; ++i) {
                    const int fd = connect_tagged(l->address(), static_cast<std::uint32_t>(i));
                    REQUIRE(fd >= 0);
                    clients.push_back(fd);
                }
                const std::vector<std::uint32_t> tags = sync_wait(accept_tags(*l, n));
                REQUIRE(tags.size() == n);
                for (int i = 0; i < n; ++i) {
                    CHECK(tags[static_cast<std::size_t>(i)] == static_cast<std::uint32_t>(i));
                }
                for (int fd : clients) {
                    ::close(fd);
                }
            }
        }
    }

    TEST_CASE("a burst of 200 concurrent connects is accepted completely") {
        constexpr int n = 200;
        if (raise_fd_limit(2 * n + 64) < 2 * n + 64) {
            skip("RLIMIT_NOFILE too low for 400 sockets");
            return;
        }
        for (bool ms : {true, false}) {
            INFO(mode_name(ms));
            Reactor r;
            auto l = listen_on(Net::v4, mode(ms));
            REQUIRE(l);
            std::vector<int> clients(n, -1);
            std::vector<std::thread> threads;
            for (int t = 0; t < 4; ++t) {
                threads.emplace_back([&, t] {
                    for (int i = t; i < n; i += 4) {
                        clients[static_cast<std::size_t>(i)] =
                            connect_tagged(l->address(), static_cast<std::uint32_t>(i));
                    }
                });
            }
            const std::vector<std::uint32_t> tags = sync_wait(accept_tags(*l, n));
            for (auto& t : threads) {
                t.join();
            }
            REQUIRE(tags.size() == n);
            std::vector<bool> seen(n, false);
            for (std::uint32_t t : tags) {
                REQUIRE(t < n);
                CHECK_FALSE(seen[t]);
                seen[t] = true;
            }
            for (int fd : clients) {
                CHECK(fd >= 0);
                ::close(fd);
            }
        }
    }

    TEST_CASE("a waiting accept is cancelled by timeout and stop_token; later accepts work") {
        for (bool ms : {true, false}) {
            INFO(mode_name(ms));
            Reactor r;
            auto l = listen_on(Net::v4, mode(ms));
            REQUIRE(l);
            // Arm it: the first connection is accepted through the multishot.
            const int c0 = connect_to(l->address());
            REQUIRE(c0 >= 0);
            CHECK(sync_wait(accept_one_result(*l, {})) == 0);

            IoOptions t;
            t.timeout = 30ms;
            const auto t0 = std::chrono::steady_clock::now();
            CHECK(sync_wait(accept_one_result(*l, std::move(t))) == ECANCELED);
            CHECK(std::chrono::steady_clock::now() - t0 >= 25ms);
            CHECK(std::string(last_error_message()).find("cancelled") != std::string::npos);

            std::stop_source stop;
            std::thread stopper([&] {
                std::this_thread::sleep_for(30ms);
                stop.request_stop();
            });
            IoOptions s;
            s.stop = stop.get_token();
            CHECK(sync_wait(accept_one_result(*l, std::move(s))) == ECANCELED);
            stopper.join();

            const int c1 = connect_to(l->address());
            REQUIRE(c1 >= 0);
            IoOptions later;
            later.timeout = 5s;
            CHECK(sync_wait(accept_one_result(*l, std::move(later))) == 0);
            ::close(c0);
            ::close(c1);
        }
    }

    TEST_CASE("accepts cancelled while connections arrive lose none of them") {
        constexpr int n = 300;
        if (raise_fd_limit(2 * n + 64) < 2 * n + 64) {
            skip("RLIMIT_NOFILE too low for 600 sockets");
            return;
        }
        for (bool ms : {true, false}) {
            INFO(mode_name(ms));
            Reactor r;
            auto l = listen_on(Net::v4, mode(ms));
            REQUIRE(l);
            std::vector<int> clients(n, -1);
            std::thread client([&] {
                for (int i = 0; i < n; ++i) {
                    clients[static_cast<std::size_t>(i)] =
                        connect_tagged(l->address(), static_cast<std::uint32_t>(i));
                    if (i % 8 == 0) {
                        std::this_thread::sleep_for(200us);
                    }
                }
            });
            // Deadlines short enough that many expire just as a connection lands.
            auto race = [](Listener& ls, int want) -> Task<std::vector<std::uint32_t>> {
                std::vector<std::uint32_t> tags;
                unsigned expired = 0;
                while (static_cast<int>(tags.size()) < want && expired < 100000) {
                    IoOptions o;
                    o.timeout = std::chrono::microseconds(50 + (expired % 7) * 40);
                    Result<Socket> s = co_await ls.accept(std::move(o));
                    if (!s) {
                        ++expired;
                        continue;
                    }
                    std::uint32_t tag = 0;
                    if ((co_await s->recv_exact(&tag, sizeof tag)).res == sizeof tag) {
                        tags.push_back(tag);
                    }
                }
                MESSAGE(expired << " accepts expired while " << want << " were accepted");
                co_return tags;
            };
            const std::vector<std::uint32_t> tags = sync_wait(race(*l, n));
            client.join();
            REQUIRE(tags.size() == n);
            std::vector<bool> seen(n, false);
            for (std::uint32_t t : tags) {
                REQUIRE(t < n);
                CHECK_FALSE(seen[t]);
                seen[t] = true;
            }
            for (int fd : clients) {
                ::close(fd);
            }
        }
    }

    TEST_CASE("closing a listener with queued connections closes them: no descriptor leaks") {
        for (bool ms : {true, false}) {
            for (bool on_reactor_thread : {true, false}) {
                INFO(mode_name(ms), on_reactor_thread ? " closed by the reactor's thread"
                                                      : " closed after its reactor ended");
                const int fds0 = open_fds();
                std::vector<int> clients;
                {
                    Reactor r;
                    auto l = listen_on(Net::v4, mode(ms));
                    REQUIRE(l);
                    clients.push_back(connect_to(l->address()));
                    REQUIRE(clients.back() >= 0);
                    CHECK(sync_wait(accept_one_result(*l, {})) == 0); // arms the multishot
                    for (int i = 0; i < 10; ++i) {
                        clients.push_back(connect_to(l->address()));
                        REQUIRE(clients.back() >= 0);
                    }
                    // Let the multishot's CQEs land in the queue.
                    sync_wait([]() -> Task<void> { co_await sleep_for(50ms); }());
                    if (on_reactor_thread) {
                        l->close();
                        r.drain(); // the multishot's cancellation completes
                    }
                    // else: ~Reactor cancels the multishot, then ~Listener closes the queue
                }
                // Every queued connection was closed by the listener: its client sees EOF
                // (single-shot: never accepted, the listening socket's close resets it).
                for (std::size_t i = 1; i < clients.size(); ++i) {
                    char b;
                    CHECK(::recv(clients[i], &b, 1, 0) <= 0);
                }
                for (int fd : clients) {
                    ::close(fd);
                }
                CHECK(open_fds() == fds0);
            }
        }
    }

    TEST_CASE("a listener outlives the reactor that armed it: the next reactor accepts on") {
        for (bool ms : {true, false}) {
            INFO(mode_name(ms));
            auto l = listen_on(Net::v4, mode(ms));
            REQUIRE(l);
            std::vector<int> clients;
            // Thread A: accepts one (arming the multishot), lets five more reach its queue,
            // and ends: its reactor cancels the multishot and gives the queue up.
            std::thread a([&] {
                Reactor r;
                clients.push_back(connect_tagged(l->address(), 0));
                CHECK(sync_wait(accept_one_result(*l, {})) == 0);
                for (std::uint32_t i = 1; i <= 5; ++i) {
                    clients.push_back(connect_tagged(l->address(), i));
                }
                sync_wait([]() -> Task<void> { co_await sleep_for(50ms); }());
            });
            a.join();
            // Thread B, another reactor: the five in order, then a new one.
            std::vector<std::uint32_t> tags;
            std::thread b([&] {
                clients.push_back(connect_tagged(l->address(), 6));
                tags = sync_wait(accept_tags(*l, 6));
            });
            b.join();
            REQUIRE(tags.size() == 6);
            for (std::uint32_t i = 0; i < 6; ++i) {
                CHECK(tags[i] == i + 1);
            }
            for (int fd : clients) {
                CHECK(fd >= 0);
                ::close(fd);
            }
        }
    }

    TEST_CASE("accept makes no heap allocation in steady state") {
        constexpr int warmup = 200;
        constexpr int measured = 1000;
        for (bool ms : {true, false}) {
            INFO(mode_name(ms));
            Reactor r;
            auto l = listen_on(Net::v4, mode(ms));
            REQUIRE(l);
            std::atomic<bool> fail{false};
            std::thread client([&] {
                for (int i = 0; i < warmup + measured; ++i) {
                    const int fd = connect_to(l->address());
                    if (fd < 0) {
                        fail = true;
                        return;
                    }
                    char b;
                    (void)::recv(fd, &b, 1, 0); // until the server closed it: bounded fds
                    ::close(fd);
                }
            });
            std::uint64_t heap = 0;
            auto serve = [&](Listener& ls) -> Task<int> {
                std::uint64_t h0 = 0;
                std::stop_source st; // (a stop_source allocates its shared state)
                for (int i = 0; i < warmup + measured; ++i) {
                    if (i == warmup) {
                        h0 = heap_calls.load();
                    }
                    IoOptions o;
                    o.timeout = 10s;
                    o.stop = st.get_token();
                    Result<Socket> s = co_await ls.accept(std::move(o));
                    if (!s) {
                        co_return i;
                    }
                }
                heap = heap_calls.load() - h0;
                co_return warmup + measured;
            };
            CHECK(sync_wait(serve(*l)) == warmup + measured);
            client.join();
            CHECK_FALSE(fail.load());
            MESSAGE(mode_name(ms) << ": " << heap << " heap calls in " << measured << " accepts");
            CHECK(heap == 0);
        }
    }

    TEST_CASE("1000 connections: SQEs and io_uring_enter calls, multishot against single-shot") {
        static constexpr int n = 1000;
        std::uint64_t sqes[2] = {};
        std::uint64_t enters[2] = {};
        bool uring = true;
        for (bool ms : {true, false}) {
            Reactor r;
            uring = r.backend() == Backend::uring;
            auto l = listen_on(Net::v4, mode(ms));
            REQUIRE(l);
            std::thread client([&] {
                for (int i = 0; i < n; ++i) {
                    const int fd = connect_to(l->address());
                    if (fd >= 0) {
                        char b;
                        (void)::recv(fd, &b, 1, 0);
                        ::close(fd);
                    }
                }
            });
            const ReactorCounters c0 = r.counters();
            auto serve = [](Listener& ls) -> Task<int> {
                for (int i = 0; i < n; ++i) {
                    if (!(co_await ls.accept())) {
                        co_return i;
                    }
                }
                co_return n;
            };
            CHECK(sync_wait(serve(*l)) == n);
            client.join();
            sqes[ms] = r.counters().sqes_submitted - c0.sqes_submitted;
            enters[ms] = r.counters().enter_calls - c0.enter_calls;
            MESSAGE(mode_name(ms) << ": " << sqes[ms] << " SQEs, " << enters[ms]
                                  << " io_uring_enter for " << n << " accepts");
        }
        if (uring && detail::MultishotAccept::supported()) {
            CHECK(sqes[1] * 10 < sqes[0]); // a handful of re-arms against one per accept
        }
    }
}
