// SPDX-License-Identifier: MIT
// Shared helpers of the socket tests: a listener per network kind (IPv4 and IPv6 loopback,
// a Unix socket under the test directory), stream patterns and checksums.
// Only loopback and Unix sockets: nothing here sends a packet off this machine.
#pragma once

#include <bioring/io/listener.hpp>
#include <bioring/io/socket.hpp>
#include <bioring/runtime/task.hpp>
#include <bioring/runtime/when_all.hpp>
#include "tests/io/io_support.hpp"
#include "tests/io/tmp_file.hpp"

#include <doctest/doctest.h>

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace bioring::test {

enum class Net { v4, v6, unix_socket };

inline const char* net_name(Net n) {
    switch (n) {
    case Net::v4:
        return "tcp4";
    case Net::v6:
        return "tcp6";
    case Net::unix_socket:
        return "unix";
    }
    return "?";
}

/// A fresh Unix socket path under the test directory (nothing is created there).
inline std::string unix_socket_path() {
    static std::atomic<unsigned> seq{0};
    return test_dir() + "/bioring-sock-" + std::to_string(::getpid()) + "-" +
           std::to_string(seq.fetch_add(1)) + ".sock";
}

/// A listener on 127.0.0.1:0, [::1]:0 or a fresh Unix socket path (removed by the
/// Listener). Returns: nullopt after printing the skip marker when ::1 is unavailable.
inline std::optional<Listener> listen_on(Net n, ListenOptions o = {}) {
    try {
        switch (n) {
        case Net::v4:
            return Listener::listen(SocketAddress::loopback_v4(0), o);
        case Net::v6:
            return Listener::listen(SocketAddress::loopback_v6(0), o);
        case Net::unix_socket:
            return Listener::listen(SocketAddress::unix_path(unix_socket_path()).value(), o);
        }
    } catch (const std::system_error& e) {
        const int err = e.code().value();
        if (n == Net::v6 && (err == EADDRNOTAVAIL || err == EAFNOSUPPORT)) {
            skip(std::string("IPv6 loopback unavailable: ") + e.what());
            return std::nullopt;
        }
        throw;
    }
    return std::nullopt;
}

/// A connected pair over @l: {accepted, connected}; a side that failed is a closed Socket.
/// Context: a reactor thread (co_await it there or through sync_wait).
inline Task<std::pair<Socket, Socket>> connected_pair(Listener& l) {
    Socket a, c;
    std::vector<Task<void>> t;
    t.push_back([](Listener& l, Socket& out) -> Task<void> {
        Result<Socket> s = co_await l.accept();
        if (s) {
            out = std::move(*s);
        }
    }(l, a));
    t.push_back([](const SocketAddress at, Socket& out) -> Task<void> {
        Result<Socket> s = co_await Socket::connect(at);
        if (s) {
            out = std::move(*s);
        }
    }(l.address(), c));
    co_await when_all(std::move(t));
    co_return std::pair<Socket, Socket>(std::move(a), std::move(c));
}

/// FNV-1a over a byte stream, resumable chunk by chunk.
struct StreamHash {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    void add(const std::byte* p, std::size_t n) noexcept {
        for (std::size_t i = 0; i < n; ++i) {
            h = (h ^ static_cast<std::uint64_t>(p[i])) * 0x100000001b3ULL;
        }
    }
};

/// Raise RLIMIT_NOFILE's soft limit to @want (at most the hard limit).
/// Returns: the soft limit now in force.
inline rlim_t raise_fd_limit(rlim_t want) {
    rlimit r{};
    ::getrlimit(RLIMIT_NOFILE, &r);
    if (r.rlim_cur < want) {
        r.rlim_cur = want < r.rlim_max ? want : r.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &r);
        ::getrlimit(RLIMIT_NOFILE, &r);
    }
    return r.rlim_cur;
}

} // namespace bioring::test
