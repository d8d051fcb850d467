// SPDX-License-Identifier: MIT
// Listener: socket + bind + listen, the Unix socket file's mode and lifetime (listener.hpp).
#include <bioring/io/listener.hpp>

#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

namespace bioring {
namespace {

// Throws the error of step @step (nullptr: listen itself) of listening on @name. @err is
// read by the caller before anything here can allocate (and so touch errno).
[[noreturn]] void fail(int err, const std::string& name, const char* step, int fd) {
    if (fd >= 0) {
        ::close(fd);
    }
    std::string what = "bioring: listen on " + name;
    if (step != nullptr) {
        what += ": ";
        what += step;
    }
    throw std::system_error(err, std::generic_category(), what);
}

/// Whether @path is a Unix socket file that nobody listens on (connect gets ECONNREFUSED).
bool is_stale_socket(const SocketAddress& at) {
    struct stat st {};
    if (::lstat(at.path().c_str(), &st) < 0 || !S_ISSOCK(st.st_mode)) {
        return false;
    }
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) {
        return false;
    }
    // A Unix connect never waits for the peer's accept: it fails or succeeds at once.
    const bool refused = ::connect(probe, at.data(), at.size()) < 0 && errno == ECONNREFUSED;
    ::close(probe);
    return refused;
}

} // namespace

Listener Listener::listen(const SocketAddress& at, const ListenOptions& o) {
    const std::string name = at.to_string();
    const int family = at.family();
    if (family != AF_INET && family != AF_INET6 && family != AF_UNIX) {
        fail(EAFNOSUPPORT, name, "not an IPv4, IPv6 or Unix address", -1);
    }
    const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        fail(errno, name, "socket", -1);
    }
    const int one = 1;
    const int v6only = o.v6_only ? 1 : 0;
    if (family != AF_UNIX && o.reuse_address &&
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) {
        fail(errno, name, "SO_REUSEADDR", fd);
    }
    if (family == AF_INET6 &&
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0) {
        fail(errno, name, "IPV6_V6ONLY", fd);
    }
    if (family == AF_UNIX && ::fchmod(fd, o.unix_mode & 07777) < 0) {
        // bind() creates the file with the socket inode's mode less the umask: never wider.
        fail(errno, name, "fchmod", fd);
    }
    if (::bind(fd, at.data(), at.size()) < 0) {
        int err = errno;
        if (err == EADDRINUSE && family == AF_UNIX && o.remove_stale_socket &&
            is_stale_socket(at) && ::unlink(at.path().c_str()) == 0) {
            err = ::bind(fd, at.data(), at.size()) < 0 ? errno : 0;
        }
        if (err != 0) {
            fail(err, name, "bind", fd);
        }
    }
    Listener l;
    l.multishot_ok_ = o.multishot_accept;
    l.state_.fd = fd;
    l.state_.path = name;
    if (family == AF_UNIX) {
        l.unlink_path_ = at.path(); // from now on the destructor removes the file
        if (::chmod(l.unlink_path_.c_str(), o.unix_mode & 07777) < 0) {
            fail(errno, name, "chmod", -1); // ~Listener closes and unlinks
        }
    }
    if (::listen(fd, o.backlog) < 0) {
        fail(errno, name, nullptr, -1);
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) {
        fail(errno, name, "getsockname", -1);
    }
    l.address_ = family == AF_UNIX
                     ? at
                     : SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    l.state_.path = l.address_.to_string();
    return l;
}

Listener::Listener(Listener&& other) noexcept
    : state_(std::move(other.state_)), address_(other.address_),
      unlink_path_(std::move(other.unlink_path_)),
      multishot_(std::exchange(other.multishot_, nullptr)), multishot_ok_(other.multishot_ok_) {
    other.state_.fd = -1;
    other.unlink_path_.clear();
}

Listener& Listener::operator=(Listener&& other) noexcept {
    if (this != &other) {
        close();
        state_ = std::move(other.state_);
        address_ = other.address_;
        unlink_path_ = std::move(other.unlink_path_);
        multishot_ = std::exchange(other.multishot_, nullptr);
        multishot_ok_ = other.multishot_ok_;
        other.state_.fd = -1;
        other.unlink_path_.clear();
    }
    return *this;
}

Listener::~Listener() {
    close();
}

void Listener::close() noexcept {
    if (multishot_ != nullptr) {
        detail::MultishotAccept::retire(std::exchange(multishot_, nullptr));
    }
    if (state_.fd >= 0) {
        ::close(state_.fd);
        state_.fd = -1;
    }
    if (!unlink_path_.empty()) {
        ::unlink(unlink_path_.c_str());
        unlink_path_.clear();
    }
}

} // namespace bioring
