// SPDX-License-Identifier: MIT
// SocketAddress: parsing, formatting and the kernel's sockaddr forms (socket_address.hpp).
#include <bioring/io/socket_address.hpp>

#include <bioring/io/error_message.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>

namespace bioring {
namespace {

constexpr std::size_t unix_path_max = sizeof(sockaddr_un::sun_path) - 1; // 107 on Linux

unexpected fail(std::errc e, std::string_view text, const char* why) {
    detail::set_error_message("bioring: address '%.*s': %s", static_cast<int>(text.size()),
                              text.data(), why);
    return unexpected(e);
}

/// Returns: the port of @s (decimal, 0..65535), or -1.
long parse_port(std::string_view s) noexcept {
    if (s.empty() || s.size() > 5) {
        return -1;
    }
    long v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return -1;
        }
        v = v * 10 + (c - '0');
    }
    return v <= 65535 ? v : -1;
}

} // namespace

SocketAddress::SocketAddress() noexcept {
    std::memset(&storage_, 0, sizeof storage_);
    storage_.ss_family = AF_UNSPEC;
}

Result<SocketAddress> SocketAddress::ip(std::string_view host, std::uint16_t port) {
    char buf[INET6_ADDRSTRLEN + 1];
    if (host.size() >= sizeof buf) {
        return fail(std::errc::invalid_argument, host, "not a numeric IPv4 or IPv6 address");
    }
    std::memcpy(buf, host.data(), host.size());
    buf[host.size()] = '\0';
    SocketAddress a;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
    if (::inet_pton(AF_INET, buf, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        a.len_ = sizeof(sockaddr_in);
        return a;
    }
    if (::inet_pton(AF_INET6, buf, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        a.len_ = sizeof(sockaddr_in6);
        return a;
    }
    return fail(std::errc::invalid_argument, host, "not a numeric IPv4 or IPv6 address");
}

Result<SocketAddress> SocketAddress::unix_path(std::string_view path) {
    if (path.empty()) {
        return fail(std::errc::invalid_argument, path, "empty Unix socket path");
    }
    if (path.size() > unix_path_max) {
        return fail(std::errc::filename_too_long, path, "Unix socket path longer than 107 bytes");
    }
    if (path.find('\0') != std::string_view::npos) {
        return fail(std::errc::invalid_argument, path, "Unix socket path contains a NUL byte");
    }
    SocketAddress a;
    auto* un = reinterpret_cast<sockaddr_un*>(&a.storage_);
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.data(), path.size());
    un->sun_path[path.size()] = '\0';
    a.len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return a;
}

Result<SocketAddress> SocketAddress::parse(std::string_view text) {
    if (text.substr(0, 5) == "unix:") {
        return unix_path(text.substr(5));
    }
    if (text.find('/') != std::string_view::npos) {
        return unix_path(text);
    }
    std::string_view host;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        const std::size_t close = text.find("]:");
        if (close == std::string_view::npos) {
            return fail(std::errc::invalid_argument, text, "expected [IPV6]:PORT");
        }
        host = text.substr(1, close - 1);
        port_text = text.substr(close + 2);
    } else {
        const std::size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            return fail(std::errc::invalid_argument, text,
                        "expected HOST:PORT, [IPV6]:PORT or a Unix socket path");
        }
        host = text.substr(0, colon);
        port_text = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            return fail(std::errc::invalid_argument, text,
                        "an IPv6 address needs brackets: [IPV6]:PORT");
        }
    }
    const long port = parse_port(port_text);
    if (port < 0) {
        return fail(std::errc::invalid_argument, text, "the port must be a number 0..65535");
    }
    if (host.empty()) {
        return fail(std::errc::invalid_argument, text, "empty host");
    }
    if (auto a = ip(host, static_cast<std::uint16_t>(port))) {
        return a;
    }
    // Not numeric: a host name (setup only, as the header says).
    const std::string name(host);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &res);
    if (rc != 0 || res == nullptr) {
        return fail(std::errc::host_unreachable, text,
                    rc != 0 ? ::gai_strerror(rc) : "the name has no address");
    }
    SocketAddress a = from_sockaddr(res->ai_addr, res->ai_addrlen);
    ::freeaddrinfo(res);
    const std::uint16_t net_port = htons(static_cast<std::uint16_t>(port));
    if (a.family() == AF_INET) {
        reinterpret_cast<sockaddr_in*>(&a.storage_)->sin_port = net_port;
    } else if (a.family() == AF_INET6) {
        reinterpret_cast<sockaddr_in6*>(&a.storage_)->sin6_port = net_port;
    } else {
        return fail(std::errc::host_unreachable, text, "the name has no IPv4 or IPv6 address");
    }
    return a;
}

SocketAddress SocketAddress::loopback_v4(std::uint16_t port) noexcept {
    SocketAddress a;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.len_ = sizeof(sockaddr_in);
    return a;
}

SocketAddress SocketAddress::loopback_v6(std::uint16_t port) noexcept {
    SocketAddress a;
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    v6->sin6_addr = in6addr_loopback;
    a.len_ = sizeof(sockaddr_in6);
    return a;
}

SocketAddress SocketAddress::from_sockaddr(const sockaddr* sa, socklen_t len) noexcept {
    SocketAddress a;
    if (sa == nullptr || len == 0 || len > sizeof(sockaddr_storage)) {
        return a;
    }
    std::memcpy(&a.storage_, sa, len);
    a.len_ = len;
    return a;
}

std::uint16_t SocketAddress::port() const noexcept {
    if (family() == AF_INET) {
        return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    }
    if (family() == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
    }
    return 0;
}

std::string SocketAddress::path() const {
    constexpr std::size_t base = offsetof(sockaddr_un, sun_path);
    if (family() != AF_UNIX || len_ <= base) {
        return {};
    }
    const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
    return std::string(un->sun_path, ::strnlen(un->sun_path, len_ - base));
}

const char* SocketAddress::format(char* buf, std::size_t cap) const noexcept {
    if (cap == 0) {
        return buf;
    }
    char ip_text[INET6_ADDRSTRLEN] = "";
    switch (family()) {
    case AF_INET:
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, ip_text,
                    sizeof ip_text);
        std::snprintf(buf, cap, "%s:%u", ip_text, static_cast<unsigned>(port()));
        break;
    case AF_INET6:
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, ip_text,
                    sizeof ip_text);
        std::snprintf(buf, cap, "[%s]:%u", ip_text, static_cast<unsigned>(port()));
        break;
    case AF_UNIX: {
        constexpr std::size_t base = offsetof(sockaddr_un, sun_path);
        const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
        const std::size_t n = len_ > base ? ::strnlen(un->sun_path, len_ - base) : 0;
        if (n == 0) {
            std::snprintf(buf, cap, "unix:(unnamed)");
        } else {
            std::snprintf(buf, cap, "unix:%.*s", static_cast<int>(n), un->sun_path);
        }
        break;
    }
    default:
        std::snprintf(buf, cap, "(none)");
        break;
    }
    return buf;
}

std::string SocketAddress::to_string() const {
    char buf[160];
    return format(buf, sizeof buf);
}

} // namespace bioring
