// SPDX-License-Identifier: MIT
// The awaiters behind Socket and Listener: SocketTransferOp (recv, send, recvmsg, sendmsg
// and their looping forms), ConnectOp, AcceptOp and ShutdownOp.
//
// Like the file awaiters they derive from IoOp: each lives in the awaiting coroutine's
// frame, is its own completion record and allocates nothing (ConnectOp and AcceptOp carry
// their sockaddr_storage inside). The socket's FileState (descriptor + the peer's name in
// `path`, for messages) must stay where it is until co_await returns, as must the buffer
// and the iovec array. A looping transfer (recv_exact, send_all, ...) resubmits the
// remainder from the completion callback; vectored ones never edit the caller's iovec
// array: a partly done segment is finished with a plain recv/send, then the following
// segments go out as one recvmsg/sendmsg again. Deadlines (IoOptions::timeout) cover the
// whole request, resubmissions included. Zero-copy sends (send_zc / sendmsg_zc opcodes)
// complete only once the kernel has given the buffer back; a socket whose kernel refuses
// them (-EOPNOTSUPP: Unix sockets) gets the same bytes as a plain send, and is marked so
// that later zero-copy requests on it do not ask again.
#pragma once

#include <bioring/io/detail/file_state.hpp>
#include <bioring/io/detail/io_op.hpp>
#include <bioring/io/detail/iov_cursor.hpp>
#include <bioring/io/socket_address.hpp>
#include <bioring/runtime/expected.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <coroutine>
#include <cstddef>
#include <cstdint>

namespace bioring {

class Socket;
class Listener;

namespace detail {

class MultishotAccept;

/// Set TCP_NODELAY on an IP stream socket (nothing on a Unix one).
/// Returns: 0 or -errno. Context: any thread; never allocates.
int nodelay_if_tcp(int fd) noexcept;

class SocketTransferOp final : public IoOp {
public:
    /// Validate: a closed socket completes at once with -EBADF, an empty request with 0,
    /// a length over 0x7ffff000 (or an iovec count outside 0..IOV_MAX) with -EINVAL.
    /// Context: awaiting coroutine; never allocates.
    bool await_ready() noexcept;
    /// Submit. Context: a reactor thread. Returns: false when it completed at once.
    bool await_suspend(std::coroutine_handle<> waiter) noexcept;

private:
    friend class bioring::Socket;
    SocketTransferOp(const FileState& s, bool send, bool loop, void* buf, std::size_t len,
                     IoOptions&& o, bool zc = false) noexcept
        : IoOp(std::move(o)), sock_(&s), buf_(static_cast<std::byte*>(buf)), total_(len),
          send_(send), loop_(loop), zc_(zc) {}
    SocketTransferOp(const FileState& s, bool send, bool loop, const iovec* iov, int iovcnt,
                     IoOptions&& o, bool zc = false) noexcept
        : IoOp(std::move(o)), sock_(&s), cur_{iov, iovcnt}, send_(send), loop_(loop), vector_(true),
          zc_(zc) {}

    static void on_complete(Operation* op, int res) noexcept;
    const char* name() const noexcept;
    void advance(std::size_t n) noexcept;
    void prepare_next() noexcept;
    void fail(int res) noexcept;

    const FileState* sock_;
    std::byte* buf_ = nullptr; ///< contiguous form
    IovCursor cur_;            ///< vectored form
    msghdr msg_{};             ///< recvmsg/sendmsg header (points into the caller's array)
    std::size_t total_ = 0;    ///< bytes requested
    std::size_t done_ = 0;     ///< bytes moved so far
    bool send_;
    bool loop_; ///< recv_exact/send_all: keep going until total_
    bool vector_ = false;
    bool zc_ = false; ///< zero-copy send (send_all_zc, sendmsg_all_zc) while the socket allows
};

/// co_await yields Result<Socket>: the connected socket (TCP_NODELAY set for TCP), or the
/// error (ECONNREFUSED, ETIMEDOUT, ECANCELED on timeout or stop, ENXIO without a reactor,
/// EAFNOSUPPORT for an empty address, or socket()'s errno) with last_error_message()
/// naming the address.
class ConnectOp final : public IoOp {
public:
    bool await_ready() noexcept;
    bool await_suspend(std::coroutine_handle<> waiter) noexcept;
    Result<Socket> await_resume() noexcept;
    ConnectOp(ConnectOp&& o) noexcept;
    ~ConnectOp();

private:
    friend class bioring::Socket;
    ConnectOp(const SocketAddress& to, IoOptions&& o) noexcept : IoOp(std::move(o)), to_(to) {}
    static void on_complete(Operation* op, int res) noexcept;

    SocketAddress to_;
    int sock_fd_ = -1;       ///< the socket being connected; handed to the Socket on success
    bool described_ = false; ///< the error message is already set (refused before submit)
};

/// co_await yields Result<Socket>: the accepted connection (SOCK_CLOEXEC|SOCK_NONBLOCK,
/// TCP_NODELAY for TCP) named after its peer, or the error (ECANCELED on timeout or
/// stop, EBADF on a closed listener, EMFILE/ENFILE, ...) with a message naming the
/// listener's address. ECONNABORTED (a peer that reset before it was accepted), EINTR
/// and EAGAIN are retried, never reported.
/// Two ways (listener.hpp): with the listener's multishot (io_uring, on the reactor that
/// owns it) it takes a queued descriptor without suspending, or joins the waiters and is
/// handed the next one (deliver()); a deadline or stop token is then a TIMEOUT request of
/// this same Operation, and a descriptor that arrives while that timer is being cancelled
/// is still handed over, never lost. Otherwise one IORING_OP_ACCEPT (or Asio's accept).
class AcceptOp final : public IoOp {
public:
    bool await_ready() noexcept;
    bool await_suspend(std::coroutine_handle<> waiter) noexcept;
    Result<Socket> await_resume() noexcept;

private:
    friend class bioring::Listener;
    friend class MultishotAccept;
    /// @shared: the listener's multishot state slot (created on first use), or nullptr
    /// for single-shot only.
    AcceptOp(const FileState& l, MultishotAccept** shared, IoOptions&& o) noexcept
        : IoOp(std::move(o)), listener_(&l), shared_(shared) {}
    static void on_complete(Operation* op, int res) noexcept;
    static void on_wait_end(Operation* op, int res) noexcept;
    /// The multishot state for this reactor, or nullptr (single-shot).
    MultishotAccept* multishot() noexcept;
    void start_single_shot() noexcept;
    /// From MultishotAccept (owner thread), after taking this op off the waiters: @res is
    /// a descriptor, -errno, or fallback (the kernel refused multishot: accept alone).
    void deliver(int res) noexcept;
    void settle(int res) noexcept;

    static constexpr int fallback = -0x7fff0000; ///< deliver(): redo as a single-shot accept
    static constexpr int none = -0x7fff0001;     ///< nothing delivered yet

    const FileState* listener_;
    MultishotAccept** shared_;
    AcceptOp* next_ = nullptr; ///< MultishotAccept's waiter list
    int delivered_ = none;     ///< what deliver() brought while the wait timer was live
    bool timer_ = false;       ///< the wait timer (this Operation as a TIMEOUT) is in flight
    bool multishot_ = false;   ///< the descriptor came from the multishot: no peer address
    sockaddr_storage peer_{};
    socklen_t peer_len_ = 0;
};

/// co_await yields IoResult: 0, or -errno (-ENOTCONN, -EBADF on a closed socket, ...).
class ShutdownOp final : public IoOp {
public:
    bool await_ready() noexcept;
    bool await_suspend(std::coroutine_handle<> waiter) noexcept;

private:
    friend class bioring::Socket;
    ShutdownOp(const FileState& s, int how, IoOptions&& o) noexcept
        : IoOp(std::move(o)), sock_(&s), how_(how) {}
    static void on_complete(Operation* op, int res) noexcept;

    const FileState* sock_;
    int how_;
};

} // namespace detail
} // namespace bioring
