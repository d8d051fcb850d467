// SPDX-License-Identifier: MIT
// bioring-soak: a bounded soak of the whole stack (opt-in: tests/soak.sh, `./run soak`).
//
// One O_DIRECT file is cut into 4 KiB blocks; each Runtime reactor owns a stripe of them
// and runs --qd worker coroutines that, until the deadline, pick a random run of 1..4 free
// blocks and either write them with a new version (the content is a pure function of
// (block, version), so it can be recomputed) or read them and check the content against
// the version last written. Each request is a coroutine whose frame comes from the shard's
// BioSet and whose data sits in a BufferPool buffer (registered: READ_FIXED/WRITE_FIXED).
// Faults on purpose: some requests carry a short deadline (IoOptions::timeout), and some a
// stop_token that a canceller thread stops at random from outside the reactors. A request
// that completes with -ECANCELED leaves a written block "unknown" (the write may or may not
// have reached the disk); it is read and accepted as old or new version if whole, else
// rewritten, before the end. At the end every block is verified twice: by the reactors with
// O_DIRECT reads and by the main thread with plain pread against a checksum of the expected
// contents. Any mismatch, unexpected error or leak (ASan build) fails the run.
//
// usage: bioring-soak [--seconds N] [--threads N] [--qd N] [--mib N] [--dir DIR]
//        (SOAK_SECONDS sets the default duration; at most 300 s)
#include <bioring/alloc/bioset.hpp>
#include <bioring/alloc/buffer_pool.hpp>
#include <bioring/io/direct_file.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/runtime.hpp>
#include <bioring/runtime/task.hpp>
#include <bioring/runtime/when_all.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <random>
#include <stop_token>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace bioring;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::size_t blk = 4096;
constexpr unsigned max_run = 4;
constexpr std::uint32_t unknown_version = 0xffffffffu;

std::uint64_t mix(std::uint64_t x) noexcept {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// The content of @block at @version (version 0: never written, all zeros).
void fill(std::byte* p, std::uint64_t block, std::uint32_t version) noexcept {
    if (version == 0) {
        std::memset(p, 0, blk);
        return;
    }
    auto* w = reinterpret_cast<std::uint64_t*>(p);
    const std::uint64_t base = mix((block << 32) ^ version);
    w[0] = block;
    w[1] = version;
    for (std::size_t i = 2; i < blk / 8; ++i) {
        w[i] = mix(base + i);
    }
}

bool matches(const std::byte* p, std::uint64_t block, std::uint32_t version) noexcept {
    alignas(64) std::byte want[blk];
    fill(want, block, version);
    return std::memcmp(p, want, blk) == 0;
}

struct Stats {
    std::atomic<std::uint64_t> reads{0}, writes{0}, verified{0}, timeouts{0}, stops{0}, unknown{0},
        errors{0}, mismatches{0};
};

struct Shared {
    DirectFile* file = nullptr;
    std::uint64_t blocks = 0;
    unsigned shards = 1;
    unsigned qd = 16;
    clock_type::time_point deadline;
    Stats st;
    std::mutex mu;                       // guards the stop slots and the first error
    std::vector<std::stop_source> slots; // one per worker: the canceller stops them
    std::string first_error;
    std::vector<std::uint32_t> version; // per block; each block is touched by one shard only
    std::vector<std::uint32_t> tried;   // per block: the last version a write attempted

    void error(const std::string& m) {
        st.errors.fetch_add(1);
        std::lock_guard lk(mu);
        if (first_error.empty()) {
            first_error = m;
        }
    }
};

struct Shard {
    Shared* sh = nullptr;
    unsigned index = 0;
    std::vector<std::uint64_t> mine; // this shard's blocks (stripe: block % shards == index)
    std::vector<char> busy;          // parallel to mine
    std::mt19937_64 rng;
};

struct BufGuard {
    Buffer b;
    explicit BufGuard(std::size_t n) : b(BufferPool::global().alloc(n)) {}
    ~BufGuard() { BufferPool::global().free(b); }
};

// One request on blocks mine[first .. first+n) — contiguous in the file only when they are
// one stripe apart, so each block is its own I/O inside one request coroutine.
Task<void> request(BioSet& bs, Shard* s, std::size_t first, unsigned n, bool write, IoOptions opt) {
    (void)bs;
    Shared& sh = *s->sh;
    BufGuard g(blk);
    if (!g.b) {
        sh.error("out of buffer memory");
        co_return;
    }
    for (unsigned i = 0; i < n; ++i) {
        const std::uint64_t block = s->mine[first + i];
        std::uint32_t& ver = sh.version[block];
        if (write) {
            // Never reuse a version: a cancelled write's data must not pass for a later one.
            const std::uint32_t next = ++sh.tried[block];
            fill(g.b.data, block, next);
            IoResult r = co_await sh.file->write(g.b.data, blk, block * blk, opt);
            sh.st.writes.fetch_add(1, std::memory_order_relaxed);
            if (r.res == -ECANCELED) {
                ver = unknown_version; // it may or may not have reached the disk
                sh.st.unknown.fetch_add(1, std::memory_order_relaxed);
                continue;
            }
            if (r.bytes() != blk) {
                sh.error("write of block " + std::to_string(block) + ": " + std::strerror(-r.res));
                continue;
            }
            ver = next;
        } else {
            IoResult r = co_await sh.file->read(g.b.data, blk, block * blk, opt);
            sh.st.reads.fetch_add(1, std::memory_order_relaxed);
            if (r.res == -ECANCELED) {
                continue;
            }
            if (r.bytes() != blk) {
                sh.error("read of block " + std::to_string(block) + ": " +
                         (r.res < 0 ? std::strerror(-r.res) : "short"));
                continue;
            }
            if (ver == unknown_version) {
                continue; // verified at the end, after a clean rewrite
            }
            if (!matches(g.b.data, block, ver)) {
                sh.st.mismatches.fetch_add(1);
                sh.error("MISMATCH in block " + std::to_string(block) + " (version " +
                         std::to_string(ver) + ")");
            } else {
                sh.st.verified.fetch_add(1, std::memory_order_relaxed);
            }
        }
    }
}

Task<void> worker(Shard* s, BioSet* bs, unsigned w) {
    Shared& sh = *s->sh;
    while (clock_type::now() < sh.deadline) {
        const std::size_t m = s->mine.size();
        const unsigned n = 1 + static_cast<unsigned>(s->rng() % max_run);
        if (m < n) {
            break;
        }
        const std::size_t first = s->rng() % (m - n + 1);
        bool free = true;
        for (unsigned i = 0; i < n; ++i) {
            free = free && !s->busy[first + i];
        }
        if (!free) {
            continue; // another worker of this shard holds one of them: pick again
        }
        const unsigned dice = static_cast<unsigned>(s->rng() % 100);
        const bool write = dice < 45;
        IoOptions opt;
        if (dice % 10 == 0) {
            opt.timeout = std::chrono::microseconds(1 + s->rng() % 200);
            sh.st.timeouts.fetch_add(1, std::memory_order_relaxed);
        } else if (dice % 10 == 1) {
            std::stop_source src;
            opt.stop = src.get_token();
            std::lock_guard lk(sh.mu);
            sh.slots[s->index * sh.qd + w] = src;
            sh.st.stops.fetch_add(1, std::memory_order_relaxed);
        }
        for (unsigned i = 0; i < n; ++i) {
            s->busy[first + i] = 1;
        }
        Task<void> t = request(*bs, s, first, n, write, opt);
        if (!t) {
            sh.error("out of memory for a request (bioset reserve exhausted)");
        } else {
            co_await std::move(t);
        }
        for (unsigned i = 0; i < n; ++i) {
            s->busy[first + i] = 0;
        }
    }
}

// After the deadline: rewrite unknown blocks cleanly, then read and verify every block.
Task<void> settle(Shard* s, BioSet* bs) {
    Shared& sh = *s->sh;
    for (std::size_t i = 0; i < s->mine.size(); ++i) {
        if (sh.version[s->mine[i]] == unknown_version) {
            Task<void> t = request(*bs, s, i, 1, true, IoOptions{});
            if (t) {
                co_await std::move(t);
            }
        }
        Task<void> t = request(*bs, s, i, 1, false, IoOptions{});
        if (t) {
            co_await std::move(t);
        }
    }
}

Task<void> shard_main(Shared* sh, std::vector<Shard>* shards, unsigned index) {
    Shard& s = (*shards)[index];
    BioSet bs(sh->qd, 4096);
    std::vector<Task<void>> ws;
    for (unsigned w = 0; w < sh->qd; ++w) {
        ws.push_back(worker(&s, &bs, w));
    }
    co_await when_all(std::move(ws));
    co_await settle(&s, &bs);
}

unsigned arg_uint(int& i, int argc, char** argv, unsigned lo, unsigned hi) {
    if (i + 1 >= argc) {
        std::fprintf(stderr, "bioring-soak: %s needs a value\n", argv[i]);
        std::exit(2);
    }
    char* end = nullptr;
    const unsigned long v = std::strtoul(argv[++i], &end, 10);
    if (*argv[i] == '\0' || *end != '\0' || v < lo || v > hi) {
        std::fprintf(stderr, "bioring-soak: %s: '%s' is not in %u..%u\n", argv[i - 1], argv[i], lo,
                     hi);
        std::exit(2);
    }
    return static_cast<unsigned>(v);
}

} // namespace

int main(int argc, char** argv) {
    unsigned seconds = 60, threads = 2, qd = 16, mib = 32;
    if (const char* e = std::getenv("SOAK_SECONDS")) {
        seconds = static_cast<unsigned>(std::strtoul(e, nullptr, 10));
    }
    std::string dir = ".";
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--seconds") {
            seconds = arg_uint(i, argc, argv, 1, 300);
        } else if (a == "--threads") {
            threads = arg_uint(i, argc, argv, 1, 64);
        } else if (a == "--qd") {
            qd = arg_uint(i, argc, argv, 1, 256);
        } else if (a == "--mib") {
            mib = arg_uint(i, argc, argv, 1, 4096);
        } else if (a == "--dir" && i + 1 < argc) {
            dir = argv[++i];
        } else {
            std::fprintf(stderr, "usage: bioring-soak [--seconds N] [--threads N] [--qd N] "
                                 "[--mib N] [--dir DIR]\n");
            return 2;
        }
    }
    if (seconds < 1 || seconds > 300) {
        std::fprintf(stderr, "bioring-soak: duration %u s is outside 1..300\n", seconds);
        return 2;
    }
    const std::string path = dir + "/bioring-soak." + std::to_string(::getpid());
    try {
        OpenOptions o;
        o.write = o.create = o.truncate = true;
        DirectFile file = DirectFile::open(path, o);
        ::unlink(path.c_str()); // nothing is left behind, whatever happens
        Shared sh;
        sh.file = &file;
        sh.blocks = std::uint64_t{mib} << 20 >> 12;
        sh.shards = threads;
        sh.qd = qd;
        sh.version.assign(sh.blocks, 0);
        sh.tried.assign(sh.blocks, 0);
        sh.slots.resize(std::size_t{threads} * qd);
        if (::ftruncate(file.fd(), static_cast<off_t>(sh.blocks * blk)) != 0) {
            std::perror("bioring-soak: ftruncate");
            return 1;
        }
        std::vector<Shard> shards(threads);
        for (unsigned i = 0; i < threads; ++i) {
            shards[i].sh = &sh;
            shards[i].index = i;
            shards[i].rng.seed(1000 + i);
            for (std::uint64_t b = i; b < sh.blocks; b += threads) {
                shards[i].mine.push_back(b);
            }
            shards[i].busy.assign(shards[i].mine.size(), 0);
        }
        sh.deadline = clock_type::now() + std::chrono::seconds(seconds);
        const auto t0 = clock_type::now();
        std::atomic<bool> done{false};
        std::uint64_t stopped = 0;
        // The canceller: stops random workers' tokens from outside the reactors.
        std::thread canceller([&] {
            std::mt19937 rng(7);
            while (!done.load()) {
                std::stop_source s;
                {
                    std::lock_guard lk(sh.mu);
                    s = sh.slots[rng() % sh.slots.size()];
                }
                stopped += s.request_stop();
                std::this_thread::sleep_for(std::chrono::microseconds(50 + rng() % 200));
            }
        });
        {
            RuntimeOptions ro;
            ro.threads = threads;
            Runtime rt(ro);
            std::printf("bioring-soak: %u s, %u reactors x %u workers, %u MiB file in %s, %s\n",
                        seconds, threads, qd, mib, dir.c_str(), backend_report().c_str());
            std::fflush(stdout);
            rt.run_on_all([&](unsigned i) { return shard_main(&sh, &shards, i); });
        }
        done.store(true);
        canceller.join();
        // Second, independent check: plain pread of the whole file against the versions.
        // A buffered descriptor on the same (unlinked) file: the page cache path, not ours.
        const int plain =
            ::open(("/proc/self/fd/" + std::to_string(file.fd())).c_str(), O_RDONLY | O_CLOEXEC);
        if (plain < 0) {
            std::perror("bioring-soak: reopen for the final check");
            return 1;
        }
        std::vector<std::byte> buf(blk);
        std::uint64_t bad = 0, sum_file = 0, sum_want = 0;
        alignas(64) std::byte want[blk];
        for (std::uint64_t b = 0; b < sh.blocks; ++b) {
            if (::pread(plain, buf.data(), blk, static_cast<off_t>(b * blk)) !=
                static_cast<ssize_t>(blk)) {
                ++bad;
                continue;
            }
            fill(want, b, sh.version[b]);
            for (std::size_t i = 0; i < blk; i += 8) {
                std::uint64_t x, y;
                std::memcpy(&x, buf.data() + i, 8);
                std::memcpy(&y, want + i, 8);
                sum_file = mix(sum_file ^ x);
                sum_want = mix(sum_want ^ y);
            }
            bad += std::memcmp(buf.data(), want, blk) != 0;
        }
        ::close(plain);
        const double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
        const Stats& s = sh.st;
        std::printf("bioring-soak: %.1f s: %llu reads (%llu verified), %llu writes, %llu with "
                    "a deadline, %llu with a stop token (%llu stops requested), %llu writes "
                    "cancelled (block unknown, rewritten), %llu errors, %llu mismatches; final "
                    "check of %llu blocks: %llu bad, checksum %016llx vs %016llx\n",
                    secs, (unsigned long long)s.reads.load(), (unsigned long long)s.verified.load(),
                    (unsigned long long)s.writes.load(), (unsigned long long)s.timeouts.load(),
                    (unsigned long long)s.stops.load(), (unsigned long long)stopped,
                    (unsigned long long)s.unknown.load(), (unsigned long long)s.errors.load(),
                    (unsigned long long)s.mismatches.load(), (unsigned long long)sh.blocks,
                    (unsigned long long)bad, (unsigned long long)sum_file,
                    (unsigned long long)sum_want);
        if (!sh.first_error.empty()) {
            std::fprintf(stderr, "bioring-soak: FAILED: %s\n", sh.first_error.c_str());
        }
        const bool ok = bad == 0 && sum_file == sum_want && s.errors.load() == 0 &&
                        s.verified.load() > 0 && s.writes.load() > 0;
        std::printf("bioring-soak: %s\n", ok ? "PASS" : "FAIL");
        return ok ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bioring-soak: %s\n", e.what());
        ::unlink(path.c_str());
        return 1;
    }
}
