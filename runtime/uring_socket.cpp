// SPDX-License-Identifier: MIT
// io_uring SQEs of the socket operations (Operation's field use: runtime/operation.hpp).
// The sockets are plain descriptors (never fixed files): a connection lives on whichever
// reactor awaits it, and a fixed file belongs to one ring. send_zc / sendmsg_zc become
// plain SEND / SENDMSG on a kernel without IORING_OP_SEND_ZC (@zc_ok false): the contract
// (complete once the buffer is free) holds for both.
#include <bioring/runtime/detail/uring_backend.hpp>

#include <sys/socket.h>

#include <cstdint>

namespace bioring::detail {

void prep_socket(io_uring_sqe* sqe, const Operation& op, bool zc_ok) noexcept {
    const int fd = op.fd;
    switch (op.code) {
    case OpCode::accept:
        io_uring_prep_accept(sqe, fd, static_cast<sockaddr*>(op.addr),
                             reinterpret_cast<socklen_t*>(static_cast<std::uintptr_t>(op.offset)),
                             op.mode);
        break;
    case OpCode::connect:
        io_uring_prep_connect(sqe, fd, static_cast<const sockaddr*>(op.addr),
                              static_cast<socklen_t>(op.offset));
        break;
    case OpCode::recv:
        io_uring_prep_recv(sqe, fd, op.addr, op.len, op.mode);
        break;
    case OpCode::send:
        io_uring_prep_send(sqe, fd, op.addr, op.len, op.mode);
        break;
    case OpCode::recvmsg:
        io_uring_prep_recvmsg(sqe, fd, static_cast<msghdr*>(op.addr),
                              static_cast<unsigned>(op.mode));
        break;
    case OpCode::sendmsg:
        io_uring_prep_sendmsg(sqe, fd, static_cast<const msghdr*>(op.addr),
                              static_cast<unsigned>(op.mode));
        break;
    case OpCode::send_zc:
        if (zc_ok) {
            io_uring_prep_send_zc(sqe, fd, op.addr, op.len, op.mode, 0);
        } else {
            io_uring_prep_send(sqe, fd, op.addr, op.len, op.mode);
        }
        break;
    case OpCode::sendmsg_zc:
        if (zc_ok) {
            io_uring_prep_sendmsg_zc(sqe, fd, static_cast<const msghdr*>(op.addr),
                                     static_cast<unsigned>(op.mode));
        } else {
            io_uring_prep_sendmsg(sqe, fd, static_cast<const msghdr*>(op.addr),
                                  static_cast<unsigned>(op.mode));
        }
        break;
    case OpCode::recv_select:
        io_uring_prep_recv(sqe, fd, nullptr, op.len, op.mode);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = static_cast<std::uint16_t>(op.offset);
        break;
    case OpCode::shutdown:
        io_uring_prep_shutdown(sqe, fd, static_cast<int>(op.len));
        break;
    default:
        __builtin_unreachable(); // submit_slow() calls this for socket opcodes only
    }
    if (op.fixed_file) {
        sqe->flags |= IOSQE_FIXED_FILE;
    }
}

} // namespace bioring::detail
