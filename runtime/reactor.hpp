// SPDX-License-Identifier: MIT
// Reactor: one per thread, one io_uring (or, as a fallback, one asio::io_context).
//
// Object model. A Reactor is bound to the thread that constructs it (Reactor::current()).
// It owns the thread's default BioSet (coroutine frames land in its front pad), a ready
// queue of coroutines, a remote queue that other threads post to, and a backend:
//   - io_uring (runtime/uring_backend.*): submit() preps an SQE whose user_data is the
//     Operation's address; one io_uring_submit_and_wait per loop turn submits everything
//     queued and waits; CQEs are read straight off the CQ ring (inline, no liburing call
//     per CQE) and each calls Operation::complete() — the awaiter is the completion record,
//     nothing is allocated per I/O.
//     The common submit (no deadline; nop, read, write, readv, writev) is inline here, in
//     the caller: it writes the SQE through detail::SqFastPath (runtime/detail/sqe.hpp), raw pointers into the
//     ring that UringBackend hands over, so this header needs neither liburing.h nor
//     <linux/io_uring.h> (uring_backend.cpp checks detail::RawSqe against liburing's
//     io_uring_sqe field by field). Everything else (a full SQ, deadlines, timers, close,
//     fsync, fallocate, the Asio backend) takes the out-of-line submit_slow().
//   - Asio (runtime/asio_backend.*): the same API on an io_context loop, blocking syscalls
//     on a thread pool, completions posted back to the reactor thread.
// Loop turn: run remote work, run ready coroutines, then submit + (wait) + reap.
//
// Threading. Everything except post_remote(), cancel() and wake() is owner-thread only.
// Cross-thread work goes through a mutex-protected intrusive list; the poster wakes the
// owner while holding that mutex (eventfd write, or an IORING_OP_MSG_RING from the
// poster's own ring), and the destructor takes it too, so a poster never touches a dead
// reactor. Completions are delivered on the owner thread only, never inside submit().
//
// Counters are plain integers written by the owner; see ReactorCounters.
#pragma once

#include <bioring/alloc/bioset.hpp>
#include <bioring/runtime/buffer_ring.hpp>
#include <bioring/runtime/counters.hpp>
#include <bioring/runtime/operation.hpp>
#include <bioring/runtime/detail/sqe.hpp>
#include <bioring/runtime/detail/thread_context.hpp>

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace bioring {

enum class Backend { uring, asio };

/// Which backend a Reactor is built with. The environment variable BIORING_BACKEND
/// (uring|asio) overrides it, so a test suite can run unchanged on either backend.
enum class BackendChoice {
    automatic, ///< io_uring; Asio when the ring cannot be set up (the reason is reported)
    uring,     ///< io_uring or fail: the constructor throws std::system_error
    asio,      ///< the Asio fallback, whatever the kernel offers
};

/// Returns: "io_uring" or "asio".
const char* backend_name(Backend b) noexcept;

/// The backend of the running reactors and why, e.g. "io_uring (SINGLE_ISSUER|DEFER_TASKRUN,
/// 256 entries, 6 fixed buffers, ...)" or "asio (io_uring refused: EPERM, ...)": on a
/// reactor thread, that reactor's; elsewhere, every reactor of the process as configured
/// when it started ("2 reactors: ..."); with none running, what a Reactor built now with
/// default options would use (it builds one and destroys it to find out).
/// Context: any thread.
std::string backend_report();

struct ReactorOptions {
    unsigned ring_entries = 256;          ///< SQ entries (the CQ gets twice as many)
    bool register_buffers = true;         ///< register BufferPool::global() arenas as fixed buffers
    unsigned fixed_files = 64;            ///< size of the sparse fixed-file table
    std::size_t default_front_pad = 1024; ///< front pad of the thread's default bioset
    std::size_t default_pool_size = 64;   ///< reserve of the thread's default bioset
    bool msg_ring = true; ///< wake other io_uring reactors with MSG_RING (else eventfd)
    BackendChoice backend = BackendChoice::automatic; ///< overridden by BIORING_BACKEND
};

/// A unit of work posted to a reactor from any thread (intrusive: no allocation).
struct RemoteTask {
    RemoteTask* next = nullptr;
    void (*run)(RemoteTask* self) noexcept = nullptr;
};

namespace detail {
class UringBackend;
class AsioBackend;

} // namespace detail

class Reactor {
public:
    /// Build a reactor for the calling thread with the backend opts.backend (or
    /// BIORING_BACKEND) chooses.
    /// Context: any thread that has no reactor yet.
    /// Returns: throws std::logic_error if this thread already has one, std::system_error
    /// when neither backend can start.
    explicit Reactor(ReactorOptions opts = {});
    /// Runs the loop until no operation is in flight and nothing is ready, then tears
    /// down. Context: the owner thread (or any thread after detach_thread()).
    ~Reactor();
    Reactor(const Reactor&) = delete;
    Reactor& operator=(const Reactor&) = delete;

    /// Returns: this thread's reactor, or nullptr. Context: any thread.
    static Reactor* current() noexcept { return detail::tl_context.reactor; }

    /// Start @op. complete() is called later on this thread, never inside submit().
    /// Context: owner thread; never blocks (a full SQ is flushed and retried).
    void submit(Operation& op) noexcept {
        static_assert(OpCode::nop < OpCode::read && OpCode::read < OpCode::write &&
                          OpCode::write < OpCode::readv && OpCode::readv < OpCode::writev &&
                          OpCode::writev < OpCode::fsync,
                      "the inline path takes the opcodes nop .. writev");
        if (sq_.sqes != nullptr && op.timeout_ns == 0 && op.code <= OpCode::writev) [[likely]] {
            const detail::FastSqe v = detail::fast_sqe(op);
            const unsigned tail = *sq_.sqe_tail;
            // As io_uring_get_sqe without SQPOLL: the kernel moves khead only inside
            // io_uring_enter, which this thread makes; a plain (relaxed) read suffices.
            if (tail + 1 - __atomic_load_n(sq_.khead, __ATOMIC_RELAXED) <= sq_.entries) [[likely]] {
                *sq_.sqe_tail = tail + 1;
                detail::store_sqe(sq_.sqes[tail & sq_.mask], v,
                                  reinterpret_cast<std::uintptr_t>(&op));
                ++submitted_;
                return;
            }
        }
        ++submitted_;
        submit_slow(op);
    }
    /// The most steps submit_link() takes.
    static constexpr unsigned max_link = 8;
    /// Start @n operations as one linked chain (io_uring IOSQE_IO_LINK): step i+1 starts
    /// only after step i succeeded; they reach the kernel in one io_uring_enter (the SQ
    /// is flushed first when it lacks room for the whole chain, never in the middle).
    /// A step succeeds when it moves its full length (read, write, readv, writev and their
    /// _flags forms: a short count fails the chain) or returns >= 0 (the others).
    /// Exactly ONE complete() is called per chain, on the step that ended it: the last
    /// step, or the first step that failed. Steps before it succeeded (full length, or 0);
    /// steps after it never ran (report them as -ECANCELED). On io_uring every step but the
    /// last carries IOSQE_CQE_SKIP_SUCCESS, so a chain costs one CQE; the Asio backend runs
    /// the steps in order on one pool thread with the same rule.
    /// Every step but the last must be one whose success result is known (not openat, not
    /// uring_raw); no step may be close or timeout or carry a deadline (timeout_ns):
    /// a LINK_TIMEOUT inside a chain would bound a single step and post its own CQEs.
    /// Cancel a chain by cancelling each of its steps. The array @ops may go when this
    /// returns; the Operations stay the reactor's until the chain's completion.
    /// Context: owner thread. Returns: 0 (submitted), or, with nothing submitted, -EINVAL
    /// (n is 0 or above max_link or the ring's SQ size, or a step is not allowed),
    /// -EOPNOTSUPP (ring without IORING_FEAT_CQE_SKIP; uring_raw or a non-native
    /// ftruncate in a chain; uring_raw on Asio).
    int submit_link(Operation* const* ops, unsigned n) noexcept;
    /// Returns: whether @code runs as a native asynchronous operation on this reactor.
    /// io_uring: ftruncate needs IORING_OP_FTRUNCATE (Linux 6.9; probed at setup; without
    /// it the reactor thread calls ftruncate(2) itself and delivers the result at the next
    /// reap); everything else is native. Asio: all but uring_raw (run on the pool).
    bool native(OpCode code) const noexcept;

    /// Ask the kernel to cancel @op (ASYNC_CANCEL by user_data). @op still completes,
    /// usually with -ECANCELED, or with its own result if it finished first.
    /// Context: any thread (from a foreign thread it is posted to the owner).
    void cancel(Operation& op) noexcept;

    /// Start the multishot accept @op (io_uring only; op.fd the listening socket, op.mode
    /// the SOCK_* flags of the accepted descriptors, no deadline): one SQE, then
    /// op.complete() once per accepted connection (res = the new fd or -errno) with
    /// Operation::reactor_flags_ & op_more set while the kernel keeps it armed. The last
    /// call (op_more clear) ends it; only then may @op be reused or freed. It counts as one
    /// operation in flight until then; stop() and the destructor cancel it.
    /// Context: owner thread. Returns: false (nothing submitted) on the Asio backend.
    bool submit_multishot(Operation& op) noexcept;
    /// Ask the kernel to end the armed multishot @op (its last completion follows).
    /// Context: any thread (posted to the owner, as cancel()).
    void cancel_multishot(Operation& op) noexcept;
    /// Returns: true once the destructor began (multishot owners must not re-arm).
    /// Context: owner thread.
    bool closing() const noexcept { return closing_; }

    /// Register @fd in the sparse fixed-file table.
    /// Returns: the index (use it as Operation::fd with fixed_file = true), or -errno.
    /// Context: owner thread.
    int register_file(int fd) noexcept;
    /// Clear a fixed-file slot. Context: owner thread.
    void unregister_file(int index) noexcept;
    /// This reactor's BufferRing of @size-byte buffers (runtime/buffer_ring.hpp), made on
    /// the first call with @count buffers (later calls return it, whatever @count), owned
    /// and freed by the reactor. On io_uring it is registered as a provided buffer ring;
    /// on Asio, or when the kernel refuses, it hands its buffers out itself.
    /// Context: owner thread; allocates on the first call. Returns: throws
    /// std::invalid_argument (count not a power of two up to BufferRing::max_count, size
    /// 0 or over BufferRing::max_size), std::bad_alloc.
    BufferRing& buffer_ring(unsigned count, std::uint32_t size);
    /// Returns: the registered-buffer index whose arena covers [addr, addr+len), or -1
    /// (not a BufferPool buffer, registration unavailable, or the Asio backend).
    /// Context: owner thread; registers new BufferPool arenas on first sight.
    int buffer_index(const void* addr, std::size_t len) noexcept;

    Backend backend() const noexcept { return backend_; }
    /// Returns: whether OpCode::send_zc / sendmsg_zc can send without a copy here (io_uring
    /// with IORING_OP_SEND_ZC, probed at setup); false: they are plain sends. Context: any.
    bool has_send_zc() const noexcept;
    /// Returns: a number unique to this Reactor among all reactors of the process, never
    /// reused (a 64-bit counter), so a record of "registered with reactor N" cannot match a
    /// later reactor built at the same address. Context: any thread.
    std::uint64_t id() const noexcept { return id_; }
    /// Counters of this reactor. enter_calls counts the io_uring_enter syscalls the reactor
    /// makes through liburing 2.3: the decision liburing takes (enter when SQEs are pending,
    /// when waiting or asked for events, or when the CQ needs a flush) is replayed before
    /// each call, so calls liburing answers without a syscall are not counted.
    const ReactorCounters& counters() const noexcept { return counters_; }
    /// Describes this reactor's backend (see backend_report()).
    std::string report() const;

    /// Test and fault seam: every result passes through @f before complete() (nullptr =
    /// off; one predictable branch). Context: owner thread.
    using CompletionFilter = int (*)(void* ctx, const Operation& op, int res) noexcept;
    void set_completion_filter(CompletionFilter f, void* ctx) noexcept {
        filter_ = f;
        filter_ctx_ = ctx;
    }

    // Scheduling.
    /// Queue @h to be resumed by the loop. Context: owner thread.
    void post(std::coroutine_handle<> h) { ready_.push_back(h); }
    /// Queue @t to run on the owner thread. Context: any thread; after the call the poster
    /// must not touch @t (it may already have run).
    void post_remote(RemoteTask& t) noexcept;
    /// One loop turn: remote work, ready coroutines, submit, wait for one completion when
    /// @may_block and nothing ran in this turn, reap.
    void run_once(bool may_block);
    /// Run loop turns until done() is true. Context: owner thread.
    template <class Pred>
    void run_until(Pred done) {
        while (!done()) {
            run_once(true);
        }
    }
    /// Run until nothing is in flight, ready or posted. Context: owner thread.
    void drain();
    /// Returns: true while the loop is running a turn on its thread (inside a coroutine,
    /// a completion or a remote task). Context: owner thread.
    bool in_loop() const noexcept { return loop_depth_ > 0; }

    /// Stop: cancel every operation in flight (timers included) and from now on complete
    /// every new timer at once with -ECANCELED, so no task can wait on a timer again. I/O
    /// submitted afterwards still runs (a task may flush and close on its way out).
    /// Idempotent. Context: owner thread.
    void stop() noexcept;
    /// Returns: true once stop() was called. Context: owner thread.
    bool stopping() const noexcept { return stopping_; }
    /// Detached tasks started minus those finished on this reactor's thread (see
    /// detail::ThreadContext::detached_live). Context: any thread.
    std::int64_t detached_balance() const noexcept {
        return detached_live_.load(std::memory_order_relaxed);
    }
    /// Operations submitted and not yet completed.
    std::size_t in_flight() const noexcept {
        return static_cast<std::size_t>(submitted_ - counters_.ops_completed);
    }
    /// The default bioset of this reactor (frames of coroutines created on this thread).
    BioSet& bioset() noexcept { return *bioset_; }
    /// Unbind from the current thread (Runtime: destroy on another thread after join).
    void detach_thread() noexcept;

    /// Internal (backends): deliver a result. Runs the filter, counts, calls complete().
    void complete_op(Operation* op, int res) noexcept {
        if (filter_ != nullptr) [[unlikely]] {
            res = filter_(filter_ctx_, *op, res);
        }
        ++counters_.ops_completed; // also the in_flight() bookkeeping: one add per op
        op->complete(op, res);
    }
    /// Internal (io_uring backend): deliver one CQE of a multishot operation.
    void complete_multishot(Operation* op, int res, bool more) noexcept;
    /// Internal (sync_wait): marks the loop as running for its lifetime, so that a nested
    /// sync_wait on this thread is refused.
    class LoopScope {
    public:
        explicit LoopScope(Reactor& r) noexcept : r_(r) { ++r_.loop_depth_; }
        ~LoopScope() { --r_.loop_depth_; }
        LoopScope(const LoopScope&) = delete;
        LoopScope& operator=(const LoopScope&) = delete;

    private:
        Reactor& r_;
    };
    /// Internal (Runtime): submit the timer @op even after stop(). Context: owner thread.
    void submit_timer_unchecked(Operation& op) noexcept;
    /// Internal (backends): mutable counters, owner thread only.
    ReactorCounters& counters_mut() noexcept { return counters_; }
    /// Internal (Runtime): this reactor may be woken with IORING_OP_MSG_RING (its ring
    /// lives as long as any poster can reach it).
    void set_msg_ring_target(bool on) noexcept { msg_ring_target_ = on; }
    /// Wake the owner thread out of a blocking wait (eventfd / io_context post).
    /// Context: any thread.
    void wake() noexcept;

private:
    /// Everything submit() does not inline: the backends' own submit.
    [[gnu::noinline]] void submit_slow(Operation& op) noexcept;
    void drain_remote() noexcept;
    void cancel_ud(std::uintptr_t ud) noexcept;
    bool run_ready();
    void wake_locked() noexcept;

    /// Returns: the next reactor id (1, 2, ...). Context: any thread.
    static std::uint64_t next_id() noexcept {
        static std::atomic<std::uint64_t> last{0};
        return last.fetch_add(1, std::memory_order_relaxed) + 1;
    }

    // Hot per-op state first: submit() touches sq_ and submitted_, complete_op() the
    // filter and counters_.
    detail::SqFastPath sq_{};
    std::uint64_t submitted_ = 0; ///< Operations submitted; in flight = this - ops_completed
    const std::uint64_t id_ = next_id();
    Backend backend_ = Backend::uring;
    std::unique_ptr<detail::UringBackend> uring_;
    std::unique_ptr<detail::AsioBackend> asio_;
    std::unique_ptr<BioSet> bioset_;
    // Freed after the destructor body has closed the io_uring (which drops their
    // registration), so the kernel never sees a freed ring.
    std::vector<std::unique_ptr<BufferRing>> buffer_rings_;
    CompletionFilter filter_ = nullptr;
    void* filter_ctx_ = nullptr;
    ReactorCounters counters_{};
    std::vector<std::coroutine_handle<>> ready_;
    std::vector<std::coroutine_handle<>> running_;
    bool bound_ = false;
    bool msg_ring_target_ = false;
    bool stopping_ = false;
    bool closing_ = false; ///< the destructor runs: armed multishots are being cancelled
    std::vector<Operation*> multishots_; ///< armed multishot operations (owner thread)
    unsigned loop_depth_ = 0;
    std::vector<Operation*> refused_; ///< timers submitted after stop(): -ECANCELED next turn
    std::atomic<std::int64_t> detached_live_{0};

    // Remote side, guarded by remote_mu_ (the destructor takes it last: see header).
    std::mutex remote_mu_;
    RemoteTask* remote_head_ = nullptr;
    RemoteTask* remote_tail_ = nullptr;
    std::vector<std::uintptr_t> remote_cancels_;
    std::atomic<bool> remote_pending_{false};
    std::vector<std::uintptr_t> cancels_draining_; ///< owner thread: the batch being run
};

} // namespace bioring
