// SPDX-License-Identifier: MIT
// bioring-bench: per-core throughput of bioring (Runtime + DirectFile).
//
// Shape of a run. A Runtime with one reactor per --threads (pinned when more than one);
// on each, a shard opens its own DirectFile (so --fixed-files can register it with that
// reactor's ring), takes qd buffers from BufferPool::global() (registered arenas, so
// reads go out as READ_FIXED), and starts qd request coroutines. Two modes:
//   loop    (default) each request coroutine is one frame from the shard's BioSet (its
//           first parameter) that loops: pick an offset, co_await file.read(...), record
//           the latency. Zero allocations per I/O.
//   per-io  one request coroutine per I/O (a Task from the BioSet, awaited by a slot
//           driver): exactly one slab allocation per I/O, the literal "each awaitable
//           request is one allocation".
// Both time I/Os as --latency says (bench/latency.hpp: all, sample N, off) with the same
// LatencyClock as uring-loop, so each side of a comparison pays the same for its latency
// figures; in per-io mode an I/O's time starts before its request coroutine is created.
// A std::barrier brackets the measured phase on all shards; its
// completion step reads getrusage(RUSAGE_SELF) (all threads, io-wq workers included)
// and the clock. Slab allocations per I/O are the reactors' requests_allocated counters
// over the phase; io_uring_enter calls are the reactors' enter_calls; heap calls are
// counted by measure/heap_counter.cpp (operator new/delete and malloc & co, per thread).
// NOPs go through the runtime's OpAwaiter (a raw Operation with OpCode::nop).
#include "measure/heap_counter.hpp"
#include "measure/histogram.hpp"
#include "bench/latency.hpp"
#include "bench/options.hpp"
#include "bench/report.hpp"
#include "bench/target_file.hpp"
#include "bench/workload.hpp"

#include <bioring/alloc/bioset.hpp>
#include <bioring/alloc/buffer_pool.hpp>
#include <bioring/io/direct_file.hpp>
#include <bioring/runtime/op_awaiter.hpp>
#include <bioring/runtime/operation.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/runtime.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>
#include <bioring/runtime/when_all.hpp>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <unistd.h>
#include <vector>

using namespace bioring;
using namespace bioring::bench;

namespace {

enum class Mode { loop, per_io };

// The common options (--rw, --bs, --qd, ...: bench/options.hpp) and bioring-bench's own.
struct Options : CommonOptions {
    std::uint64_t size = 1ull << 30;
    bool fixed_buffers = true;
    bool fixed_files = false;
    std::string backend;
    Mode mode = Mode::loop;
    bool same_thread = false;
};

void usage(std::FILE* out) {
    std::fprintf(out, R"(usage: bioring-bench [options]
Per-core throughput of bioring: qd request coroutines per reactor thread.
  --rw W             randread (default), randwrite, read, write, randrw, nop
  --rwmixread N      percent reads for randrw (default 50)
  --bs SIZE          block size, suffixes k/m/g (default 4k)
  --qd N             requests in flight per thread (default 32)
  --threads N        reactors (one pinned thread each), each on its own range (default 1)
  --seconds S        run time (default 2)      --ios N   stop after N I/Os instead
  --file PATH        file or block device (default: a file of --size created in /dev/shm,
                     filled with random data and removed at exit)
  --size SIZE        size of that default file (default 1G)
  --direct / --no-direct               O_DIRECT (default on)
  --fixed-buffers / --no-fixed-buffers buffers from the registered BufferPool (default on)
  --fixed-files / --no-fixed-files     register the file with each ring (default off)
  --backend B        uring or asio (ReactorOptions::backend; BIORING_BACKEND overrides it)
  --mode M           loop (default: one coroutine per slot, looping) or per-io (one
                     request coroutine, one BioSet allocation, per I/O)
  --pin / --no-pin   pin reactor i to CPU i (default: when --threads > 1)
  --latency L        all (time every I/O), sample N (one I/O in N; default sample 64), off
  --same-thread      run the one reactor on the calling thread, not a Runtime thread
                     (--threads 1 only; for valgrind, which holds its lock across a
                     thread's blocking io_uring_enter: bench/cachegrind.sh)
  --json             one JSON object instead of text
Exit status: 0 done, 1 an I/O or setup failure, 2 bad input.
)");
}

Options parse(int argc, char** argv) {
    Options o;
    ArgReader a(argc, argv);
    while (a.next()) {
        if (parse_common_option(a, o, usage)) {
            if (a.is("--file") && o.file.empty()) {
                throw UsageError("--file needs a path");
            }
            continue;
        }
        if (a.on_off("fixed-buffers", &o.fixed_buffers) ||
            a.on_off("fixed-files", &o.fixed_files)) {
            continue;
        }
        if (a.is("--size")) {
            o.size = parse_size(a.value(), "--size");
        } else if (a.is("--backend")) {
            o.backend = a.value();
            if (o.backend != "uring" && o.backend != "asio") {
                throw UsageError("unknown --backend '" + o.backend + "' (expected uring or asio)");
            }
        } else if (a.is("--same-thread")) {
            a.no_value();
            o.same_thread = true;
        } else if (a.is("--mode")) {
            const std::string m = a.value();
            if (m == "loop") {
                o.mode = Mode::loop;
            } else if (m == "per-io") {
                o.mode = Mode::per_io;
            } else {
                throw UsageError("unknown --mode '" + m + "' (expected loop or per-io)");
            }
        } else {
            a.unknown();
        }
    }
    if (o.same_thread && (o.threads != 1 || o.pin == 1)) {
        throw UsageError("--same-thread runs one reactor: it needs --threads 1 and no --pin");
    }
    check_common_limits(o, BufferPool::max_buffer,
                        "the largest buffer class (" + std::to_string(BufferPool::max_buffer) +
                            " bytes)");
    return o;
}

// The default data file: created here, removed at exit, also on SIGINT/SIGTERM.
char g_owned_path[4096];

void remove_owned_file() noexcept {
    if (g_owned_path[0] != '\0') {
        ::unlink(g_owned_path);
        g_owned_path[0] = '\0';
    }
}

extern "C" void on_signal(int sig) {
    if (g_owned_path[0] != '\0') {
        ::unlink(g_owned_path); // async-signal-safe
    }
    std::signal(sig, SIG_DFL);
    std::raise(sig);
}

struct OwnedFile {
    ~OwnedFile() { remove_owned_file(); }
};

/// The NOP request: the runtime's own raw-operation awaiter (runtime/op_awaiter.hpp), so
/// a NOP takes the same submit/complete path as a read, without a file.
inline Operation nop_operation() noexcept {
    Operation op;
    op.code = OpCode::nop;
    return op;
}

struct Phase {
    CpuTimes cpu0, cpu1;
    std::uint64_t t0 = 0, t1 = 0;
    std::atomic<std::uint64_t> deadline{0};
    int phase = 0;
    double seconds = 0;
};

struct PhaseStep {
    Phase* p;
    void operator()() noexcept {
        if (p->phase == 0) {
            p->cpu0 = CpuTimes::process();
            p->t0 = now_ns();
            p->deadline.store(p->t0 + static_cast<std::uint64_t>(p->seconds * 1e9),
                              std::memory_order_relaxed);
        } else {
            p->t1 = now_ns();
            p->cpu1 = CpuTimes::process();
        }
        ++p->phase;
    }
};

struct Shard {
    unsigned index = 0;
    DirectFile file;
    std::unique_ptr<BioSet> bioset;
    std::vector<Buffer> buffers;
    std::unique_ptr<OffsetGen> gen;
    LatencyHistogram latency;
    LatencyClock clock;
    std::uint64_t ios = 0;
    std::uint64_t issued = 0;
    std::uint64_t limit = ~0ull;
    std::uint64_t deadline = ~0ull;
    bool stopping = false;
    bool fixed_file = false;
    ReactorCounters c0{}, c1{};
    std::uint64_t heap0 = 0, heap1 = 0;
    std::string error;
    std::string backend;
};

struct Bench {
    const Options& o;
    std::string path;
    Phase phase;
    std::barrier<PhaseStep> barrier;
    std::vector<std::unique_ptr<Shard>> shards;

    Bench(const Options& opt, std::string p)
        : o(opt), path(std::move(p)),
          barrier(static_cast<std::ptrdiff_t>(opt.threads), PhaseStep{&phase}) {
        phase.seconds = opt.seconds;
    }
};

/// One request I/O; returns its result. Writes draw the mix for randrw.
inline bool draw_write(const Options& o, Shard& sh) noexcept {
    if (o.rw == Workload::randrw) {
        return sh.gen->rand() % 100 >= o.rwmixread;
    }
    return writes(o.rw);
}

/// After one completed I/O (@expect: its full result, 0 for a NOP, else bs; @now: what
/// the shard's LatencyClock::done() returned, 0 when it did not read the clock): count it.
/// Returns: whether the slot should issue another.
/// Forced inline: uring-loop has the same bookkeeping inlined in its loop, and GCC does not
/// inline it into a coroutine body by itself.
[[gnu::always_inline]] inline bool account(Shard& sh, const IoResult& r, int expect,
                                           std::uint64_t now) noexcept {
    ++sh.ios;
    if (r.res != expect) {
        if (sh.error.empty()) {
            sh.error = r.res < 0 ? std::string("I/O failed: ") + std::strerror(-r.res)
                                 : "short transfer of " + std::to_string(r.res) + " bytes";
        }
        sh.stopping = true;
    }
    if (sh.stopping || sh.issued >= sh.limit || (now != 0 && now >= sh.deadline)) {
        sh.stopping = true;
        return false;
    }
    ++sh.issued;
    return true;
}

// loop mode (reads and writes): one frame per slot for the whole run (first parameter
// BioSet&: the frame is in that bioset's front pad).
Task<void> request_loop(BioSet&, Bench& b, Shard& sh, unsigned slot) {
    const Options& o = b.o;
    void* buf = sh.buffers[slot].data;
    const int expect = static_cast<int>(o.bs);
    std::uint64_t start = sh.clock.issue(0);
    for (;;) {
        IoResult r;
        const std::uint64_t off = sh.gen->next();
        if (draw_write(o, sh)) {
            r = co_await sh.file.write(buf, o.bs, off);
        } else {
            r = co_await sh.file.read(buf, o.bs, off);
        }
        const std::uint64_t now = sh.clock.done(start, sh.latency);
        if (!account(sh, r, expect, now)) {
            co_return;
        }
        start = sh.clock.issue(now);
    }
}

// loop mode for --rw nop: request_loop without the file branches, so a NOP's resume
// carries no state of reads and writes it never does (the plain loop's NOP is the same
// minimum: prep, submit, reap).
Task<void> nop_loop(BioSet&, Shard& sh) {
    std::uint64_t start = sh.clock.issue(0);
    for (;;) {
        OpAwaiter nop(nop_operation());
        const IoResult r = co_await nop;
        const std::uint64_t now = sh.clock.done(start, sh.latency);
        if (!account(sh, r, 0, now)) {
            co_return;
        }
        start = sh.clock.issue(now);
    }
}

// per-io mode: the request coroutine of exactly one I/O, one coroutine per kind of I/O, so
// that a request's frame holds the awaiter of the one operation it does and nothing else
// (a NOP request carries no file awaiters, as the plain loop's NOP is only a NOP; a read
// carries no write's). The first parameter picks the BioSet its frame comes from.
Task<IoResult> nop_request(BioSet&) {
    OpAwaiter nop(nop_operation());
    co_return co_await nop;
}

Task<IoResult> read_request(BioSet&, DirectFile& file, void* buf, std::uint64_t len,
                            std::uint64_t off) {
    co_return co_await file.read(buf, len, off);
}

Task<IoResult> write_request(BioSet&, DirectFile& file, void* buf, std::uint64_t len,
                             std::uint64_t off) {
    co_return co_await file.write(buf, len, off);
}

/// A new (not yet started) request for the shard's next I/O, its frame from @bs: the
/// offset and, for randrw, the direction are drawn here, once per I/O.
inline Task<IoResult> next_request(BioSet& bs, const Options& o, Shard& sh, void* buf) {
    if (o.rw == Workload::nop) {
        return nop_request(bs);
    }
    const std::uint64_t off = sh.gen->next();
    if (draw_write(o, sh)) {
        return write_request(bs, sh.file, buf, o.bs, off);
    }
    return read_request(bs, sh.file, buf, o.bs, off);
}

// per-io mode: the slot driver (one frame per slot) awaiting one new request per I/O.
Task<void> slot_driver(BioSet&, Bench& b, Shard& sh, unsigned slot) {
    const Options& o = b.o;
    void* buf = sh.buffers[slot].data;
    const int expect = o.rw == Workload::nop ? 0 : static_cast<int>(o.bs);
    std::uint64_t start = sh.clock.issue(0);
    for (;;) {
        Task<IoResult> req = next_request(*sh.bioset, o, sh, buf);
        if (!req) {
            // Cannot happen with a reserve of qd objects and at most qd live requests.
            if (sh.error.empty()) {
                sh.error = "request allocation failed";
            }
            sh.stopping = true;
            co_return;
        }
        const IoResult r = co_await req;
        const std::uint64_t now = sh.clock.done(start, sh.latency);
        if (!account(sh, r, expect, now)) {
            co_return;
        }
        start = sh.clock.issue(now);
    }
}

// The front pad the shard's BioSet needs so that every request frame of this workload fits
// in it: only the compiler knows a frame's size, so one request of each kind the workload
// issues is made (never started) from a probe set whose pad is too small, and
// BioSet::alloc(size) takes its oversized path, which records round_up(frame size, 64) in
// the Bio's front_pad. Without this a per-io request whose frame outgrew a fixed pad would
// still be one allocation, but from the oversized cache (no thread cache: a slower path
// than the one being measured).
std::size_t request_frame_pad(const Options& o, Shard& sh) {
    BioSet probe(0, 64);
    std::size_t pad = 64;
    const auto measure = [&pad](Task<IoResult> t) {
        if (!t || t.handle().promise().bio() == nullptr) {
            throw std::runtime_error("cannot allocate a probe request frame");
        }
        pad = std::max<std::size_t>(pad, t.handle().promise().bio()->front_pad);
    };
    if (o.rw == Workload::nop) {
        measure(nop_request(probe));
    } else {
        measure(read_request(probe, sh.file, nullptr, o.bs, 0));
        measure(write_request(probe, sh.file, nullptr, o.bs, 0));
    }
    return pad;
}

Task<void> shard_main(Bench& b, unsigned index) {
    const Options& o = b.o;
    Shard& sh = *b.shards[index];
    sh.index = index;
    sh.clock = LatencyClock(o.latency);
    bool ok = true;
    std::vector<Task<void>> reqs;
    try {
        Reactor* reactor = Reactor::current();
        sh.backend = reactor != nullptr ? reactor->report() : "no reactor";
        if (o.rw != Workload::nop) {
            OpenOptions oo;
            oo.write = writes(o.rw);
            oo.direct = o.direct;
            sh.file = DirectFile::open(b.path, oo);
            if (o.fixed_files) {
                sh.fixed_file = sh.file.register_fixed();
            }
            const std::uint64_t range = sh.file.size() / o.threads;
            sh.gen = std::make_unique<OffsetGen>(range * index, range / o.bs, o.bs, is_random(o.rw),
                                                 0x1234567ull * (index + 1));
            for (unsigned i = 0; i < o.qd; ++i) {
                Buffer buf;
                if (o.fixed_buffers) {
                    buf = BufferPool::global().alloc(o.bs);
                } else {
                    void* mem = nullptr;
                    if (posix_memalign(&mem, 4096, o.bs) == 0) {
                        buf.data = static_cast<std::byte*>(mem);
                        buf.capacity = static_cast<std::uint32_t>(o.bs);
                    }
                }
                if (!buf) {
                    throw std::runtime_error("cannot allocate I/O buffer " + std::to_string(i));
                }
                std::memset(buf.data, 0x5a, o.bs);
                sh.buffers.push_back(buf);
            }
        } else {
            sh.gen = std::make_unique<OffsetGen>(0, 1, 1, false, 1);
            sh.buffers.resize(o.qd);
        }
        // Reserve of qd: per-io mode has at most qd request frames alive at once, so its
        // allocations can always be served (forward progress even without memory). The pad
        // holds a request frame (per-io) and a slot's loop or driver frame.
        sh.bioset =
            std::make_unique<BioSet>(o.qd, std::max<std::size_t>(512, request_frame_pad(o, sh)));
        sh.limit = o.ios ? (o.ios + o.threads - 1) / o.threads : ~0ull;
        reqs.reserve(o.qd);
        for (unsigned i = 0; i < o.qd && sh.issued < sh.limit; ++i, ++sh.issued) {
            if (o.mode == Mode::per_io) {
                reqs.push_back(slot_driver(*sh.bioset, b, sh, i));
            } else if (o.rw == Workload::nop) {
                reqs.push_back(nop_loop(*sh.bioset, sh));
            } else {
                reqs.push_back(request_loop(*sh.bioset, b, sh, i));
            }
            if (!reqs.back()) {
                throw std::runtime_error("cannot allocate request coroutine " + std::to_string(i));
            }
        }
    } catch (const std::exception& e) {
        sh.error = e.what();
        ok = false;
        reqs.clear();
    }
    Task<void> all = when_all(std::move(reqs));
    b.barrier.arrive_and_wait(); // start: every shard is set up
    sh.deadline = o.ios ? ~0ull : b.phase.deadline.load(std::memory_order_relaxed);
    if (Reactor* r = Reactor::current()) {
        sh.c0 = r->counters();
    }
    sh.heap0 = measure::heap_calls_this_thread();
    if (ok) {
        co_await all;
    }
    sh.heap1 = measure::heap_calls_this_thread();
    if (Reactor* r = Reactor::current()) {
        sh.c1 = r->counters();
    }
    b.barrier.arrive_and_wait(); // stop
    if (sh.file.is_open()) {
        co_await sh.file.close();
    }
    for (Buffer& buf : sh.buffers) {
        if (!buf) {
            continue;
        }
        if (o.fixed_buffers) {
            BufferPool::global().free(buf);
        } else {
            std::free(buf.data);
        }
    }
    sh.buffers.clear();
}

int run(const Options& o) {
    std::string path = o.file;
    OwnedFile owned;
    if (o.rw != Workload::nop) {
        if (path.empty()) {
            path = "/dev/shm/bioring-bench-" + std::to_string(::getpid()) + ".dat";
            if (o.size < o.bs * o.threads) {
                throw UsageError("--size " + std::to_string(o.size) +
                                 " is too small for --threads " + std::to_string(o.threads) +
                                 " blocks of --bs " + std::to_string(o.bs));
            }
            std::snprintf(g_owned_path, sizeof g_owned_path, "%s", path.c_str());
            std::signal(SIGINT, on_signal);
            std::signal(SIGTERM, on_signal);
            // Empty first: the workload is checked against the file system's DIO alignment
            // before a large file is filled for nothing.
            create_filled_file(path, 0);
            const TargetFile empty = TargetFile::open(path, writes(o.rw), o.direct);
            check_workload(o.size, o.bs, o.qd, o.threads, empty.alignment(), o.direct, path);
            create_filled_file(path, o.size);
        }
        // Validate before any runtime starts: open, size and DIO alignment.
        const TargetFile probe = TargetFile::open(path, writes(o.rw), o.direct);
        std::uint32_t align = probe.alignment();
        try {
            OpenOptions oo;
            oo.write = writes(o.rw);
            oo.direct = o.direct;
            const DirectFile f = DirectFile::open(path, oo);
            align = static_cast<std::uint32_t>(f.offset_alignment());
            if (o.direct && f.memory_alignment() > 4096) {
                throw UsageError(path + " needs buffers aligned to " +
                                 std::to_string(f.memory_alignment()) +
                                 " bytes; bioring's buffers are 4096-aligned");
            }
        } catch (const std::system_error& e) {
            throw UsageError(e.what());
        }
        check_workload(probe.size(), o.bs, o.qd, o.threads, align, o.direct, path);
    }

    Bench b(o, path);
    for (unsigned i = 0; i < o.threads; ++i) {
        b.shards.push_back(std::make_unique<Shard>());
    }
    {
        RuntimeOptions ro;
        ro.threads = static_cast<unsigned>(o.threads);
        ro.pin = o.pin == 1 || (o.pin == -1 && o.threads > 1);
        ro.reactor.ring_entries = ring_entries_for(o.qd); // as uring-loop's ring
        ro.reactor.register_buffers = o.fixed_buffers;
        ro.reactor.backend = o.backend == "asio"    ? BackendChoice::asio
                             : o.backend == "uring" ? BackendChoice::uring
                                                    : BackendChoice::automatic;
        if (o.same_thread) {
            Reactor reactor(ro.reactor);
            sync_wait(shard_main(b, 0));
        } else {
            Runtime rt(ro);
            rt.run_on_all([&b](unsigned shard) { return shard_main(b, shard); });
        }
    }

    Report rep;
    rep.tool = "bioring-bench";
    set_common_config(rep, o, path);
    rep.set_bool("fixed_buffers", o.fixed_buffers);
    rep.set_bool("fixed_files", o.fixed_files);
    rep.set_bool("same_thread", o.same_thread);
    rep.set("mode", o.mode == Mode::loop ? "loop" : "per-io");
    rep.set("backend", b.shards[0]->backend);
    if (o.rw == Workload::randrw) {
        rep.set("rwmixread", o.rwmixread);
    }
    rep.seconds = static_cast<double>(b.phase.t1 - b.phase.t0) / 1e9;
    rep.cpu = b.phase.cpu1 - b.phase.cpu0;
    double enters = 0, slab = 0, heap = 0;
    int status = 0;
    bool fixed_all = true;
    for (auto& sh : b.shards) {
        rep.ios += sh->ios;
        rep.bytes += o.rw == Workload::nop ? 0 : sh->ios * o.bs;
        rep.latency.merge(sh->latency);
        enters += static_cast<double>(sh->c1.enter_calls - sh->c0.enter_calls);
        slab += static_cast<double>(sh->c1.requests_allocated - sh->c0.requests_allocated);
        heap += static_cast<double>(sh->heap1 - sh->heap0);
        fixed_all = fixed_all && sh->fixed_file;
        if (!sh->error.empty()) {
            std::fprintf(stderr, "bioring-bench: shard %u: %s\n", sh->index, sh->error.c_str());
            status = 1;
        }
    }
    rep.enter_calls = enters;
    rep.slab_allocs = slab;
    rep.heap_calls = heap;
    if (o.fixed_files && o.rw != Workload::nop && !fixed_all) {
        rep.notes.push_back("--fixed-files: registration refused on some reactor; "
                            "plain descriptors used there");
    }
    rep.notes.push_back(measure::heap_counter_covers_malloc()
                            ? "heap calls: operator new/delete and malloc family, reactor threads"
                            : "heap calls: operator new/delete only (sanitizer build)");
    rep.print(stdout, o.json);
    return status;
}

} // namespace

int main(int argc, char** argv) {
    return run_main(
        "bioring-bench", [&] { return run(parse(argc, argv)); }, remove_owned_file);
}
