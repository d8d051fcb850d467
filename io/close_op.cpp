// SPDX-License-Identifier: MIT
// CloseOp: asynchronous close (close_op.hpp).
#include <bioring/io/detail/close_op.hpp>

#include <unistd.h>

#include <cerrno>

namespace bioring {

bool CloseOp::await_ready() noexcept {
    if (file_->fd < 0) {
        return ready_with(0);
    }
    return false;
}

bool CloseOp::await_suspend(std::coroutine_handle<> waiter) noexcept {
    const int fd = file_->fd;
    Reactor* const here = Reactor::current();
    if (file_->fixed_on(here)) {
        here->unregister_file(file_->fixed_index);
    }
    // A registration on another reactor cannot be dropped from this thread; that ring keeps
    // its own reference to the open file until it goes away (see DirectFile::register_fixed).
    file_->fixed_index = -1;
    file_->fixed_reactor = 0;
    file_->fd = -1;
    if (here == nullptr) {
        const int rc = ::close(fd);
        return !ready_with(rc == 0 || errno == EINTR ? 0 : -errno);
    }
    if (!attach(waiter)) {
        return false; // not reached: a reactor exists and close takes no stop token
    }
    code = OpCode::close;
    fixed_file = false;
    this->fd = fd;
    complete = &CloseOp::on_complete;
    return start();
}

void CloseOp::on_complete(Operation* op, int res) noexcept {
    auto* self = static_cast<CloseOp*>(op);
    self->finish(res == -EINTR ? 0 : res);
}

} // namespace bioring
