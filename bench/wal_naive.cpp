// SPDX-License-Identifier: MIT
// wal-naive DIR: the baseline bioring-wal bench is compared with (bench/wal_compare.sh):
// a write-ahead log without group commit. N threads each append one record at a time to
// DIR/wal-naive.log with pwrite(2) at the next free offset (an atomic counter) and then
// call fdatasync(2) before appending the next one — one write and one sync per record,
// the way a program that "just syncs every write" behaves. (The file system may still merge
// concurrent fdatasyncs into one journal commit; that is part of what the baseline gets.)
// Records are the same size and format as bioring-wal's (header + payload, CRC32C), packed
// back to back. Prints records/s and commit latency (pwrite + fdatasync) percentiles, as
// text or one JSON line (--json). Exit: 0 ok, 1 an I/O error (named), 2 bad usage.
#include "apps/wal/log_format.hpp"
#include "measure/histogram.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
namespace wal = bioring::apps::wal;

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr,
                 "wal-naive: %s\n"
                 "usage: wal-naive DIR [--threads N (1..4096, default 256)] [--record-size B "
                 "(1..4040, default 128)] [--seconds S (1..3600, default 5)] [--json]\n",
                 why);
    std::exit(2);
}

unsigned long long number(const char* s, unsigned long long lo, unsigned long long hi,
                          const char* what) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(s, &end, 10);
    if (*s < '0' || *s > '9' || errno != 0 || *end != '\0' || v < lo || v > hi) {
        usage((std::string(what) + ": bad value '" + s + "'").c_str());
    }
    return v;
}

} // namespace

int main(int argc, char** argv) {
    std::string dir;
    unsigned threads = 256;
    unsigned record_size = 128;
    unsigned seconds = 5;
    bool json = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto val = [&]() -> const char* {
            if (i + 1 >= argc) {
                usage((a + ": missing value").c_str());
            }
            return argv[++i];
        };
        if (a == "--threads") {
            threads = static_cast<unsigned>(number(val(), 1, 4096, "--threads"));
        } else if (a == "--record-size") {
            record_size =
                static_cast<unsigned>(number(val(), 1, wal::max_payload, "--record-size"));
        } else if (a == "--seconds") {
            seconds = static_cast<unsigned>(number(val(), 1, 3600, "--seconds"));
        } else if (a == "--json") {
            json = true;
        } else if (a.starts_with("-") || !dir.empty()) {
            usage(("unexpected argument '" + a + "'").c_str());
        } else {
            dir = a;
        }
    }
    if (dir.empty()) {
        usage("missing DIR");
    }
    const std::string path = dir + "/wal-naive.log";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        std::fprintf(stderr, "wal-naive: '%s': %s\n", path.c_str(), std::strerror(errno));
        return 1;
    }
    const std::size_t rec_len = wal::record_header_size + record_size;
    std::atomic<std::uint64_t> next{0};
    std::atomic<int> error{0};
    std::vector<bioring::measure::LatencyHistogram> hist(threads);
    const Clock::time_point start = Clock::now();
    const Clock::time_point deadline = start + std::chrono::seconds(seconds);
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            std::vector<unsigned char> rec(rec_len);
            while (error.load(std::memory_order_relaxed) == 0 && Clock::now() < deadline) {
                const std::uint64_t n = next.fetch_add(1);
                wal::encode_record(n + 1, record_size, rec.data());
                const Clock::time_point t0 = Clock::now();
                const ssize_t w =
                    ::pwrite(fd, rec.data(), rec_len, static_cast<off_t>(n * rec_len));
                if (w != static_cast<ssize_t>(rec_len)) {
                    error = w < 0 ? errno : EIO;
                    break;
                }
                if (::fdatasync(fd) != 0) {
                    error = errno;
                    break;
                }
                hist[t].record(static_cast<std::uint64_t>(
                    std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0)
                        .count()));
            }
        });
    }
    for (auto& th : pool) {
        th.join();
    }
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    ::close(fd);
    if (error != 0) {
        std::fprintf(stderr, "wal-naive: '%s': %s\n", path.c_str(), std::strerror(error));
        return 1;
    }
    bioring::measure::LatencyHistogram all;
    for (auto& h : hist) {
        all.merge(h);
    }
    const unsigned long long records = all.count();
    const double rps = records / secs;
    const auto ms = [&](double q) { return static_cast<double>(all.percentile(q)) / 1e6; };
    if (json) {
        std::printf("{\"program\":\"wal-naive\",\"dir\":\"%s\",\"threads\":%u,\"record_size\":%u,"
                    "\"seconds\":%.3f,\"records\":%llu,\"records_per_s\":%.0f,"
                    "\"commit_p50_ms\":%.3f,\"commit_p99_ms\":%.3f,\"commit_p999_ms\":%.3f}\n",
                    dir.c_str(), threads, record_size, secs, records, rps, ms(0.5), ms(0.99),
                    ms(0.999));
    } else {
        std::printf("wal-naive: %u threads, %u-byte records, pwrite + fdatasync each\n"
                    "  records          %llu in %.2f s: %.0f records/s\n"
                    "  commit latency   p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms\n",
                    threads, record_size, records, secs, rps, ms(0.5), ms(0.99), ms(0.999));
    }
    return 0;
}
