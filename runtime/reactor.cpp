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
#include <fstream>
#include <stdexcept>
#include <system_error>

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

const char* backend_name(Backend b) noexcept { return b == Backend::uring ? "io_uring" : "asio"; }

Reactor::Reactor(ReactorOptions opts) {
    if (detail::tl_context.reactor != nullptr) {
        throw std::logic_error("bioring::Reactor: this thread already has a reactor");
    }
    bioset_ = std::make_unique<BioSet>(opts.default_pool_size, opts.default_front_pad);
    const char* env = std::getenv("BIORING_BACKEND");
    const std::string forced = env != nullptr ? env : "";
    if (forced == "asio") {
        backend_ = Backend::asio;
        asio_ = std::make_unique<detail::AsioBackend>(*this, opts, "forced by BIORING_BACKEND=asio");
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
    bound_ = true;
}

Reactor::~Reactor() {
    if (bound_) {
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
    }
    bound_ = false;
}

std::string Reactor::report() const { return uring_ ? uring_->describe() : asio_->describe(); }

std::string backend_report() {
    if (Reactor* r = Reactor::current()) {
        return r->report();
    }
    ReactorOptions o;
    o.ring_entries = 8;
    o.register_buffers = false;
    o.fixed_files = 0;
    o.default_front_pad = 64;
    o.default_pool_size = 0;
    Reactor probe(o);
    return probe.report();
}

void Reactor::submit_slow(Operation& op) noexcept {
    if (uring_) [[likely]] {
        uring_->submit(op);
    } else {
        asio_->submit(op);
    }
}

void Reactor::cancel(Operation& op) noexcept {
    const auto ud = reinterpret_cast<std::uintptr_t>(&op);
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
    const bool block = may_block && !ran && ready_.empty() &&
                       !remote_pending_.load(std::memory_order_acquire);
    if (uring_) [[likely]] {
        uring_->poll(block);
    } else {
        asio_->poll(block);
    }
}

void Reactor::drain() {
    while (in_flight() > 0 || !ready_.empty() ||
           remote_pending_.load(std::memory_order_acquire)) {
        run_once(true);
    }
}

} // namespace bioring
