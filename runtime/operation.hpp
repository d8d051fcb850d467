// SPDX-License-Identifier: MIT
// Operation: one asynchronous kernel operation, as the reactor sees it.
//
// This is the whole contract between io/ (which knows files) and runtime/ (which knows
// rings): io/ fills an Operation that lives inside its awaiter (so inside the coroutine
// frame: no allocation), calls Reactor::submit(), and gets complete() called exactly once
// with the kernel's result. On io_uring, user_data is the Operation's address; on the Asio
// fallback the same fields drive a blocking syscall on a thread pool.
#pragma once

#include <cstdint>

namespace bioring {

enum class OpCode : std::uint8_t {
    nop,       ///< no operation: completes with 0
    read,      ///< pread(fd, addr, len, offset); READ_FIXED when buf_index >= 0
    write,     ///< pwrite(fd, addr, len, offset); WRITE_FIXED when buf_index >= 0
    readv,     ///< preadv(fd, (iovec*)addr, len iovecs, offset)
    writev,    ///< pwritev(fd, (iovec*)addr, len iovecs, offset)
    fsync,     ///< fsync(fd)
    fdatasync, ///< fdatasync(fd)
    fallocate, ///< fallocate(fd, mode, offset, length)
    close,     ///< close(fd)
    timeout,   ///< a timer of timeout_ns: completes with 0 when it fires (-ECANCELED if cancelled)

    // Sockets (io/socket.hpp). Fields: fd = the socket; mode = MSG_* flags (accept: the
    // SOCK_* flags of the new descriptor); no offset: `offset` carries what is listed.
    accept,  ///< accept4(fd, (sockaddr*)addr, (socklen_t*)offset, mode): the new fd
    connect, ///< connect(fd, (const sockaddr*)addr, (socklen_t)offset): 0
    recv,    ///< recv(fd, addr, len, mode)
    send,    ///< send(fd, addr, len, mode)
    recvmsg, ///< recvmsg(fd, (msghdr*)addr, mode)
    sendmsg, ///< sendmsg(fd, (const msghdr*)addr, mode)
    /// send / sendmsg without copying the buffer where the backend can (io_uring
    /// IORING_OP_SEND_ZC / SENDMSG_ZC, probed; TCP and UDP only, the kernel refuses other
    /// sockets with -EOPNOTSUPP); elsewhere a plain send / sendmsg. complete() runs only
    /// once the kernel no longer reads the buffer (after the notification CQE).
    send_zc,
    sendmsg_zc,
    /// recv(fd, <a buffer of BufferRing (BufferRing*)addr>, len = its buffer size, mode):
    /// io_uring picks the buffer from the ring's group (offset) when data arrives and
    /// sets op_buffer with the buffer's id in reactor_flags_ (io_uring only: with a ring
    /// the kernel does not pick from, io/ takes a buffer itself and submits a recv).
    recv_select,
    shutdown, ///< shutdown(fd, (int)len): 0

    // File operations (io/file_ops.hpp, DirectFile): never on the inline submit path.
    // Extra arguments reuse mode (flags), len and length (a second pointer or size).
    write_flags,     ///< pwritev2(fd, {addr, len}, offset, mode = RWF_* flags); WRITE_FIXED
                     ///< when buf_index >= 0
    writev_flags,    ///< pwritev2(fd, (iovec*)addr, len iovecs, offset, mode = RWF_* flags)
    openat,          ///< openat(fd = dirfd, (const char*)addr, mode = O_* flags, len = perms);
                     ///< completes with the new descriptor
    statx,           ///< statx(fd = dirfd, (const char*)addr, mode = AT_* flags, len = mask,
                     ///< (struct statx*)length)
    unlinkat,        ///< unlinkat(fd = dirfd, (const char*)addr, mode = 0 or AT_REMOVEDIR)
    renameat,        ///< renameat2(fd = old dirfd, (const char*)addr, (int)len = new dirfd,
                     ///< (const char*)length, mode = RENAME_* flags)
    mkdirat,         ///< mkdirat(fd = dirfd, (const char*)addr, len = perms)
    ftruncate,       ///< ftruncate(fd, offset = new size); see Reactor::native()
    sync_file_range, ///< sync_file_range(fd, offset, len bytes, mode = SYNC_FILE_RANGE_* flags)
    uring_raw,       ///< io_uring only: the caller's 64-byte SQE at addr, user_data replaced;
                     ///< -EOPNOTSUPP on the Asio backend
};

/// Operation::reactor_flags_ bit seen by a multishot operation's complete(): the kernel
/// keeps the request armed and more completions follow (io_uring IORING_CQE_F_MORE).
inline constexpr std::uint32_t op_more = 1;
/// Operation::reactor_flags_ bit seen by a recv_select's complete(): the kernel filled the
/// buffer whose id is reactor_flags_ >> 16.
inline constexpr std::uint32_t op_buffer = 2;

/// Whether @c is one of the socket operations (accept .. shutdown).
constexpr bool is_socket_op(OpCode c) noexcept {
    return c >= OpCode::accept && c <= OpCode::shutdown;
}

// Size and field order are a cache decision: what a submit and a completion of the common
// operations touch (opcode, file, buffer, offset, deadline, complete) comes first, and the
// whole is 72 bytes, so an awaiter's own completion state (handle, result) follows within
// two cache lines. At QD 128 a thread cycles through 128 frames per loop turn, and every
// line each one touches counts against the L1 data cache.
struct Operation {
    OpCode code = OpCode::nop;
    bool fixed_file = false;     ///< fd is an index into the ring's registered files
    std::int16_t buf_index = -1; ///< registered buffer index (>= 0: READ_FIXED/WRITE_FIXED)
    int fd = -1;
    std::uint32_t len = 0;    ///< bytes, or the iovec count for readv/writev
    int mode = 0;             ///< fallocate mode; the flags of the file operations
    void* addr = nullptr;     ///< buffer, or iovec array for readv/writev
    std::uint64_t offset = 0; ///< file offset
    /// For timeout: the timer. For any other code: a per-operation deadline (0 = none);
    /// when it passes first, the operation completes with -ECANCELED (io_uring
    /// LINK_TIMEOUT semantics) and the timer's own completion is swallowed.
    std::uint64_t timeout_ns = 0;

    /// Called exactly once, on the submitting reactor's thread, never from inside submit(),
    /// with the final result (bytes transferred, or -errno). It may submit again (the
    /// same Operation included: io/ resubmits short transfers this way).
    void (*complete)(Operation* op, int res) noexcept = nullptr;

    std::uint64_t length = 0; ///< fallocate length; statx buffer; renameat new path

    // Reactor-private state (the reactor may use these freely while the op is in flight):
    // the Asio backend's operation state, worker eventfd and timer slot; for a multishot
    // operation (Reactor::submit_multishot), op_more in reactor_flags_ during complete().
    std::uint32_t reactor_flags_ = 0;
    std::int32_t reactor_res_ = 0;
    void* reactor_ptr_ = nullptr;
};

} // namespace bioring
