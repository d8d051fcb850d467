// SPDX-License-Identifier: MIT
// The Asio backend's socket operations: readiness from Asio's reactor, then the
// non-blocking syscall on the reactor thread (see asio_socket.hpp).
#include <bioring/runtime/detail/asio_socket.hpp>

#include <bioring/runtime/detail/handler_pool.hpp>

// As in asio_backend.cpp: Asio's scheduler fences are invisible to TSan (-Wtsan).
#if defined(__GNUC__) && !defined(__clang__) && defined(__SANITIZE_THREAD__)
#pragma GCC diagnostic ignored "-Wtsan"
#endif

#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>

#include <sys/socket.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <new>
#include <utility>

namespace bioring::detail {

namespace {

// Operation::reactor_flags_ bits of a socket operation (AsioBackend::submit zeroes them);
// Operation::reactor_res_ holds the descriptor. Owner thread only: no atomics.
constexpr std::uint32_t f_cancelled = 1u << 8;
constexpr std::uint32_t f_waiting = 1u << 9;
constexpr std::uint32_t f_connecting = 1u << 10; ///< connect() returned EINPROGRESS

/// syscall() result: wait for readiness and try again (no byte count, no -errno).
constexpr int would_block = INT_MIN;

bool waits_for_write(OpCode c) noexcept {
    return c == OpCode::connect || c == OpCode::send || c == OpCode::sendmsg ||
           c == OpCode::send_zc || c == OpCode::sendmsg_zc;
}

// One non-blocking attempt. Returns: the result (>= 0 or -errno), or would_block.
int syscall(Operation& op) noexcept {
    const int fd = op.reactor_res_;
    for (;;) {
        ssize_t r = 0;
        switch (op.code) {
        case OpCode::accept:
            r = ::accept4(fd, static_cast<sockaddr*>(op.addr),
                          reinterpret_cast<socklen_t*>(static_cast<std::uintptr_t>(op.offset)),
                          op.mode);
            break;
        case OpCode::connect:
            if (op.reactor_flags_ & f_connecting) {
                int err = 0;
                socklen_t len = sizeof err;
                if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
                    return -errno;
                }
                return -err;
            }
            r = ::connect(fd, static_cast<const sockaddr*>(op.addr),
                          static_cast<socklen_t>(op.offset));
            if (r < 0 && (errno == EINPROGRESS || errno == EINTR)) {
                op.reactor_flags_ |= f_connecting; // completes in the background
                return would_block;
            }
            break;
        case OpCode::recv:
            r = ::recv(fd, op.addr, op.len, op.mode | MSG_DONTWAIT);
            break;
        case OpCode::send:
        case OpCode::send_zc: // no zero-copy here: a plain send, complete once it returns
            r = ::send(fd, op.addr, op.len, op.mode | MSG_DONTWAIT);
            break;
        case OpCode::recvmsg:
            r = ::recvmsg(fd, static_cast<msghdr*>(op.addr), op.mode | MSG_DONTWAIT);
            break;
        case OpCode::sendmsg:
        case OpCode::sendmsg_zc:
            r = ::sendmsg(fd, static_cast<const msghdr*>(op.addr), op.mode | MSG_DONTWAIT);
            break;
        case OpCode::shutdown:
            r = ::shutdown(fd, static_cast<int>(op.len));
            break;
        default:
            return -EINVAL;
        }
        if (r >= 0) {
            return static_cast<int>(r);
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return would_block;
        }
        return -errno;
    }
}

/// @f with its Asio operation memory drawn from @pool.
template <class F>
PooledHandler<F> pooled(HandlerPool& pool, F f) noexcept {
    return {std::move(f), &pool};
}

} // namespace

struct AsioSockets::Slot {
    explicit Slot(asio::io_context& ioc) : desc(ioc.get_executor()) {}
    // Bound to the io_context's own executor: the type-erased default would make each
    // wait operation too large for a HandlerPool block (as the backend's timers).
    asio::posix::basic_stream_descriptor<asio::io_context::executor_type> desc;
    unsigned waiters = 0; ///< operations waiting on it; registered with epoll while > 0
};

AsioSockets::AsioSockets(asio::io_context& ioc, HandlerPool& handlers, Finish finish, void* ctx)
    : ioc_(ioc), handlers_(handlers), finish_(finish), ctx_(ctx) {}

AsioSockets::~AsioSockets() {
    for (auto& s : by_fd_) {
        if (s && s->desc.is_open()) {
            s->desc.release(); // deregister; the descriptor itself is not ours to close
        }
    }
}

void AsioSockets::start(Operation& op, int fd) noexcept {
    op.reactor_res_ = fd;
    asio::post(ioc_, pooled(handlers_, [this, p = &op] { attempt(*p); }));
}

void AsioSockets::attempt(Operation& op) noexcept {
    if (op.reactor_flags_ & f_cancelled) {
        finish_(ctx_, &op, -ECANCELED);
        return;
    }
    if (op.reactor_res_ < 0) {
        finish_(ctx_, &op, -EBADF);
        return;
    }
    const int r = syscall(op);
    if (r != would_block) {
        finish_(ctx_, &op, r);
        return;
    }
    int err = 0;
    Slot* slot = acquire(op.reactor_res_, err);
    if (slot == nullptr) {
        finish_(ctx_, &op, err);
        return;
    }
    wait(op, slot);
}

void AsioSockets::wait(Operation& op, Slot* slot) noexcept {
    op.reactor_flags_ |= f_waiting;
    const auto w = waits_for_write(op.code) ? asio::posix::descriptor_base::wait_write
                                            : asio::posix::descriptor_base::wait_read;
    slot->desc.async_wait(w, pooled(handlers_, [this, p = &op, slot](const asio::error_code&) {
                              on_ready(*p, slot);
                          }));
}

void AsioSockets::on_ready(Operation& op, Slot* slot) noexcept {
    op.reactor_flags_ &= ~f_waiting;
    if (op.reactor_flags_ & f_cancelled) {
        release(slot);
        finish_(ctx_, &op, -ECANCELED);
        return;
    }
    // Ready, or woken because another operation on this fd was cancelled: try again.
    const int r = syscall(op);
    if (r == would_block) {
        wait(op, slot);
        return;
    }
    release(slot);
    finish_(ctx_, &op, r);
}

void AsioSockets::cancel(Operation& op) noexcept {
    op.reactor_flags_ |= f_cancelled;
    if (op.reactor_flags_ & f_waiting) {
        Slot* slot = by_fd_[static_cast<std::size_t>(op.reactor_res_)].get();
        asio::error_code ec;
        slot->desc.cancel(ec); // every wait on this fd wakes; the others wait again
    }
    // Queued (its attempt not run yet): the attempt sees the flag.
}

AsioSockets::Slot* AsioSockets::acquire(int fd, int& err) noexcept {
    const auto i = static_cast<std::size_t>(fd);
    try {
        if (i >= by_fd_.size()) {
            by_fd_.resize(i + 1);
        }
        if (!by_fd_[i]) {
            by_fd_[i] = std::make_unique<Slot>(ioc_);
        }
    } catch (const std::bad_alloc&) {
        err = -ENOMEM;
        return nullptr;
    }
    Slot* slot = by_fd_[i].get();
    if (slot->waiters == 0) {
        asio::error_code ec;
        slot->desc.assign(fd, ec);
        if (ec) {
            err = -ec.value();
            return nullptr;
        }
    }
    ++slot->waiters;
    return slot;
}

void AsioSockets::release(Slot* slot) noexcept {
    if (--slot->waiters == 0) {
        slot->desc.release(); // deregister from epoll; the fd stays open
    }
}

} // namespace bioring::detail
