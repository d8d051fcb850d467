// SPDX-License-Identifier: MIT
// Socket: ownership, options and addresses (socket.hpp); the requests are in socket_op.cpp.
#include <bioring/io/socket.hpp>

#include <bioring/io/error_message.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace bioring {

namespace detail {

int nodelay_if_tcp(int fd) noexcept {
    int domain = 0;
    socklen_t len = sizeof domain;
    if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0) {
        return -errno;
    }
    if (domain != AF_INET && domain != AF_INET6) {
        return 0;
    }
    const int one = 1;
    return ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ? -errno : 0;
}

} // namespace detail

Socket::Socket(int fd, std::string name) noexcept {
    state_.fd = fd;
    state_.path = std::move(name);
}

Result<Socket> Socket::adopt(int fd, std::string name) {
    const int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        ::fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        const int e = errno;
        detail::set_error_message("bioring: adopt socket %d (%s): %s", fd, name.c_str(),
                                  std::strerror(e));
        ::close(fd);
        return unexpected(std::error_code(e, std::generic_category()));
    }
    if (const int rc = detail::nodelay_if_tcp(fd); rc < 0) {
        detail::set_error_message("bioring: adopt socket %d (%s): TCP_NODELAY: %s", fd,
                                  name.c_str(), std::strerror(-rc));
        ::close(fd);
        return unexpected(std::error_code(-rc, std::generic_category()));
    }
    return Socket(fd, std::move(name));
}

Result<std::pair<Socket, Socket>> Socket::pair(const std::string& name) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0) {
        const int e = errno;
        detail::set_error_message("bioring: socketpair (%s): %s", name.c_str(), std::strerror(e));
        return unexpected(std::error_code(e, std::generic_category()));
    }
    return std::pair<Socket, Socket>(Socket(fds[0], name + " a"), Socket(fds[1], name + " b"));
}

Socket::Socket(Socket&& other) noexcept : state_(std::move(other.state_)) {
    other.state_.fd = -1;
}

Socket& Socket::operator=(Socket&& other) noexcept {
    if (this != &other) {
        close_now();
        state_ = std::move(other.state_);
        other.state_.fd = -1;
    }
    return *this;
}

Socket::~Socket() {
    close_now();
}

void Socket::close_now() noexcept {
    if (state_.fd >= 0) {
        ::close(state_.fd);
        state_.fd = -1;
    }
}

int Socket::set_nodelay(bool on) noexcept {
    const int v = on ? 1 : 0;
    if (state_.fd < 0) {
        return -EBADF;
    }
    return ::setsockopt(state_.fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) < 0 ? -errno : 0;
}

void Socket::reset() noexcept {
    if (state_.fd < 0) {
        return;
    }
    const linger l{1, 0};
    ::setsockopt(state_.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close_now();
}

SocketAddress Socket::local_address() const noexcept {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (state_.fd < 0 || ::getsockname(state_.fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) {
        return {};
    }
    return SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

SocketAddress Socket::peer_address() const noexcept {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (state_.fd < 0 || ::getpeername(state_.fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) {
        return {};
    }
    return SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

} // namespace bioring
