// SPDX-License-Identifier: MIT
// bioring-wal verify: read logs back with several reads in flight per file and check every
// block and record (the rules, and what a torn tail is: apps/wal/log_format.hpp).
//
// Each file is read in chunks by `depth` reader coroutines that take the next chunk in
// turn; each checks its chunk's blocks on its own (check_block) into a per-block table.
// Sequence continuity across blocks and the tail rule then need one pass in block order.
#include "apps/common/args.hpp"
#include "apps/common/driver.hpp"
#include "apps/common/format.hpp"
#include "apps/common/progress.hpp"
#include "apps/common/summary.hpp"
#include "apps/wal/commands.hpp"
#include "apps/wal/log_format.hpp"
#include "measure/json.hpp"

#include <bioring/io/direct_file.hpp>
#include <bioring/runtime/runtime.hpp>
#include <bioring/runtime/task.hpp>
#include <bioring/runtime/when_all.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace bioring::apps::wal {

const char* const verify_usage =
    "usage: bioring-wal verify [options] FILE...\n"
    "Check logs written by 'bioring-wal bench': every block (position, CRC32C) and every\n"
    "record (CRC32C, payload, contiguous sequence numbers). Prints, per file, the last\n"
    "durable sequence number and, if any, where the valid log ends: a torn tail (the\n"
    "write in flight at a crash, partly on disk) is expected and not an error; damage\n"
    "before the tail is.\n"
    "\n"
    "options:\n"
    "  --qd N       reads in flight per file, 1..64 (default 4)\n"
    "  --chunk SIZE bytes per read, a multiple of 4K, 4K..8M (default 1M)\n"
    "  --json       one JSON object per file on stdout\n"
    "  -h, --help   this text\n"
    "\n"
    "exit status: 0 every file intact (torn tails included), 1 damage or a read error,\n"
    "2 usage error\n";

namespace {

constexpr const char* prog = "bioring-wal";

struct Options {
    std::vector<std::string> files;
    unsigned qd = 4;
    std::uint64_t chunk = 1 << 20;
    bool json = false;
};

struct FileCheck {
    DirectFile* file = nullptr;
    std::uint64_t size = 0;
    std::uint64_t chunk = 0;
    std::uint64_t next_chunk = 0;
    std::vector<BlockInfo> blocks;
    int error = 0; ///< a read error (-errno)
    std::uint64_t error_offset = 0;
    Progress* progress = nullptr;
};

Task<void> reader(FileCheck* fc) {
    void* mem = nullptr;
    if (::posix_memalign(&mem, block_size, fc->chunk) != 0) {
        throw std::bad_alloc();
    }
    std::unique_ptr<unsigned char, decltype(&std::free)> buf(static_cast<unsigned char*>(mem),
                                                             &std::free);
    const std::uint64_t nchunks = (fc->size + fc->chunk - 1) / fc->chunk;
    while (fc->error == 0 && fc->next_chunk < nchunks) {
        const std::uint64_t c = fc->next_chunk++;
        const std::uint64_t off = c * fc->chunk;
        const std::uint64_t want = std::min<std::uint64_t>(fc->chunk, fc->size - off);
        // O_DIRECT needs an aligned length: read whole blocks; the file's end gives a short read.
        const std::uint64_t len = (want + block_size - 1) / block_size * block_size;
        IoResult r = co_await fc->file->read(buf.get(), len, off);
        if (r.res < 0) {
            fc->error = r.res;
            fc->error_offset = off;
            co_return;
        }
        const std::uint64_t got = std::min<std::uint64_t>(static_cast<std::uint64_t>(r.res), want);
        for (std::uint64_t b = 0; b * block_size < got; ++b) {
            const std::uint64_t index = off / block_size + b;
            const std::uint64_t n = std::min<std::uint64_t>(block_size, got - b * block_size);
            fc->blocks[index] = check_block(buf.get() + b * block_size, n, index);
        }
        if (fc->progress != nullptr) {
            fc->progress->add(got);
        }
    }
}

Task<void> check_file(FileCheck* fc, unsigned qd) {
    std::vector<Task<void>> readers;
    for (unsigned i = 0; i < qd; ++i) {
        readers.push_back(reader(fc));
        if (!readers.back()) {
            throw std::bad_alloc();
        }
    }
    co_await when_all(std::move(readers));
}

struct Verdict {
    std::uint64_t last_seq = 0, records = 0, valid_blocks = 0;
    bool torn = false, damaged = false;
    std::uint64_t tail_offset = 0;   ///< where the valid log ends (torn or damaged)
    std::uint64_t damage_offset = 0; ///< first damaged byte range start (damaged only)
    std::uint64_t unused = 0;        ///< zero bytes after a clean log (preallocated space)
    const char* reason = "";
};

/// The tail rule of log_format.hpp, over the per-block results.
Verdict judge(const FileCheck& fc) {
    Verdict v;
    const std::uint64_t n = fc.blocks.size();
    std::uint64_t t = 0;
    for (; t < n; ++t) {
        const BlockInfo& b = fc.blocks[t];
        if (!b.valid) {
            break;
        }
        if (b.first_seq != v.last_seq + 1) {
            break; // continuity across blocks: a stale or misplaced block
        }
        v.last_seq = b.last_seq;
        v.records += b.records;
        ++v.valid_blocks;
    }
    if (t == n) {
        return v;
    }
    v.tail_offset = t * block_size;
    const BlockInfo& bad = fc.blocks[t];
    bool all_zero = true;
    for (std::uint64_t j = t; j < n && all_zero; ++j) {
        all_zero = fc.blocks[j].zero;
    }
    if (all_zero) {
        v.unused = fc.size - v.tail_offset; // preallocated, never used: clean
        return v;
    }
    v.reason =
        bad.valid ? "record sequence numbers do not continue the previous block" : bad.reason;
    for (std::uint64_t j = t + 1; j < n; ++j) {
        const BlockInfo& b = fc.blocks[j];
        if (b.valid_alone && b.batch_start > t) {
            v.damaged = true; // a later write landed after block t was written: t was damaged
            v.damage_offset = t * block_size + (bad.valid ? block_header_size : bad.damage);
            return v;
        }
    }
    v.torn = true;
    return v;
}

} // namespace

int verify_main(int argc, char** argv) {
    Options o;
    ArgParser p;
    p.value("qd", [&](std::string_view v) {
        o.qd = static_cast<unsigned>(parse_uint(v, "--qd", 1, 64));
    });
    p.value("chunk", [&](std::string_view v) {
        o.chunk = parse_size_in(v, "--chunk", block_size, 8 << 20, block_size);
    });
    p.flag("json", &o.json);
    bool help = false;
    o.files = p.parse(argc, argv, &help);
    if (help) {
        std::fputs(verify_usage, stdout);
        return 0;
    }
    if (o.files.empty()) {
        throw UsageError("verify: missing FILE");
    }

    std::vector<DirectFile> files;
    std::vector<FileCheck> checks(o.files.size());
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < o.files.size(); ++i) {
        OpenOptions oo;
        files.push_back(open_file(prog, o.files[i], oo));
        checks[i].file = &files.back();
        checks[i].size = files.back().size();
        checks[i].chunk = o.chunk;
        checks[i].blocks.resize((checks[i].size + block_size - 1) / block_size);
        total += checks[i].size;
    }
    for (std::size_t i = 0; i < o.files.size(); ++i) {
        checks[i].file = &files[i]; // the vector may have moved the files while growing
    }

    Progress progress("verify", total, !o.json);
    {
        RuntimeOptions ro;
        ro.threads = 1; // several reads in flight per file, all files at once, on one ring
        Runtime rt(ro);
        rt.run_on_all([&](unsigned) -> Task<void> {
            return [](std::vector<FileCheck>* cs, unsigned qd, Progress* pr) -> Task<void> {
                std::vector<Task<void>> all;
                for (FileCheck& c : *cs) {
                    c.progress = pr;
                    all.push_back(check_file(&c, qd));
                    if (!all.back()) {
                        throw std::bad_alloc();
                    }
                }
                co_await when_all(std::move(all));
            }(&checks, o.qd, &progress);
        });
    }
    progress.finish();

    int status = 0;
    for (std::size_t i = 0; i < checks.size(); ++i) {
        const FileCheck& fc = checks[i];
        const std::string& name = o.files[i];
        if (fc.error != 0) {
            std::fprintf(stderr, "%s: '%s': read at offset %llu: %s\n", prog, name.c_str(),
                         static_cast<unsigned long long>(fc.error_offset),
                         std::strerror(-fc.error));
            status = 1;
            continue;
        }
        const Verdict v = judge(fc);
        const auto ull = [](std::uint64_t x) { return static_cast<unsigned long long>(x); };
        if (v.damaged) {
            status = 1;
        }
        if (o.json) {
            std::printf("{\"file\":%s,\"size\":%llu,\"records\":%llu,\"last_seq\":%llu,"
                        "\"valid_blocks\":%llu,\"unused_bytes\":%llu,\"state\":\"%s\","
                        "\"tail_offset\":%llu,"
                        "\"damage_offset\":%s,\"reason\":%s}\n",
                        measure::json_string(name).c_str(), ull(fc.size), ull(v.records),
                        ull(v.last_seq), ull(v.valid_blocks), ull(v.unused),
                        v.damaged ? "damaged"
                        : v.torn  ? "torn-tail"
                                  : "clean",
                        ull(v.torn || v.damaged || v.unused ? v.tail_offset : fc.size),
                        v.damaged ? std::to_string(v.damage_offset).c_str() : "null",
                        measure::json_string(v.reason).c_str());
            continue;
        }
        std::printf("%s: %llu records, last durable seq %llu, %llu valid blocks of %llu bytes\n",
                    name.c_str(), ull(v.records), ull(v.last_seq), ull(v.valid_blocks),
                    ull(fc.size));
        if (v.unused > 0) {
            std::printf("%s: the log ends at offset %llu; %llu bytes of unused (zero) space "
                        "follow\n",
                        name.c_str(), ull(v.tail_offset), ull(v.unused));
        }
        if (v.torn) {
            std::printf("%s: torn tail at offset %llu (%llu bytes after it not valid: %s); "
                        "expected after a crash\n",
                        name.c_str(), ull(v.tail_offset), ull(fc.size - v.tail_offset), v.reason);
        } else if (v.damaged) {
            std::fprintf(stderr,
                         "%s: '%s': damaged at offset %llu (block at %llu: %s); valid blocks "
                         "of later writes follow, so this is not a torn tail\n",
                         prog, name.c_str(), ull(v.damage_offset), ull(v.tail_offset), v.reason);
        }
    }
    return status;
}

} // namespace bioring::apps::wal
