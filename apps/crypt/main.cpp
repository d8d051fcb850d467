// SPDX-License-Identifier: MIT
// bioring-crypt {encrypt|decrypt} SRC DST: dm-crypt "aes-xts-plain64" on O_DIRECT requests.
//
// The output is what `cryptsetup open --type plain --cipher aes-xts-plain64 --key-size 512
// --key-file K [--sector-size S] [--skip N] [--iv-large-sectors]` stores on its device (see
// xts.hpp for the IV rules). Cipher work runs on every reactor (default: one per core), each
// encrypting its own stripe's blocks between their read and their write, with its own EVP
// context, so cipher work and I/O of different requests overlap on all cores. The output is
// written with the same safety as bioring-copy (temporary file, fsync, rename).
// Exit status: 0 done, 1 failed, 2 bad usage or key, 130/143 interrupted.
#include "apps/common/args.hpp"
#include "apps/common/driver.hpp"
#include "apps/common/pipeline.hpp"
#include "apps/common/safe_output.hpp"
#include "apps/crypt/key_file.hpp"
#include "apps/crypt/xts.hpp"
#include <bioring/io/direct_file.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <string>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

using namespace bioring;
using namespace bioring::apps;

namespace {

constexpr const char* prog = "bioring-crypt";

constexpr const char* usage_text =
    "usage: bioring-crypt {encrypt|decrypt} [options] SRC DST\n"
    "Encrypt or decrypt SRC into DST as dm-crypt plain mode with aes-xts-plain64 does: the\n"
    "result is what cryptsetup open --type plain --cipher aes-xts-plain64 would store.\n"
    "\n"
    "options:\n"
    "  --key-file FILE       raw key bytes (never hashed); required\n"
    "  --key-size BITS       512 (AES-256-XTS, default) or 256 (AES-128-XTS)\n"
    "  --keyfile-offset N    skip N bytes at the start of the key file (default 0)\n"
    "  --cipher SPEC         only aes-xts-plain64 (the default) is supported\n"
    "  --sector-size N       512 (default) or 4096 bytes per XTS data unit\n"
    "  --skip N              IV offset in 512-byte sectors, as cryptsetup --skip (default 0)\n"
    "  --iv-large-sectors    count IVs in sector-size units (needs --skip a multiple of\n"
    "                        sector-size/512)\n"
    "  --bs SIZE             block size per request, a multiple of 4K up to 1M (default 256K)\n"
    "  --qd N                requests in flight per thread, 1..4096 (default 8)\n"
    "  --threads N           reactor threads, 1..256 (default: one per core)\n"
    "  --verify              read DST back and compare it with SRC transformed again\n"
    "  --json                print the summary as one JSON object on stdout\n"
    "  --quiet               no summary text\n"
    "  -h, --help            this text\n"
    "\n"
    "no authentication: aes-xts-plain64 (like cryptsetup's plain mode) stores no key check\n"
    "and no integrity tag, so decrypting with a wrong key, key size, --skip or sector size\n"
    "gives garbage without any error, and --verify still passes (it checks that DST holds\n"
    "what this key makes of SRC, not that the key is right).\n"
    "\n"
    "exit status: 0 success, 1 failure, 2 usage or key error, 130 SIGINT, 143 SIGTERM\n";

// A request's block is read, encrypted in place and written; keeping each reactor's blocks
// in flight (bs x qd = 2 MiB) within its L2 lets the cipher and the write find the data
// there. Measured with bench/apps_compare.sh on the 2-core work box (1 GiB, 4K sectors,
// tmpfs): 64K..1M x 2..16 and 1..4 threads were all within the run-to-run noise of each
// other and of bioring-copy doing the same I/O without the cipher, which is the bound
// here: on tmpfs every read and write is a kernel memcpy on an io-wq worker, and writes
// to one file serialize on its inode lock, so the cipher (on the reactor threads)
// overlaps the I/O but shares the two cores with it.
struct Options : PipelineOptions {
    Options() noexcept : PipelineOptions(256 << 10, 8) {}
    XtsCipher::Direction dir = XtsCipher::Direction::encrypt;
    std::string key_file;
    unsigned key_bits = 512;
    std::uint64_t keyfile_offset = 0;
    SectorFormat fmt;
    std::string src, dst;
};

Options parse(int argc, char** argv, bool* help) {
    Options o;
    ArgParser p;
    p.value("key-file", [&](std::string_view v) {
        if (v.empty()) {
            throw UsageError("--key-file: empty file name");
        }
        o.key_file = v;
    });
    p.value("key-size", [&](std::string_view v) {
        o.key_bits = static_cast<unsigned>(parse_uint(v, "--key-size", 0, 1u << 20));
        if (o.key_bits != 512 && o.key_bits != 256) {
            throw UsageError("--key-size must be 512 (AES-256-XTS) or 256 (AES-128-XTS), not " +
                             std::string(v));
        }
    });
    p.value("keyfile-offset",
            [&](std::string_view v) { o.keyfile_offset = parse_size(v, "--keyfile-offset"); });
    p.value("cipher", [&](std::string_view v) {
        if (v != "aes-xts-plain64") {
            throw UsageError("--cipher '" + std::string(v) +
                             "' is not supported (only aes-xts-plain64)");
        }
    });
    p.value("sector-size", [&](std::string_view v) {
        o.fmt.sector_size = static_cast<std::uint32_t>(parse_uint(v, "--sector-size", 0, 1u << 20));
        if (o.fmt.sector_size != 512 && o.fmt.sector_size != 4096) {
            throw UsageError("--sector-size must be 512 or 4096, not " + std::string(v));
        }
    });
    p.value("skip",
            [&](std::string_view v) { o.fmt.skip = parse_uint(v, "--skip", 0, UINT64_MAX); });
    p.flag("iv-large-sectors", &o.fmt.iv_large_sectors);
    add_pipeline_options(p, o);
    auto pos = p.parse(argc, argv, help);
    if (*help) {
        return o;
    }
    if (pos.empty()) {
        throw UsageError("missing the mode (encrypt or decrypt), SRC and DST");
    }
    if (pos[0] == "encrypt") {
        o.dir = XtsCipher::Direction::encrypt;
    } else if (pos[0] == "decrypt") {
        o.dir = XtsCipher::Direction::decrypt;
    } else {
        throw UsageError("unknown mode '" + pos[0] + "' (use encrypt or decrypt)");
    }
    if (pos.size() != 3) {
        throw UsageError(pos.size() < 3 ? "missing SRC and/or DST" : "too many arguments");
    }
    o.src = pos[1];
    o.dst = pos[2];
    if (o.src.empty() || o.dst.empty()) {
        throw UsageError("empty file name");
    }
    if (o.key_file.empty()) {
        throw UsageError("--key-file is required");
    }
    if (std::string why = validate(o.fmt); !why.empty()) {
        throw UsageError(why);
    }
    if (o.threads == 0) {
        o.threads = std::max(1u, std::thread::hardware_concurrency());
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
    KeyBytes key;
    warn_if_key_exposed(prog, o.key_file);
    read_key_file(o.key_file, o.key_bits, o.keyfile_offset, key);
    std::vector<XtsCipher> ciphers;
    ciphers.reserve(o.threads);
    try {
        for (unsigned i = 0; i < o.threads; ++i) {
            ciphers.emplace_back(key.bytes, o.dir);
        }
    } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("key file '") + o.key_file + "': " + e.what());
    }

    const struct stat src_st = check_source(o.src);
    DirectFile src = open_source(prog, o.src, src_st);
    const std::uint64_t size = src.size();
    if (size % o.fmt.sector_size != 0) {
        throw std::runtime_error("source '" + o.src + "' is " + std::to_string(size) +
                                 " bytes, not a multiple of the sector size " +
                                 std::to_string(o.fmt.sector_size));
    }
    SafeOutput out(o.dst, src_st, prog);
    if (out.in_place()) {
        if (out.device_size() < size) {
            throw std::system_error(ENOSPC, std::system_category(),
                                    "block device '" + o.dst + "' is smaller than '" + o.src + "'");
        }
        std::fprintf(stderr, "%s: '%s' is a block device: writing it in place\n", prog,
                     o.dst.c_str());
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
    cfg.tail_fd = out.fd();
    cfg.dst_name = o.dst;
    const SectorFormat fmt = o.fmt;
    cfg.transform = [&ciphers, fmt](unsigned shard, std::byte* buf, std::size_t len,
                                    std::uint64_t off) {
        return ciphers[shard].crypt_sectors(buf, buf, len, fmt, off);
    };
    const bool enc = o.dir == XtsCipher::Direction::encrypt;
    return run_and_commit(
        src, dst, out, std::move(cfg),
        RunOptions{prog, enc ? "encrypt" : "decrypt", o.src, o.dst, o.verify, o.json, o.quiet});
}

} // namespace

int main(int argc, char** argv) {
    return driver_main(prog, run, argc, argv);
}
