// SPDX-License-Identifier: MIT
// AsioBackend: the Reactor's fallback half (runtime-private), for hosts where io_uring is
// refused (ENOSYS, EPERM from seccomp, kernel.io_uring_disabled, ENOMEM) or when
// BIORING_BACKEND=asio. The reactor thread runs an asio::io_context; blocking syscalls run
// on an asio::thread_pool and their results are posted back, so completions still arrive
// on the reactor thread only, never inside submit(). Timers are asio::steady_timer.
// Socket operations (accept .. shutdown) never go to the pool: they wait for readiness in
// the io_context's own epoll reactor and make the non-blocking call on the reactor thread
// (AsioSockets, asio_socket.hpp).
//
// Cancellation is best effort, as the kernel's: a pending timer is cancelled; an operation
// not yet started completes with -ECANCELED; a started read/write waits in poll() on its
// fd and on the worker's eventfd, so a cancel interrupts a read that would never complete
// (a pipe); a started fsync/fallocate/close completes with its own result.
// Like the io_uring backend it makes no heap call per I/O once warm: Asio's handler memory
// comes from a cross-thread recycling pool (runtime/handler_pool.hpp) and the in-flight
// operations sit in an open-addressing table that allocates only when it grows.
#pragma once

#include <bioring/runtime/reactor.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace bioring::detail {

class AsioBackend {
public:
    AsioBackend(Reactor& reactor, const ReactorOptions& opts, std::string why);
    ~AsioBackend();
    AsioBackend(const AsioBackend&) = delete;
    AsioBackend& operator=(const AsioBackend&) = delete;

    void submit(Operation& op) noexcept;
    /// A linked chain (Reactor::submit_link): its steps run in order on one pool thread;
    /// one completion, on the step that ended the chain. Cancelling the first step
    /// cancels the chain. Returns: 0, or -EOPNOTSUPP for a uring_raw step.
    int submit_link(Operation* const* ops, unsigned n) noexcept;
    /// Owner thread; @user_data may name an operation that already completed.
    void cancel(std::uintptr_t user_data) noexcept;
    /// Cancel every operation in flight (Reactor::stop()).
    void cancel_all() noexcept;
    void poll(bool block) noexcept;
    int register_file(int fd) noexcept;
    void unregister_file(int index) noexcept;
    /// Any thread.
    void wake() noexcept;
    std::string describe() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

} // namespace bioring::detail
