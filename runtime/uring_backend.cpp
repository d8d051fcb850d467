// SPDX-License-Identifier: MIT
// io_uring backend: ring setup with graceful flag fallback, batched submit and reap,
// link timeouts, timers, cancellation, fixed buffers and files, MSG_RING wake-ups.
// See uring_backend.hpp for the user_data encoding and reactor.hpp for the loop.
#include <bioring/runtime/detail/uring_backend.hpp>

#include <bioring/alloc/buffer_pool.hpp>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <system_error>

namespace bioring::detail {

// Reactor::submit()'s inline path writes SQEs as detail::RawSqe (reactor.hpp keeps
// liburing.h out of the public headers): it must be liburing's io_uring_sqe, field by field.
static_assert(sizeof(RawSqe) == sizeof(io_uring_sqe));
static_assert(offsetof(RawSqe, opcode) == offsetof(io_uring_sqe, opcode));
static_assert(offsetof(RawSqe, flags) == offsetof(io_uring_sqe, flags));
static_assert(offsetof(RawSqe, ioprio) == offsetof(io_uring_sqe, ioprio));
static_assert(offsetof(RawSqe, fd) == offsetof(io_uring_sqe, fd));
static_assert(offsetof(RawSqe, off) == offsetof(io_uring_sqe, off));
static_assert(offsetof(RawSqe, addr) == offsetof(io_uring_sqe, addr));
static_assert(offsetof(RawSqe, len) == offsetof(io_uring_sqe, len));
static_assert(offsetof(RawSqe, rw_flags) == offsetof(io_uring_sqe, rw_flags));
static_assert(offsetof(RawSqe, user_data) == offsetof(io_uring_sqe, user_data));
static_assert(offsetof(RawSqe, buf_index) == offsetof(io_uring_sqe, buf_index));
static_assert(offsetof(RawSqe, personality) == offsetof(io_uring_sqe, personality));
static_assert(offsetof(RawSqe, file_index) == offsetof(io_uring_sqe, file_index));
static_assert(offsetof(RawSqe, addr3) == offsetof(io_uring_sqe, addr3));
static_assert(offsetof(RawSqe, pad2) == offsetof(io_uring_sqe, __pad2));
static_assert(sqe_op_nop == IORING_OP_NOP && sqe_op_readv == IORING_OP_READV &&
              sqe_op_writev == IORING_OP_WRITEV && sqe_op_read_fixed == IORING_OP_READ_FIXED &&
              sqe_op_write_fixed == IORING_OP_WRITE_FIXED && sqe_op_read == IORING_OP_READ &&
              sqe_op_write == IORING_OP_WRITE && sqe_fixed_file == IOSQE_FIXED_FILE);

namespace {

// IORING_OP_FTRUNCATE (Linux 6.9): newer than liburing 2.3's headers, so spelled here; the
// ring is probed for it before use.
constexpr std::uint8_t op_ftruncate = 55;

// One line on stderr per process when fixed buffers cannot be registered.
void say_buffers_unregistered(int err) noexcept {
    static std::atomic<bool> said{false};
    if (!said.exchange(true, std::memory_order_relaxed)) {
        std::fprintf(stderr,
                     "bioring: cannot register I/O buffers with io_uring (%s%s); "
                     "falling back to unregistered reads and writes\n",
                     std::strerror(err),
                     err == ENOMEM ? ": RLIMIT_MEMLOCK too small? see ulimit -l" : "");
    }
}

int setup_ring(unsigned entries, io_uring& ring, unsigned& flags_out) {
    // Best first; drop what the kernel refuses (EINVAL) silently.
    const unsigned attempts[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        0,
    };
    int err = -EINVAL;
    for (unsigned flags : attempts) {
        io_uring_params p{};
        p.flags = flags | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
        p.cq_entries = entries * 2;
        err = io_uring_queue_init_params(entries, &ring, &p);
        if (err == -EINVAL) {
            p = io_uring_params{};
            p.flags = flags | IORING_SETUP_CQSIZE;
            p.cq_entries = entries * 2;
            err = io_uring_queue_init_params(entries, &ring, &p);
        }
        if (err == 0) {
            flags_out = flags;
            return 0;
        }
        if (err != -EINVAL) {
            return err;
        }
    }
    return err;
}

} // namespace

UringBackend::UringBackend(Reactor& reactor, const ReactorOptions& opts)
    : reactor_(reactor), counters_(reactor.counters_mut()) {
    const unsigned entries = opts.ring_entries == 0 ? 256 : opts.ring_entries;
    int err = setup_ring(entries, ring_, setup_flags_);
    if (err < 0) {
        throw std::system_error(-err, std::system_category(), "io_uring_queue_init_params");
    }
    defer_taskrun_ = (setup_flags_ & IORING_SETUP_DEFER_TASKRUN) != 0;
    register_buffers_ = opts.register_buffers;
    fixed_files_max_ = opts.fixed_files;
    msg_ring_ok_ = opts.msg_ring;
    efd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd_ < 0) {
        int e = errno;
        io_uring_queue_exit(&ring_);
        throw std::system_error(e, std::system_category(), "eventfd");
    }
    stashed_.reserve(64);
    sqe_timespecs_.resize(ring_.sq.ring_entries);
    cqe_skip_ok_ = (ring_.features & IORING_FEAT_CQE_SKIP) != 0;
    if (io_uring_probe* probe = io_uring_get_probe_ring(&ring_)) {
        ftruncate_ok_ = io_uring_opcode_supported(probe, op_ftruncate) != 0;
        send_zc_ok_ = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC) != 0 &&
                      io_uring_opcode_supported(probe, IORING_OP_SENDMSG_ZC) != 0;
        io_uring_free_probe(probe);
    }
    arm_eventfd();
}

UringBackend::~UringBackend() {
    // Nothing of ours is in flight except the eventfd poll: POLL_ADD has no user buffer,
    // so the ring's own teardown may cancel it.
    closing_ = true;
    io_uring_queue_exit(&ring_);
    ::close(efd_);
}

SqFastPath UringBackend::fast_path() noexcept {
    SqFastPath f;
    if ((ring_.flags & (IORING_SETUP_SQPOLL | IORING_SETUP_SQE128)) != 0) {
        return f; // setup_ring() asks for neither; never write 64-byte SQEs into such a ring
    }
    f.sqes = reinterpret_cast<RawSqe*>(ring_.sq.sqes);
    f.sqe_tail = &ring_.sq.sqe_tail;
    f.khead = ring_.sq.khead;
    f.mask = ring_.sq.ring_mask;
    f.entries = ring_.sq.ring_entries;
    return f;
}

bool UringBackend::cq_needs_flush() const noexcept {
    // liburing 2.3's cq_ring_needs_flush(): replayed so enter_calls counts real syscalls.
    return (IO_URING_READ_ONCE(*ring_.sq.kflags) & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)) !=
           0;
}

void UringBackend::arm_eventfd() noexcept {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_poll_add(sqe, efd_, POLLIN);
    io_uring_sqe_set_data64(sqe, ud_eventfd);
    eventfd_armed_ = true;
}

void UringBackend::wake_eventfd() noexcept {
    std::uint64_t one = 1;
    // A full counter (EAGAIN) is already a pending wake-up.
    [[maybe_unused]] ssize_t r = ::write(efd_, &one, sizeof one);
}

bool UringBackend::send_wake(Reactor& target, int target_ring_fd) noexcept {
    if (!msg_ring_ok_) {
        return false;
    }
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_msg_ring(sqe, target_ring_fd, 0, ud_wake, 0);
    io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uintptr_t>(&target) | ud_msg_source);
    return true;
}

io_uring_sqe* UringBackend::get_sqe_slow() noexcept {
    io_uring_sqe* sqe = nullptr;
    while (sqe == nullptr) {
        flush(); // full SQ: submit what is queued and retry
        sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
}

void UringBackend::stash_cqes() noexcept {
    io_uring_cqe* cqe = nullptr;
    unsigned head;
    unsigned n = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
        const std::uint64_t ud = cqe->user_data;
        int res = cqe->res;
        if ((cqe->flags & flagged_cqe_flags) == 0 || flagged_cqe(ud, res, cqe->flags)) {
            stashed_.push_back({ud, res, (ud & 7) != 0 ? cqe->flags : 0u});
        }
        ++n;
    }
    io_uring_cq_advance(&ring_, n);
    counters_.cqes_reaped += n;
}

void UringBackend::flush() noexcept {
    for (;;) {
        if (io_uring_sq_ready(&ring_) > 0 || cq_needs_flush()) {
            ++counters_.enter_calls;
        }
        int r = io_uring_submit(&ring_);
        if (r >= 0) {
            counters_.sqes_submitted += static_cast<unsigned>(r);
            return;
        }
        if (r == -EBUSY || r == -EAGAIN) {
            // CQ overflow backlog (older kernels) or no memory for requests: make CQ room by
            // moving completions aside; they are delivered at the next reap, never here.
            stash_cqes();
            if (io_uring_sq_ready(&ring_) == 0) {
                return;
            }
            continue;
        }
        if (r == -EINTR) {
            continue;
        }
        return;
    }
}

void UringBackend::submit_slow(Operation& op) noexcept {
    if (op.code == OpCode::ftruncate && !ftruncate_ok_) [[unlikely]] {
        // A kernel without IORING_OP_FTRUNCATE: run it here (a metadata update, usually
        // short) and deliver the result at the next reap, never inside submit().
        const int r = ::ftruncate(op.fd, static_cast<off_t>(op.offset));
        stashed_.push_back({reinterpret_cast<std::uintptr_t>(&op), r < 0 ? -errno : 0, 0u});
        return;
    }
    const bool linked = op.timeout_ns != 0 && op.code != OpCode::timeout;
    if (linked && io_uring_sq_space_left(&ring_) < 2) {
        flush(); // a link chain must not be cut by a flush between its two SQEs
    }
    io_uring_sqe* sqe = get_sqe();
    const int fd = op.fd;
    switch (op.code) {
    case OpCode::close:
        if (op.fixed_file) {
            io_uring_prep_close_direct(sqe, static_cast<unsigned>(fd));
            if (fd >= 0 && static_cast<unsigned>(fd) < file_used_.size() &&
                file_used_[static_cast<unsigned>(fd)]) {
                file_used_[static_cast<unsigned>(fd)] = false; // close_direct frees the slot
                --files_registered_;
            }
        } else {
            io_uring_prep_close(sqe, fd);
        }
        break;
    case OpCode::timeout:
        io_uring_prep_timeout(sqe, timespec_for(sqe, op.timeout_ns), 0, 0);
        break;
    default:
        if (is_socket_op(op.code)) {
            prep_socket(sqe, op, send_zc_ok_); // runtime/uring_socket.cpp
        } else if (op.code > OpCode::timeout) {
            prep_file_op(sqe, op);
        } else {
            prep(sqe, op); // a fast-path opcode with a deadline
        }
        break;
    }
    io_uring_sqe_set_data(sqe, &op);
    if (linked) {
        sqe->flags |= IOSQE_IO_LINK;
        io_uring_sqe* t = get_sqe();
        io_uring_prep_link_timeout(t, timespec_for(t, op.timeout_ns), 0);
        io_uring_sqe_set_data64(t, ud_ignore);
    }
}

void UringBackend::prep_file_op(io_uring_sqe* sqe, const Operation& op) noexcept {
    const int fd = op.fd;
    const auto* path = static_cast<const char*>(op.addr);
    bool takes_file = true; // IOSQE_FIXED_FILE applies to fd
    switch (op.code) {
    case OpCode::write_flags:
        if (op.buf_index >= 0) {
            io_uring_prep_write_fixed(sqe, fd, op.addr, op.len, op.offset, op.buf_index);
        } else {
            io_uring_prep_write(sqe, fd, op.addr, op.len, op.offset);
        }
        sqe->rw_flags = static_cast<__kernel_rwf_t>(op.mode);
        break;
    case OpCode::writev_flags:
        io_uring_prep_writev(sqe, fd, static_cast<const iovec*>(op.addr), op.len, op.offset);
        sqe->rw_flags = static_cast<__kernel_rwf_t>(op.mode);
        break;
    case OpCode::openat:
        io_uring_prep_openat(sqe, fd, path, op.mode, static_cast<mode_t>(op.len));
        takes_file = false;
        break;
    case OpCode::statx:
        io_uring_prep_statx(
            sqe, fd, path, op.mode, op.len,
            reinterpret_cast<struct statx*>(static_cast<std::uintptr_t>(op.length)));
        takes_file = false;
        break;
    case OpCode::unlinkat:
        io_uring_prep_unlinkat(sqe, fd, path, op.mode);
        takes_file = false;
        break;
    case OpCode::renameat:
        io_uring_prep_renameat(
            sqe, fd, path, static_cast<int>(op.len),
            reinterpret_cast<const char*>(static_cast<std::uintptr_t>(op.length)),
            static_cast<unsigned>(op.mode));
        takes_file = false;
        break;
    case OpCode::mkdirat:
        io_uring_prep_mkdirat(sqe, fd, path, static_cast<mode_t>(op.len));
        takes_file = false;
        break;
    case OpCode::ftruncate:
        io_uring_prep_rw(op_ftruncate, sqe, fd, nullptr, 0, op.offset);
        break;
    case OpCode::sync_file_range:
        io_uring_prep_sync_file_range(sqe, fd, op.len, op.offset, op.mode);
        break;
    case OpCode::uring_raw:
        std::memcpy(static_cast<void*>(sqe), op.addr, sizeof(io_uring_sqe));
        takes_file = false; // the caller's flags stand as written
        break;
    default:
        __builtin_unreachable();
    }
    if (takes_file && op.fixed_file) {
        sqe->flags |= IOSQE_FIXED_FILE;
    }
}

int UringBackend::submit_link(Operation* const* ops, unsigned n) noexcept {
    if (n > ring_.sq.ring_entries) {
        return -EINVAL;
    }
    if (!cqe_skip_ok_) {
        return -EOPNOTSUPP;
    }
    // The whole chain goes into the SQ at once: a flush between two of its SQEs would
    // submit a link flag pointing at nothing.
    while (io_uring_sq_space_left(&ring_) < n) {
        flush();
    }
    for (unsigned i = 0; i < n; ++i) {
        Operation& op = *ops[i];
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        if (op.code > OpCode::timeout) {
            prep_file_op(sqe, op);
        } else {
            prep(sqe, op); // nop .. fallocate (Reactor::submit_link refused close, timeout)
        }
        io_uring_sqe_set_data(sqe, &op);
        if (i + 1 < n) {
            // A failed step posts its CQE and suppresses its tail's (REQ_F_SKIP_LINK_CQES):
            // one CQE per chain, from the step that ended it.
            sqe->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
        }
    }
    return 0;
}

__kernel_timespec* UringBackend::timespec_for(const io_uring_sqe* sqe, std::uint64_t ns) noexcept {
    __kernel_timespec& ts = sqe_timespecs_[static_cast<std::size_t>(sqe - ring_.sq.sqes)];
    ts.tv_sec = static_cast<std::int64_t>(ns / 1000000000u);
    ts.tv_nsec = static_cast<long long>(ns % 1000000000u);
    return &ts;
}

void UringBackend::submit_multishot(Operation& op) noexcept {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_multishot_accept(sqe, op.fd, nullptr, nullptr, op.mode);
    io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uintptr_t>(&op) | ud_multishot);
}

void UringBackend::cancel(std::uintptr_t user_data) noexcept {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel64(sqe, user_data, 0);
    io_uring_sqe_set_data64(sqe, ud_ignore);
}

void UringBackend::cancel_all() noexcept {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, ud_ignore);
}

void UringBackend::poll(bool block) noexcept {
    int r = 0;
    if (!stashed_.empty()) {
        block = false; // results to deliver already (a non-native ftruncate)
    }
    if (block) {
        ++counters_.enter_calls;
        r = io_uring_submit_and_wait(&ring_, 1);
    } else if (io_uring_sq_ready(&ring_) > 0 || defer_taskrun_) {
        // DEFER_TASKRUN completions only appear when we enter with GETEVENTS.
        ++counters_.enter_calls;
        r = io_uring_submit_and_get_events(&ring_);
    }
    if (r > 0) {
        counters_.sqes_submitted += static_cast<unsigned>(r);
    } else if (r == -EBUSY || r == -EAGAIN) {
        stash_cqes();
    }
    reap();
}

void UringBackend::deliver_stashed() noexcept {
    // Swap out first: completions may stash again while we deliver these.
    std::vector<StashedCqe> batch;
    batch.swap(stashed_);
    for (const StashedCqe& c : batch) {
        dispatch(c.ud, c.res, c.flags);
    }
    if (stashed_.empty()) {
        batch.clear();
        stashed_.swap(batch); // keep the capacity
    }
}

void UringBackend::reap() noexcept {
    if (!stashed_.empty()) [[unlikely]] {
        deliver_stashed();
    }
    // The CQ ring is read directly (what io_uring_for_each_cqe expands to) instead of
    // through io_uring_peek_batch_cqe, a library call. Each CQE is handed back (head + 1)
    // before it is delivered: a completion may submit, and a full SQ flushes, which may
    // move later CQEs aside (stash_cqes) and so advance the head under us. That is why the
    // head is re-read after every delivery and the batch ends at the tail seen first.
    constexpr unsigned batch_max = 128;
    // Locals: the compiler cannot keep members in registers across complete()'s call.
    unsigned* const khead = ring_.cq.khead;
    unsigned* const ktail = ring_.cq.ktail;
    const io_uring_cqe* const cqes = ring_.cq.cqes;
    const unsigned mask = ring_.cq.ring_mask;
    bool flushed = false;
    for (;;) {
        unsigned head = *khead;
        unsigned ready = io_uring_smp_load_acquire(ktail) - head;
        if (ready == 0) [[unlikely]] {
            // As io_uring_peek_batch_cqe: once per reap, enter to flush an overflow backlog
            // (or, with COOP_TASKRUN, to run the task work that posts our CQEs).
            if (flushed || !cq_needs_flush()) {
                return;
            }
            flushed = true;
            ++counters_.enter_calls;
            io_uring_get_events(&ring_);
            continue;
        }
        if (ready > batch_max) {
            ready = batch_max;
        }
        const unsigned end = head + ready;
        std::uint64_t delivered = 0;
        do {
            const io_uring_cqe* cqe = &cqes[head & mask];
            const std::uint64_t ud = cqe->user_data;
            int res = cqe->res;
            const std::uint32_t flags = cqe->flags; // F_MORE: a multishot's or a zero-copy send's
            io_uring_smp_store_release(khead, head + 1);
            ++delivered;
            if ((flags & flagged_cqe_flags) == 0 || flagged_cqe(ud, res, flags)) [[likely]] {
                dispatch(ud, res, flags);
            }
            head = *khead;
        } while (static_cast<int>(end - head) > 0);
        counters_.cqes_reaped += delivered;
        if (ready < batch_max) {
            return;
        }
    }
}

void UringBackend::dispatch_special(std::uint64_t ud, int res, std::uint32_t flags) noexcept {
    if ((ud & 7) == ud_multishot && ud >= 8) {
        reactor_.complete_multishot(reinterpret_cast<Operation*>(ud & ~std::uint64_t{7}), res,
                                    (flags & IORING_CQE_F_MORE) != 0);
        return;
    }
    if (ud < 8) {
        if (ud == ud_eventfd) {
            eventfd_armed_ = false;
            std::uint64_t v;
            [[maybe_unused]] ssize_t r = ::read(efd_, &v, sizeof v);
            if (!closing_) {
                arm_eventfd();
            }
        }
        return; // ud_ignore, ud_wake: the loop turn itself is the point
    }
    // (ud & 7) == ud_msg_source: our own MSG_RING's completion.
    if (res < 0) {
        // MSG_RING refused (old kernel, target CQ overflow): never rely on it again and
        // deliver this wake-up through the eventfd. The target outlives its posters
        // (Runtime joins every thread before destroying reactors).
        msg_ring_ok_ = false;
        reinterpret_cast<Reactor*>(ud & ~std::uint64_t{7})->wake();
    }
}

// A zero-copy send posts two CQEs with the same user_data: its result, flagged F_MORE, and
// later the notification (F_NOTIF) that the kernel holds no reference to the buffer any
// more. Delivering the result at once would let the caller reuse or free a buffer the
// kernel may still read (a retransmission, a loopback copy not made yet), and the second
// CQE would then name a finished Operation: so the result waits in reactor_res_ (unused by
// this backend) and is delivered with the notification. Only zero-copy sends set these
// flags on an untagged Operation's CQEs: a multishot request's user_data carries the
// ud_multishot tag and passes through to dispatch_special(); the eventfd poll is one-shot.
// A buffer-select receive's CQE carries F_BUFFER and the id of the buffer the kernel
// picked: it goes to the Operation's reactor_flags_ (op_buffer) before its completion.
bool UringBackend::flagged_cqe(std::uint64_t ud, int& res, unsigned flags) noexcept {
    if ((ud & 7) != 0) {
        return true;
    }
    auto* op = reinterpret_cast<Operation*>(ud);
    if ((flags & IORING_CQE_F_BUFFER) != 0) {
        // A buffer-select receive (OpCode::recv_select): which buffer the kernel filled.
        op->reactor_flags_ = op_buffer | ((flags >> IORING_CQE_BUFFER_SHIFT) << 16);
        return true;
    }
    if ((flags & IORING_CQE_F_MORE) != 0) {
        op->reactor_res_ = res;
        return false;
    }
    ++counters_.zc_notifications;
    res = op->reactor_res_;
    return true;
}

static_assert((UringBackend::ud_wake & 7) != 0 && (UringBackend::ud_eventfd & 7) != 0 &&
                  (UringBackend::ud_ignore & 7) != 0 && (UringBackend::ud_msg_source & 7) != 0 &&
                  (UringBackend::ud_multishot & 7) != 0,
              "dispatch() tells special user_data from an Operation* by its low bits");

[[gnu::always_inline]] inline void UringBackend::dispatch(std::uint64_t ud, int res,
                                                          std::uint32_t flags) noexcept {
    // One test covers every special user_data (uring_backend.hpp): each has a low bit set.
    if ((ud & 7) != 0) [[unlikely]] {
        dispatch_special(ud, res, flags);
        return;
    }
    auto* op = reinterpret_cast<Operation*>(ud);
    if (res == -ETIME) [[unlikely]] {
        if (op->code == OpCode::timeout) {
            res = 0; // the timer fired: that is its success
        }
    }
    reactor_.complete_op(op, res);
}

void UringBackend::sync_buffers() noexcept {
    BufferPool& pool = BufferPool::global();
    const std::size_t n = pool.arena_count();
    if (n == buffers_registered_ || buffers_failed_ || !register_buffers_) {
        return;
    }
    if (!buffer_table_) {
        int r = io_uring_register_buffers_sparse(&ring_, BufferPool::max_arenas);
        if (r < 0) {
            buffers_failed_ = true;
            say_buffers_unregistered(-r);
            return;
        }
        buffer_table_ = true;
    }
    while (buffers_registered_ < n && buffers_registered_ < BufferPool::max_arenas) {
        iovec iov = pool.arena(buffers_registered_);
        __u64 tag = 0;
        int r = io_uring_register_buffers_update_tag(
            &ring_, static_cast<unsigned>(buffers_registered_), &iov, &tag, 1);
        if (r < 0) {
            buffers_failed_ = true;
            say_buffers_unregistered(-r);
            return;
        }
        auto base = reinterpret_cast<std::uintptr_t>(iov.iov_base);
        arenas_.emplace_back(base, base + iov.iov_len);
        ++buffers_registered_;
    }
}

int UringBackend::buffer_index(const void* addr, std::size_t len) noexcept {
    if (BufferPool::global().arena_count() != buffers_registered_) [[unlikely]] {
        sync_buffers();
    }
    const auto a = reinterpret_cast<std::uintptr_t>(addr);
    for (std::size_t i = 0; i < arenas_.size(); ++i) {
        if (a >= arenas_[i].first && a + len <= arenas_[i].second) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

int UringBackend::register_file(int fd) noexcept {
    if (fd < 0) {
        return -EBADF;
    }
    if (!file_table_) {
        if (fixed_files_max_ == 0) {
            return -ENFILE;
        }
        int r = io_uring_register_files_sparse(&ring_, fixed_files_max_);
        if (r < 0) {
            return r;
        }
        file_table_ = true;
        file_used_.assign(fixed_files_max_, false);
    }
    for (unsigned i = 0; i < fixed_files_max_; ++i) {
        if (!file_used_[i]) {
            int r = io_uring_register_files_update(&ring_, i, &fd, 1);
            if (r < 0) {
                return r;
            }
            file_used_[i] = true;
            ++files_registered_;
            return static_cast<int>(i);
        }
    }
    return -ENFILE;
}

void UringBackend::unregister_file(int index) noexcept {
    if (!file_table_ || index < 0 || static_cast<unsigned>(index) >= fixed_files_max_ ||
        !file_used_[static_cast<unsigned>(index)]) {
        return;
    }
    int minus_one = -1;
    io_uring_register_files_update(&ring_, static_cast<unsigned>(index), &minus_one, 1);
    file_used_[static_cast<unsigned>(index)] = false;
    --files_registered_;
}

std::string UringBackend::describe() const {
    std::string s = "io_uring (";
    if (setup_flags_ & IORING_SETUP_DEFER_TASKRUN) {
        s += "SINGLE_ISSUER|DEFER_TASKRUN";
    } else if (setup_flags_ & IORING_SETUP_COOP_TASKRUN) {
        s += "COOP_TASKRUN";
    } else {
        s += "no taskrun flags";
    }
    s += ", " + std::to_string(ring_.sq.ring_entries) + " entries";
    // BufferPool arenas are registered lazily (the first buffer_index() that sees a new
    // one), so before any I/O the count is 0 without meaning "none".
    if (!register_buffers_) {
        s += ", fixed buffers off";
    } else if (buffers_failed_) {
        s += ", fixed buffers refused";
    } else if (buffers_registered_ == 0) {
        s += ", fixed buffers: registered on first use";
    } else {
        s += ", " + std::to_string(buffers_registered_) + " fixed buffers";
    }
    s += ", " + std::to_string(files_registered_) + " fixed files";
    s += msg_ring_ok_ ? ", MSG_RING" : ", eventfd wake-ups";
    s += ")";
    return s;
}

} // namespace bioring::detail
