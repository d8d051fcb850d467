// SPDX-License-Identifier: MIT
// The socket awaiters: transfers and their short-transfer loop, connect, accept, shutdown
// (socket_op.hpp).
#include <bioring/io/detail/socket_op.hpp>

#include <bioring/io/detail/multishot_accept.hpp>

#include <bioring/io/error_message.hpp>
#include <bioring/io/socket.hpp>

#include <climits>
#include <cstring>
#include <unistd.h>

namespace bioring::detail {

namespace {

const char* reason(int res) noexcept {
    return res == -ECANCELED ? "cancelled (deadline passed or stop requested)"
                             : std::strerror(-res);
}

} // namespace

// ---- SocketTransferOp ------------------------------------------------------------------

const char* SocketTransferOp::name() const noexcept {
    if (zc_) {
        return vector_ ? "sendmsg_all_zc" : "send_all_zc";
    }
    if (vector_) {
        if (send_) {
            return loop_ ? "sendmsg_all" : "sendmsg";
        }
        return loop_ ? "recvmsg_exact" : "recvmsg";
    }
    if (send_) {
        return loop_ ? "send_all" : "send";
    }
    return loop_ ? "recv_exact" : "recv";
}

bool SocketTransferOp::await_ready() noexcept {
    if (sock_->fd < 0) {
        set_error_message("bioring: %s on a closed socket (%s)", name(), sock_->path.c_str());
        return ready_with(-EBADF);
    }
    if (vector_) {
        if (cur_.count < 0 || cur_.count > IOV_MAX || (cur_.count > 0 && cur_.iov == nullptr)) {
            set_error_message("bioring: %s with %d segments (0..%d allowed) on %s", name(),
                              cur_.count, IOV_MAX, sock_->path.c_str());
            return ready_with(-EINVAL);
        }
        total_ = 0;
        for (int i = 0; i < cur_.count; ++i) {
            total_ += cur_.iov[i].iov_len;
            if (cur_.iov[i].iov_len > max_transfer || total_ > max_transfer) {
                set_error_message("bioring: %s of more than %zu bytes on %s", name(), max_transfer,
                                  sock_->path.c_str());
                return ready_with(-EINVAL);
            }
        }
    } else if (total_ > max_transfer) {
        set_error_message("bioring: %s of %zu bytes on %s: at most %zu per request", name(), total_,
                          sock_->path.c_str(), max_transfer);
        return ready_with(-EINVAL);
    }
    if (total_ == 0) {
        return ready_with(0);
    }
    return false;
}

bool SocketTransferOp::await_suspend(std::coroutine_handle<> waiter) noexcept {
    if (!attach(waiter)) {
        return false;
    }
    sock_->target(*this, reactor_);
    complete = &SocketTransferOp::on_complete;
    buf_index = -1;
    mode = send_ ? MSG_NOSIGNAL : 0;
    prepare_next();
    return start();
}

// Fill code/addr/len for the part of the request that is not done yet.
void SocketTransferOp::prepare_next() noexcept {
    const bool zc = zc_ && !sock_->zero_copy_refused;
    if (!vector_) {
        code = send_ ? (zc ? OpCode::send_zc : OpCode::send) : OpCode::recv;
        addr = buf_ + done_;
        len = static_cast<std::uint32_t>(total_ - done_);
        return;
    }
    cur_.skip_done();
    if (cur_.seg_off != 0) {
        // The partly done segment alone, with a plain recv/send: the caller's array is
        // never edited, and a msghdr cannot start inside a segment.
        code = send_ ? (zc ? OpCode::send_zc : OpCode::send) : OpCode::recv;
        addr = static_cast<std::byte*>(cur_.iov[cur_.seg].iov_base) + cur_.seg_off;
        len = static_cast<std::uint32_t>(cur_.iov[cur_.seg].iov_len - cur_.seg_off);
        return;
    }
    msg_ = msghdr{};
    // The kernel only reads the iovec array for sendmsg; recvmsg writes the buffers.
    msg_.msg_iov = const_cast<iovec*>(cur_.iov + cur_.seg);
    msg_.msg_iovlen = static_cast<std::size_t>(cur_.count - cur_.seg);
    code = send_ ? (zc ? OpCode::sendmsg_zc : OpCode::sendmsg) : OpCode::recvmsg;
    addr = &msg_;
    len = 0;
}

void SocketTransferOp::advance(std::size_t n) noexcept {
    done_ += n;
    if (vector_) {
        cur_.advance(n);
    }
}

void SocketTransferOp::fail(int res) noexcept {
    if (done_ > 0) {
        set_error_message("bioring: %s of %zu bytes %s %s: %s (after %zu bytes)", name(), total_,
                          send_ ? "to" : "from", sock_->path.c_str(), reason(res), done_);
    } else {
        set_error_message("bioring: %s of %zu bytes %s %s: %s", name(), total_,
                          send_ ? "to" : "from", sock_->path.c_str(), reason(res));
    }
    finish(res);
}

void SocketTransferOp::on_complete(Operation* op, int res) noexcept {
    auto* self = static_cast<SocketTransferOp*>(op);
    if (res == -EOPNOTSUPP && (self->code == OpCode::send_zc || self->code == OpCode::sendmsg_zc))
        [[unlikely]] {
        // Not a TCP or UDP socket: nothing was sent; send the same bytes the usual way.
        self->sock_->zero_copy_refused = true;
        self->prepare_next();
        self->resubmit();
        return;
    }
    if (res < 0) {
        if (!self->retry_transient(res, self->name())) {
            self->fail(res);
        }
        return;
    }
    const std::size_t left = self->total_ - self->done_;
    if (static_cast<std::size_t>(res) > left) [[unlikely]] {
        set_error_message("bioring: %s: completion reported %d bytes, only %zu were requested "
                          "(%s)",
                          self->name(), res, left, self->sock_->path.c_str());
        self->finish(-EIO);
        return;
    }
    if (res == 0) {
        if (!self->send_) {
            self->finish(static_cast<int>(self->done_)); // the peer shut down: EOF
            return;
        }
        set_error_message("bioring: %s of %zu bytes to %s made no progress", self->name(), left,
                          self->sock_->path.c_str());
        self->finish(-EIO);
        return;
    }
    self->advance(static_cast<std::size_t>(res));
    if (!self->loop_ || self->done_ == self->total_) {
        self->finish(static_cast<int>(self->done_));
        return;
    }
    self->prepare_next();
    self->resubmit();
}

// ---- ConnectOp -------------------------------------------------------------------------

ConnectOp::ConnectOp(ConnectOp&& o) noexcept
    : IoOp(std::move(o)), to_(o.to_), sock_fd_(o.sock_fd_), described_(o.described_) {
    o.sock_fd_ = -1;
}

ConnectOp::~ConnectOp() {
    if (sock_fd_ >= 0) {
        ::close(sock_fd_); // awaited but its result never taken: do not leak the socket
    }
}

bool ConnectOp::await_ready() noexcept {
    const int f = to_.family();
    if (f != AF_INET && f != AF_INET6 && f != AF_UNIX) {
        char where[160];
        set_error_message("bioring: connect to %s: not an IPv4, IPv6 or Unix address",
                          to_.format(where, sizeof where));
        described_ = true;
        return ready_with(-EAFNOSUPPORT);
    }
    return false;
}

bool ConnectOp::await_suspend(std::coroutine_handle<> waiter) noexcept {
    if (!attach(waiter)) {
        described_ = IoOp::await_resume().res == -ENXIO; // attach() said why
        return false;
    }
    sock_fd_ = ::socket(to_.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (sock_fd_ < 0) {
        const int e = errno;
        char where[160];
        set_error_message("bioring: connect to %s: socket: %s", to_.format(where, sizeof where),
                          std::strerror(e));
        described_ = true;
        ready_with(-e);
        return false;
    }
    code = OpCode::connect;
    fixed_file = false;
    fd = sock_fd_;
    addr = to_.data();
    offset = to_.size();
    complete = &ConnectOp::on_complete;
    return start();
}

void ConnectOp::on_complete(Operation* op, int res) noexcept {
    auto* self = static_cast<ConnectOp*>(op);
    self->finish(res);
}

Result<Socket> ConnectOp::await_resume() noexcept {
    const IoResult r = IoOp::await_resume();
    char where[160];
    to_.format(where, sizeof where);
    if (!r.ok()) {
        if (!described_) {
            set_error_message("bioring: connect to %s: %s", where, reason(r.res));
        }
        if (sock_fd_ >= 0) {
            ::close(sock_fd_);
            sock_fd_ = -1;
        }
        return unexpected(r.error());
    }
    const int fd = sock_fd_;
    sock_fd_ = -1;
    if (const int rc = nodelay_if_tcp(fd); rc < 0) {
        set_error_message("bioring: connect to %s: TCP_NODELAY: %s", where, std::strerror(-rc));
        ::close(fd);
        return unexpected(IoResult{rc}.error());
    }
    try {
        return Socket(fd, where);
    } catch (...) {
        ::close(fd);
        return unexpected(std::errc::not_enough_memory);
    }
}

// ---- AcceptOp --------------------------------------------------------------------------

bool AcceptOp::await_ready() noexcept {
    if (listener_->fd < 0) {
        set_error_message("bioring: accept on a closed listener (%s)", listener_->path.c_str());
        return ready_with(-EBADF);
    }
    return false;
}

MultishotAccept* AcceptOp::multishot() noexcept {
    if (shared_ == nullptr || reactor_->backend() != Backend::uring ||
        !MultishotAccept::supported()) {
        return nullptr;
    }
    if (*shared_ == nullptr) {
        *shared_ = MultishotAccept::create(listener_->fd); // once per listener
        if (*shared_ == nullptr) {
            return nullptr;
        }
    }
    return (*shared_)->claim(*reactor_) ? *shared_ : nullptr;
}

bool AcceptOp::await_suspend(std::coroutine_handle<> waiter) noexcept {
    if (!attach(waiter)) {
        return false;
    }
    if (MultishotAccept* m = multishot()) {
        const int queued = m->pop();
        if (queued >= 0) {
            multishot_ = true;
            ready_with(queued); // no syscall, no SQE
            return false;
        }
        if (m->can_wait()) {
            multishot_ = true;
            complete = &AcceptOp::on_wait_end;
            m->wait(*this);
            timer_ = start_wait_timer();
            return true;
        }
    }
    start_single_shot();
    return true;
}

void AcceptOp::start_single_shot() noexcept {
    multishot_ = false;
    listener_->target(*this, reactor_);
    code = OpCode::accept;
    addr = &peer_;
    peer_len_ = sizeof peer_;
    offset = reinterpret_cast<std::uintptr_t>(&peer_len_);
    mode = SOCK_CLOEXEC | SOCK_NONBLOCK;
    complete = &AcceptOp::on_complete;
    start();
}

void AcceptOp::on_complete(Operation* op, int res) noexcept {
    auto* self = static_cast<AcceptOp*>(op);
    // A connection reset before it was accepted is the peer's business, not the server's:
    // wait for the next one.
    if (res == -ECONNABORTED || res == -EINTR || res == -EAGAIN) {
        self->peer_len_ = sizeof self->peer_;
        self->resubmit();
        return;
    }
    self->finish(res);
}

void AcceptOp::deliver(int res) noexcept {
    if (timer_) {
        delivered_ = res;
        reactor_->cancel(*this); // on_wait_end hands it over once the timer is done
        return;
    }
    settle(res);
}

void AcceptOp::settle(int res) noexcept {
    if (res == fallback) {
        start_single_shot(); // the kernel refused multishot (its deadline starts afresh)
        return;
    }
    finish(res);
}

void AcceptOp::on_wait_end(Operation* op, int res) noexcept {
    auto* self = static_cast<AcceptOp*>(op);
    static_cast<void>(res); // expired (0) or stopped/cancelled (-ECANCELED): the same here
    self->timer_ = false;
    if (self->delivered_ != none) {
        // A descriptor (or error) came while the timer was being cancelled: it is ours.
        const int r = self->delivered_;
        self->delivered_ = none;
        self->settle(r);
        return;
    }
    (*self->shared_)->unwait(*self);
    self->finish(-ECANCELED);
}

Result<Socket> AcceptOp::await_resume() noexcept {
    const IoResult r = IoOp::await_resume();
    if (!r.ok()) {
        // (await_ready described a closed listener; attach() a missing reactor)
        if (r.res != -ENXIO && (r.res != -EBADF || listener_->fd >= 0)) {
            set_error_message("bioring: accept on %s: %s", listener_->path.c_str(), reason(r.res));
        }
        return unexpected(r.error());
    }
    const int fd = r.res;
    if (multishot_) {
        // The multishot accept carries no address (one buffer for many connections).
        peer_len_ = sizeof peer_;
        if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer_), &peer_len_) < 0) {
            peer_len_ = 0; // the peer is gone already: the next request reports it
        }
    }
    char peer[160];
    SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&peer_), peer_len_)
        .format(peer, sizeof peer);
    if (const int rc = nodelay_if_tcp(fd); rc < 0) {
        set_error_message("bioring: accept on %s from %s: TCP_NODELAY: %s", listener_->path.c_str(),
                          peer, std::strerror(-rc));
        ::close(fd);
        return unexpected(IoResult{rc}.error());
    }
    try {
        return Socket(fd, peer);
    } catch (...) {
        ::close(fd);
        return unexpected(std::errc::not_enough_memory);
    }
}

// ---- ShutdownOp ------------------------------------------------------------------------

bool ShutdownOp::await_ready() noexcept {
    if (sock_->fd < 0) {
        set_error_message("bioring: shutdown on a closed socket (%s)", sock_->path.c_str());
        return ready_with(-EBADF);
    }
    if (how_ != SHUT_RD && how_ != SHUT_WR && how_ != SHUT_RDWR) {
        set_error_message("bioring: shutdown(%d) on %s: expected SHUT_RD, SHUT_WR or SHUT_RDWR",
                          how_, sock_->path.c_str());
        return ready_with(-EINVAL);
    }
    return false;
}

bool ShutdownOp::await_suspend(std::coroutine_handle<> waiter) noexcept {
    if (!attach(waiter)) {
        return false;
    }
    sock_->target(*this, reactor_);
    code = OpCode::shutdown;
    len = static_cast<std::uint32_t>(how_);
    complete = &ShutdownOp::on_complete;
    return start();
}

void ShutdownOp::on_complete(Operation* op, int res) noexcept {
    auto* self = static_cast<ShutdownOp*>(op);
    if (res < 0) {
        set_error_message("bioring: shutdown(%s) on %s: %s",
                          self->how_ == SHUT_WR   ? "SHUT_WR"
                          : self->how_ == SHUT_RD ? "SHUT_RD"
                                                  : "SHUT_RDWR",
                          self->sock_->path.c_str(), reason(res));
    }
    self->finish(res);
}

} // namespace bioring::detail
