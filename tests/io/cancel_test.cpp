// SPDX-License-Identifier: MIT
// Deadlines and cancellation of io/ requests: a read on an empty FIFO cannot complete on
// its own, so a timeout or a stop_token must end it with -ECANCELED; the awaiter resumes
// only after the kernel's final completion (run under ASan: no use after free when the
// owners are destroyed right after).
#include <bioring/io/direct_file.hpp>

#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>
#include <bioring/runtime/when_all.hpp>
#include "tests/io/io_support.hpp"
#include "tests/io/tmp_file.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <stop_token>
#include <thread>
#include <vector>

using namespace bioring;
using namespace bioring::test;
using namespace std::chrono_literals;

namespace {

// A FIFO opened read-write through DirectFile (buffered: O_DIRECT means nothing for
// pipes). O_RDWR keeps open() from blocking and keeps a writer, so reads block, not EOF.
struct Fifo {
    Fifo() : path(test_dir(), "fifo") {
        REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
        OpenOptions o;
        o.write = true;
        o.direct = false;
        file = DirectFile::open(path.str(), o);
    }
    // Feed @n bytes from a separate descriptor (unblocks a read in a worker thread on the
    // Asio backend, where a blocking read cannot be interrupted).
    void feed(std::size_t n) const {
        const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
            std::vector<char> bytes(n, 'x');
            (void)!::write(fd, bytes.data(), n);
            ::close(fd);
        }
    }
    TempPath path;
    DirectFile file;
};

// Feeds the FIFO after @after unless disarmed first: a safety net so that a backend that
// runs the read as a blocking call in a worker thread is not left stuck at exit.
class Releaser {
public:
    Releaser(const Fifo& fifo, std::chrono::milliseconds after)
        : thread_([this, &fifo, after] {
              std::unique_lock lock(mu_);
              if (!cv_.wait_for(lock, after, [this] { return done_; })) {
                  fired_ = true;
                  fifo.feed(4096);
              }
          }) {}
    ~Releaser() { disarm(); }
    void disarm() {
        {
            std::lock_guard lock(mu_);
            done_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable()) {
            thread_.join();
        }
    }
    bool fired() const { return fired_; }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
    bool fired_ = false;
    std::thread thread_;
};

} // namespace

TEST_SUITE("io") {

    TEST_CASE("a read with a timeout on an empty FIFO completes with ECANCELED") {
        Fifo fifo;
        Releaser releaser(fifo, 3000ms);
        const auto t0 = std::chrono::steady_clock::now();
        const IoResult r = sync_wait([&]() -> Task<IoResult> {
            char buf[64];
            IoOptions o;
            o.timeout = 100ms;
            co_return co_await fifo.file.read(buf, sizeof buf, 0, o);
        }());
        const auto elapsed = std::chrono::steady_clock::now() - t0;
        releaser.disarm();
        CHECK(r.res == -ECANCELED);
        CHECK(elapsed >= 90ms);
        CHECK_FALSE(releaser.fired());
        CHECK(elapsed < 2000ms);
    }

    TEST_CASE("data arriving before the timeout completes the read normally") {
        Fifo fifo;
        std::thread writer([&] {
            std::this_thread::sleep_for(50ms);
            fifo.feed(10);
        });
        const IoResult r = sync_wait([&]() -> Task<IoResult> {
            char buf[10];
            IoOptions o;
            o.timeout = 5s;
            co_return co_await fifo.file.read(buf, sizeof buf, 0, o);
        }());
        writer.join();
        CHECK(r.res == 10);
    }

    TEST_CASE("a stop_token cancels an in-flight read from another thread") {
        Fifo fifo;
        Releaser releaser(fifo, 3000ms);
        std::stop_source src;
        std::thread stopper([&] {
            std::this_thread::sleep_for(100ms);
            src.request_stop();
        });
        const auto t0 = std::chrono::steady_clock::now();
        const IoResult r = sync_wait([&]() -> Task<IoResult> {
            char buf[64];
            IoOptions o;
            o.stop = src.get_token();
            co_return co_await fifo.file.read(buf, sizeof buf, 0, o);
        }());
        const auto elapsed = std::chrono::steady_clock::now() - t0;
        stopper.join();
        releaser.disarm();
        CHECK(r.res == -ECANCELED);
        CHECK_FALSE(releaser.fired());
        CHECK(elapsed < 2000ms);
    }

    TEST_CASE("a read whose stop token is already stopped is refused unsubmitted") {
        Fifo fifo;
        std::stop_source src;
        src.request_stop();
        sync_wait([&]() -> Task<void> {
            const ReactorCounters before = Reactor::current()->counters();
            char buf[64];
            IoOptions o;
            o.stop = src.get_token();
            const IoResult r = co_await fifo.file.read(buf, sizeof buf, 0, o);
            CHECK(r.res == -ECANCELED);
            CHECK(Reactor::current()->counters().sqes_submitted == before.sqes_submitted);
            CHECK(Reactor::current()->counters().ops_completed == before.ops_completed);
        }());
    }

    TEST_CASE("many in-flight reads cancelled together all complete before their owners go") {
        constexpr int n = 16;
        std::vector<std::unique_ptr<Fifo>> fifos;
        for (int i = 0; i < n; ++i) {
            fifos.push_back(std::make_unique<Fifo>());
        }
        std::stop_source src;
        std::atomic<int> completed{0};
        std::vector<std::unique_ptr<Releaser>> releasers;
        for (auto& f : fifos) {
            releasers.push_back(std::make_unique<Releaser>(*f, 3000ms));
        }
        std::thread stopper([&] {
            std::this_thread::sleep_for(50ms);
            src.request_stop();
        });
        sync_wait([&]() -> Task<void> {
            std::vector<Task<void>> reads;
            for (auto& fifo : fifos) {
                reads.push_back([](Fifo& fifo, std::stop_token stop,
                                   std::atomic<int>& completed) -> Task<void> {
                    // The buffer lives in this frame: the kernel must be done with it before
                    // the frame goes away (ASan catches a late write).
                    char buf[256];
                    IoOptions o;
                    o.stop = std::move(stop);
                    const IoResult r = co_await fifo.file.read(buf, sizeof buf, 0, o);
                    CHECK(r.res == -ECANCELED);
                    completed.fetch_add(1);
                }(*fifo, src.get_token(), completed));
            }
            co_await when_all(std::move(reads));
        }());
        stopper.join();
        for (auto& r : releasers) {
            r->disarm();
            CHECK_FALSE(r->fired());
        }
        CHECK(completed.load() == n);
        fifos.clear();
    }

    TEST_CASE("the deadline covers resubmissions of a short transfer") {
        // A FIFO delivers 10 of 20 bytes, then nothing: the resubmitted remainder must still
        // expire at the original deadline.
        Fifo fifo;
        Releaser releaser(fifo, 3000ms);
        std::thread writer([&] {
            std::this_thread::sleep_for(20ms);
            fifo.feed(10);
        });
        const auto t0 = std::chrono::steady_clock::now();
        const IoResult r = sync_wait([&]() -> Task<IoResult> {
            char buf[20];
            IoOptions o;
            o.timeout = 200ms;
            co_return co_await fifo.file.read(buf, sizeof buf, 0, o);
        }());
        const auto elapsed = std::chrono::steady_clock::now() - t0;
        writer.join();
        releaser.disarm();
        CHECK(r.res == -ECANCELED);
        CHECK(elapsed >= 190ms);
        CHECK(elapsed < 2000ms);
    }

    TEST_CASE("stop requests racing with completions never cancel a later request") {
        // Each request reads one byte of a FIFO under its own stop_source. Another thread, at
        // random moments, either feeds a byte (the read completes) or stops the source it last
        // saw (the read is cancelled, or it already finished and the stop is late). A request
        // may end -ECANCELED only if its own token was stopped: a late cancel must never hit
        // the next request, which the coroutine places at the same address in its frame.
        Fifo fifo;
        const int feed_fd = ::open(fifo.path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        REQUIRE(feed_fd >= 0);
        std::mutex mu;
        std::stop_source current;
        std::atomic<bool> done{false};
        std::thread actor([&] {
            std::minstd_rand rng(1);
            while (!done.load(std::memory_order_relaxed)) {
                std::stop_source s;
                {
                    std::lock_guard lock(mu);
                    s = current;
                }
                std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));
                if (rng() % 2 == 0) {
                    s.request_stop();
                } else {
                    (void)!::write(feed_fd, "x", 1);
                }
            }
        });
        constexpr int n = 1000;
        int ok = 0, cancelled = 0, wrong = 0, other = 0;
        sync_wait([&]() -> Task<void> {
            char byte = 0;
            for (int i = 0; i < n; ++i) {
                std::stop_source src;
                {
                    std::lock_guard lock(mu);
                    current = src;
                }
                IoOptions o;
                o.stop = src.get_token();
                const IoResult r = co_await fifo.file.read(&byte, 1, 0, std::move(o));
                if (r.res == 1) {
                    ++ok;
                } else if (r.res == -ECANCELED) {
                    ++(src.stop_requested() ? cancelled : wrong);
                } else {
                    ++other;
                }
            }
        }());
        done = true;
        actor.join();
        ::close(feed_fd);
        MESSAGE("completed ", ok, ", cancelled ", cancelled, ", cancelled without a stop ", wrong);
        CHECK(wrong == 0);
        CHECK(other == 0);
        CHECK(ok + cancelled == n);
        CHECK(cancelled > 0);
        CHECK(ok > 0);
    }

} // TEST_SUITE
