// SPDX-License-Identifier: MIT
// uring-loop: the plain liburing loop that bioring-bench is measured against.
//
// It is what a careful C programmer writes without a runtime: one ring per thread,
// SINGLE_ISSUER|DEFER_TASKRUN where the kernel takes them (COOP_TASKRUN, then none,
// otherwise), the file registered (fixed file 0) and one buffer block registered (fixed
// buffer 0), qd SQEs primed, then: io_uring_submit_and_wait(1), reap every CQE, refill
// its slot with a new offset, repeat. user_data is the slot index; nothing is allocated
// per I/O. Latency is timed as --latency says (bench/latency.hpp: all, sample N, off),
// with the same LatencyClock as bioring-bench's request loops, so that both sides pay the
// same for their latency figures. --threads N runs N independent rings, each on its own
// range of the file, pinned to CPU i % ncpu when N > 1 (or --pin).
#include "measure/histogram.hpp"
#include "bench/latency.hpp"
#include "bench/options.hpp"
#include "bench/report.hpp"
#include "bench/target_file.hpp"
#include "bench/workload.hpp"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <liburing.h>
#include <memory>
#include <pthread.h>
#include <sched.h>
#include <string>
#include <thread>
#include <vector>

using namespace bioring::bench;

namespace {

// The common options (--rw, --bs, --qd, ...: bench/options.hpp) and uring-loop's own.
struct Options : CommonOptions {
    bool fixed_buffers = true;
    bool fixed_files = true;
    bool async = false;
    bool plain_ring = false;
};

void usage(std::FILE* out) {
    std::fprintf(out, R"(usage: uring-loop [options]
The plain liburing loop: qd I/Os in flight on one ring per thread, no runtime.
  --rw W             randread (default), read, randwrite, write, randrw, nop
  --rwmixread N      percent reads for randrw (default 50)
  --bs SIZE          block size, suffixes k/m (default 4k)
  --qd N             I/Os in flight per thread (default 32)
  --threads N        independent rings/threads, each on its own range (default 1)
  --seconds S        run time (default 2)      --ios N   stop after N I/Os instead
  --file PATH        file or block device (required unless --rw nop)
  --direct / --no-direct               O_DIRECT (default on)
  --fixed-buffers / --no-fixed-buffers READ_FIXED into one registered block (default on)
  --fixed-files / --no-fixed-files     registered file (default on)
  --plain-ring       no SINGLE_ISSUER/DEFER_TASKRUN/COOP_TASKRUN setup flags
  --async            set IOSQE_ASYNC (forces io-wq workers; to check CPU accounting)
  --latency L        all (time every I/O), sample N (one I/O in N; default sample 64), off
  --pin / --no-pin   pin thread i to CPU i %% ncpu (default: when --threads > 1)
  --json             one JSON object instead of text
)");
}

Options parse(int argc, char** argv) {
    Options o;
    ArgReader a(argc, argv);
    while (a.next()) {
        if (parse_common_option(a, o, usage) || a.on_off("fixed-buffers", &o.fixed_buffers) ||
            a.on_off("fixed-files", &o.fixed_files)) {
            continue;
        }
        if (a.is("--plain-ring")) {
            a.no_value();
            o.plain_ring = true;
        } else if (a.is("--async")) {
            a.no_value();
            o.async = true;
        } else {
            a.unknown();
        }
    }
    check_common_limits(o, 64u << 20, "the limit of 64 MiB");
    if (o.rw != Workload::nop && o.file.empty()) {
        throw UsageError("--file is required for --rw " + std::string(workload_name(o.rw)));
    }
    return o;
}

// Set up a ring with the best flags this kernel takes. Returns: the flags used, or -errno.
int setup_ring(io_uring& ring, unsigned entries, bool plain, std::string& flags_used) {
    const unsigned tries[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
                              IORING_SETUP_COOP_TASKRUN, 0};
    const char* names[] = {"SINGLE_ISSUER|DEFER_TASKRUN", "COOP_TASKRUN", "none"};
    int ret = -EINVAL;
    for (int i = plain ? 2 : 0; i < 3; ++i) {
        io_uring_params p{};
        p.flags = tries[i];
        ret = io_uring_queue_init_params(entries, &ring, &p);
        if (ret == 0) {
            flags_used = names[i];
            return 0;
        }
        if (ret != -EINVAL) {
            break;
        }
    }
    return ret;
}

struct Shared {
    const Options* opt = nullptr;
    const TargetFile* file = nullptr;
    std::latch* ready = nullptr;
    std::latch* go = nullptr;
    std::latch* done = nullptr;
    std::latch* teardown = nullptr;
    std::atomic<std::uint64_t> deadline_ns{0};
};

struct WorkerResult {
    std::uint64_t ios = 0;
    std::uint64_t bytes = 0;
    std::uint64_t enters = 0;
    std::uint64_t elapsed_ns = 0;
    LatencyHistogram latency;
    std::string ring_flags;
    std::string note;
    std::string error;
};

struct Slot {
    std::uint64_t start_ns = 0;
    bool is_write = false;
};

class Worker {
public:
    Worker(Shared& sh, unsigned index, WorkerResult& out)
        : sh_(sh), index_(index), out_(out), clock_(sh.opt->latency) {}

    void run() {
        const Options& o = *sh_.opt;
        if (o.pin == 1 || (o.pin == -1 && o.threads > 1)) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(index_ % std::thread::hardware_concurrency(), &set);
            pthread_setaffinity_np(pthread_self(), sizeof set, &set);
        }
        const bool ok = setup();
        sh_.ready->count_down();
        sh_.go->wait();
        if (ok) {
            loop();
        }
        sh_.done->count_down();
        sh_.teardown->wait();
        if (ring_ready_) {
            io_uring_queue_exit(&ring_);
        }
    }

private:
    bool setup() {
        const Options& o = *sh_.opt;
        const int ret = setup_ring(ring_, ring_entries_for(o.qd), o.plain_ring, out_.ring_flags);
        if (ret < 0) {
            out_.error = std::string("io_uring_queue_init: ") + std::strerror(-ret);
            return false;
        }
        ring_ready_ = true;
        slots_.resize(o.qd);
        if (o.rw == Workload::nop) {
            return true;
        }
        const std::size_t bytes = o.qd * o.bs;
        void* mem = nullptr;
        if (posix_memalign(&mem, 4096, bytes) != 0) {
            out_.error = "cannot allocate I/O buffers";
            return false;
        }
        buffers_.reset(static_cast<std::byte*>(mem));
        std::memset(mem, 0x5a, bytes);
        if (o.fixed_buffers) {
            iovec iov{mem, bytes};
            const int r = io_uring_register_buffers(&ring_, &iov, 1);
            if (r < 0) {
                out_.note = std::string("buffer registration failed (") + std::strerror(-r) +
                            "): plain reads";
            } else {
                fixed_buffers_ = true;
            }
        }
        fd_ = sh_.file->fd();
        if (o.fixed_files) {
            const int r = io_uring_register_files(&ring_, &fd_, 1);
            if (r < 0) {
                out_.note += std::string(" file registration failed (") + std::strerror(-r) + ")";
            } else {
                fixed_file_ = true;
            }
        }
        const std::uint64_t range = sh_.file->size() / o.threads;
        const std::uint64_t blocks = range / o.bs;
        gen_ = std::make_unique<OffsetGen>(range * index_, blocks, o.bs, is_random(o.rw),
                                           0x1234567ull * (index_ + 1));
        return true;
    }

    // Prepare slot @slot's next I/O; @start: its LatencyClock start stamp (0: untimed).
    void prep(unsigned slot, std::uint64_t start) noexcept {
        const Options& o = *sh_.opt;
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        // The ring has at least qd entries and at most qd are ever queued.
        Slot& s = slots_[slot];
        s.start_ns = start;
        if (o.rw == Workload::nop) {
            io_uring_prep_nop(sqe);
        } else {
            bool wr = writes(o.rw);
            if (o.rw == Workload::randrw) {
                wr = gen_->rand() % 100 >= o.rwmixread;
            }
            s.is_write = wr;
            const std::uint64_t off = gen_->next();
            std::byte* buf = buffers_.get() + std::size_t{slot} * o.bs;
            const int fd = fixed_file_ ? 0 : fd_;
            const auto len = static_cast<unsigned>(o.bs);
            if (fixed_buffers_) {
                if (wr) {
                    io_uring_prep_write_fixed(sqe, fd, buf, len, off, 0);
                } else {
                    io_uring_prep_read_fixed(sqe, fd, buf, len, off, 0);
                }
            } else if (wr) {
                io_uring_prep_write(sqe, fd, buf, len, off);
            } else {
                io_uring_prep_read(sqe, fd, buf, len, off);
            }
            if (fixed_file_) {
                sqe->flags |= IOSQE_FIXED_FILE;
            }
        }
        if (o.async) {
            sqe->flags |= IOSQE_ASYNC;
        }
        io_uring_sqe_set_data64(sqe, slot);
    }

    void loop() {
        const Options& o = *sh_.opt;
        const std::uint64_t limit = o.ios ? (o.ios + o.threads - 1) / o.threads : ~0ull;
        const std::uint64_t deadline = o.ios ? ~0ull : sh_.deadline_ns.load();
        const std::int64_t expect = o.rw == Workload::nop ? 0 : static_cast<std::int64_t>(o.bs);
        const std::uint64_t t0 = now_ns();
        std::uint64_t issued = 0;
        unsigned inflight = 0;
        for (unsigned i = 0; i < o.qd && issued < limit; ++i, ++issued, ++inflight) {
            prep(i, clock_.issue(t0));
        }
        bool stopping = false;
        while (inflight > 0) {
            const int r = io_uring_submit_and_wait(&ring_, 1);
            ++out_.enters;
            if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
                out_.error = std::string("io_uring_submit_and_wait: ") + std::strerror(-r);
                break;
            }
            unsigned head;
            unsigned seen = 0;
            io_uring_cqe* cqe;
            io_uring_for_each_cqe(&ring_, head, cqe) {
                ++seen;
                const auto slot = static_cast<unsigned>(io_uring_cqe_get_data64(cqe));
                if (cqe->res != expect) {
                    if (out_.error.empty()) {
                        out_.error =
                            cqe->res < 0
                                ? std::string("I/O failed: ") + std::strerror(-cqe->res)
                                : "short transfer of " + std::to_string(cqe->res) + " bytes";
                    }
                    stopping = true;
                }
                const std::uint64_t now = clock_.done(slots_[slot].start_ns, out_.latency);
                ++out_.ios;
                --inflight;
                if (!stopping && (issued >= limit || (now != 0 && now >= deadline))) {
                    stopping = true;
                }
                if (!stopping) {
                    prep(slot, clock_.issue(now));
                    ++issued;
                    ++inflight;
                }
            }
            io_uring_cq_advance(&ring_, seen);
        }
        out_.elapsed_ns = now_ns() - t0;
        out_.bytes = o.rw == Workload::nop ? 0 : out_.ios * o.bs;
    }

    struct FreeDeleter {
        void operator()(std::byte* p) const noexcept { std::free(p); }
    };

    Shared& sh_;
    unsigned index_;
    WorkerResult& out_;
    io_uring ring_{};
    bool ring_ready_ = false;
    bool fixed_buffers_ = false;
    bool fixed_file_ = false;
    int fd_ = -1;
    std::vector<Slot> slots_;
    std::unique_ptr<std::byte, FreeDeleter> buffers_;
    std::unique_ptr<OffsetGen> gen_;
    LatencyClock clock_;
};

int run(const Options& o) {
    TargetFile file;
    if (o.rw != Workload::nop) {
        file = TargetFile::open(o.file, writes(o.rw), o.direct);
        check_workload(file.size(), o.bs, o.qd, o.threads, file.alignment(), o.direct, o.file);
    }
    const auto n = static_cast<std::ptrdiff_t>(o.threads);
    std::latch ready(n), go(1), done(n), teardown(1);
    Shared sh;
    sh.opt = &o;
    sh.file = &file;
    sh.ready = &ready;
    sh.go = &go;
    sh.done = &done;
    sh.teardown = &teardown;
    std::vector<WorkerResult> results(o.threads);
    std::vector<std::thread> threads;
    for (unsigned i = 0; i < o.threads; ++i) {
        threads.emplace_back([&, i] { Worker(sh, i, results[i]).run(); });
    }
    ready.wait();
    const CpuTimes cpu0 = CpuTimes::process();
    const std::uint64_t t0 = now_ns();
    sh.deadline_ns = t0 + static_cast<std::uint64_t>(o.seconds * 1e9);
    go.count_down();
    done.wait();
    const std::uint64_t t1 = now_ns();
    const CpuTimes cpu1 = CpuTimes::process();
    teardown.count_down();
    for (auto& t : threads) {
        t.join();
    }

    Report rep;
    rep.tool = "uring-loop";
    set_common_config(rep, o, o.rw == Workload::nop ? std::string() : o.file);
    rep.set_bool("fixed_buffers", o.fixed_buffers);
    rep.set_bool("fixed_files", o.fixed_files);
    rep.set("ring_flags", results[0].ring_flags);
    rep.set_bool("async", o.async);
    if (o.rw == Workload::randrw) {
        rep.set("rwmixread", o.rwmixread);
    }
    rep.seconds = static_cast<double>(t1 - t0) / 1e9;
    rep.cpu = cpu1 - cpu0;
    double enters = 0;
    int status = 0;
    for (auto& r : results) {
        rep.ios += r.ios;
        rep.bytes += r.bytes;
        enters += static_cast<double>(r.enters);
        rep.latency.merge(r.latency);
        if (!r.note.empty()) {
            rep.notes.push_back(r.note);
        }
        if (!r.error.empty()) {
            std::fprintf(stderr, "uring-loop: %s\n", r.error.c_str());
            status = 1;
        }
    }
    rep.enter_calls = enters;
    rep.print(stdout, o.json);
    return status;
}

} // namespace

int main(int argc, char** argv) {
    return run_main("uring-loop", [&] { return run(parse(argc, argv)); });
}
