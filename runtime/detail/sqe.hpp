// SPDX-License-Identifier: MIT
// The io_uring SQE as Reactor::submit()'s inline path writes it: the 64-byte layout, the
// opcodes it uses, and the raw view of a ring's submission queue. Internal: included by
// reactor.hpp only because submit() is inline; not part of the public API.
#pragma once

#include <bioring/runtime/operation.hpp>

#include <cstdint>

namespace bioring::detail {

/// The kernel's 64-byte SQE (struct io_uring_sqe) as the inline submit path writes it.
/// Layout and opcode values are the io_uring ABI; uring_backend.cpp static_asserts each
/// against liburing's definitions.
struct RawSqe {
    std::uint8_t opcode;
    std::uint8_t flags;
    std::uint16_t ioprio;
    std::int32_t fd;
    std::uint64_t off;
    std::uint64_t addr;
    std::uint32_t len;
    std::uint32_t rw_flags;
    std::uint64_t user_data;
    std::uint16_t buf_index;
    std::uint16_t personality;
    std::uint32_t file_index;
    std::uint64_t addr3;
    std::uint64_t pad2;
};
inline constexpr std::uint8_t sqe_op_nop = 0;         // IORING_OP_NOP
inline constexpr std::uint8_t sqe_op_readv = 1;       // IORING_OP_READV
inline constexpr std::uint8_t sqe_op_writev = 2;      // IORING_OP_WRITEV
inline constexpr std::uint8_t sqe_op_read_fixed = 4;  // IORING_OP_READ_FIXED
inline constexpr std::uint8_t sqe_op_write_fixed = 5; // IORING_OP_WRITE_FIXED
inline constexpr std::uint8_t sqe_op_read = 22;       // IORING_OP_READ
inline constexpr std::uint8_t sqe_op_write = 23;      // IORING_OP_WRITE
inline constexpr std::uint8_t sqe_fixed_file = 1;     // IOSQE_FIXED_FILE

/// Raw view of a ring's submission queue for Reactor::submit()'s inline path. Filled by
/// UringBackend when its ring has plain 64-byte SQEs and no SQPOLL (then the kernel reads
/// the SQ only inside io_uring_enter, on this thread); sqes == nullptr: no fast path.
/// sqe_tail points at liburing's own sq.sqe_tail, so io_uring_submit publishes these SQEs
/// exactly like the ones io_uring_get_sqe handed out.
struct SqFastPath {
    RawSqe* sqes = nullptr;
    unsigned* sqe_tail = nullptr;
    const unsigned* khead = nullptr;
    unsigned mask = 0;
    unsigned entries = 0;
};

/// The SQE fields of a fast-path Operation (nop .. writev), as liburing's
/// io_uring_prep_nop/read/write/read_fixed/write_fixed/readv/writev would set them.
/// Loads only: Reactor::submit() reads the Operation before it stores anything, so the
/// compiler can forward what the caller just wrote into it (a constant NOP folds away).
struct FastSqe {
    std::uint8_t opcode;
    std::uint8_t flags;
    std::uint16_t buf_index;
    std::int32_t fd;
    std::uint32_t len;
    std::uint64_t off;
    std::uint64_t addr;
};
[[gnu::always_inline]] inline FastSqe fast_sqe(const Operation& op) noexcept {
    FastSqe v{sqe_op_nop,
              static_cast<std::uint8_t>(op.fixed_file ? sqe_fixed_file : 0),
              0,
              op.fd,
              op.len,
              op.offset,
              reinterpret_cast<std::uintptr_t>(op.addr)};
    switch (op.code) {
    case OpCode::read:
    case OpCode::write: {
        const bool rd = op.code == OpCode::read;
        if (op.buf_index >= 0) {
            v.opcode = rd ? sqe_op_read_fixed : sqe_op_write_fixed;
            v.buf_index = static_cast<std::uint16_t>(op.buf_index);
        } else {
            v.opcode = rd ? sqe_op_read : sqe_op_write;
        }
        break;
    }
    case OpCode::readv:
        v.opcode = sqe_op_readv;
        break;
    case OpCode::writev:
        v.opcode = sqe_op_writev;
        break;
    default: // nop: no file, no buffer
        v.flags = 0;
        v.fd = -1;
        v.len = 0;
        v.off = 0;
        v.addr = 0;
        break;
    }
    return v;
}

/// Write @v into @sqe with @user_data; one plain store per field (the compiler merges them
/// into wide stores; an aggregate `sqe = RawSqe{}` would become a slow `rep stos`).
[[gnu::always_inline]] inline void store_sqe(RawSqe& sqe, const FastSqe& v,
                                             std::uint64_t user_data) noexcept {
    sqe.opcode = v.opcode;
    sqe.flags = v.flags;
    sqe.ioprio = 0;
    sqe.fd = v.fd;
    sqe.off = v.off;
    sqe.addr = v.addr;
    sqe.len = v.len;
    sqe.rw_flags = 0;
    sqe.user_data = user_data;
    sqe.buf_index = v.buf_index;
    sqe.personality = 0;
    sqe.file_index = 0;
    sqe.addr3 = 0;
    sqe.pad2 = 0;
}
} // namespace bioring::detail
