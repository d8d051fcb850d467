// SPDX-License-Identifier: MIT
// UringBackend: the Reactor's io_uring half (runtime-private; included by runtime/*.cpp).
//
// user_data encoding (Operations are 8-aligned, so the low three bits are free, and every
// special value sets one of them: the reap loop tells them apart with one test, ud & 7):
//   ud_wake (1)        an IORING_OP_MSG_RING arrival: a remote poster woke us
//   ud_eventfd (2)     the POLL_ADD on our eventfd fired: re-arm
//   ud_ignore (3)      swallowed CQE (ASYNC_CANCEL, LINK_TIMEOUT)
//   Reactor* | 4       our own MSG_RING's completion (res < 0: fall back to the eventfd)
//   Operation* | 5     a multishot operation (submit_multishot): the CQE's flags are read
//                      (IORING_CQE_F_MORE) and it goes to Reactor::complete_multishot()
//   Operation*         an operation: Reactor::complete_op()
// Only tagged CQEs have their flags read: the ordinary single-CQE path is unchanged.
// The eventfd is watched with POLL_ADD (no user buffer), so tearing the ring down while it
// is armed cannot make the kernel write into freed memory.
//
// Per-op cost. The common submit never gets here: Reactor::submit() (reactor.hpp) writes
// nop/read/write/readv/writev SQEs itself, inline in the caller, through fast_path().
// submit() below is the complete version behind Reactor::submit_slow(): a full SQ (its
// get_sqe flushes), a deadline (LINK_TIMEOUT), timers, close, fsync, fallocate, and the
// file operations (prep_file_op: openat, statx, ..., raw SQEs). Linked chains go through
// submit_link (IOSQE_IO_LINK + IOSQE_CQE_SKIP_SUCCESS: one CQE per chain). What is
// rare within it stays out of line ([[gnu::noinline]]). The reap loop (uring_backend.cpp)
// reads the CQ ring directly and hands each CQE back before delivering it; dispatch() and
// complete_op() are inline, so the only call per completion is Operation::complete.
#pragma once

#include <bioring/runtime/reactor.hpp>

#include <liburing.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace bioring::detail {

/// Prep the SQE of a socket operation (accept .. shutdown; runtime/uring_socket.cpp);
/// flags and user_data are the caller's.
void prep_socket(io_uring_sqe* sqe, const Operation& op, bool zc_ok) noexcept;

class UringBackend {
public:
    /// Returns: throws std::system_error(errno) when io_uring_queue_init_params fails.
    UringBackend(Reactor& reactor, const ReactorOptions& opts);
    ~UringBackend();
    UringBackend(const UringBackend&) = delete;
    UringBackend& operator=(const UringBackend&) = delete;

    /// Queue @op's SQE (submitted by the next poll() or a full-SQ flush). Inline fast path:
    /// no timeout, no close, no timer.
    [[gnu::always_inline]] void submit(Operation& op) noexcept {
        static_assert(OpCode::close > OpCode::fallocate && OpCode::timeout > OpCode::close,
                      "the fast path takes the opcodes below close");
        if (op.timeout_ns != 0 || op.code >= OpCode::close) [[unlikely]] {
            submit_slow(op);
            return;
        }
        io_uring_sqe* sqe = get_sqe();
        prep(sqe, op);
        io_uring_sqe_set_data(sqe, &op);
    }
    /// The raw SQ view for Reactor::submit()'s inline path (sqes == nullptr when this ring
    /// has SQPOLL or 128-byte SQEs, which that path does not handle).
    SqFastPath fast_path() noexcept;
    /// Queue @op as a multishot accept (IORING_ACCEPT_MULTISHOT on op.fd, op.mode the
    /// SOCK_* flags; no peer address, no deadline) with the tagged user_data.
    void submit_multishot(Operation& op) noexcept;
    [[gnu::noinline]] void cancel(std::uintptr_t user_data) noexcept;
    /// Cancel every request in the ring (ASYNC_CANCEL_ANY). The eventfd poll is among
    /// them; its cancelled completion re-arms it like any other.
    void cancel_all() noexcept;
    /// Submit what is queued, wait for one completion when @block, reap a batch.
    void poll(bool block) noexcept;
    int register_file(int fd) noexcept;
    void unregister_file(int index) noexcept;
    int buffer_index(const void* addr, std::size_t len) noexcept;

    /// Any thread (under the target reactor's remote lock): write the eventfd.
    void wake_eventfd() noexcept;
    /// Owner thread of this ring: queue an IORING_OP_MSG_RING that wakes @target.
    /// Returns: false when MSG_RING is known not to work (use the eventfd).
    bool send_wake(Reactor& target, int target_ring_fd) noexcept;
    int ring_fd() const noexcept { return ring_.ring_fd; }
    /// The io_uring itself (BufferRing registers its buffers with it).
    io_uring* raw_ring() noexcept { return &ring_; }
    /// Queue a linked chain (Reactor::submit_link; the Reactor has checked the steps).
    /// Returns: 0, -EINVAL (longer than the SQ), -EOPNOTSUPP (no IORING_FEAT_CQE_SKIP).
    int submit_link(Operation* const* ops, unsigned n) noexcept;
    /// Whether the kernel has IORING_OP_FTRUNCATE (probed at setup).
    bool has_ftruncate() const noexcept { return ftruncate_ok_; }
    /// Whether the kernel has IORING_OP_SEND_ZC and SENDMSG_ZC (probed at setup).
    bool has_send_zc() const noexcept { return send_zc_ok_; }
    std::string describe() const;

    static constexpr std::uint64_t ud_wake = 1;
    static constexpr std::uint64_t ud_eventfd = 2;
    static constexpr std::uint64_t ud_ignore = 3;
    static constexpr std::uint64_t ud_msg_source = 4;
    static constexpr std::uint64_t ud_multishot = 5;
    /// CQE flags that need a look before an untagged Operation completes (flagged_cqe()):
    /// a zero-copy send's F_MORE and F_NOTIF, a buffer-select receive's F_BUFFER (a
    /// multishot's F_MORE comes with the ud_multishot tag).
    static constexpr unsigned flagged_cqe_flags =
        IORING_CQE_F_MORE | IORING_CQE_F_NOTIF | IORING_CQE_F_BUFFER;

private:
    // The opcodes of the fast path (nop .. fallocate); flags and user_data are the caller's.
    [[gnu::always_inline]] static void prep(io_uring_sqe* sqe, const Operation& op) noexcept {
        if (op.code <= OpCode::writev) {
            // nop .. writev: the SQE Reactor::submit()'s inline path writes, from the same
            // fast_sqe() (reactor.hpp), so the two paths cannot encode them differently.
            store_sqe(*reinterpret_cast<RawSqe*>(sqe), fast_sqe(op), 0);
            return;
        }
        const int fd = op.fd;
        switch (op.code) {
        case OpCode::fsync:
            io_uring_prep_fsync(sqe, fd, 0);
            break;
        case OpCode::fdatasync:
            io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
            break;
        case OpCode::fallocate:
            io_uring_prep_fallocate(sqe, fd, op.mode, static_cast<off_t>(op.offset),
                                    static_cast<off_t>(op.length));
            break;
        default: // close, timeout: submit_slow() preps these; nop .. writev: above
            __builtin_unreachable();
        }
        if (op.fixed_file) {
            sqe->flags |= IOSQE_FIXED_FILE;
        }
    }
    /// Link timeouts, timers, close (fixed-file bookkeeping).
    [[gnu::noinline]] void submit_slow(Operation& op) noexcept;
    /// The file operations (OpCode::write_flags and after): flags and user_data are the
    /// caller's, IOSQE_FIXED_FILE excepted.
    [[gnu::noinline]] static void prep_file_op(io_uring_sqe* sqe, const Operation& op) noexcept;
    /// The timespec a TIMEOUT or LINK_TIMEOUT SQE points at, set to @ns: one per SQ slot,
    /// since the kernel reads it when it consumes the SQE (inside io_uring_enter, on this
    /// thread: no SQPOLL), and the slot is not handed out again before that.
    __kernel_timespec* timespec_for(const io_uring_sqe* sqe, std::uint64_t ns) noexcept;

    [[gnu::always_inline]] io_uring_sqe* get_sqe() noexcept {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        if (sqe != nullptr) [[likely]] {
            return sqe;
        }
        return get_sqe_slow();
    }
    [[gnu::noinline]] io_uring_sqe* get_sqe_slow() noexcept;
    void flush() noexcept;
    void reap() noexcept;
    void dispatch(std::uint64_t ud, int res, std::uint32_t flags) noexcept;
    [[gnu::noinline]] void dispatch_special(std::uint64_t ud, int res,
                                            std::uint32_t flags) noexcept;
    /// A CQE with IORING_CQE_F_MORE or F_NOTIF (zero-copy sends; tagged user_data passes
    /// through). Returns: whether to deliver it, with @res replaced by the send's result.
    [[gnu::noinline]] bool flagged_cqe(std::uint64_t ud, int& res, unsigned flags) noexcept;
    [[gnu::noinline]] void deliver_stashed() noexcept;
    void arm_eventfd() noexcept;
    void sync_buffers() noexcept;
    void stash_cqes() noexcept;
    bool cq_needs_flush() const noexcept;

    Reactor& reactor_;
    ReactorCounters& counters_;
    io_uring ring_{};
    unsigned setup_flags_ = 0;
    bool defer_taskrun_ = false;
    bool msg_ring_ok_ = true;
    bool eventfd_armed_ = false;
    bool closing_ = false;
    bool ftruncate_ok_ = false; ///< IORING_OP_FTRUNCATE probed
    bool send_zc_ok_ = false;   ///< IORING_OP_SEND_ZC and SENDMSG_ZC probed
    bool cqe_skip_ok_ = false;  ///< IORING_FEAT_CQE_SKIP: linked chains
    int efd_ = -1;

    // Registered buffers: BufferPool arena i is fixed-buffer slot i.
    bool register_buffers_ = true;
    bool buffers_failed_ = false;
    bool buffer_table_ = false;
    std::size_t buffers_registered_ = 0;
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> arenas_; // [base, end)

    // Fixed files: a sparse table made on first use.
    unsigned fixed_files_max_ = 0;
    bool file_table_ = false;
    std::vector<bool> file_used_;
    std::size_t files_registered_ = 0;

    std::vector<__kernel_timespec> sqe_timespecs_; ///< one per SQ slot: timespec_for()

    // CQEs taken off the ring to unblock a submit (-EBUSY), delivered at the next reap.
    struct StashedCqe {
        std::uint64_t ud;
        int res;
        std::uint32_t flags; ///< read for tagged user_data only (0 otherwise)
    };
    std::vector<StashedCqe> stashed_;
};

} // namespace bioring::detail
