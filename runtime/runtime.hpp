// SPDX-License-Identifier: MIT
// Runtime: N reactor threads (thread-per-core, optionally pinned), work handed to them
// from outside (run_on_all) and moved between them from inside (switch_to).
//
// Lifetime: the constructor starts the threads and returns when every reactor is up (or
// throws the first start-up error). stop() requests the runtime-wide stop token (tasks that
// took stop_token() see it) and stops every reactor (Reactor::stop(): in-flight I/O and
// timers are cancelled, later timers complete at once with -ECANCELED). Shutdown
// (destructor or shutdown()) stops, then lets each thread run until every detached task of
// the runtime has finished and nothing is in flight, for at most RuntimeOptions::
// stop_grace; tasks still running then are abandoned (their frames are never resumed nor
// freed) and named on stderr by count. The threads are joined, and only then are the
// reactors destroyed — so a late cross-shard wake-up (MSG_RING or eventfd) never reaches a
// dead reactor. Work must not be moved onto a shard after shutdown has begun.
#pragma once

#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <exception>
#include <functional>
#include <latch>
#include <memory>
#include <stop_token>
#include <thread>
#include <vector>

namespace bioring {

struct RuntimeOptions {
    unsigned threads = 0;   ///< 0 = one per core (std::thread::hardware_concurrency)
    bool pin = false;       ///< pin reactor i to CPU i % cores (sched_setaffinity)
    ReactorOptions reactor; ///< for every reactor (the backend choice included)
    /// How long shutdown waits for detached tasks to finish after stop() before abandoning
    /// them with a message.
    std::chrono::milliseconds stop_grace{5000};
};

class Runtime {
public:
    /// Start the reactor threads. Context: any non-reactor thread.
    /// Returns: throws std::system_error when a reactor cannot start.
    explicit Runtime(RuntimeOptions opts = {});
    /// shutdown(). Context: not a reactor thread of this runtime.
    ~Runtime();
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    unsigned size() const noexcept { return static_cast<unsigned>(shards_.size()); }

    /// Run make(shard) as a task on every reactor thread (make is called on that thread,
    /// so the frames come from that thread's bioset) and block until all have finished.
    /// Context: a thread that is not a reactor of this runtime; may block.
    /// Returns: the values in shard order; rethrows the first exception (shard order).
    template <class T>
    std::vector<T> run_on_all(std::function<Task<T>(unsigned shard)> make);
    void run_on_all(std::function<Task<void>(unsigned shard)> make);

    /// `co_await rt.switch_to(i)`: continue on reactor @shard (no-op if already there).
    struct SwitchAwaiter : RemoteTask {
        Reactor* target = nullptr;
        std::coroutine_handle<> handle{};
        bool await_ready() const noexcept { return Reactor::current() == target; }
        void await_suspend(std::coroutine_handle<> h) noexcept {
            handle = h;
            run = &on_run;
            target->post_remote(*this); // touches nothing of ours afterwards
        }
        void await_resume() const noexcept {}
        static void on_run(RemoteTask* t) noexcept {
            static_cast<SwitchAwaiter*>(t)->handle.resume();
        }
    };
    /// Context: a coroutine on any thread with a reactor (or any coroutine at all: it is
    /// resumed on @shard either way). @shard must be < size().
    SwitchAwaiter switch_to(unsigned shard) noexcept {
        SwitchAwaiter a;
        a.target = shards_[shard]->reactor.get();
        return a;
    }

    /// The reactor of @shard (for its counters or report; use it on its own thread only).
    Reactor& reactor(unsigned shard) noexcept { return *shards_[shard]->reactor; }

    /// Counters summed over the reactors (each read on its own thread while running; after
    /// shutdown, the final values).
    ReactorCounters counters();

    /// Request stop_token() and stop every reactor (see the header comment). Returns at
    /// once; tasks finish on their own threads. Idempotent. Context: any thread.
    void stop() noexcept;
    /// The runtime-wide stop token: requested by stop() and at shutdown. Give it to
    /// long-lived tasks (a timer loop, an accept loop) so that they end.
    std::stop_token stop_token() const noexcept { return stop_source_.get_token(); }

    /// stop(), wait for the tasks (at most stop_grace), join, free. Idempotent.
    /// Context: not a reactor thread of this runtime.
    /// Returns: the number of detached tasks abandoned (0 after a clean shutdown).
    std::int64_t shutdown() noexcept;

private:
    struct Shard {
        std::unique_ptr<Reactor> reactor;
        std::thread thread;
        std::atomic<bool> stop{false};
        RemoteTask stop_job{};            ///< posted once by stop(): Reactor::stop()
        ReactorCounters final_counters{}; ///< written by the thread before it exits
    };
    void thread_main(unsigned index, std::exception_ptr* err, std::latch* started);
    /// Detached tasks alive in the whole runtime (sum of the reactors' balances).
    std::int64_t tasks_alive() const noexcept;
    /// Shutdown on a reactor thread: run until no task is alive and nothing is in flight,
    /// or the grace period ends. Returns: the tasks still alive (as seen by this thread).
    std::int64_t finish_tasks(Reactor& r);
    /// Runs make(shard) on each shard, detached, and waits; exceptions per shard.
    std::vector<std::exception_ptr> run_each(const std::function<Task<void>(unsigned)>& make);

    RuntimeOptions opts_;
    std::vector<std::unique_ptr<Shard>> shards_;
    std::stop_source stop_source_;
    std::atomic<bool> stop_posted_{false};
    std::atomic<std::int64_t> abandoned_{0};
    bool running_ = false;
};

template <class T>
std::vector<T> Runtime::run_on_all(std::function<Task<T>(unsigned shard)> make) {
    std::vector<detail::SyncSlot<T>> slots(size());
    std::vector<std::exception_ptr> errs = run_each(
        [&](unsigned shard) -> Task<void> { return detail::drive(make(shard), &slots[shard]); });
    for (unsigned i = 0; i < size(); ++i) {
        if (errs[i]) {
            std::rethrow_exception(errs[i]);
        }
        if (slots[i].error) {
            std::rethrow_exception(slots[i].error);
        }
    }
    std::vector<T> out;
    out.reserve(size());
    for (auto& s : slots) {
        out.push_back(std::move(*s.value));
    }
    return out;
}

} // namespace bioring
