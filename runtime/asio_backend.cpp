// SPDX-License-Identifier: MIT
// Asio fallback backend: see asio_backend.hpp for the model.
//
// Per-operation state lives in Operation::reactor_flags_ (atomic_ref):
//   queued -> running (worker, CAS) -> the worker posts the result back
//   queued -> cancelled (owner, CAS): the worker posts -ECANCELED when it picks it up
//   running | cancel_req (owner): the worker's poll() wakes on its eventfd, sees the bit
// Operation::reactor_res_ holds the running worker's eventfd (written before the CAS that
// publishes `running`, read by the owner after an acquire load that saw `running`).
//
// No heap call per I/O in the steady state (tests/runtime/alloc_count_test.cpp and
// tests/io/no_alloc_test.cpp assert it on this backend too): every handler given to Asio
// (the post to the pool, the post back, the timer wait, nop and wake posts) carries a
// HandlerAllocator, so its operation object comes from the Impl's HandlerPool, which
// recycles across threads (runtime/handler_pool.hpp); the in-flight set is an
// open-addressing table (OpSet) that allocates only when it grows.
#include <bioring/runtime/detail/asio_backend.hpp>

#include <bioring/runtime/detail/asio_socket.hpp>
#include <bioring/runtime/detail/handler_pool.hpp>
#include <bioring/runtime/detail/op_set.hpp>

// Asio's scheduler uses std::atomic_thread_fence, which TSan cannot model (-Wtsan); its
// own locking is what orders our posts, so the warning says nothing about this file.
#if defined(__GNUC__) && !defined(__clang__) && defined(__SANITIZE_THREAD__)
#pragma GCC diagnostic ignored "-Wtsan"
#endif

#include <asio/io_context.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

namespace bioring::detail {

namespace {

constexpr std::uint32_t st_queued = 0;
constexpr std::uint32_t st_running = 1;
constexpr std::uint32_t st_cancelled = 2;
constexpr std::uint32_t st_cancel_req = 4;

// Each worker thread owns one eventfd that interrupts its poll() (closed at thread exit).
struct WorkerEventfd {
    int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ~WorkerEventfd() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};
thread_local WorkerEventfd tl_worker_efd;

bool is_rw(OpCode c) noexcept {
    return c == OpCode::read || c == OpCode::write || c == OpCode::readv || c == OpCode::writev ||
           c == OpCode::write_flags || c == OpCode::writev_flags;
}

// Path operations take a directory descriptor, AT_FDCWD (negative) included.
bool takes_dirfd(OpCode c) noexcept {
    return c == OpCode::openat || c == OpCode::statx || c == OpCode::unlinkat ||
           c == OpCode::renameat || c == OpCode::mkdirat;
}

// The Reactor::submit_link rule: a read/write step succeeds when it moved its full length.
bool step_succeeded(const Operation& op, int res) noexcept {
    switch (op.code) {
    case OpCode::read:
    case OpCode::write:
    case OpCode::write_flags:
        return res >= 0 && static_cast<std::uint32_t>(res) == op.len;
    case OpCode::readv:
    case OpCode::writev:
    case OpCode::writev_flags: {
        std::size_t want = 0;
        const auto* iov = static_cast<const iovec*>(op.addr);
        for (std::uint32_t i = 0; i < op.len; ++i) {
            want += iov[i].iov_len;
        }
        return res >= 0 && static_cast<std::size_t>(res) == want;
    }
    default:
        return res >= 0;
    }
}

// The file operations' syscalls (OpCode::write_flags and after).
ssize_t file_op(const Operation& op, int fd) noexcept {
    const auto off = static_cast<off_t>(op.offset);
    const auto* path = static_cast<const char*>(op.addr);
    switch (op.code) {
    case OpCode::write_flags: {
        iovec v{op.addr, op.len};
        return ::pwritev2(fd, &v, 1, off, op.mode);
    }
    case OpCode::writev_flags:
        return ::pwritev2(fd, static_cast<const iovec*>(op.addr), static_cast<int>(op.len), off,
                          op.mode);
    case OpCode::openat:
        return ::openat(fd, path, op.mode, static_cast<mode_t>(op.len));
    case OpCode::statx:
        return ::statx(fd, path, op.mode, op.len,
                       reinterpret_cast<struct statx*>(static_cast<std::uintptr_t>(op.length)));
    case OpCode::unlinkat:
        return ::unlinkat(fd, path, op.mode);
    case OpCode::renameat:
        return ::renameat2(fd, path, static_cast<int>(op.len),
                           reinterpret_cast<const char*>(static_cast<std::uintptr_t>(op.length)),
                           static_cast<unsigned>(op.mode));
    case OpCode::mkdirat:
        return ::mkdirat(fd, path, static_cast<mode_t>(op.len));
    case OpCode::ftruncate:
        return ::ftruncate(fd, off);
    case OpCode::sync_file_range:
        return ::sync_file_range(fd, off, op.len, static_cast<unsigned>(op.mode));
    default: // uring_raw never reaches a worker
        errno = EOPNOTSUPP;
        return -1;
    }
}

int once(const Operation& op, int fd) noexcept {
    ssize_t r = 0;
    const auto off = static_cast<off_t>(op.offset);
    switch (op.code) {
    case OpCode::nop:
        return 0;
    case OpCode::read:
        r = ::pread(fd, op.addr, op.len, off);
        if (r < 0 && errno == ESPIPE) {
            r = ::read(fd, op.addr, op.len);
        }
        break;
    case OpCode::write:
        r = ::pwrite(fd, op.addr, op.len, off);
        if (r < 0 && errno == ESPIPE) {
            r = ::write(fd, op.addr, op.len);
        }
        break;
    case OpCode::readv:
        r = ::preadv(fd, static_cast<const iovec*>(op.addr), static_cast<int>(op.len), off);
        if (r < 0 && errno == ESPIPE) {
            r = ::readv(fd, static_cast<const iovec*>(op.addr), static_cast<int>(op.len));
        }
        break;
    case OpCode::writev:
        r = ::pwritev(fd, static_cast<const iovec*>(op.addr), static_cast<int>(op.len), off);
        if (r < 0 && errno == ESPIPE) {
            r = ::writev(fd, static_cast<const iovec*>(op.addr), static_cast<int>(op.len));
        }
        break;
    case OpCode::fsync:
        r = ::fsync(fd);
        break;
    case OpCode::fdatasync:
        r = ::fdatasync(fd);
        break;
    case OpCode::fallocate:
        r = ::fallocate(fd, op.mode, off, static_cast<off_t>(op.length));
        break;
    case OpCode::close:
        r = ::close(fd);
        return r < 0 ? -errno : 0; // never retried: EINTR from close still closed the fd
    case OpCode::timeout:
        return -EINVAL;
    case OpCode::accept: // socket operations run on the reactor thread (asio_socket.cpp)
    case OpCode::connect:
    case OpCode::recv:
    case OpCode::send:
    case OpCode::recvmsg:
    case OpCode::sendmsg:
    case OpCode::send_zc:
    case OpCode::sendmsg_zc:
    case OpCode::recv_select:
    case OpCode::shutdown:
        return -EINVAL;
    default:
        r = file_op(op, fd);
        break;
    }
    return r < 0 ? -errno : static_cast<int>(r);
}

} // namespace

// A steady timer bound to the io_context's own executor: asio::steady_timer's type-erased
// any_io_executor would make each wait operation too large for a HandlerPool block.
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>,
                                         asio::io_context::executor_type>;

// A timer with its operation. finish() releases the slot at once (cancelling the wait) and
// bumps gen, so the slot is reused before its aborted wait's handler has run; that handler
// sees a stale gen and does nothing. (Returning the slot from the handler instead made the
// number of slots depend on handler order: a new one, a heap call, whenever an operation
// completed before the previous one's aborted wait had run.)
struct TimerSlot {
    explicit TimerSlot(asio::io_context& ioc) : timer(ioc.get_executor()) {}
    Timer timer;
    Operation* op = nullptr; ///< the holder, from get_timer() to finish()
    std::uint32_t gen = 0;   ///< bumped at each release: a handler of an older gen is stale
};

struct AsioBackend::Impl {
    Impl(Reactor& r, const ReactorOptions& opts, unsigned workers, std::string w)
        : reactor(r), counters(r.counters_mut()),
          // An operation holds two blocks at most (its post or its post-back, and its
          // deadline's wait), so a full ring's worth fits without growth; aborted waits
          // not yet run hold one more each, briefly (growth is allowed, not per I/O).
          handlers(2 * std::size_t{opts.ring_entries} + 2 * workers), guard(ioc.get_executor()),
          pool(workers), why(std::move(w)), in_flight(opts.ring_entries) {}

    /// @f with its Asio operation memory drawn from `handlers`.
    template <class F>
    PooledHandler<std::decay_t<F>> bind(F&& f) noexcept {
        return {std::forward<F>(f), &handlers};
    }

    Reactor& reactor;
    ReactorCounters& counters;
    // Declared before ioc and pool: handlers they destroy unrun at shutdown free into it.
    HandlerPool handlers;
    asio::io_context ioc{1};
    asio::executor_work_guard<asio::io_context::executor_type> guard;
    asio::thread_pool pool;
    std::string why;
    OpSet in_flight;
    std::vector<std::unique_ptr<TimerSlot>> timers_free;
    std::size_t nr_timers = 0; // slots created: timers_free's capacity is at least this
    std::vector<int> files;    // fixed-file emulation: index -> fd (-1 = free)
    // Last: destroyed first, while the io_context its descriptors belong to still exists.
    AsioSockets sockets{ioc, handlers, &Impl::finish_socket, this};

    static void finish_socket(void* self, Operation* op, int res) noexcept {
        static_cast<Impl*>(self)->finish(op, res);
    }

    TimerSlot* get_timer() {
        if (timers_free.empty()) [[unlikely]] {
            // Room for every slot, so that put_timer() (in the noexcept finish()) never grows.
            timers_free.reserve(++nr_timers);
            return new TimerSlot(ioc);
        }
        TimerSlot* t = timers_free.back().release();
        timers_free.pop_back();
        return t;
    }
    void put_timer(TimerSlot* t) noexcept { timers_free.emplace_back(t); }

    void arm(TimerSlot* slot, std::uint64_t ns, bool is_timer_op) {
        slot->timer.expires_after(std::chrono::nanoseconds(ns));
        const std::uint32_t gen = slot->gen;
        slot->timer.async_wait(bind([this, slot, gen, is_timer_op](const std::error_code& ec) {
            if (slot->gen != gen) {
                return; // its operation finished and released the slot (maybe reused since)
            }
            Operation* op = slot->op;
            if (is_timer_op) {
                finish(op, ec ? -ECANCELED : 0);
            } else if (!ec) {
                cancel_op(op); // the deadline passed first: LINK_TIMEOUT semantics
            }
        }));
    }

    void finish(Operation* op, int res) noexcept {
        in_flight.erase(op);
        if (auto* slot = static_cast<TimerSlot*>(op->reactor_ptr_)) {
            op->reactor_ptr_ = nullptr;
            slot->op = nullptr;
            ++slot->gen;
            slot->timer.cancel(); // a pending wait completes later, stale
            put_timer(slot);
        }
        ++counters.cqes_reaped;
        reactor.complete_op(op, res);
    }

    void cancel_op(Operation* op) noexcept {
        if (is_socket_op(op->code)) {
            sockets.cancel(*op);
            return;
        }
        if (op->code == OpCode::timeout) {
            if (auto* slot = static_cast<TimerSlot*>(op->reactor_ptr_)) {
                slot->timer.cancel();
            }
            return;
        }
        std::atomic_ref<std::uint32_t> st(op->reactor_flags_);
        std::uint32_t expected = st_queued;
        if (st.compare_exchange_strong(expected, st_cancelled, std::memory_order_acq_rel)) {
            return; // the worker reports -ECANCELED when it dequeues it
        }
        if ((expected & st_running) && is_rw(op->code)) {
            st.fetch_or(st_cancel_req, std::memory_order_acq_rel);
            std::uint64_t one = 1;
            [[maybe_unused]] ssize_t r = ::write(op->reactor_res_, &one, sizeof one);
        }
    }

    // Worker thread.
    void run_blocking(Operation* op, int fd) noexcept {
        std::atomic_ref<std::uint32_t> st(op->reactor_flags_);
        const int efd = tl_worker_efd.fd;
        op->reactor_res_ = efd;
        std::uint32_t expected = st_queued;
        int res;
        if (!st.compare_exchange_strong(expected, st_running, std::memory_order_acq_rel)) {
            res = -ECANCELED;
        } else {
            res = perform(*op, fd, efd, st);
        }
        asio::post(ioc, bind([this, op, res] { finish(op, res); }));
    }

    // Worker thread: a linked chain (Reactor::submit_link), its steps in order. submit_link
    // threaded the steps through reactor_ptr_ (the caller's array may be gone) and put
    // each step's resolved descriptor in its reactor_res_; the head carries the chain's
    // state and, while it runs, the worker's eventfd (as run_blocking).
    void run_chain(Operation* head) noexcept {
        int fds[Reactor::max_link];
        Operation* steps[Reactor::max_link];
        unsigned n = 0;
        for (Operation* s = head; s != nullptr && n < Reactor::max_link;
             s = static_cast<Operation*>(s->reactor_ptr_)) {
            steps[n] = s;
            fds[n] = s->reactor_res_;
            ++n;
        }
        for (unsigned i = 0; i < n; ++i) {
            steps[i]->reactor_ptr_ = nullptr; // finish() reads the head's as a timer slot
        }
        std::atomic_ref<std::uint32_t> st(head->reactor_flags_);
        const int efd = tl_worker_efd.fd;
        head->reactor_res_ = efd;
        std::uint32_t expected = st_queued;
        unsigned end = 0;
        int res = -ECANCELED;
        if (st.compare_exchange_strong(expected, st_running, std::memory_order_acq_rel)) {
            for (end = 0;; ++end) {
                res = perform(*steps[end], fds[end], efd, st);
                if (end + 1 == n || !step_succeeded(*steps[end], res)) {
                    break;
                }
                if (st.load(std::memory_order_acquire) & st_cancel_req) {
                    ++end; // cancelled between steps: the next one never starts
                    res = -ECANCELED;
                    break;
                }
            }
        }
        Operation* last = steps[end];
        asio::post(ioc, bind([this, head, last, res] {
                       in_flight.erase(head);
                       ++counters.cqes_reaped;
                       reactor.complete_op(last, res);
                   }));
    }

    static int perform(const Operation& op, int fd, int efd,
                       std::atomic_ref<std::uint32_t>& st) noexcept {
        if (fd < 0 && !takes_dirfd(op.code)) {
            return -EBADF; // poll() would ignore a negative fd and wait forever
        }
        if (is_rw(op.code)) {
            const bool in = op.code == OpCode::read || op.code == OpCode::readv;
            for (;;) {
                pollfd p[2] = {{fd, static_cast<short>(in ? POLLIN : POLLOUT), 0},
                               {efd, POLLIN, 0}};
                int n = ::poll(p, 2, -1);
                if (n < 0) {
                    if (errno == EINTR) {
                        continue;
                    }
                    return -errno;
                }
                if (p[1].revents) {
                    std::uint64_t v;
                    [[maybe_unused]] ssize_t r = ::read(efd, &v, sizeof v);
                    if (st.load(std::memory_order_acquire) & st_cancel_req) {
                        return -ECANCELED;
                    }
                }
                if (p[0].revents) {
                    break; // ready, or POLLERR/POLLHUP/POLLNVAL: let the syscall report it
                }
            }
        }
        for (;;) {
            int r = once(op, fd);
            if (r != -EINTR) {
                return r;
            }
        }
    }
};

AsioBackend::AsioBackend(Reactor& reactor, const ReactorOptions& opts, std::string why) {
    unsigned hw = std::thread::hardware_concurrency();
    unsigned workers = hw < 2 ? 2 : (hw > 8 ? 8 : hw);
    impl_ = std::make_unique<Impl>(reactor, opts, workers, std::move(why));
    impl_->files.assign(opts.fixed_files, -1);
}

AsioBackend::~AsioBackend() {
    impl_->guard.reset();
    impl_->pool.join();
    impl_->ioc.poll(); // late posts from the workers (none in flight after drain)
    impl_->timers_free.clear();
    for (int d : impl_->files) {
        if (d >= 0) {
            ::close(d);
        }
    }
}

void AsioBackend::submit(Operation& op) noexcept {
    Impl& m = *impl_;
    ++m.counters.sqes_submitted;
    op.reactor_flags_ = st_queued;
    op.reactor_ptr_ = nullptr;
    m.in_flight.insert(&op);
    if (op.code == OpCode::timeout) {
        TimerSlot* slot = m.get_timer();
        slot->op = &op;
        op.reactor_ptr_ = slot;
        m.arm(slot, op.timeout_ns, true);
        return;
    }
    if (op.code == OpCode::nop) {
        asio::post(m.ioc, m.bind([&m, p = &op] { m.finish(p, 0); }));
        return;
    }
    int fd = op.fd;
    if (op.fixed_file) {
        fd = (op.fd >= 0 && static_cast<std::size_t>(op.fd) < m.files.size()) ? m.files[op.fd] : -1;
        if (fd < 0) {
            asio::post(m.ioc, m.bind([&m, p = &op] { m.finish(p, -EBADF); }));
            return;
        }
        if (op.code == OpCode::close) {
            m.files[op.fd] = -1; // as close_direct: the slot's own reference (a dup) goes
        }
    }
    if (op.code == OpCode::uring_raw) {
        asio::post(m.ioc, m.bind([&m, p = &op] { m.finish(p, -EOPNOTSUPP); }));
        return;
    }
    if (op.timeout_ns != 0) {
        TimerSlot* slot = m.get_timer();
        slot->op = &op;
        op.reactor_ptr_ = slot;
        m.arm(slot, op.timeout_ns, false);
    }
    if (is_socket_op(op.code)) {
        m.sockets.start(op, fd); // readiness from Asio's reactor, not the thread pool
        return;
    }
    asio::post(m.pool, m.bind([&m, p = &op, fd] { m.run_blocking(p, fd); }));
}

int AsioBackend::submit_link(Operation* const* ops, unsigned n) noexcept {
    Impl& m = *impl_;
    for (unsigned i = 0; i < n; ++i) {
        Operation& op = *ops[i];
        if (op.code == OpCode::uring_raw) {
            return -EOPNOTSUPP;
        }
        int fd = op.fd;
        if (op.fixed_file) {
            fd = (op.fd >= 0 && static_cast<std::size_t>(op.fd) < m.files.size())
                     ? m.files[static_cast<std::size_t>(op.fd)]
                     : -1; // the step fails with -EBADF when it runs
        }
        op.reactor_res_ = fd;
        op.reactor_ptr_ = i + 1 < n ? ops[i + 1] : nullptr;
    }
    m.counters.sqes_submitted += n;
    Operation* head = ops[0];
    head->reactor_flags_ = st_queued;
    m.in_flight.insert(head); // cancel(head) stops the chain; the other steps are not listed
    asio::post(m.pool, m.bind([&m, head] { m.run_chain(head); }));
    return 0;
}

void AsioBackend::cancel(std::uintptr_t user_data) noexcept {
    auto* op = reinterpret_cast<Operation*>(user_data);
    if (impl_->in_flight.contains(op)) {
        impl_->cancel_op(op);
    }
}

void AsioBackend::cancel_all() noexcept {
    impl_->in_flight.for_each([this](Operation* op) { impl_->cancel_op(op); });
}

void AsioBackend::poll(bool block) noexcept {
    if (block) {
        impl_->ioc.run_one();
    }
    impl_->ioc.poll();
}

void AsioBackend::wake() noexcept {
    // Any thread: the pool is thread-safe, so a cross-thread wake allocates nothing either.
    asio::post(impl_->ioc, impl_->bind([] {}));
}

// Fixed files are emulated with a table of dup()s: like io_uring's table, a slot holds its
// own reference to the file, which outlives the caller's fd and is dropped by
// unregister_file() or a fixed-file close.
int AsioBackend::register_file(int fd) noexcept {
    if (fd < 0) {
        return -EBADF;
    }
    for (std::size_t i = 0; i < impl_->files.size(); ++i) {
        if (impl_->files[i] < 0) {
            int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
            if (d < 0) {
                return -errno;
            }
            impl_->files[i] = d;
            return static_cast<int>(i);
        }
    }
    return -ENFILE;
}

void AsioBackend::unregister_file(int index) noexcept {
    if (index >= 0 && static_cast<std::size_t>(index) < impl_->files.size()) {
        int& d = impl_->files[static_cast<std::size_t>(index)];
        if (d >= 0) {
            ::close(d);
            d = -1;
        }
    }
}

std::string AsioBackend::describe() const {
    return "asio (" + impl_->why + ")";
}

} // namespace bioring::detail
