// SPDX-License-Identifier: MIT
// Runtime: reactor threads, run_on_all, shutdown. See runtime.hpp.
#include <bioring/runtime/runtime.hpp>

#include <pthread.h>
#include <sched.h>

#include <condition_variable>
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
        shards_[i]->thread = std::thread([this, i, &errs, &started] {
            thread_main(i, &errs[i], &started);
        });
    }
    started.wait(); // paired with count_down() in thread_main: publishes shard->reactor
    for (unsigned i = 0; i < n; ++i) {
        if (errs[i]) {
            shutdown();
            std::rethrow_exception(errs[i]);
        }
    }
}

Runtime::~Runtime() { shutdown(); }

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
    r.drain();
    s.final_counters = r.counters(); // read by counters() after join
    r.detach_thread(); // destroyed by shutdown() after every thread has been joined
}

void Runtime::shutdown() noexcept {
    if (!running_) {
        return;
    }
    running_ = false;
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
    for (auto& s : shards_) {
        s->reactor.reset();
    }
}

std::vector<std::exception_ptr> Runtime::run_each(
    const std::function<Task<void>(unsigned)>& make) {
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
    std::vector<std::exception_ptr> errs = run_each([&](unsigned shard) -> Task<void> {
        return detail::drive(make(shard), &slots[shard]);
    });
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
