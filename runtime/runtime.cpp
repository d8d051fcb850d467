// SPDX-License-Identifier: MIT
// Runtime: reactor threads, run_on_all, shutdown. See runtime.hpp.
#include <bioring/runtime/runtime.hpp>

#include <pthread.h>
#include <sched.h>

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <stdexcept>

namespace bioring {

namespace {

struct RunState {
    std::mutex mu;
    std::condition_variable cv;
    unsigned remaining = 0;
    std::vector<std::exception_ptr> errors;

    void finish_one() noexcept {
        // Notify under the lock: the waiter cannot return (and destroy us) before we leave.
        std::lock_guard lk(mu);
        --remaining;
        if (remaining == 0) {
            cv.notify_all();
        }
    }
};

struct ShardJob : RemoteTask, detail::DoneHook {
    RunState* state = nullptr;
    const std::function<Task<void>(unsigned)>* make = nullptr;
    unsigned shard = 0;

    static void on_run(RemoteTask* t) noexcept {
        auto* job = static_cast<ShardJob*>(t);
        Task<void> task;
        try {
            task = (*job->make)(job->shard);
            if (!task) {
                throw std::bad_alloc();
            }
        } catch (...) {
            job->state->errors[job->shard] = std::current_exception();
            job->state->finish_one();
            return;
        }
        detail::start_detached(std::move(task), job);
    }
    // Runs after the task's frame is freed (DoneHook of a detached task).
    static std::coroutine_handle<> on_done(detail::DoneHook* h) noexcept {
        static_cast<ShardJob*>(h)->state->finish_one();
        return std::noop_coroutine();
    }
};

struct CountersJob : RemoteTask {
    RunState* state = nullptr;
    ReactorCounters value{};
    static void on_run(RemoteTask* t) noexcept {
        auto* job = static_cast<CountersJob*>(t);
        job->value = Reactor::current()->counters();
        job->state->finish_one();
    }
};

} // namespace

Runtime::Runtime(RuntimeOptions opts) : opts_(opts) {
    unsigned n = opts.threads;
    if (n == 0) {
        n = std::thread::hardware_concurrency();
        if (n == 0) {
            n = 1;
        }
    }
    shards_.reserve(n);
    for (unsigned i = 0; i < n; ++i) {
        shards_.push_back(std::make_unique<Shard>());
    }
    std::vector<std::exception_ptr> errs(n);
    std::latch started(n);
    running_ = true;
    for (unsigned i = 0; i < n; ++i) {
        shards_[i]->thread =
            std::thread([this, i, &errs, &started] { thread_main(i, &errs[i], &started); });
    }
    started.wait(); // paired with count_down() in thread_main: publishes shard->reactor
    for (unsigned i = 0; i < n; ++i) {
        if (errs[i]) {
            shutdown();
            std::rethrow_exception(errs[i]);
        }
    }
}

Runtime::~Runtime() {
    shutdown();
}

void Runtime::thread_main(unsigned index, std::exception_ptr* err, std::latch* started) {
    Shard& s = *shards_[index];
    if (opts_.pin) {
        unsigned cores = std::thread::hardware_concurrency();
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cores == 0 ? 0 : index % cores, &set);
        // Best effort: a cpuset that excludes the CPU leaves the thread unpinned.
        (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    try {
        s.reactor = std::make_unique<Reactor>(opts_.reactor);
        s.reactor->set_msg_ring_target(true);
    } catch (...) {
        *err = std::current_exception();
        started->count_down();
        return;
    }
    started->count_down(); // the latch may be gone after this
    Reactor& r = *s.reactor;
    r.run_until([&] { return s.stop.load(std::memory_order_acquire); });
    if (finish_tasks(r) == 0) {
        r.drain();
    }
    s.final_counters = r.counters(); // read by counters() after join
    r.detach_thread();               // destroyed by shutdown() after every thread has been joined
}

std::int64_t Runtime::tasks_alive() const noexcept {
    std::int64_t n = 0;
    for (const auto& s : shards_) {
        if (s->reactor) {
            n += s->reactor->detached_balance();
        }
    }
    return n;
}

std::int64_t Runtime::finish_tasks(Reactor& r) {
    r.stop(); // also when stop() was not called: shutdown implies it
    const auto deadline = std::chrono::steady_clock::now() + opts_.stop_grace;
    // A 20 ms tick keeps the loop from blocking past the deadline while a task waits on
    // something that never completes. It bypasses the refusal of timers after stop().
    struct Tick {
        Operation op; // first: complete() gets &op, which is the Tick's address
        bool pending = false;
    } tick;
    tick.op.code = OpCode::timeout;
    tick.op.timeout_ns = 20'000'000;
    tick.op.complete = [](Operation* op, int) noexcept {
        reinterpret_cast<Tick*>(op)->pending = false;
    };
    bool& tick_pending = tick.pending;
    for (;;) {
        const std::int64_t alive = tasks_alive();
        const bool idle = alive <= 0 && r.in_flight() <= (tick_pending ? 1u : 0u);
        if (idle || std::chrono::steady_clock::now() >= deadline) {
            // Wait for our own tick so that nothing of ours is in flight at teardown.
            while (tick_pending) {
                r.run_once(true);
            }
            if (!idle && alive > 0) {
                return alive;
            }
            return 0;
        }
        if (!tick_pending) {
            tick_pending = true;
            r.submit_timer_unchecked(tick.op);
        }
        r.run_once(true);
    }
}

void Runtime::stop() noexcept {
    stop_source_.request_stop();
    if (stop_posted_.exchange(true)) {
        return;
    }
    for (auto& s : shards_) {
        if (s->reactor) {
            s->stop_job.run = [](RemoteTask*) noexcept { Reactor::current()->stop(); };
            s->reactor->post_remote(s->stop_job);
        }
    }
}

std::int64_t Runtime::shutdown() noexcept {
    if (!running_) {
        return abandoned_.load();
    }
    running_ = false;
    stop();
    for (auto& s : shards_) {
        s->stop.store(true, std::memory_order_release); // paired with run_until's load
        if (s->reactor) {
            s->reactor->wake();
        }
    }
    for (auto& s : shards_) {
        if (s->thread.joinable()) {
            s->thread.join();
        }
    }
    // Every thread has left its loop: the balances are final and exact now.
    const std::int64_t left = tasks_alive();
    if (left > 0) {
        std::fprintf(stderr,
                     "bioring: Runtime shutdown: %lld task%s still running %lld ms after "
                     "stop() (ignoring cancellation and stop_token()?); abandoned, their "
                     "frames are not freed\n",
                     static_cast<long long>(left), left == 1 ? "" : "s",
                     static_cast<long long>(opts_.stop_grace.count()));
        abandoned_.store(left);
    }
    for (auto& s : shards_) {
        s->reactor.reset();
    }
    return abandoned_.load();
}

std::vector<std::exception_ptr> Runtime::run_each(const std::function<Task<void>(unsigned)>& make) {
    if (!running_) {
        throw std::logic_error("bioring::Runtime::run_on_all after shutdown");
    }
    if (Reactor* cur = Reactor::current()) {
        for (auto& s : shards_) {
            if (s->reactor.get() == cur) {
                throw std::logic_error("bioring::Runtime::run_on_all from one of its reactors");
            }
        }
    }
    RunState st;
    st.remaining = size();
    st.errors.resize(size());
    std::vector<ShardJob> jobs(size());
    for (unsigned i = 0; i < size(); ++i) {
        jobs[i].state = &st;
        jobs[i].make = &make;
        jobs[i].shard = i;
        jobs[i].run = &ShardJob::on_run;
        jobs[i].fn = &ShardJob::on_done;
        shards_[i]->reactor->post_remote(jobs[i]);
    }
    std::unique_lock lk(st.mu);
    st.cv.wait(lk, [&] { return st.remaining == 0; });
    return std::move(st.errors);
}

void Runtime::run_on_all(std::function<Task<void>(unsigned shard)> make) {
    std::vector<detail::SyncSlot<void>> slots(size());
    std::vector<std::exception_ptr> errs = run_each(
        [&](unsigned shard) -> Task<void> { return detail::drive(make(shard), &slots[shard]); });
    for (unsigned i = 0; i < size(); ++i) {
        if (errs[i]) {
            std::rethrow_exception(errs[i]);
        }
        slots[i].take();
    }
}

ReactorCounters Runtime::counters() {
    ReactorCounters sum{};
    if (!running_) {
        for (auto& s : shards_) {
            sum += s->final_counters; // the threads are joined: plain reads are ordered
        }
        return sum;
    }
    RunState st;
    st.remaining = size();
    std::vector<CountersJob> jobs(size());
    for (unsigned i = 0; i < size(); ++i) {
        jobs[i].state = &st;
        jobs[i].run = &CountersJob::on_run;
        shards_[i]->reactor->post_remote(jobs[i]);
    }
    {
        std::unique_lock lk(st.mu);
        st.cv.wait(lk, [&] { return st.remaining == 0; });
    }
    for (auto& j : jobs) {
        sum += j.value;
    }
    return sum;
}

} // namespace bioring
