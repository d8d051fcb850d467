// SPDX-License-Identifier: MIT
// RecvSelectOp: the awaiter of Socket::recv_select — one receive into a buffer of a
// BufferRing (runtime/buffer_ring.hpp) instead of the caller's.
//
// With a ring the kernel picks from, the SQE names the ring's buffer group
// (IOSQE_BUFFER_SELECT) and the buffer is chosen when data arrives, so a receive that waits
// holds no buffer; otherwise a free buffer is taken when the receive starts and a plain
// recv goes into it (-ENOBUFS at once when none is free). Either way the caller gets the
// buffer's id only with a result of at least one byte: on EOF, an error or a cancellation
// no buffer is held (one the kernel picked for a 0-byte result goes straight back).
// Like the other awaiters it lives in the awaiting coroutine's frame and allocates nothing.
#pragma once

#include <bioring/io/detail/file_state.hpp>
#include <bioring/io/detail/io_op.hpp>
#include <bioring/runtime/buffer_ring.hpp>

#include <coroutine>
#include <cstddef>

namespace bioring {

class Socket;

/// What Socket::recv_select yields.
struct SelectedRecv {
    IoResult result;  ///< bytes received (1..buffer_size()), 0 at EOF, or -errno
    int id = -1;      ///< the buffer holding them (give it back), -1 when result <= 0
    std::byte* data = nullptr; ///< its bytes, nullptr when id is -1
};

namespace detail {

class RecvSelectOp final : public IoOp {
public:
    /// Validate: a closed socket completes at once with -EBADF; without kernel picking,
    /// take a buffer now (-ENOBUFS at once when none is free).
    bool await_ready() noexcept;
    /// Submit. Context: a reactor thread. Returns: false when it completed at once.
    bool await_suspend(std::coroutine_handle<> waiter) noexcept;
    /// Context: the awaiting coroutine.
    SelectedRecv await_resume() const noexcept;

private:
    friend class bioring::Socket;
    RecvSelectOp(const FileState& s, BufferRing& ring, IoOptions&& o) noexcept
        : IoOp(std::move(o)), sock_(&s), ring_(&ring) {}

    static void on_complete(Operation* op, int res) noexcept;
    /// Give the buffer held (if any) back to the ring.
    void release() noexcept;
    /// Finish with @res <= 0: the buffer held goes back, the message names the reason.
    void fail(int res) noexcept;

    const FileState* sock_;
    BufferRing* ring_;
    int id_ = -1; ///< the buffer held (taken at start, or picked by the kernel)
};

} // namespace detail
} // namespace bioring
