// SPDX-License-Identifier: MIT
// bioring-wal bench: group commit. Per reactor, one log file and N producer coroutines
// that each append one record at a time and co_await its durability; one writer coroutine
// per reactor packs the pending records into 4 KiB blocks (apps/wal/log_format.hpp),
// makes them durable in one round trip — write -> fdatasync as one linked chain
// (io/link.hpp), or one RWF_DSYNC write — then wakes exactly the producers whose records
// are now durable.
//
// HAND-OFF. Producers and their writer share one reactor thread, so the pending queue is an
// intrusive singly linked list of the producers' own Slot objects (no lock, no heap call per
// record); the writer sleeps on an auto-reset Event set by the producer that finds it idle,
// and each producer sleeps on the auto-reset Event in its Slot, set by the writer once the
// batch that holds its record is durable (or failed: the slot then carries the error).
// One write (and its sync) is in flight per log at a time; the records that arrive while
// it is in flight form the next batch — that is the group commit.
//
// ACKNOWLEDGED FILE (--acked, for crash tests). After the writer has set the producers'
// Events of a durable batch, it writes the batch's last sequence number — the highest
// contiguous acknowledged one, since batches are acknowledged in order — with a CRC32C to
// DIR/wal-<i>.acked, and fdatasyncs it, before the next batch. The value is written only
// after the log's own write + sync completed, so it never claims more than is durable; a
// crash between the ack and this write leaves it one batch behind, which is safe (it
// claims less).
#include "apps/common/args.hpp"
#include "apps/common/driver.hpp"
#include "apps/common/format.hpp"
#include "apps/common/progress.hpp"
#include "apps/common/summary.hpp"
#include "apps/wal/commands.hpp"
#include "apps/wal/crc32c.hpp"
#include "apps/wal/log_format.hpp"
#include "measure/heap_counter.hpp"
#include "measure/histogram.hpp"
#include "measure/json.hpp"

#include <bioring/io/direct_file.hpp>
#include <bioring/io/link.hpp>
#include <bioring/io/write_flags.hpp>
#include <bioring/runtime/event.hpp>
#include <bioring/runtime/runtime.hpp>
#include <bioring/runtime/task.hpp>
#include <bioring/runtime/when_all.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace bioring::apps::wal {

const char* const bench_usage =
    "usage: bioring-wal bench DIR [options]\n"
    "Group commit: per reactor thread, N producer coroutines append records to the log\n"
    "DIR/wal-<i>.log (created or truncated; O_DIRECT where the filesystem allows) and each\n"
    "waits until its record is durable; one writer per log packs the waiting records into\n"
    "4 KiB blocks and writes + syncs them as one batch.\n"
    "\n"
    "options:\n"
    "  --producers N     producer coroutines per thread, 1..65536 (default 64)\n"
    "  --threads T       reactor threads, each with its own log, 1..256 (default 1)\n"
    "  --record-size B   payload bytes per record, 1..4040 (default 128)\n"
    "  --seconds S       how long producers append, 1..86400 (default 5); --ms for less\n"
    "  --ms M            as --seconds, in milliseconds, 1..86400000\n"
    "  --sync MODE       fdatasync: write -> fdatasync as one linked chain (default);\n"
    "                    dsync: RWF_DSYNC writes (FUA); none: no sync (acknowledged =\n"
    "                    written to the file, not durable)\n"
    "  --prealloc SIZE   before the run, write SIZE bytes of zeros to each log and sync\n"
    "                    them (suffixes K, M, G), so that commits overwrite allocated blocks\n"
    "                    and fdatasync has no file size or extent change to log; the log\n"
    "                    grows past SIZE as needed (default 0: append to an empty file)\n"
    "  --batch-blocks K  most 4 KiB blocks per write, 1..4096 (default 512)\n"
    "  --acked           also record the highest acknowledged sequence number of each log\n"
    "                    in DIR/wal-<i>.acked (synced after each batch; for crash tests)\n"
    "  --json            print the results as one JSON object on stdout\n"
    "  -h, --help        this text\n"
    "\n"
    "exit status: 0 success, 1 failure (the message names the file), 2 usage error\n";

namespace {

constexpr const char* prog = "bioring-wal";

enum class SyncMode { fdatasync, dsync, none };

const char* sync_name(SyncMode m) {
    return m == SyncMode::fdatasync ? "fdatasync" : m == SyncMode::dsync ? "dsync" : "none";
}

struct Options {
    std::string dir;
    unsigned producers = 64;
    unsigned threads = 1;
    std::uint32_t record_size = 128;
    std::uint64_t ms = 5000;
    SyncMode sync = SyncMode::fdatasync;
    unsigned batch_blocks = 512;
    std::uint64_t prealloc = 0;
    bool acked = false;
    bool json = false;
};

Options parse(int argc, char** argv, bool* help) {
    Options o;
    ArgParser p;
    p.value("producers", [&](std::string_view v) {
        o.producers = static_cast<unsigned>(parse_uint(v, "--producers", 1, 65536));
    });
    p.value("threads", [&](std::string_view v) {
        o.threads = static_cast<unsigned>(parse_uint(v, "--threads", 1, 256));
    });
    p.value("record-size", [&](std::string_view v) {
        o.record_size =
            static_cast<std::uint32_t>(parse_size_in(v, "--record-size", 1, max_payload));
    });
    p.value("seconds",
            [&](std::string_view v) { o.ms = parse_uint(v, "--seconds", 1, 86400) * 1000; });
    p.value("ms", [&](std::string_view v) { o.ms = parse_uint(v, "--ms", 1, 86400000); });
    p.value("sync", [&](std::string_view v) {
        if (v == "fdatasync") {
            o.sync = SyncMode::fdatasync;
        } else if (v == "dsync") {
            o.sync = SyncMode::dsync;
        } else if (v == "none") {
            o.sync = SyncMode::none;
        } else {
            throw UsageError("--sync: '" + std::string(v) + "' is not fdatasync, dsync or none");
        }
    });
    p.value("batch-blocks", [&](std::string_view v) {
        o.batch_blocks = static_cast<unsigned>(parse_uint(v, "--batch-blocks", 1, 4096));
    });
    p.value("prealloc", [&](std::string_view v) {
        o.prealloc = parse_size_in(v, "--prealloc", 0, 1ull << 40, block_size);
    });
    p.flag("acked", &o.acked);
    p.flag("json", &o.json);
    auto pos = p.parse(argc, argv, help);
    if (*help) {
        return o;
    }
    if (pos.size() != 1) {
        throw UsageError(pos.empty() ? "bench: missing DIR" : "bench: too many arguments");
    }
    o.dir = pos[0];
    if (o.dir.empty()) {
        throw UsageError("bench: empty DIR");
    }
    return o;
}

using Clock = std::chrono::steady_clock;

/// One producer's record in the pending queue (the producer owns it).
struct Slot {
    Slot* next = nullptr;
    std::uint64_t seq = 0;
    int result = 0; ///< set by the writer before done.set(): 0 durable, -errno
    Event done{EventMode::auto_reset};
    std::unique_ptr<unsigned char[]> rec; ///< encoded record (header + payload)
};

/// Everything one reactor's log needs; touched only by that reactor's thread.
struct Log {
    const Options* o = nullptr;
    unsigned index = 0;
    DirectFile* file = nullptr;
    DirectFile* acked_file = nullptr;
    Progress* progress = nullptr;
    Clock::time_point deadline, warm_at;

    Slot* head = nullptr; ///< pending records, FIFO
    Slot* tail = nullptr;
    std::uint64_t next_seq = 0; ///< last sequence number handed out
    Event work{EventMode::auto_reset};
    bool writer_idle = false;
    unsigned active = 0; ///< producers still running
    int error = 0;       ///< first failure (-errno), after which nothing is acknowledged
    std::string error_what;

    // Results.
    measure::LatencyHistogram latency;
    std::uint64_t acked = 0, commits = 0, blocks = 0, failed_records = 0;
    std::uint64_t acked_seq = 0; ///< highest acknowledged (contiguous) sequence number
    // Steady-state window (warm_at .. deadline), taken by the writer on its thread.
    bool w0 = false, w1 = false;
    std::uint64_t heap0 = 0, heap1 = 0, slab0 = 0, slab1 = 0, rec0 = 0, rec1 = 0;
};

Task<void> producer(Log* log) {
    Slot slot;
    const std::size_t len = record_header_size + log->o->record_size;
    slot.rec = std::make_unique<unsigned char[]>(len);
    while (log->error == 0 && Clock::now() < log->deadline) {
        slot.seq = ++log->next_seq;
        encode_record(slot.seq, log->o->record_size, slot.rec.get());
        slot.next = nullptr;
        slot.result = 0;
        if (log->tail != nullptr) {
            log->tail->next = &slot;
        } else {
            log->head = &slot;
        }
        log->tail = &slot;
        const Clock::time_point t0 = Clock::now();
        if (log->writer_idle) {
            log->writer_idle = false;
            log->work.set();
        }
        (void)co_await slot.done.wait();
        if (slot.result != 0) {
            break; // not durable: the writer recorded the error
        }
        log->latency.record(static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count()));
    }
    if (--log->active == 0 && log->writer_idle) {
        log->writer_idle = false;
        log->work.set();
    }
}

/// Record the acknowledged sequence number @seq in the side file (see the header comment).
Task<int> write_acked(DirectFile& f, unsigned char* buf, std::uint64_t seq) {
    std::memset(buf, 0, block_size);
    std::memcpy(buf, &seq, 8);
    const std::uint32_t crc = crc32c(buf, 8);
    std::memcpy(buf + 8, &crc, 4);
    auto [w, s] = co_await link(f.write_step(buf, 16, 0), f.fdatasync_step());
    if (w.res < 0) {
        co_return w.res;
    }
    if (w.res != 16) {
        co_return -EIO; // 16 bytes into the page cache do not come back short
    }
    co_return s.res < 0 ? s.res : 0;
}

void fail_all(Log* log, Slot* s, int err) {
    while (s != nullptr) {
        Slot* next = s->next;
        s->result = err;
        ++log->failed_records;
        s->done.set();
        s = next;
    }
}

void window_mark(Log* log, bool end) {
    const std::uint64_t heap = measure::heap_calls_this_thread();
    const std::uint64_t slab = Reactor::current()->counters().requests_allocated;
    if (!end) {
        log->w0 = true;
        log->heap0 = heap;
        log->slab0 = slab;
        log->rec0 = log->acked;
    } else {
        log->w1 = true;
        log->heap1 = heap;
        log->slab1 = slab;
        log->rec1 = log->acked;
    }
}

Task<void> writer(Log* log) {
    const Options& o = *log->o;
    void* mem = nullptr;
    if (::posix_memalign(&mem, block_size, o.batch_blocks * block_size) != 0) {
        throw std::bad_alloc();
    }
    std::unique_ptr<unsigned char, decltype(&std::free)> buf(static_cast<unsigned char*>(mem),
                                                             &std::free);
    std::unique_ptr<unsigned char, decltype(&std::free)> ackbuf(nullptr, &std::free);
    if (log->acked_file != nullptr) {
        if (::posix_memalign(&mem, block_size, block_size) != 0) {
            throw std::bad_alloc();
        }
        ackbuf.reset(static_cast<unsigned char*>(mem));
    }
    BlockPacker packer(buf.get(), o.batch_blocks);
    std::uint64_t next_block = 0;
    for (;;) {
        const Clock::time_point now = Clock::now();
        if (!log->w0 && now >= log->warm_at) {
            window_mark(log, false);
        }
        if (log->w0 && !log->w1 && now >= log->deadline) {
            window_mark(log, true);
        }
        if (log->head == nullptr) {
            if (log->active == 0) {
                break;
            }
            log->writer_idle = true;
            (void)co_await log->work.wait();
            continue;
        }
        if (log->error != 0) {
            Slot* s = log->head;
            log->head = log->tail = nullptr;
            fail_all(log, s, log->error);
            continue;
        }
        // Take records in queue (= sequence) order while they fit in the batch buffer.
        packer.begin(next_block);
        Slot* first = log->head;
        Slot* last = nullptr;
        Slot* s = first;
        while (s != nullptr && packer.add(s->rec.get(), record_header_size + o.record_size)) {
            last = s;
            s = s->next;
        }
        log->head = s;
        if (s == nullptr) {
            log->tail = nullptr;
        }
        last->next = nullptr;
        const std::size_t nblocks = packer.finish();
        const std::uint64_t last_seq = last->seq;
        // COMMIT: one round trip. fdatasync: write -> fdatasync as one linked chain; dsync:
        // one RWF_DSYNC write; none: a plain write. Awaited here, in the writer's frame: no
        // allocation per batch.
        DirectFile& f = *log->file;
        const std::size_t len = nblocks * block_size;
        const std::uint64_t off = next_block * block_size;
        int r = 0;
        std::size_t done = 0; // bytes written, when a chain's write came back short
        if (o.sync == SyncMode::fdatasync) {
            auto [w, sy] = co_await link(f.write_step(buf.get(), len, off), f.fdatasync_step());
            if (w.res < 0) {
                r = w.res;
            } else if (static_cast<std::size_t>(w.res) < len) {
                done = static_cast<std::size_t>(w.res); // a short write ends the chain
            } else if (sy.res < 0) {
                r = sy.res;
            }
        } else {
            IoResult w =
                co_await f.write(buf.get(), len, off,
                                 o.sync == SyncMode::dsync ? WriteFlags::dsync : WriteFlags::none);
            r = w.res < 0 ? w.res : 0; // a plain write resubmits short transfers itself
        }
        if (r == 0 && done != 0) {
            // The rest of a short chained write, then the sync, in two steps (rare: a
            // filesystem running out of room; the write then usually fails with -ENOSPC).
            IoResult w = co_await f.write(buf.get() + done, len - done, off + done);
            r = w.res < 0 ? w.res : 0;
            if (r == 0) {
                IoResult sy = co_await f.fdatasync();
                r = sy.res < 0 ? sy.res : 0;
            }
        }
        if (r != 0) {
            log->error = r;
            log->error_what =
                format("'%s': %s of %zu bytes at offset %llu: %s", log->file->path().c_str(),
                       o.sync == SyncMode::fdatasync ? "write + fdatasync"
                       : o.sync == SyncMode::dsync   ? "RWF_DSYNC write"
                                                     : "write",
                       len, static_cast<unsigned long long>(off), std::strerror(-r));
            fail_all(log, first, r);
            continue;
        }
        next_block += nblocks;
        ++log->commits;
        log->blocks += nblocks;
        std::uint64_t n = 0;
        for (Slot* d = first; d != nullptr;) {
            Slot* next = d->next; // the producer may reuse its slot once it runs again
            d->result = 0;
            d->done.set();
            ++n;
            d = next;
        }
        log->acked += n;
        log->acked_seq = last_seq;
        if (log->progress != nullptr) {
            log->progress->add(n * o.record_size);
        }
        if (log->acked_file != nullptr) {
            const int a = co_await write_acked(*log->acked_file, ackbuf.get(), last_seq);
            if (a != 0) {
                log->error = a;
                log->error_what =
                    format("'%s': %s", log->acked_file->path().c_str(), std::strerror(-a));
            }
        }
    }
    if (!log->w1) {
        window_mark(log, true);
    }
}

Task<void> shard_main(Log* log) {
    std::vector<Task<void>> tasks;
    tasks.reserve(log->o->producers + 1);
    log->active = log->o->producers;
    for (unsigned i = 0; i < log->o->producers; ++i) {
        tasks.push_back(producer(log));
        if (!tasks.back()) {
            throw std::bad_alloc();
        }
    }
    tasks.push_back(writer(log));
    if (!tasks.back()) {
        throw std::bad_alloc();
    }
    co_await when_all(std::move(tasks));
}

void check_dir(const std::string& dir) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) {
        throw std::system_error(errno, std::system_category(), "directory '" + dir + "'");
    }
    if (!S_ISDIR(st.st_mode)) {
        throw std::system_error(ENOTDIR, std::system_category(), "'" + dir + "'");
    }
}

/// Fill the first @size bytes of @f with zeros and make them durable (--prealloc). Runs
/// before the reactors start, with plain blocking calls: it is set-up, not the benchmark.
void preallocate(DirectFile& f, std::uint64_t size) {
    constexpr std::size_t chunk = 1 << 20;
    void* mem = nullptr;
    if (::posix_memalign(&mem, block_size, chunk) != 0) {
        throw std::bad_alloc();
    }
    std::unique_ptr<void, decltype(&std::free)> zeros(mem, &std::free);
    std::memset(mem, 0, chunk);
    for (std::uint64_t off = 0; off < size;) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, size - off));
        const ssize_t w = ::pwrite(f.fd(), mem, n, static_cast<off_t>(off));
        if (w <= 0) {
            throw std::system_error(w < 0 ? errno : EIO, std::system_category(),
                                    "'" + f.path() + "': preallocating " + std::to_string(size) +
                                        " bytes");
        }
        off += static_cast<std::uint64_t>(w);
    }
    if (::fsync(f.fd()) != 0) {
        throw std::system_error(errno, std::system_category(), "'" + f.path() + "': fsync");
    }
}

std::string ms_text(std::uint64_t ns) {
    return format("%.3f", static_cast<double>(ns) / 1e6);
}

} // namespace

int bench_main(int argc, char** argv) {
    bool help = false;
    const Options o = parse(argc, argv, &help);
    if (help) {
        std::fputs(bench_usage, stdout);
        return 0;
    }
    check_dir(o.dir);

    std::vector<DirectFile> files(o.threads), acked(o.acked ? o.threads : 0);
    for (unsigned i = 0; i < o.threads; ++i) {
        OpenOptions oo;
        oo.write = oo.create = oo.truncate = true;
        files[i] = open_file(prog, o.dir + "/wal-" + std::to_string(i) + ".log", oo);
        if (o.acked) {
            OpenOptions ao;
            ao.write = ao.create = ao.truncate = true;
            ao.direct = false;
            acked[i] = DirectFile::open(o.dir + "/wal-" + std::to_string(i) + ".acked", ao);
        }
        if (o.prealloc > 0) {
            preallocate(files[i], o.prealloc);
        }
    }

    RuntimeOptions ro;
    ro.threads = o.threads;
    Runtime rt(ro);
    const std::string backend = backend_report();
    Progress progress("bench", 0, !o.json);

    std::vector<std::unique_ptr<Log>> logs;
    const Clock::time_point start = Clock::now();
    const auto dur = std::chrono::milliseconds(o.ms);
    for (unsigned i = 0; i < o.threads; ++i) {
        auto l = std::make_unique<Log>();
        l->o = &o;
        l->index = i;
        l->file = &files[i];
        l->acked_file = o.acked ? &acked[i] : nullptr;
        l->progress = &progress;
        l->deadline = start + dur;
        l->warm_at = start + dur / 10; // the window for allocation counts: after warm-up
        logs.push_back(std::move(l));
    }
    rt.run_on_all([&logs](unsigned shard) { return shard_main(logs[shard].get()); });
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    progress.finish();
    rt.shutdown();

    measure::LatencyHistogram lat;
    std::uint64_t acked_n = 0, commits = 0, blocks = 0, failed = 0;
    std::uint64_t heap = 0, slab = 0, window_records = 0;
    std::string error;
    for (auto& l : logs) {
        lat.merge(l->latency);
        acked_n += l->acked;
        commits += l->commits;
        blocks += l->blocks;
        failed += l->failed_records;
        heap += l->heap1 - l->heap0;
        slab += l->slab1 - l->slab0;
        window_records += l->rec1 - l->rec0;
        if (l->error != 0 && error.empty()) {
            error = l->error_what;
        }
    }
    if (!error.empty()) {
        throw std::runtime_error(format("%s (%llu records acknowledged as durable before it; "
                                        "%llu not acknowledged)",
                                        error.c_str(), static_cast<unsigned long long>(acked_n),
                                        static_cast<unsigned long long>(failed)));
    }
    const double rps = seconds > 0 ? acked_n / seconds : 0;
    const double mbps = seconds > 0 ? acked_n * o.record_size / seconds / 1e6 : 0;
    const double group = commits > 0 ? static_cast<double>(acked_n) / commits : 0;
    const double heap_per = window_records > 0 ? static_cast<double>(heap) / window_records : 0;
    const double slab_per = window_records > 0 ? static_cast<double>(slab) / window_records : 0;
    const bool direct = files[0].is_direct();
    if (o.json) {
        std::printf(
            "{\"app\":\"bioring-wal\",\"operation\":\"bench\",\"dir\":%s,\"backend\":%s,"
            "\"threads\":%u,\"producers\":%u,\"record_size\":%u,\"sync\":\"%s\",\"direct\":%s,"
            "\"seconds\":%.3f,\"records\":%llu,\"records_per_s\":%.0f,\"mb_per_s\":%.2f,"
            "\"commit_p50_ms\":%s,\"commit_p99_ms\":%s,\"commit_p999_ms\":%s,"
            "\"syncs\":%llu,\"records_per_sync\":%.2f,\"blocks\":%llu,"
            "\"heap_calls_per_record\":%.4f,\"slab_allocations_per_record\":%.4f,"
            "\"heap_counts_malloc\":%s}\n",
            measure::json_string(o.dir).c_str(), measure::json_string(backend).c_str(), o.threads,
            o.producers, o.record_size, sync_name(o.sync), direct ? "true" : "false", seconds,
            static_cast<unsigned long long>(acked_n), rps, mbps,
            ms_text(lat.percentile(0.50)).c_str(), ms_text(lat.percentile(0.99)).c_str(),
            ms_text(lat.percentile(0.999)).c_str(), static_cast<unsigned long long>(commits), group,
            static_cast<unsigned long long>(blocks), heap_per, slab_per,
            measure::heap_counter_covers_malloc() ? "true" : "false");
    } else {
        std::printf("bioring-wal bench: %u thread(s) x %u producers, %u-byte records, sync %s, "
                    "%s\n",
                    o.threads, o.producers, o.record_size, sync_name(o.sync),
                    direct ? "O_DIRECT" : "buffered");
        std::printf("  backend          %s\n", backend.c_str());
        std::printf("  records          %llu in %.2f s: %.0f records/s, %.2f MB/s of payload\n",
                    static_cast<unsigned long long>(acked_n), seconds, rps, mbps);
        std::printf("  commit latency   p50 %s ms, p99 %s ms, p99.9 %s ms\n",
                    ms_text(lat.percentile(0.50)).c_str(), ms_text(lat.percentile(0.99)).c_str(),
                    ms_text(lat.percentile(0.999)).c_str());
        std::printf("  group commit     %llu writes%s, %.1f records per write, %llu blocks\n",
                    static_cast<unsigned long long>(commits),
                    o.sync == SyncMode::fdatasync ? " + fdatasync"
                    : o.sync == SyncMode::dsync   ? " (RWF_DSYNC)"
                                                  : " (no sync)",
                    group, static_cast<unsigned long long>(blocks));
        std::printf("  allocations      %.4f heap calls and %.4f slab allocations per record "
                    "(steady state, %llu records)%s\n",
                    heap_per, slab_per, static_cast<unsigned long long>(window_records),
                    measure::heap_counter_covers_malloc() ? "" : " (malloc not counted)");
    }
    return 0;
}

} // namespace bioring::apps::wal
