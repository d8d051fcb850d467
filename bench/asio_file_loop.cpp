// SPDX-License-Identifier: MIT
// asio-file-loop: the same workload on standalone Asio's io_uring random_access_file.
//
// Asio 1.22 runs file I/O on io_uring when built with ASIO_HAS_IO_URING (bench/CMakeLists
// also sets ASIO_DISABLE_EPOLL so io_uring is its only reactor: the fastest Asio set-up).
// Asio queues the operations of one I/O object behind each other, so one shared file
// object would serialize the queue depth: each in-flight slot owns its own
// random_access_file on its own O_DIRECT descriptor. Completion handlers are small lambdas,
// so Asio's per-thread recycling allocator serves the operation objects in steady state.
// Latency is timed as --latency says (bench/latency.hpp), with the same LatencyClock as
// uring-loop and bioring-bench. --threads N runs N io_contexts on N threads.
#include "measure/histogram.hpp"
#include "bench/latency.hpp"
#include "bench/options.hpp"
#include "bench/report.hpp"
#include "bench/target_file.hpp"
#include "bench/workload.hpp"

#include <asio/buffer.hpp>
#include <asio/version.hpp>
#include <asio/io_context.hpp>
#include <asio/random_access_file.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <latch>
#include <memory>
#include <pthread.h>
#include <sched.h>
#include <thread>
#include <unistd.h>
#include <vector>

#if !defined(ASIO_HAS_IO_URING) || !defined(ASIO_HAS_FILE)
#error "asio-file-loop needs Asio built with ASIO_HAS_IO_URING (and so ASIO_HAS_FILE)"
#endif

using namespace bioring::bench;

namespace {

// Only the common options (--rw, --bs, --qd, ...: bench/options.hpp).
using Options = CommonOptions;

void usage(std::FILE* out) {
    std::fprintf(out, R"(usage: asio-file-loop [options]
Random or sequential O_DIRECT I/O through Asio's io_uring random_access_file,
one file object per in-flight operation.
  --rw W             randread (default), read, randwrite, write, randrw (no nop in Asio)
  --rwmixread N      percent reads for randrw (default 50)
  --bs SIZE          block size, suffixes k/m (default 4k)
  --qd N             operations in flight per thread (default 32)
  --threads N        io_contexts/threads, each on its own range (default 1)
  --seconds S        run time (default 2)      --ios N   stop after N I/Os instead
  --file PATH        file or block device (required)
  --direct / --no-direct   O_DIRECT (default on)
  --pin / --no-pin   pin thread i to CPU i %% ncpu (default: when --threads > 1)
  --latency L        all (time every I/O), sample N (one I/O in N; default sample 64), off
  --json             one JSON object instead of text
)");
}

Options parse(int argc, char** argv) {
    Options o;
    ArgReader a(argc, argv);
    while (a.next()) {
        if (!parse_common_option(a, o, usage)) {
            a.unknown();
        }
    }
    if (o.rw == Workload::nop) {
        throw UsageError("--rw nop: Asio has no io_uring NOP operation; use uring-loop or "
                         "bioring-bench for NOPs");
    }
    check_common_limits(o, 64u << 20, "the limit of 64 MiB");
    if (o.file.empty()) {
        throw UsageError("--file is required");
    }
    return o;
}

struct WorkerResult {
    std::uint64_t ios = 0;
    std::uint64_t bytes = 0;
    LatencyHistogram latency;
    std::string error;
};

class Worker {
public:
    Worker(const Options& o, const TargetFile& f, unsigned index, WorkerResult& out)
        : o_(o), index_(index), out_(out), ctx_(1), clock_(o.latency) {
        const std::uint64_t range = f.size() / o.threads;
        gen_ = std::make_unique<OffsetGen>(range * index, range / o.bs, o.bs, is_random(o.rw),
                                           0x1234567ull * (index + 1));
        limit_ = o.ios ? (o.ios + o.threads - 1) / o.threads : ~0ull;
        const int flags =
            (writes(o.rw) ? O_RDWR : O_RDONLY) | (o.direct ? O_DIRECT : 0) | O_CLOEXEC;
        slots_.reserve(o.qd);
        for (unsigned i = 0; i < o.qd; ++i) {
            const int fd = ::open(f.path().c_str(), flags);
            if (fd < 0) {
                throw std::system_error(errno, std::system_category(), "open " + f.path());
            }
            void* mem = nullptr;
            if (posix_memalign(&mem, 4096, o.bs) != 0) {
                ::close(fd);
                throw std::bad_alloc();
            }
            std::memset(mem, 0x5a, o.bs);
            slots_.push_back(std::make_unique<Slot>(ctx_, fd, static_cast<std::byte*>(mem)));
        }
    }

    void run(std::latch& ready, std::latch& go, std::latch& done, std::latch& teardown,
             const std::uint64_t& deadline) {
        if (o_.pin == 1 || (o_.pin == -1 && o_.threads > 1)) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(index_ % std::thread::hardware_concurrency(), &set);
            pthread_setaffinity_np(pthread_self(), sizeof set, &set);
        }
        ready.count_down();
        go.wait();
        deadline_ = o_.ios ? ~0ull : deadline;
        const std::uint64_t now = now_ns();
        for (auto& s : slots_) {
            if (issued_ < limit_) {
                issue(*s, now);
            }
        }
        try {
            ctx_.run();
        } catch (const std::exception& e) {
            out_.error = e.what();
        }
        done.count_down();
        teardown.wait();
    }

private:
    struct Slot {
        Slot(asio::io_context& ctx, int fd, std::byte* b) : file(ctx, fd), buf(b) {}
        ~Slot() { std::free(buf); }
        asio::random_access_file file;
        std::byte* buf;
        std::uint64_t start_ns = 0;
    };

    void issue(Slot& s, std::uint64_t now) {
        ++issued_;
        s.start_ns = clock_.issue(now);
        const std::uint64_t off = gen_->next();
        bool wr = writes(o_.rw);
        if (o_.rw == Workload::randrw) {
            wr = gen_->rand() % 100 >= o_.rwmixread;
        }
        auto handler = [this, &s](const asio::error_code& ec, std::size_t n) { done(s, ec, n); };
        if (wr) {
            s.file.async_write_some_at(off, asio::buffer(s.buf, o_.bs), handler);
        } else {
            s.file.async_read_some_at(off, asio::buffer(s.buf, o_.bs), handler);
        }
    }

    void done(Slot& s, const asio::error_code& ec, std::size_t n) {
        const std::uint64_t now = clock_.done(s.start_ns, out_.latency);
        ++out_.ios;
        if (ec || n != o_.bs) {
            if (out_.error.empty()) {
                out_.error = ec ? "I/O failed: " + ec.message()
                                : "short transfer of " + std::to_string(n) + " bytes";
            }
            stopping_ = true;
            return;
        }
        out_.bytes += n;
        if (stopping_ || issued_ >= limit_ || (now != 0 && now >= deadline_)) {
            stopping_ = true;
            return;
        }
        issue(s, now);
    }

    const Options& o_;
    unsigned index_;
    WorkerResult& out_;
    asio::io_context ctx_;
    std::vector<std::unique_ptr<Slot>> slots_;
    std::unique_ptr<OffsetGen> gen_;
    std::uint64_t limit_ = 0;
    std::uint64_t issued_ = 0;
    std::uint64_t deadline_ = 0;
    bool stopping_ = false;
    LatencyClock clock_;
};

int run(const Options& o) {
    const TargetFile file = TargetFile::open(o.file, writes(o.rw), o.direct);
    check_workload(file.size(), o.bs, o.qd, o.threads, file.alignment(), o.direct, o.file);
    const auto n = static_cast<std::ptrdiff_t>(o.threads);
    std::latch ready(n), go(1), done(n), teardown(1);
    std::vector<WorkerResult> results(o.threads);
    std::vector<std::unique_ptr<Worker>> workers;
    for (unsigned i = 0; i < o.threads; ++i) {
        workers.push_back(std::make_unique<Worker>(o, file, i, results[i]));
    }
    std::uint64_t deadline = 0;
    std::vector<std::thread> threads;
    for (unsigned i = 0; i < o.threads; ++i) {
        threads.emplace_back([&, i] { workers[i]->run(ready, go, done, teardown, deadline); });
    }
    ready.wait();
    const CpuTimes cpu0 = CpuTimes::process();
    const std::uint64_t t0 = now_ns();
    deadline = t0 + static_cast<std::uint64_t>(o.seconds * 1e9);
    go.count_down(); // publishes deadline to the workers (latch synchronizes)
    done.wait();
    const std::uint64_t t1 = now_ns();
    const CpuTimes cpu1 = CpuTimes::process();
    teardown.count_down();
    for (auto& t : threads) {
        t.join();
    }

    Report rep;
    rep.tool = "asio-file-loop";
    set_common_config(rep, o, o.file);
    rep.set("asio", std::to_string(ASIO_VERSION / 100000) + "." +
                        std::to_string(ASIO_VERSION / 100 % 1000) + "." +
                        std::to_string(ASIO_VERSION % 100) + " io_uring");
    if (o.rw == Workload::randrw) {
        rep.set("rwmixread", o.rwmixread);
    }
    rep.seconds = static_cast<double>(t1 - t0) / 1e9;
    rep.cpu = cpu1 - cpu0;
    int status = 0;
    for (auto& r : results) {
        rep.ios += r.ios;
        rep.bytes += r.bytes;
        rep.latency.merge(r.latency);
        if (!r.error.empty()) {
            std::fprintf(stderr, "asio-file-loop: %s\n", r.error.c_str());
            status = 1;
        }
    }
    rep.print(stdout, o.json);
    return status;
}

} // namespace

int main(int argc, char** argv) {
    return run_main("asio-file-loop", [&] { return run(parse(argc, argv)); });
}
