// SPDX-License-Identifier: MIT
// OneShotOp: fsync, fdatasync and fallocate requests (one_shot_op.hpp).
#include <bioring/io/detail/one_shot_op.hpp>

#include <bioring/io/error_message.hpp>

#include <cerrno>

namespace bioring::detail {

const char* OneShotOp::name() const noexcept {
    switch (code) {
    case OpCode::fsync:
        return "fsync";
    case OpCode::fdatasync:
        return "fdatasync";
    case OpCode::fallocate:
        return "fallocate";
    case OpCode::ftruncate:
        return "ftruncate";
    case OpCode::sync_file_range:
        return "sync_file_range";
    default:
        return "request";
    }
}

bool OneShotOp::await_ready() noexcept {
    if (file_->fd < 0) {
        set_error_message("bioring: %s on a closed file (%s)", name(), file_->path.c_str());
        return ready_with(-EBADF);
    }
    return false;
}

bool OneShotOp::await_suspend(std::coroutine_handle<> waiter) noexcept {
    if (!attach(waiter)) {
        return false;
    }
    file_->target(*this, reactor_);
    complete = &OneShotOp::on_complete;
    return start();
}

void OneShotOp::on_complete(Operation* op, int res) noexcept {
    auto* self = static_cast<OneShotOp*>(op);
    if (res < 0) {
        if (self->retry_transient(res, self->name())) {
            return;
        }
        if (res != -EAGAIN) { // the retry bound has its own message
            set_error_message("bioring: %s of %s: %s", self->name(), self->file_->path.c_str(),
                              strerror_text(-res));
        }
    }
    self->finish(res);
}

} // namespace bioring::detail
