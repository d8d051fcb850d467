// SPDX-License-Identifier: MIT
// Reactor: backend choice, the loop turn, cross-thread posting. See reactor.hpp.
#include <bioring/runtime/reactor.hpp>

#include <bioring/runtime/detail/asio_backend.hpp>
#include <bioring/runtime/detail/fault_injection.hpp>
#include <bioring/runtime/task.hpp>
#include <bioring/runtime/detail/uring_backend.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace bioring {

namespace {

std::string io_uring_refusal(int err) {
    std::string s = "io_uring refused: ";
    const char* name = strerrorname_np(err);
    s += name != nullptr ? name : std::to_string(err);
    int disabled = -1;
    {
        std::ifstream f("/proc/sys/kernel/io_uring_disabled");
        if (f) {
            f >> disabled;
        }
    }
    if (disabled > 0) {
        s += ", kernel.io_uring_disabled=" + std::to_string(disabled);
        s += disabled == 1 ? " (only io_uring_group members)" : " (disabled for all)";
    } else if (err == ENOSYS) {
        s += ", kernel built without io_uring";
    } else if (err == EPERM || err == EACCES) {
        s += ", a seccomp profile (container) forbids io_uring_setup?";
    } else if (err == ENOMEM) {
        s += ", RLIMIT_MEMLOCK too small for the rings (ulimit -l)?";
    }
    return s;
}

} // namespace

const char* backend_name(Backend b) noexcept {
    return b == Backend::uring ? "io_uring" : "asio";
}

namespace {

/// The reactors alive in this process, with their report as they started (for
/// backend_report() from a thread without a reactor).
struct LiveReactors {
    std::mutex mu;
    std::vector<std::pair<const Reactor*, std::string>> list;
};
LiveReactors& live_reactors() {
    static LiveReactors* l = new LiveReactors; // never destroyed: reactors may outlive statics
    return *l;
}

} // namespace

Reactor::Reactor(ReactorOptions opts) {
    if (detail::tl_context.reactor != nullptr) {
        throw std::logic_error("bioring::Reactor: this thread already has a reactor");
    }
    bioset_ = std::make_unique<BioSet>(opts.default_pool_size, opts.default_front_pad);
    const char* env = std::getenv("BIORING_BACKEND");
    std::string forced = env != nullptr ? env : "";
    std::string why_asio = "forced by BIORING_BACKEND=asio";
    if (!forced.empty() && forced != "asio" && forced != "uring") {
        throw std::invalid_argument("bioring::Reactor: BIORING_BACKEND must be 'uring' or "
                                    "'asio', not '" +
                                    forced + "'");
    }
    if (forced.empty() && opts.backend == BackendChoice::asio) {
        forced = "asio";
        why_asio = "chosen by ReactorOptions::backend";
    } else if (forced.empty() && opts.backend == BackendChoice::uring) {
        forced = "uring";
    }
    if (forced == "asio") {
        backend_ = Backend::asio;
        asio_ = std::make_unique<detail::AsioBackend>(*this, opts, why_asio);
    } else {
        try {
            uring_ = std::make_unique<detail::UringBackend>(*this, opts);
            backend_ = Backend::uring;
            sq_ = uring_->fast_path();
        } catch (const std::system_error& e) {
            if (forced == "uring") {
                throw;
            }
            backend_ = Backend::asio;
            asio_ = std::make_unique<detail::AsioBackend>(*this, opts,
                                                          io_uring_refusal(e.code().value()));
        }
    }
    // BIORING_FAULT (runtime/fault_injection.hpp): nothing is installed when it is unset.
    detail::install_env_faults(*this);
    ready_.reserve(256);
    running_.reserve(256);
    remote_cancels_.reserve(64);
    cancels_draining_.reserve(64);
    detail::tl_context.reactor = this;
    detail::tl_context.bioset = bioset_.get();
    detail::tl_context.counters = &counters_;
    detail::tl_context.detached_live = &detached_live_;
    bound_ = true;
    refused_.reserve(16);
    std::string rep = report();
    LiveReactors& live = live_reactors();
    std::lock_guard lk(live.mu);
    live.list.emplace_back(this, std::move(rep));
}

Reactor::~Reactor() {
    {
        LiveReactors& live = live_reactors();
        std::lock_guard lk(live.mu);
        std::erase_if(live.list, [this](const auto& e) { return e.first == this; });
    }
    if (bound_) {
        // Armed multishot operations would keep drain() waiting forever: end them first
        // (their owners see closing() and do not re-arm).
        closing_ = true;
        for (Operation* op : multishots_) {
            cancel_multishot(*op);
        }
        drain();
        detach_thread();
    }
    {
        // Posters wake us under this lock: once we hold it, none is inside wake_locked().
        std::lock_guard lk(remote_mu_);
    }
    sq_ = {}; // points into the ring going away next
    uring_.reset();
    asio_.reset();
    bioset_.reset();
}

void Reactor::detach_thread() noexcept {
    if (detail::tl_context.reactor == this) {
        detail::tl_context.reactor = nullptr;
        detail::tl_context.bioset = nullptr;
        detail::tl_context.counters = nullptr;
        detail::tl_context.detached_live = nullptr;
    }
    bound_ = false;
}

bool Reactor::has_send_zc() const noexcept {
    return backend_ == Backend::uring && uring_ && uring_->has_send_zc();
}

std::string Reactor::report() const {
    return uring_ ? uring_->describe() : asio_->describe();
}

std::string backend_report() {
    if (Reactor* r = Reactor::current()) {
        return r->report();
    }
    {
        LiveReactors& live = live_reactors();
        std::lock_guard lk(live.mu);
        if (!live.list.empty()) {
            // Distinct reports in order of first appearance, each with its count.
            std::vector<std::pair<std::string, unsigned>> kinds;
            for (const auto& e : live.list) {
                auto it = std::find_if(kinds.begin(), kinds.end(),
                                       [&](const auto& k) { return k.first == e.second; });
                if (it == kinds.end()) {
                    kinds.emplace_back(e.second, 1u);
                } else {
                    ++it->second;
                }
            }
            std::string s = std::to_string(live.list.size()) +
                            (live.list.size() == 1 ? " reactor: " : " reactors: ");
            for (std::size_t i = 0; i < kinds.size(); ++i) {
                s += (i ? "; " : "") + kinds[i].first;
                if (kinds.size() > 1) {
                    s += " x" + std::to_string(kinds[i].second);
                }
            }
            return s;
        }
    }
    // No reactor runs: build one with the default options (what the caller would get) on a
    // helper thread, which has none of its own, and describe it.
    std::string s;
    std::exception_ptr err;
    std::thread([&] {
        try {
            Reactor probe;
            s = probe.report();
        } catch (...) {
            err = std::current_exception();
        }
    }).join();
    if (err) {
        std::rethrow_exception(err);
    }
    return "no reactor running; a new one would use " + s;
}

void Reactor::stop() noexcept {
    if (stopping_) {
        return;
    }
    stopping_ = true;
    if (uring_) {
        uring_->cancel_all();
    } else {
        asio_->cancel_all();
    }
}

void Reactor::submit_timer_unchecked(Operation& op) noexcept {
    ++submitted_;
    if (uring_) {
        uring_->submit(op);
    } else {
        asio_->submit(op);
    }
}

void Reactor::submit_slow(Operation& op) noexcept {
    if (stopping_ && op.code == OpCode::timeout) [[unlikely]] {
        // Not completed here: complete() never runs inside submit(). The next turn does it.
        try {
            refused_.push_back(&op);
            return;
        } catch (...) {
            // no memory to queue it: let the backend run the timer after all
        }
    }
    if (uring_) [[likely]] {
        uring_->submit(op);
    } else {
        asio_->submit(op);
    }
}

namespace {

// Whether a chain step may come before another: its success result must be known (the
// kernel posts no CQE for it when it succeeds), and it must not be close, a timer or a
// socket operation.
bool linkable(OpCode c, bool last) noexcept {
    if (is_socket_op(c)) {
        return false; // chains are for file requests; a socket transfer may be short
    }
    switch (c) {
    case OpCode::close:
    case OpCode::timeout:
        return false;
    case OpCode::openat:
    case OpCode::uring_raw:
        return last;
    default:
        return true;
    }
}

} // namespace

int Reactor::submit_link(Operation* const* ops, unsigned n) noexcept {
    if (n == 0 || n > max_link) {
        return -EINVAL;
    }
    for (unsigned i = 0; i < n; ++i) {
        if (!linkable(ops[i]->code, i + 1 == n) || ops[i]->timeout_ns != 0) {
            return -EINVAL;
        }
        if (!native(ops[i]->code)) {
            return -EOPNOTSUPP;
        }
    }
    const int r = uring_ ? uring_->submit_link(ops, n) : asio_->submit_link(ops, n);
    if (r == 0) {
        ++submitted_; // one completion per chain
    }
    return r;
}

bool Reactor::native(OpCode code) const noexcept {
    if (uring_) {
        return code != OpCode::ftruncate || uring_->has_ftruncate();
    }
    return code != OpCode::uring_raw;
}

void Reactor::cancel(Operation& op) noexcept {
    cancel_ud(reinterpret_cast<std::uintptr_t>(&op));
}

void Reactor::cancel_ud(std::uintptr_t ud) noexcept {
    if (detail::tl_context.reactor == this) {
        if (uring_) {
            uring_->cancel(ud);
        } else {
            asio_->cancel(ud);
        }
        return;
    }
    // Only the address travels: the owner never dereferences it blindly (io_uring matches
    // user_data; the Asio backend looks it up among its in-flight operations).
    std::lock_guard lk(remote_mu_);
    const bool was_empty = remote_head_ == nullptr && remote_cancels_.empty();
    remote_cancels_.push_back(ud);
    remote_pending_.store(true, std::memory_order_release);
    if (was_empty) {
        wake_locked();
    }
}

bool Reactor::submit_multishot(Operation& op) noexcept {
    if (!uring_) {
        return false;
    }
    multishots_.push_back(&op);
    ++submitted_;
    uring_->submit_multishot(op);
    return true;
}

void Reactor::cancel_multishot(Operation& op) noexcept {
    if (uring_) {
        cancel_ud(reinterpret_cast<std::uintptr_t>(&op) | detail::UringBackend::ud_multishot);
    }
}

void Reactor::complete_multishot(Operation* op, int res, bool more) noexcept {
    if (filter_ != nullptr) [[unlikely]] {
        res = filter_(filter_ctx_, *op, res);
    }
    op->reactor_flags_ = more ? op_more : 0;
    if (!more) {
        std::erase(multishots_, op);
        ++counters_.ops_completed; // its one in-flight count ends with its last CQE
    }
    op->complete(op, res);
}

int Reactor::register_file(int fd) noexcept {
    return uring_ ? uring_->register_file(fd) : asio_->register_file(fd);
}

void Reactor::unregister_file(int index) noexcept {
    if (uring_) {
        uring_->unregister_file(index);
    } else {
        asio_->unregister_file(index);
    }
}

BufferRing& Reactor::buffer_ring(unsigned count, std::uint32_t size) {
    for (const auto& r : buffer_rings_) {
        if (r->buffer_size() == size) {
            return *r;
        }
    }
    // Group ids are this ring's own: the index of the ring in buffer_rings_.
    const auto group = static_cast<std::uint16_t>(buffer_rings_.size());
    buffer_rings_.reserve(buffer_rings_.size() + 1); // no throw after the ring exists
    buffer_rings_.push_back(std::unique_ptr<BufferRing>(
        new BufferRing(count, size, group, uring_ ? uring_->raw_ring() : nullptr)));
    return *buffer_rings_.back();
}

int Reactor::buffer_index(const void* addr, std::size_t len) noexcept {
    return uring_ ? uring_->buffer_index(addr, len) : -1;
}

void Reactor::post_remote(RemoteTask& t) noexcept {
    std::lock_guard lk(remote_mu_);
    t.next = nullptr;
    const bool was_empty = remote_head_ == nullptr && remote_cancels_.empty();
    if (remote_tail_ != nullptr) {
        remote_tail_->next = &t;
    } else {
        remote_head_ = &t;
    }
    remote_tail_ = &t;
    // Paired with the acquire load in run_once(); the lock orders the list itself.
    remote_pending_.store(true, std::memory_order_release);
    if (was_empty) {
        wake_locked();
    }
}

void Reactor::wake() noexcept {
    std::lock_guard lk(remote_mu_);
    if (uring_) {
        uring_->wake_eventfd();
    } else {
        asio_->wake();
    }
}

void Reactor::wake_locked() noexcept {
    if (asio_) {
        asio_->wake();
        return;
    }
    Reactor* cur = detail::tl_context.reactor;
    if (msg_ring_target_ && cur != nullptr && cur != this && cur->uring_ &&
        cur->uring_->send_wake(*this, uring_->ring_fd())) {
        return;
    }
    uring_->wake_eventfd();
}

void Reactor::drain_remote() noexcept {
    RemoteTask* head;
    // Two buffers swapped back and forth: the posters get this one's (empty) capacity, so
    // a batch of remote cancels costs no heap call once both have grown to fit.
    std::vector<std::uintptr_t>& cancels = cancels_draining_;
    {
        std::lock_guard lk(remote_mu_);
        head = std::exchange(remote_head_, nullptr);
        remote_tail_ = nullptr;
        if (!remote_cancels_.empty()) {
            cancels.swap(remote_cancels_);
        }
        remote_pending_.store(false, std::memory_order_relaxed);
    }
    for (std::uintptr_t ud : cancels) {
        if (uring_) {
            uring_->cancel(ud);
        } else {
            asio_->cancel(ud);
        }
    }
    cancels.clear();
    while (head != nullptr) {
        RemoteTask* next = head->next; // run() may reuse the node
        head->run(head);
        head = next;
    }
}

bool Reactor::run_ready() {
    if (ready_.empty()) {
        return false;
    }
    running_.swap(ready_);
    for (std::coroutine_handle<> h : running_) {
        h.resume();
    }
    running_.clear();
    return true;
}

void Reactor::run_once(bool may_block) {
    LoopScope in_loop(*this);
    if (!refused_.empty()) [[unlikely]] {
        std::vector<Operation*> now;
        now.swap(refused_);
        for (Operation* op : now) {
            complete_op(op, -ECANCELED);
        }
        if (refused_.empty()) {
            refused_.swap(now); // keep the capacity
            refused_.clear();
        }
        may_block = false;
    }
    // Remote tasks count as work run in this turn: they may resume coroutines inline (a
    // BioSet waiter woken from another thread, a held completion of the fault injector) and
    // so satisfy the caller's predicate; blocking after them could wait forever with
    // nothing in flight (tests/reliability/liveness_test.cpp).
    const bool remote = remote_pending_.load(std::memory_order_acquire);
    if (remote) {
        drain_remote();
    }
    // A turn that ran coroutines does not block: they may have satisfied the caller's
    // run_until() predicate (or posted work) without leaving anything in flight.
    bool ran = run_ready() || remote;
    const bool block =
        may_block && !ran && ready_.empty() && !remote_pending_.load(std::memory_order_acquire);
    if (uring_) [[likely]] {
        uring_->poll(block);
    } else {
        asio_->poll(block);
    }
}

void Reactor::drain() {
    while (in_flight() > 0 || !ready_.empty() || remote_pending_.load(std::memory_order_acquire)) {
        run_once(true);
    }
}

} // namespace bioring
