// SPDX-License-Identifier: MIT
// Socket: a connected stream socket (TCP over IPv4/IPv6, or Unix) driven by the calling
// thread's reactor.
//
// DESIGN. As DirectFile for files: the Socket holds the descriptor and the peer's name;
// each request is an awaiter in the awaiting coroutine's frame that allocates nothing. On
// io_uring every request is one SQE (CONNECT, RECV, SEND, RECVMSG, SENDMSG, SHUTDOWN,
// CLOSE); on the Asio backend the reactor thread waits for readiness in Asio's own epoll
// reactor and then makes the non-blocking syscall (no thread pool, no blocking call).
// Descriptors are SOCK_CLOEXEC and O_NONBLOCK; TCP sockets get TCP_NODELAY; every send
// carries MSG_NOSIGNAL, so a closed peer is -EPIPE, never SIGPIPE.
// TRANSFERS. recv/send/recvmsg/sendmsg make one kernel transfer and may move less than
// asked. recv_exact/send_all/recvmsg_exact/sendmsg_all loop over short transfers until
// the whole length has moved (what a protocol with fixed-size headers needs).
// Every request takes IoOptions: a deadline for the whole request and a stop_token; either
// makes it complete with -ECANCELED (an in-flight recv is cancelled in the kernel).
// THREADING. A Socket may be used from any reactor thread, and one recv may be in flight
// at the same time as one send (full duplex); two concurrent recvs (or sends) on one
// socket interleave their bytes unpredictably. connect/close/moves are not concurrent with
// requests. LIFETIME. A request keeps a pointer into its Socket: do not move or destroy
// the Socket, nor release the buffer or iovec array, while a request is being awaited.
// ERRORS. Requests never throw: IoResult with -errno, and last_error_message() names the
// operation, the peer and the reason.
#pragma once

#include <bioring/io/detail/close_op.hpp>
#include <bioring/io/detail/file_state.hpp>
#include <bioring/io/detail/recv_select_op.hpp>
#include <bioring/io/detail/socket_op.hpp>
#include <bioring/io/io_options.hpp>
#include <bioring/io/socket_address.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <string>
#include <utility>

namespace bioring {

class Socket {
public:
    /// Connect a new stream socket to @to.
    /// Context: a coroutine on a reactor thread; suspends; allocates only the Socket's
    /// name when it succeeds. Returns (co_await): Result<Socket>; errors as ConnectOp
    /// (ECONNREFUSED, ECANCELED on IoOptions::timeout or stop, ...).
    static detail::ConnectOp connect(const SocketAddress& to, IoOptions o = {}) noexcept {
        return detail::ConnectOp(to, std::move(o));
    }
    /// Take ownership of a connected stream-socket descriptor (socketpair(2), a descriptor
    /// inherited from a parent): sets O_NONBLOCK and FD_CLOEXEC, and TCP_NODELAY on TCP.
    /// @name names the peer in error messages. Context: any thread; allocates.
    /// Returns: the socket, or the fcntl error (the descriptor is then closed).
    static Result<Socket> adopt(int fd, std::string name);
    /// A connected pair of Unix stream sockets (socketpair(2)), named @name ("a" / "b").
    /// Context: any thread. Returns: the pair, or socketpair's error (EMFILE, ...).
    static Result<std::pair<Socket, Socket>> pair(const std::string& name = "socketpair");

    /// A closed socket (fd() == -1); requests on it complete with -EBADF.
    Socket() noexcept = default;
    Socket(Socket&& other) noexcept;
    Socket& operator=(Socket&& other) noexcept;
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    /// Closes synchronously if still open. Context: any thread; never throws.
    ~Socket();

    /// Receive at most @len bytes (one kernel transfer).
    /// Context: a coroutine on a reactor thread; suspends; allocates nothing.
    /// Returns (co_await): IoResult with the bytes received (1..@len), 0 when the peer has
    /// shut down its sending side (EOF), or -errno: -ECONNRESET (peer reset), -ECANCELED
    /// (timeout or stop), -EBADF (closed), -EINVAL (@len over 0x7ffff000), -ENXIO (no
    /// reactor on this thread).
    detail::SocketTransferOp recv(void* buf, std::size_t len, IoOptions o = {}) noexcept {
        return detail::SocketTransferOp(state_, false, false, buf, len, std::move(o));
    }
    /// Receive at most one buffer's worth into a buffer of @ring (one kernel transfer);
    /// with a ring the kernel picks from, the buffer is chosen only when data arrives, so
    /// a receive that waits holds none (runtime/buffer_ring.hpp).
    /// Context: as recv(); @ring must be the awaiting reactor's (Reactor::buffer_ring()).
    /// Returns (co_await): SelectedRecv — the bytes received with the buffer's id and data
    /// (give it back to @ring when done), or 0 at EOF or -errno as recv() with no buffer
    /// held; -ENOBUFS when every buffer of the ring is held.
    detail::RecvSelectOp recv_select(BufferRing& ring, IoOptions o = {}) noexcept {
        return detail::RecvSelectOp(state_, ring, std::move(o));
    }
    /// Receive exactly @len bytes, looping over short receives.
    /// Returns (co_await): @len; fewer (0 included) when the peer shut down first (EOF:
    /// the bytes before it are in @buf); or -errno as recv(). Context: as recv().
    detail::SocketTransferOp recv_exact(void* buf, std::size_t len, IoOptions o = {}) noexcept {
        return detail::SocketTransferOp(state_, false, true, buf, len, std::move(o));
    }
    /// Send at most @len bytes (one kernel transfer, MSG_NOSIGNAL).
    /// Returns (co_await): the bytes sent (1..@len), or -errno: -EPIPE (peer gone),
    /// -ECONNRESET, -ECANCELED, -EBADF, -EINVAL, -ENXIO. Context: as recv().
    detail::SocketTransferOp send(const void* buf, std::size_t len, IoOptions o = {}) noexcept {
        return detail::SocketTransferOp(state_, true, false, const_cast<void*>(buf), len,
                                        std::move(o));
    }
    /// Send all @len bytes, looping over short sends.
    /// Returns (co_await): @len, or -errno as send() (bytes already sent are lost to the
    /// caller: the stream is then unusable). Context: as recv().
    detail::SocketTransferOp send_all(const void* buf, std::size_t len, IoOptions o = {}) noexcept {
        return detail::SocketTransferOp(state_, true, true, const_cast<void*>(buf), len,
                                        std::move(o));
    }
    /// Scatter receive into @iovcnt segments (0..IOV_MAX), one kernel transfer (recvmsg).
    /// The array must stay valid until co_await returns. Returns: as recv().
    detail::SocketTransferOp recvmsg(const iovec* iov, int iovcnt, IoOptions o = {}) noexcept {
        return detail::SocketTransferOp(state_, false, false, iov, iovcnt, std::move(o));
    }
    /// Scatter receive that fills every segment (as recv_exact()).
    detail::SocketTransferOp recvmsg_exact(const iovec* iov, int iovcnt,
                                           IoOptions o = {}) noexcept {
        return detail::SocketTransferOp(state_, false, true, iov, iovcnt, std::move(o));
    }
    /// Gather send, one kernel transfer (sendmsg, MSG_NOSIGNAL). Returns: as send().
    detail::SocketTransferOp sendmsg(const iovec* iov, int iovcnt, IoOptions o = {}) noexcept {
        return detail::SocketTransferOp(state_, true, false, iov, iovcnt, std::move(o));
    }
    /// Gather send of every segment (as send_all()): a reply header and its payload in
    /// one request, without copying them together.
    detail::SocketTransferOp sendmsg_all(const iovec* iov, int iovcnt, IoOptions o = {}) noexcept {
        return detail::SocketTransferOp(state_, true, true, iov, iovcnt, std::move(o));
    }
    /// send_all() without copying @buf into the kernel where the socket allows it (io_uring
    /// IORING_OP_SEND_ZC on a TCP socket: the kernel sends from @buf's pages). co_await
    /// returns only after the kernel's notification that it holds no reference to @buf
    /// any more, so the buffer may be reused or freed at once, as after send_all(). Where
    /// zero copy is not possible (a Unix socket: the kernel says -EOPNOTSUPP, remembered
    /// per socket; a kernel without SEND_ZC; the Asio backend) the bytes go out as
    /// send_all() sends them. Worth it for large sends only: each notification is one more
    /// completion, and page pinning costs more than copying a few KiB.
    /// Returns (co_await): as send_all(). Context: as recv().
    detail::SocketTransferOp send_all_zc(const void* buf, std::size_t len,
                                         IoOptions o = {}) noexcept {
        return detail::SocketTransferOp(state_, true, true, const_cast<void*>(buf), len,
                                        std::move(o), true);
    }
    /// sendmsg_all() with zero copy where possible (IORING_OP_SENDMSG_ZC), as send_all_zc().
    detail::SocketTransferOp sendmsg_all_zc(const iovec* iov, int iovcnt,
                                            IoOptions o = {}) noexcept {
        return detail::SocketTransferOp(state_, true, true, iov, iovcnt, std::move(o), true);
    }
    /// Whether the kernel refused a zero-copy send on this socket (not TCP/UDP): later
    /// *_zc requests copy without asking. Context: the socket's reactor thread.
    bool zero_copy_refused() const noexcept { return state_.zero_copy_refused; }
    /// shutdown(2): SHUT_WR half-closes (the peer reads EOF, this side can still
    /// receive), SHUT_RD, SHUT_RDWR. Context: as recv().
    /// Returns (co_await): 0 or -errno (-ENOTCONN, -EBADF, -EINVAL for a bad @how).
    detail::ShutdownOp shutdown(int how = SHUT_WR, IoOptions o = {}) noexcept {
        return detail::ShutdownOp(state_, how, std::move(o));
    }
    /// Close asynchronously; the socket reads as closed as soon as the close is submitted.
    /// Context: a coroutine (without a reactor it closes synchronously).
    /// Returns (co_await): 0 (also when already closed) or -errno from close(2).
    CloseOp close() noexcept { return CloseOp(state_); }

    /// TCP_NODELAY on or off (on by default for TCP). Context: any thread.
    /// Returns: 0, or -errno (-EOPNOTSUPP on a Unix socket, -EBADF when closed).
    int set_nodelay(bool on) noexcept;
    /// Close now with a TCP reset: SO_LINGER {1, 0}, then close(2); the peer's pending and
    /// next requests fail with -ECONNRESET. Context: any thread, no request in flight.
    void reset() noexcept;

    /// The local and the peer's address (getsockname/getpeername; empty on error).
    SocketAddress local_address() const noexcept;
    SocketAddress peer_address() const noexcept;
    /// The name used in error messages: the peer's address as text, or adopt()'s name.
    const std::string& name() const noexcept { return state_.path; }
    int fd() const noexcept { return state_.fd; }
    bool is_open() const noexcept { return state_.fd >= 0; }

private:
    friend class detail::ConnectOp;
    friend class detail::AcceptOp;
    Socket(int fd, std::string name) noexcept;
    void close_now() noexcept;

    detail::FileState state_; ///< fd and, in `path`, the peer's name
};

} // namespace bioring
