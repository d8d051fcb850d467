// SPDX-License-Identifier: MIT
// AsioSockets: the socket operations (accept .. shutdown) of the Asio backend
// (runtime-private; the AsioBackend owns one and routes those opcodes here).
//
// Model: readiness from Asio's own reactor (epoll), then the non-blocking syscall on the
// reactor thread. An operation first tries its syscall from a posted handler (never inside
// submit()); on EAGAIN (EINPROGRESS for connect) it waits with async_wait(wait_read or
// wait_write) on a posix descriptor registered for that fd, and tries again when ready.
// Registrations are shared by the operations waiting on one fd (a recv and a send at once)
// and dropped when none waits, so a descriptor the caller closes is never left registered:
// the registration of a later descriptor with the same number cannot be stale.
// Cancellation (stop_token, deadline): a queued operation completes with -ECANCELED when
// its attempt runs; a waiting one is woken by cancelling the descriptor's waits (the other
// waiters on that fd just wait again).
// No heap call per operation once warm: handlers come from the backend's HandlerPool, the
// per-fd slots are kept for reuse (a heap call only for an fd number never seen before),
// and Asio recycles its per-descriptor state.
// Threading: owner (reactor) thread only; the AsioBackend posts foreign cancels there.
#pragma once

#include <bioring/runtime/operation.hpp>

#include <asio/io_context.hpp>

#include <memory>
#include <vector>

namespace bioring::detail {

class HandlerPool;

class AsioSockets {
public:
    /// Called once per operation with its final result (the backend's finish()).
    using Finish = void (*)(void* ctx, Operation* op, int res) noexcept;

    AsioSockets(asio::io_context& ioc, HandlerPool& handlers, Finish finish, void* ctx);
    /// Drops every registration without closing the descriptors (they are the caller's).
    ~AsioSockets();
    AsioSockets(const AsioSockets&) = delete;
    AsioSockets& operator=(const AsioSockets&) = delete;

    /// Start @op (a socket opcode) on descriptor @fd. Context: owner thread; never
    /// completes inside the call.
    void start(Operation& op, int fd) noexcept;
    /// Cancel @op (in flight). Context: owner thread.
    void cancel(Operation& op) noexcept;

    struct Slot;

private:
    void attempt(Operation& op) noexcept;
    void wait(Operation& op, Slot* slot) noexcept;
    void on_ready(Operation& op, Slot* slot) noexcept;
    Slot* acquire(int fd, int& err) noexcept;
    void release(Slot* slot) noexcept;

    asio::io_context& ioc_;
    HandlerPool& handlers_;
    Finish finish_;
    void* ctx_;
    std::vector<std::unique_ptr<Slot>> by_fd_; ///< index: descriptor number
};

} // namespace bioring::detail
