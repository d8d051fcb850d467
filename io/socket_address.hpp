// SPDX-License-Identifier: MIT
// SocketAddress: an IPv4, IPv6 or Unix-domain stream-socket address, held by value.
//
// It is what Listener::listen() binds, Socket::connect() dials and accept() reports as the
// peer. It owns a sockaddr_storage (no heap), so a connect awaiter can carry a copy in the
// coroutine frame. Parsing is for setup (command lines, configuration): "HOST:PORT" takes a
// numeric IPv4 address, a bracketed IPv6 address ("[::1]:10809") or a host name resolved
// with getaddrinfo (a blocking call: never on a reactor's request path); "unix:PATH" or a
// string containing '/' is a Unix socket path.
#pragma once

#include <bioring/runtime/expected.hpp>

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace bioring {

class SocketAddress {
public:
    /// An empty address (family() == AF_UNSPEC); connecting to it fails with -EAFNOSUPPORT.
    SocketAddress() noexcept;

    /// Parse "HOST:PORT", "[IPV6]:PORT", "unix:PATH" or a path containing '/'.
    /// Context: any thread; may block in getaddrinfo for a host name (the first address
    /// of the answer is used); allocates.
    /// Returns: the address, or an error (EINVAL for a malformed string or port,
    /// ENAMETOOLONG for a Unix path over 107 bytes, EHOSTUNREACH when the name does not
    /// resolve) with last_error_message() saying why and naming the string.
    static Result<SocketAddress> parse(std::string_view text);
    /// A numeric IPv4 or IPv6 address (no brackets, no name lookup) and a port.
    /// Context: any thread; never blocks. Returns: the address, or EINVAL (with a message).
    static Result<SocketAddress> ip(std::string_view numeric_host, std::uint16_t port);
    /// A Unix-domain socket path (abstract sockets are not supported).
    /// Returns: the address, or EINVAL (empty) / ENAMETOOLONG (over 107 bytes).
    static Result<SocketAddress> unix_path(std::string_view path);
    /// 127.0.0.1:@port and [::1]:@port. Context: any thread; never fails.
    static SocketAddress loopback_v4(std::uint16_t port) noexcept;
    static SocketAddress loopback_v6(std::uint16_t port) noexcept;
    /// Copy @len bytes of a kernel-filled sockaddr (getsockname, accept).
    /// Returns: the address; an empty one when @len is 0 or too large.
    static SocketAddress from_sockaddr(const sockaddr* sa, socklen_t len) noexcept;

    /// AF_INET, AF_INET6, AF_UNIX or AF_UNSPEC.
    int family() const noexcept { return storage_.ss_family; }
    /// The port (host order) of an IP address; 0 for Unix and empty addresses.
    std::uint16_t port() const noexcept;
    /// The Unix socket path ("" for other families, and for an unnamed Unix peer).
    std::string path() const;
    const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
    sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
    socklen_t size() const noexcept { return len_; }

    /// "127.0.0.1:10809", "[::1]:10809", "unix:/run/x.sock", "unix:(unnamed)" or "(none)".
    /// Context: any thread; allocates.
    std::string to_string() const;
    /// As to_string() into @buf (NUL-terminated, truncated to @cap): for the request path,
    /// where nothing may allocate. Returns: @buf.
    const char* format(char* buf, std::size_t cap) const noexcept;

private:
    sockaddr_storage storage_;
    socklen_t len_ = 0;
};

} // namespace bioring
