// SPDX-License-Identifier: MIT
// Striped read -> transform -> write pipeline on a Runtime (see pipeline.hpp for the design).
#include "apps/common/pipeline.hpp"

#include <bioring/alloc/bioset.hpp>
#include <bioring/alloc/buffer_pool.hpp>
#include "apps/common/format.hpp"
#include "apps/common/progress.hpp"
#include <bioring/io/direct_file.hpp>
#include <bioring/io/error_message.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/runtime.hpp>
#include <bioring/runtime/task.hpp>
#include <bioring/runtime/when_all.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

namespace bioring::apps {

namespace {

// A request coroutine's frame (two Buffers, the read and write awaiters with their embedded
// Operations, a few integers) measured 1280 bytes at -O2 on GCC 12 (bio->front_pad of the
// first request). The pad leaves room so that frames are served by this set with its
// reserve; a larger frame (sanitizer builds) still works, from an oversized object that has
// no reserve.
constexpr std::size_t request_front_pad = 2048;

using ull = unsigned long long;

struct Shared {
    DirectFile* src = nullptr;
    DirectFile* dst = nullptr;
    const PipelineConfig* cfg = nullptr;
    bool verify = false;
    std::size_t unit = 4096;
    std::uint64_t blocks = 0;
    unsigned threads = 1;     ///< stripes: cfg.threads, but never more than there are blocks
    unsigned queue_depth = 1; ///< cfg.queue_depth after the MEMORY clamps (pipeline.hpp)

    std::atomic<bool> stop{false};
    std::mutex mu;
    std::string error;
    std::atomic<std::uint64_t> requests{0}, io_ops{0}, bytes{0};

    void fail(std::string msg) {
        std::lock_guard lock(mu);
        if (error.empty()) {
            error = std::move(msg);
        }
        stop.store(true, std::memory_order_relaxed);
    }

    std::string io_error(const char* what, const std::string& file, std::uint64_t off, int res) {
        std::string m = format("%s '%s' at offset %llu failed: %s", what, file.c_str(),
                               static_cast<ull>(off), std::strerror(-res));
        const char* detail = last_error_message();
        if (res == -EINVAL && detail != nullptr && *detail != '\0') {
            m += std::string(" (") + detail + ")";
        }
        return m;
    }
};

struct Stripe {
    Shared* sh = nullptr;
    unsigned shard = 0;
    std::uint64_t next = 0; // next block of this stripe; only this stripe's reactor touches it
};

// Returns a buffer to the pool on every exit path of a request.
struct BufferGuard {
    Buffer buf;
    explicit BufferGuard(std::size_t bytes) noexcept : buf(BufferPool::global().alloc(bytes)) {}
    ~BufferGuard() { BufferPool::global().free(buf); }
    BufferGuard(const BufferGuard&) = delete;
    BufferGuard& operator=(const BufferGuard&) = delete;
};

bool all_zero(const std::byte* p, std::size_t n) noexcept {
    return n == 0 || (p[0] == std::byte{0} && std::memcmp(p, p + 1, n - 1) == 0);
}

std::size_t round_up(std::size_t v, std::size_t unit) noexcept {
    return (v + unit - 1) / unit * unit;
}

// One block: the request. Its frame comes from @bs (leading BioSet&), its data from the
// BufferPool. Everything that can fail is reported through Shared::fail, never thrown.
Task<void> block_request(BioSet& bs, Stripe* st, std::uint64_t block) {
    (void)bs;
    Shared& sh = *st->sh;
    const PipelineConfig& cfg = *sh.cfg;
    const std::uint64_t off = block * cfg.block_size;
    const std::size_t len =
        static_cast<std::size_t>(std::min<std::uint64_t>(cfg.block_size, cfg.size - off));
    const std::size_t padded = round_up(len, sh.unit);

    BufferGuard a(padded);
    if (!a.buf) {
        sh.fail(format("out of I/O buffer memory for a %zu-byte request", padded));
        co_return;
    }
    IoResult r = co_await sh.src->read(a.buf.data, padded, off);
    sh.io_ops.fetch_add(1, std::memory_order_relaxed);
    if (!r.ok()) {
        sh.fail(sh.io_error("read from", sh.src->path(), off, r.res));
        co_return;
    }
    if (r.bytes() < len) {
        sh.fail(format("source '%s' ended at offset %llu, before its size of %llu bytes (did it "
                       "shrink during the run?)",
                       sh.src->path().c_str(), static_cast<ull>(off + r.bytes()),
                       static_cast<ull>(cfg.size)));
        co_return;
    }

    if (sh.verify) {
        BufferGuard b(padded);
        if (!b.buf) {
            sh.fail(format("out of I/O buffer memory for a %zu-byte request", padded));
            co_return;
        }
        IoResult w = co_await sh.dst->read(b.buf.data, padded, off);
        sh.io_ops.fetch_add(1, std::memory_order_relaxed);
        if (!w.ok()) {
            sh.fail(sh.io_error("verify: read from", cfg.dst_name, off, w.res));
            co_return;
        }
        if (w.bytes() < len) {
            sh.fail(format("verify: '%s' is shorter than the source (ends at %llu)",
                           cfg.dst_name.c_str(), static_cast<ull>(off + w.bytes())));
            co_return;
        }
        if (cfg.transform && !cfg.transform(st->shard, a.buf.data, len, off)) {
            sh.fail(format("transform failed at offset %llu", static_cast<ull>(off)));
            co_return;
        }
        if (std::memcmp(a.buf.data, b.buf.data, len) != 0) {
            std::size_t i = 0;
            while (a.buf.data[i] == b.buf.data[i]) {
                ++i;
            }
            sh.fail(format("verify: MISMATCH between source '%s' and destination '%s' at byte "
                           "offset %llu",
                           sh.src->path().c_str(), cfg.dst_name.c_str(),
                           static_cast<ull>(off + i)));
            co_return;
        }
    } else {
        if (cfg.transform && !cfg.transform(st->shard, a.buf.data, len, off)) {
            sh.fail(format("transform failed at offset %llu", static_cast<ull>(off)));
            co_return;
        }
        if (!(cfg.skip_zero_blocks && all_zero(a.buf.data, len))) {
            const std::size_t direct_len = len / sh.unit * sh.unit;
            if (direct_len > 0) {
                IoResult w = co_await sh.dst->write(a.buf.data, direct_len, off);
                sh.io_ops.fetch_add(1, std::memory_order_relaxed);
                if (!w.ok()) {
                    sh.fail(sh.io_error("write to", cfg.dst_name, off, w.res));
                    co_return;
                }
            }
            // The unaligned tail (only in the last block): buffered, exact length, so a
            // file never grows past the data and a device is not written past it.
            std::size_t done = direct_len;
            while (done < len) {
                ssize_t n = ::pwrite(cfg.tail_fd, a.buf.data + done, len - done,
                                     static_cast<off_t>(off + done));
                if (n < 0 && errno == EINTR) {
                    continue;
                }
                if (n <= 0) {
                    sh.fail(
                        sh.io_error("write to", cfg.dst_name, off + done, n < 0 ? -errno : -EIO));
                    co_return;
                }
                done += static_cast<std::size_t>(n);
            }
        }
    }
    sh.requests.fetch_add(1, std::memory_order_relaxed);
    sh.bytes.fetch_add(len, std::memory_order_relaxed);
    if (cfg.progress != nullptr) {
        cfg.progress->add(len);
    }
}

// One of queue_depth workers of a stripe: takes the stripe's next block and awaits its
// request, so at most queue_depth requests of a stripe are in flight.
Task<void> worker(Stripe* st, BioSet* bs) {
    Shared& sh = *st->sh;
    const unsigned stride = sh.threads;
    while (!sh.stop.load(std::memory_order_relaxed)) {
        const std::uint64_t block = st->next;
        if (block >= sh.blocks) {
            break;
        }
        st->next += stride;
        Task<void> req = block_request(*bs, st, block);
        if (!req) {
            sh.fail("out of memory for a request (bioset and its reserve exhausted)");
            break;
        }
        co_await req;
    }
}

Task<void> stripe_main(Shared* sh, unsigned shard) {
    BioSet bioset(sh->queue_depth, request_front_pad);
    Stripe st;
    st.sh = sh;
    st.shard = shard;
    st.next = shard;
    // Fixed files save a file-table lookup per request. A file registers with one reactor
    // only, and registration must not race with requests on other reactors, so only a
    // one-stripe run uses them.
    const bool fixed = sh->threads == 1;
    if (fixed) {
        (void)sh->src->register_fixed();
        (void)sh->dst->register_fixed();
    }
    // No more workers than this stripe has blocks: a small file gets no idle coroutines.
    const std::uint64_t stripe_blocks =
        sh->blocks > shard ? (sh->blocks - shard + sh->threads - 1) / sh->threads : 0;
    const unsigned nworkers =
        static_cast<unsigned>(std::min<std::uint64_t>(sh->queue_depth, stripe_blocks));
    std::vector<Task<void>> workers;
    workers.reserve(nworkers);
    for (unsigned i = 0; i < nworkers; ++i) {
        Task<void> w = worker(&st, &bioset);
        if (!w) {
            sh->fail("out of memory for a worker coroutine");
            break;
        }
        workers.push_back(std::move(w));
    }
    if (!workers.empty()) {
        co_await when_all(std::move(workers));
    }
    if (fixed) {
        // Dropped here, on the registering reactor, before the Runtime goes away.
        sh->src->unregister_fixed();
        sh->dst->unregister_fixed();
    }
}

// After every stripe's writes have completed: one fsync of DST through the reactor, so that
// it is an io_uring request like the writes (and BIORING_FAULT op=fsync reaches it). fsync
// is per inode: it also flushes the tail that went through the buffered descriptor.
Task<void> flush_main(Shared* sh, unsigned shard) {
    if (shard != 0) {
        co_return;
    }
    IoResult r = co_await sh->dst->fsync();
    if (!r.ok()) {
        sh->fail(format("cannot flush '%s': %s", sh->cfg->dst_name.c_str(), std::strerror(-r.res)));
    }
}

PipelineResult run(DirectFile& src, DirectFile& dst, const PipelineConfig& cfg, bool verify) {
    if (cfg.threads == 0 || cfg.queue_depth == 0 || cfg.block_size == 0) {
        throw std::invalid_argument("pipeline: threads, queue depth and block size must be > 0");
    }
    Shared sh;
    sh.src = &src;
    sh.dst = &dst;
    sh.cfg = &cfg;
    sh.verify = verify;
    sh.unit = std::max<std::size_t>({4096, src.offset_alignment(), src.memory_alignment(),
                                     dst.offset_alignment(), dst.memory_alignment()});
    if (cfg.block_size % sh.unit != 0) {
        throw std::invalid_argument(format("block size %u is not a multiple of the files' "
                                           "direct I/O alignment %zu",
                                           cfg.block_size, sh.unit));
    }
    if (cfg.block_size > BufferPool::max_buffer) {
        throw std::invalid_argument(format("block size %u is above the largest I/O buffer "
                                           "(%zu bytes)",
                                           cfg.block_size, BufferPool::max_buffer));
    }
    sh.blocks = (cfg.size + cfg.block_size - 1) / cfg.block_size;
    sh.threads = static_cast<unsigned>(
        std::max<std::uint64_t>(1, std::min<std::uint64_t>(cfg.threads, sh.blocks)));

    PipelineResult res;
    // MEMORY: no more requests per stripe than its blocks, and all of them within the limit.
    const std::uint64_t stripe_blocks = (sh.blocks + sh.threads - 1) / sh.threads;
    std::uint64_t qd =
        std::max<std::uint64_t>(1, std::min<std::uint64_t>(cfg.queue_depth, stripe_blocks));
    const std::uint64_t per_request = (verify ? 2ull : 1ull) * cfg.block_size + request_front_pad;
    const std::uint64_t limit = pipeline_memory_limit();
    const std::uint64_t one_each = per_request * sh.threads;
    if (one_each > limit) {
        throw std::invalid_argument(format(
            "%u threads x --bs %u need %llu bytes in flight, above the limit of %llu bytes (%s); "
            "use fewer --threads or a smaller --bs",
            sh.threads, cfg.block_size, static_cast<ull>(one_each), static_cast<ull>(limit),
            memory_limit_source()));
    }
    if (qd > limit / one_each) {
        qd = limit / one_each;
        res.queue_depth_lowered = true;
    }
    sh.queue_depth = static_cast<unsigned>(qd);
    res.queue_depth = sh.queue_depth;
    res.memory_limit = limit;
    RuntimeOptions ro;
    ro.threads = sh.threads;
    Runtime rt(ro);
    res.backend = backend_report();
    res.threads = sh.threads;
    const auto t0 = std::chrono::steady_clock::now();
    rt.run_on_all([&sh](unsigned shard) { return stripe_main(&sh, shard); });
    if (!verify && sh.error.empty()) {
        rt.run_on_all([&sh](unsigned shard) { return flush_main(&sh, shard); });
    }
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    res.counters = rt.counters();
    res.requests = sh.requests.load();
    res.io_ops = sh.io_ops.load();
    res.bytes = sh.bytes.load();
    res.ok = sh.error.empty();
    res.error = sh.error;
    return res;
}

struct MemoryLimit {
    std::uint64_t bytes;
    const char* source;
};

MemoryLimit memory_limit() noexcept {
    const long pages = ::sysconf(_SC_PHYS_PAGES);
    const long page = ::sysconf(_SC_PAGESIZE);
    MemoryLimit m{pages > 0 && page > 0
                      ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) / 4
                      : std::uint64_t{1} << 30,
                  "a quarter of physical memory"};
    struct rlimit rl {};
    if (::getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur / 2 < m.bytes) {
        m = {rl.rlim_cur / 2, "half of RLIMIT_AS"};
    }
    return m;
}

} // namespace

std::uint64_t pipeline_memory_limit() noexcept {
    return memory_limit().bytes;
}

const char* memory_limit_source() noexcept {
    return memory_limit().source;
}

PipelineResult run_copy(DirectFile& src, DirectFile& dst, const PipelineConfig& cfg) {
    return run(src, dst, cfg, false);
}

PipelineResult run_verify(DirectFile& src, DirectFile& dst, const PipelineConfig& cfg) {
    return run(src, dst, cfg, true);
}

} // namespace bioring::apps
