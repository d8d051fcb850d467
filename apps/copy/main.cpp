// SPDX-License-Identifier: MIT
// bioring-copy SRC DST: copy a file or block device with O_DIRECT requests on io_uring.
//
// Safety first (see apps/common/safe_output.hpp): DST is written to a temporary file in its
// directory, fsynced, optionally verified, renamed into place and the directory fsynced; any
// failure or terminating signal removes the temporary file and leaves an existing DST
// untouched; the replaced DST keeps its owner, group and mode (OUTPUT RULES there).
// Exit status: 0 done, 1 failed (message names the file and the error), 2 bad usage,
// 128 + signal number when interrupted (130 SIGINT, 143 SIGTERM, ...).
#include "apps/common/args.hpp"
#include "apps/common/driver.hpp"
#include "apps/common/pipeline.hpp"
#include "apps/common/safe_output.hpp"
#include <bioring/io/direct_file.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

using namespace bioring;
using namespace bioring::apps;

namespace {

constexpr const char* prog = "bioring-copy";

constexpr const char* usage_text =
    "usage: bioring-copy [options] SRC DST\n"
    "Copy SRC (a file or block device) to DST with O_DIRECT reads and writes on io_uring.\n"
    "DST is written to a temporary file next to it, synced, then renamed into place; a\n"
    "block-device DST is written in place.\n"
    "\n"
    "options:\n"
    "  --bs SIZE       block size per request, a multiple of 4K up to 1M (default 1M);\n"
    "                  suffixes K, M, G (binary)\n"
    "  --qd N          requests in flight per thread, 1..4096 (default 4)\n"
    "  --threads N     reactor threads, each copying its own stripe of blocks, 1..256\n"
    "                  (default: one per core, at most 8)\n"
    "  --verify        read DST back and compare before putting it in place\n"
    "  --json          print the summary as one JSON object on stdout\n"
    "  --quiet         no summary text (errors are still printed)\n"
    "  -h, --help      this text\n"
    "\n"
    "exit status: 0 success, 1 failure, 2 usage error, 130 SIGINT, 143 SIGTERM\n";

// Defaults, measured with bench/apps_compare.sh on the 2-core work box (tmpfs and ext4, 1 GiB):
// on tmpfs one reactor per core beat one reactor (1M x 32: 1.2-1.4 GB/s, 2 x 1M x 4:
// 1.9-2.1 GB/s, medians of 3-5 interleaved runs) when the other core was free, because tmpfs
// "direct" I/O is a memcpy done by an io-wq worker of the submitting ring and a second ring
// brings a second worker; with the box loaded by other work the two were within the noise.
// 1M x 4 per reactor was as fast as any other block size and depth there; on ext4 (bound by
// the shared virtual disk) every setting was within the noise. Writes to one tmpfs file
// still serialize on its inode lock, so this does not reach cp, whose copy_file_range makes
// one in-kernel copy where O_DIRECT read + write make two. More than 8 reactors only adds
// rings and io-wq workers for a copy.
constexpr unsigned max_default_threads = 8;

// threads 0: one per core, at most max_default_threads.
struct Options : PipelineOptions {
    Options() noexcept : PipelineOptions(1 << 20, 4) {}
    std::string src, dst;
};

Options parse(int argc, char** argv, bool* help) {
    Options o;
    ArgParser p;
    add_pipeline_options(p, o);
    auto pos = p.parse(argc, argv, help);
    if (*help) {
        return o;
    }
    if (pos.size() != 2) {
        throw UsageError(pos.size() < 2 ? "missing SRC and/or DST" : "too many arguments");
    }
    o.src = pos[0];
    o.dst = pos[1];
    if (o.src.empty() || o.dst.empty()) {
        throw UsageError("empty file name");
    }
    if (o.threads == 0) {
        o.threads = std::clamp(std::thread::hardware_concurrency(), 1u, max_default_threads);
    }
    return o;
}

int run(int argc, char** argv) {
    bool help = false;
    Options o = parse(argc, argv, &help);
    if (help) {
        std::fputs(usage_text, stdout);
        return 0;
    }
    const struct stat src_st = check_source(o.src);
    SafeOutput out(o.dst, src_st, prog);

    DirectFile src = open_source(prog, o.src, src_st);
    const std::uint64_t size = src.size();
    if (out.in_place()) {
        if (out.device_size() < size) {
            throw std::system_error(
                ENOSPC, std::system_category(),
                "block device '" + o.dst + "' (" + std::to_string(out.device_size()) +
                    " bytes) is smaller than '" + o.src + "' (" + std::to_string(size) + " bytes)");
        }
        std::fprintf(stderr,
                     "%s: '%s' is a block device: writing it in place (no temporary "
                     "file; an interrupted copy leaves it partly written)\n",
                     prog, o.dst.c_str());
    }
    out.truncate(size);
    OpenOptions wo;
    wo.write = true;
    DirectFile dst = open_file(prog, out.write_path(), wo);

    PipelineConfig cfg;
    cfg.size = size;
    cfg.block_size = o.bs;
    cfg.queue_depth = o.qd;
    cfg.threads = o.threads;
    cfg.skip_zero_blocks = !out.in_place(); // a fresh, pre-sized file reads zeros in holes
    cfg.tail_fd = out.fd();
    cfg.dst_name = o.dst;
    return run_and_commit(src, dst, out, std::move(cfg),
                          RunOptions{prog, "copy", o.src, o.dst, o.verify, o.json, o.quiet});
}

} // namespace

int main(int argc, char** argv) {
    return driver_main(prog, run, argc, argv);
}
