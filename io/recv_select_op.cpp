// SPDX-License-Identifier: MIT
// RecvSelectOp (recv_select_op.hpp): a receive into a BufferRing's buffer.
#include <bioring/io/detail/recv_select_op.hpp>

#include <bioring/io/error_message.hpp>

#include <cstring>

namespace bioring::detail {

bool RecvSelectOp::await_ready() noexcept {
    if (sock_->fd < 0) {
        set_error_message("bioring: recv_select on a closed socket (%s)", sock_->path.c_str());
        return ready_with(-EBADF);
    }
    if (!ring_->kernel_picks()) {
        id_ = ring_->take();
        if (id_ < 0) {
            set_error_message("bioring: recv_select on %s: all %u buffers of the ring are held",
                              sock_->path.c_str(), ring_->count());
            return ready_with(-ENOBUFS);
        }
    }
    return false;
}

bool RecvSelectOp::await_suspend(std::coroutine_handle<> waiter) noexcept {
    if (!attach(waiter)) {
        release(); // attach() set the result (no reactor, or stopped already)
        return false;
    }
    sock_->target(*this, reactor_);
    complete = &RecvSelectOp::on_complete;
    buf_index = -1;
    mode = 0;
    len = ring_->buffer_size();
    reactor_flags_ = 0;
    if (id_ >= 0) {
        code = OpCode::recv;
        addr = ring_->data(static_cast<unsigned>(id_));
    } else {
        code = OpCode::recv_select;
        addr = ring_;
        offset = ring_->group();
    }
    return start();
}

void RecvSelectOp::release() noexcept {
    if (id_ >= 0) {
        ring_->give_back(static_cast<unsigned>(id_));
        id_ = -1;
    }
}

void RecvSelectOp::fail(int res) noexcept {
    release();
    if (res < 0) {
        set_error_message("bioring: recv_select from %s: %s", sock_->path.c_str(),
                          res == -ECANCELED ? "cancelled (deadline passed or stop requested)"
                                            : std::strerror(-res));
    }
    finish(res);
}

void RecvSelectOp::on_complete(Operation* op, int res) noexcept {
    auto* self = static_cast<RecvSelectOp*>(op);
    const bool picked = (self->reactor_flags_ & op_buffer) != 0;
    if (res < 0 && !picked && self->retry_transient(res, "recv_select")) {
        return; // EINTR / EAGAIN: the same request again (a buffer taken here stays held)
    }
    if (picked) { // the kernel filled one of the ring's buffers
        self->id_ = static_cast<int>(self->reactor_flags_ >> 16);
        self->reactor_flags_ = 0;
        self->ring_->picked(static_cast<unsigned>(self->id_));
    }
    if (res <= 0) {
        self->fail(res); // EOF or an error: the buffer (if any) goes back, not to the caller
        return;
    }
    self->finish(res);
}

SelectedRecv RecvSelectOp::await_resume() const noexcept {
    const IoResult r = IoOp::await_resume();
    if (r.res <= 0 || id_ < 0) {
        return SelectedRecv{r, -1, nullptr};
    }
    return SelectedRecv{r, id_, ring_->data(static_cast<unsigned>(id_))};
}

} // namespace bioring::detail
