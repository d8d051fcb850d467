// SPDX-License-Identifier: MIT
// Listener: a listening stream socket (TCP over IPv4/IPv6, or Unix) whose accept() is a
// request on the calling thread's reactor.
//
// listen() is setup: blocking syscalls, errors thrown as std::system_error naming the
// address. accept() is a request like any other: an awaiter that allocates nothing while
// it waits, with IoOptions (deadline, stop_token). On io_uring it uses a multishot accept
// (io/detail/multishot_accept.hpp): one SQE keeps accepting, connections that arrive
// while nobody awaits wait in a bounded queue (MultishotAccept::queue_bound), and an
// accept() that finds one queued completes without a syscall or an SQE. The multishot
// belongs to the first reactor that awaits accept(); on any other reactor, with
// ListenOptions::multishot_accept off, or on a kernel that refuses it, accept() is a
// single-shot IORING_OP_ACCEPT. On Asio it waits for readiness in Asio's reactor and then
// calls accept4(). Accepted sockets are SOCK_CLOEXEC and O_NONBLOCK, with TCP_NODELAY on
// TCP (multishot: the peer's name comes from getpeername()).
// A Unix listener creates its socket file with ListenOptions::unix_mode (0600 by default):
// the mode is set on the socket before bind(), so the file never exists with wider
// permissions, and chmod()ed after it to undo the umask; the destructor unlinks the file.
// THREADING. Several reactors may await accept() on one Listener at once (each accepted
// connection goes to one of them); listen/close/moves are not concurrent with requests.
#pragma once

#include <bioring/io/detail/close_op.hpp>
#include <bioring/io/detail/file_state.hpp>
#include <bioring/io/detail/multishot_accept.hpp>
#include <bioring/io/detail/socket_op.hpp>
#include <bioring/io/io_options.hpp>
#include <bioring/io/socket_address.hpp>

#include <sys/socket.h>

#include <string>

namespace bioring {

struct ListenOptions {
    int backlog = SOMAXCONN;   ///< listen(2) backlog
    bool reuse_address = true; ///< SO_REUSEADDR (IP): rebind at once after a restart
    bool v6_only = false;      ///< IPV6_V6ONLY on an IPv6 listener (else it takes IPv4 too)
    unsigned unix_mode = 0600; ///< permissions of a Unix socket file
    /// Unix: if the path is a socket nobody listens on (connect gets ECONNREFUSED), remove
    /// it and bind again; a live socket or any other file is never removed (EADDRINUSE).
    bool remove_stale_socket = true;
    /// io_uring: accept with one multishot SQE and a queue (see above); false forces one
    /// IORING_OP_ACCEPT per accept() (tests of the single-shot path use it).
    bool multishot_accept = true;
};

class Listener {
public:
    /// socket + bind + listen on @at (port 0: the kernel picks; see address()).
    /// Context: any thread; blocking syscalls; allocates.
    /// Returns: the listener. Throws std::system_error whose what() names the address and
    /// the failing step (EADDRINUSE, EACCES, EADDRNOTAVAIL, ENAMETOOLONG, ...).
    static Listener listen(const SocketAddress& at, const ListenOptions& o = {});

    /// A closed listener; accept() on it completes with EBADF.
    Listener() noexcept = default;
    Listener(Listener&& other) noexcept;
    Listener& operator=(Listener&& other) noexcept;
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;
    /// Closes (synchronously) and unlinks a Unix socket file it created. Context: any
    /// thread, no accept in flight, not concurrent with the destruction of the reactor
    /// that owns its multishot; never throws.
    ~Listener();

    /// Accept one connection.
    /// Context: a coroutine on a reactor thread; suspends; allocates only the accepted
    /// Socket's name. Returns (co_await): Result<Socket>; errors as AcceptOp (ECANCELED on
    /// IoOptions::timeout or stop, EBADF when closed, EMFILE, ...).
    detail::AcceptOp accept(IoOptions o = {}) noexcept {
        return detail::AcceptOp(state_, multishot_ok_ ? &multishot_ : nullptr, std::move(o));
    }
    /// Close the listening socket (a pending accept must be cancelled first), close the
    /// connections queued by the multishot and cancel it, and unlink a Unix socket file.
    /// Context: any thread (as the destructor); never throws.
    void close() noexcept;

    /// The bound address (the kernel's port when listen() was given port 0).
    const SocketAddress& address() const noexcept { return address_; }
    int fd() const noexcept { return state_.fd; }
    bool is_open() const noexcept { return state_.fd >= 0; }

private:
    detail::FileState state_; ///< fd and, in `path`, the address as text
    SocketAddress address_;
    std::string unlink_path_; ///< the Unix socket file to remove at close ("" if none)
    detail::MultishotAccept* multishot_ = nullptr; ///< made by the first multishot accept
    bool multishot_ok_ = true;                     ///< ListenOptions::multishot_accept
};

} // namespace bioring
