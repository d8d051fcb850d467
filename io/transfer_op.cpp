// SPDX-License-Identifier: MIT
// TransferOp: validation, first submission and the short-transfer loop (transfer_op.hpp).
#include <bioring/io/detail/transfer_op.hpp>

#include <bioring/io/alignment.hpp>
#include <bioring/io/error_message.hpp>

#include <cerrno>

namespace bioring::detail {

const char* TransferOp::name() const noexcept {
    if (vector_) {
        return write_ ? "writev" : "readv";
    }
    return write_ ? "write" : "read";
}

bool TransferOp::await_ready() noexcept {
    if (file_->fd < 0) {
        set_error_message("bioring: %s on a closed file (%s)", name(), file_->path.c_str());
        return ready_with(-EBADF);
    }
    if ((rw_flags_ & ~write_flags_known) != 0) {
        set_error_message("bioring: %s with unknown write flags 0x%x (file %s)", name(),
                          rw_flags_ & ~write_flags_known, file_->path.c_str());
        return ready_with(-EINVAL);
    }
    const int rc = vector_ ? check_vector(*file_, name(), cur_.iov, cur_.count, offset0_, total_)
                           : check_transfer(*file_, name(), buf_, total_, offset0_);
    if (rc < 0) {
        return ready_with(rc);
    }
    if (total_ == 0) {
        return ready_with(0);
    }
    return false;
}

bool TransferOp::await_suspend(std::coroutine_handle<> waiter) noexcept {
    if (!attach(waiter)) {
        return false;
    }
    file_->target(*this, reactor_);
    complete = &TransferOp::on_complete;
    buf_index = -1;
    if (!vector_) {
        const int index = reactor_->buffer_index(buf_, total_);
        // The index stays valid for every remainder: it lies inside the same buffer.
        buf_index = index >= 0 && index <= INT16_MAX ? static_cast<std::int16_t>(index) : -1;
    }
    prepare_next();
    return start();
}

void TransferOp::target_segment(std::byte* base, std::size_t len) noexcept {
    code = write_ ? (rw_flags_ != 0 ? OpCode::write_flags : OpCode::write) : OpCode::read;
    mode = static_cast<int>(rw_flags_);
    addr = base;
    this->len = static_cast<std::uint32_t>(len);
}

// Fill addr/len/offset/code for the part of the request that is not done yet.
void TransferOp::prepare_next() noexcept {
    offset = offset0_ + done_;
    if (!vector_) {
        target_segment(buf_ + done_, total_ - done_);
        return;
    }
    cur_.skip_done();
    if (cur_.seg_off != 0 || cur_.seg + 1 == cur_.count) {
        auto* base = static_cast<std::byte*>(cur_.iov[cur_.seg].iov_base) + cur_.seg_off;
        const std::size_t left = cur_.iov[cur_.seg].iov_len - cur_.seg_off;
        target_segment(base, left);
        const int index = reactor_->buffer_index(base, left);
        buf_index = index >= 0 && index <= INT16_MAX ? static_cast<std::int16_t>(index) : -1;
        return;
    }
    code = write_ ? (rw_flags_ != 0 ? OpCode::writev_flags : OpCode::writev) : OpCode::readv;
    mode = static_cast<int>(rw_flags_);
    // The kernel only reads the iovec array; Operation::addr is untyped.
    addr = const_cast<iovec*>(cur_.iov + cur_.seg);
    len = static_cast<std::uint32_t>(cur_.count - cur_.seg);
    buf_index = -1;
}

void TransferOp::advance(std::size_t n) noexcept {
    done_ += n;
    if (vector_) {
        cur_.advance(n);
    }
}

bool TransferOp::remainder_aligned() const noexcept {
    if (!file_->direct) {
        return true;
    }
    if (done_ % file_->offset_align != 0) {
        return false;
    }
    const std::uintptr_t next =
        vector_ ? reinterpret_cast<std::uintptr_t>(cur_.iov[cur_.seg].iov_base) + cur_.seg_off
                : reinterpret_cast<std::uintptr_t>(buf_) + done_;
    return next % file_->memory_align == 0;
}

void TransferOp::on_complete(Operation* op, int res) noexcept {
    auto* self = static_cast<TransferOp*>(op);
    if (res < 0) {
        // RWF_NOWAIT asked for -EAGAIN instead of a wait: hand it back, do not retry.
        const bool nowait = res == -EAGAIN && (self->rw_flags_ & 0x8u) != 0;
        if (nowait || !self->retry_transient(res, self->name())) {
            if (nowait || res != -EAGAIN) { // the retry bound has its own message
                set_error_message("bioring: %s of %zu bytes at offset %llu in %s: %s", self->name(),
                                  self->total_, static_cast<unsigned long long>(self->offset0_),
                                  self->file_->path.c_str(), strerror_text(-res));
            }
            self->finish(res);
        }
        return;
    }
    const std::size_t left = self->total_ - self->done_;
    if (static_cast<std::size_t>(res) > left) [[unlikely]] {
        set_error_message("bioring: %s at offset %llu: completion reported %d bytes, only %zu "
                          "were requested (file %s)",
                          self->name(), static_cast<unsigned long long>(self->offset), res, left,
                          self->file_->path.c_str());
        self->finish(-EIO);
        return;
    }
    if (res == 0) {
        if (!self->write_) {
            self->finish(static_cast<int>(self->done_)); // end of file
            return;
        }
        set_error_message("bioring: %s of %zu bytes at offset %llu made no progress (file %s)",
                          self->name(), left, static_cast<unsigned long long>(self->offset),
                          self->file_->path.c_str());
        self->finish(-EIO);
        return;
    }
    self->advance(static_cast<std::size_t>(res));
    if (self->done_ == self->total_) {
        self->finish(static_cast<int>(self->done_));
        return;
    }
    if (!self->remainder_aligned()) {
        if (!self->write_) {
            // An O_DIRECT read that stops off the alignment has hit the file's tail.
            self->finish(static_cast<int>(self->done_));
            return;
        }
        set_error_message("bioring: O_DIRECT %s of %zu bytes at offset %llu stopped after %zu "
                          "bytes, off the %u-byte alignment: the remainder cannot be written "
                          "with O_DIRECT (file %s)",
                          self->name(), self->total_,
                          static_cast<unsigned long long>(self->offset0_), self->done_,
                          self->file_->offset_align, self->file_->path.c_str());
        self->finish(-EIO);
        return;
    }
    self->prepare_next();
    self->resubmit();
}

} // namespace bioring::detail
