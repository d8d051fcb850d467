// SPDX-License-Identifier: MIT
// The raw SQE escape hatch (raw_sqe.hpp).
#include <bioring/io/raw_sqe.hpp>

#include <bioring/io/error_message.hpp>

#include <cerrno>

namespace bioring {
namespace {

// IOSQE_IO_LINK, IOSQE_IO_HARDLINK, IOSQE_CQE_SKIP_SUCCESS (the io_uring ABI's bits 2, 3
// and 6): each would break "one SQE, one CQE".
constexpr std::uint8_t refused_flags = (1u << 2) | (1u << 3) | (1u << 6);

} // namespace

RawSqeOp submit_sqe(const UringSqe& sqe, IoOptions o) noexcept {
    return RawSqeOp(sqe, std::move(o));
}

bool RawSqeOp::await_ready() noexcept {
    if ((sqe_.flags & refused_flags) != 0) {
        detail::set_error_message("bioring: raw SQE (opcode %u) with flags 0x%x: link and "
                                  "CQE-skip flags are refused (use link() for chains)",
                                  sqe_.opcode, sqe_.flags);
        return ready_with(-EINVAL);
    }
    return false;
}

bool RawSqeOp::await_suspend(std::coroutine_handle<> waiter) noexcept {
    if (!attach(waiter)) {
        return false;
    }
    code = OpCode::uring_raw;
    addr = &sqe_;
    fd = sqe_.fd;
    complete = &RawSqeOp::on_complete;
    return start();
}

void RawSqeOp::on_complete(Operation* op, int res) noexcept {
    auto* self = static_cast<RawSqeOp*>(op);
    if (res == -EOPNOTSUPP && self->reactor_->backend() != Backend::uring) {
        detail::set_error_message("bioring: raw SQE (opcode %u): needs the io_uring backend "
                                  "(this reactor runs on asio)",
                                  self->sqe_.opcode);
    } else if (res < 0 && res != -ECANCELED) {
        detail::set_error_message("bioring: raw SQE (opcode %u): %s", self->sqe_.opcode,
                                  detail::strerror_text(-res));
    }
    self->finish(res);
}

} // namespace bioring
