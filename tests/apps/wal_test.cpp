// SPDX-License-Identifier: MIT
// bioring-wal end to end: bench then verify on tmpfs and ext4, bad command lines (exit 2),
// unusable directories (exit 1), a full file system (the error is reported, nothing lost is
// acknowledged), a corrupted log (exit 1, the damaged offset exactly) and a truncated one
// (a torn tail: exit 0). Run on both backends (BIORING_BACKEND reaches the program).
#include "apps/wal/log_format.hpp"
#include "tests/support/skip.hpp"
#include "tests/apps/wal_support.hpp"

#include <sys/mount.h>

using namespace wal_test;
namespace fmt = bioring::apps::wal;

TEST_SUITE("apps") {

    namespace {

    // A short bench run in @d; returns its JSON line.
    std::string bench_json(const Scratch& d, std::vector<std::string> extra = {}) {
        std::vector<std::string> args{"bench", d.path.string(), "--ms", "300", "--json"};
        args.insert(args.end(), extra.begin(), extra.end());
        Result r = wal(args, d.path);
        CAPTURE(r.err);
        REQUIRE(r.status == 0);
        return r.out;
    }

    void flip_byte(const fs::path& p, std::uint64_t off) {
        std::string s = slurp(p);
        REQUIRE(off < s.size());
        s[off] = static_cast<char>(s[off] ^ 0x20);
        write_file(p, s);
    }

    } // namespace

    TEST_CASE("wal: --help works and bad command lines exit 2 with a message") {
        Scratch d("shm");
        Result h = wal({"--help"}, d.path);
        CHECK(h.status == 0);
        CHECK(contains(h.out, "bioring-wal bench DIR"));
        h = wal({"bench", "--help"}, d.path);
        CHECK(h.status == 0);
        CHECK(contains(h.out, "--producers N"));
        h = wal({"verify", "--help"}, d.path);
        CHECK(h.status == 0);
        CHECK(contains(h.out, "torn tail"));

        const std::string dir = d.path.string();
        const std::vector<std::pair<std::vector<std::string>, std::string>> bad{
            {{}, "missing command"},
            {{"frob"}, "unknown command 'frob'"},
            {{"bench"}, "missing DIR"},
            {{"bench", dir, dir}, "too many arguments"},
            {{"bench", dir, "--producers", "0"}, "--producers"},
            {{"bench", dir, "--producers", "-3"}, "--producers"},
            {{"bench", dir, "--threads", "300"}, "--threads"},
            {{"bench", dir, "--record-size", "5000"}, "--record-size"},
            {{"bench", dir, "--record-size", "0"}, "--record-size"},
            {{"bench", dir, "--seconds", "x"}, "--seconds"},
            {{"bench", dir, "--sync", "fsync"}, "--sync: 'fsync'"},
            {{"bench", dir, "--sync"}, "--sync"},
            {{"bench", dir, "--bogus"}, "--bogus"},
            {{"bench", dir, "--prealloc", "1000"}, "--prealloc"},
            {{"verify"}, "missing FILE"},
            {{"verify", "--qd", "0", "x"}, "--qd"},
            {{"verify", "--chunk", "5000", "x"}, "--chunk"},
        };
        for (const auto& [args, what] : bad) {
            CAPTURE(args.size());
            CAPTURE(what);
            Result r = wal(args, d.path);
            CAPTURE(r.err);
            CHECK(r.status == 2);
            CHECK(contains(r.err, what));
            CHECK(contains(r.err, "Try 'bioring-wal --help'"));
            CHECK(r.out.empty());
        }
        CHECK_FALSE(fs::exists(d / "wal-0.log"));
    }

    TEST_CASE("wal: a directory that does not exist or is a file or is not writable: exit 1") {
        Scratch d("shm");
        write_file(d / "plain", "x");
        for (const std::string& dir :
             {(d / "nope").string(), (d / "plain").string(), std::string("/sys")}) {
            CAPTURE(dir);
            Result r = wal({"bench", dir, "--ms", "100"}, d.path);
            CAPTURE(r.err);
            CHECK(r.status == 1);
            CHECK(contains(r.err, dir));
            CHECK(r.out.empty());
        }
        Result r = wal({"verify", (d / "nope.log").string()}, d.path);
        CHECK(r.status == 1);
        CHECK(contains(r.err, (d / "nope.log").string()));
    }

    TEST_CASE("wal: bench then verify in every sync mode on tmpfs and ext4") {
        for (const char* where : {"shm", "ext4"}) {
            for (const char* sync : {"fdatasync", "dsync", "none"}) {
                CAPTURE(where);
                CAPTURE(sync);
                Scratch d(where);
                const std::string j = bench_json(d, {"--sync", sync, "--threads", "2",
                                                     "--producers", "16", "--record-size", "300"});
                CAPTURE(j);
                const long long records = json_number(j, "records");
                CHECK(records > 0);
                CHECK(json_number(j, "syncs") > 0);
                CHECK(j.find("\"heap_calls_per_record\":0.0") != std::string::npos);
                Result v = wal(
                    {"verify", "--json", (d / "wal-0.log").string(), (d / "wal-1.log").string()},
                    d.path);
                CAPTURE(v.out);
                CAPTURE(v.err);
                CHECK(v.status == 0);
                long long sum = 0;
                std::size_t at = 0;
                for (int i = 0; i < 2; ++i) {
                    const std::size_t nl = v.out.find('\n', at);
                    REQUIRE(nl != std::string::npos);
                    const std::string line = v.out.substr(at, nl - at);
                    CHECK(json_state(line) == "clean");
                    CHECK(json_number(line, "records") == json_number(line, "last_seq"));
                    sum += json_number(line, "records");
                    at = nl + 1;
                }
                CHECK(sum == records);
            }
        }
    }

    TEST_CASE("wal: --prealloc commits overwrite zeros and verify calls the unused space clean") {
        Scratch d("ext4");
        const std::string j = bench_json(d, {"--prealloc", "64M", "--producers", "8"});
        const long long records = json_number(j, "records");
        CHECK(records > 0);
        CHECK(fs::file_size(d / "wal-0.log") >= (64u << 20));
        Result v = wal({"verify", "--json", (d / "wal-0.log").string()}, d.path);
        CAPTURE(v.out);
        CHECK(v.status == 0);
        CHECK(json_state(v.out) == "clean");
        CHECK(json_number(v.out, "last_seq") == records);
        const long long tail = json_number(v.out, "tail_offset");
        CHECK(json_number(v.out, "unused_bytes") ==
              static_cast<long long>(fs::file_size(d / "wal-0.log")) - tail);
        // A non-zero byte in the unused space is not "unused" any more: a torn tail there.
        flip_byte(d / "wal-0.log", static_cast<std::uint64_t>(tail) + 3 * fmt::block_size + 7);
        v = wal({"verify", "--json", (d / "wal-0.log").string()}, d.path);
        CHECK(v.status == 0);
        CHECK(json_state(v.out) == "torn-tail");
        CHECK(json_number(v.out, "last_seq") == records);
    }

    TEST_CASE(
        "wal: on a full file system the error is reported and lost records are not acknowledged") {
        Scratch d("ext4");
        fs::create_directory(d / "small");
        if (::mount("tmpfs", (d / "small").c_str(), "tmpfs", 0, "size=1m") != 0) {
            BIORING_SKIP(std::string("cannot mount a tmpfs (") + std::strerror(errno) + ")");
        }
        struct Unmount {
            fs::path p;
            ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
        } unmount{d / "small"};
        const fs::path dir = d / "small";
        Result r = wal({"bench", dir.string(), "--seconds", "20", "--producers", "32",
                        "--record-size", "1000", "--acked"},
                       d.path);
        CAPTURE(r.err);
        CHECK(r.status == 1);
        CHECK(contains(r.err, (dir / "wal-0.log").string()));
        CHECK(contains(r.err, std::strerror(ENOSPC)));
        CHECK(r.out.empty());
        // "N records acknowledged as durable before it": all of them are in the log.
        const std::size_t at = r.err.find(" records acknowledged");
        REQUIRE(at != std::string::npos);
        const std::size_t open = r.err.rfind('(', at);
        const long long acked = std::strtoll(r.err.c_str() + open + 1, nullptr, 10);
        CHECK(acked > 0);
        Result v = wal({"verify", "--json", (dir / "wal-0.log").string()}, d.path);
        CAPTURE(v.out);
        CHECK(v.status == 0);
        const long long last = json_number(v.out, "last_seq");
        CHECK(last >= acked);
        CHECK(read_acked(dir / "wal-0.acked") <= last);
        CHECK(read_acked(dir / "wal-0.acked") >= 0);
    }

    TEST_CASE("wal verify: a flipped byte in the middle is damage at the exact record offset") {
        Scratch d("shm");
        bench_json(d, {"--producers", "8"});
        const fs::path log = d / "wal-0.log";
        const std::uint64_t size = fs::file_size(log);
        REQUIRE(size >= 64 * fmt::block_size);
        const std::uint64_t block = size / 2 / fmt::block_size * fmt::block_size;
        // The second record of the middle block (128-byte payloads): a byte of its payload.
        const std::uint64_t rec = block + fmt::block_header_size + fmt::record_header_size + 128;
        flip_byte(log, rec + fmt::record_header_size + 60);
        Result v = wal({"verify", log.string()}, d.path);
        CAPTURE(v.out);
        CAPTURE(v.err);
        CHECK(v.status == 1);
        CHECK(contains(v.err, "damaged at offset " + std::to_string(rec) + " "));
        CHECK(contains(v.err, "record CRC mismatch"));
        v = wal({"verify", "--json", log.string()}, d.path);
        CHECK(v.status == 1);
        CHECK(json_state(v.out) == "damaged");
        CHECK(json_number(v.out, "damage_offset") == static_cast<long long>(rec));
        CHECK(json_number(v.out, "tail_offset") == static_cast<long long>(block));
        // A byte of a block header (its block_seq): the block's own offset.
        flip_byte(log, rec + fmt::record_header_size + 60); // undo
        REQUIRE(wal({"verify", log.string()}, d.path).status == 0);
        flip_byte(log, block + 9);
        v = wal({"verify", "--json", log.string()}, d.path);
        CHECK(v.status == 1);
        CHECK(json_number(v.out, "damage_offset") == static_cast<long long>(block));
    }

    TEST_CASE("wal verify: a truncated log is a torn tail (exit 0 and reported)") {
        Scratch d("ext4");
        bench_json(d, {"--producers", "8"});
        const fs::path log = d / "wal-0.log";
        Result v = wal({"verify", "--json", log.string()}, d.path);
        REQUIRE(v.status == 0);
        const long long full = json_number(v.out, "last_seq");
        const std::uint64_t size = fs::file_size(log);
        const std::uint64_t cut = size - 1000;
        fs::resize_file(log, cut);
        v = wal({"verify", log.string()}, d.path);
        CAPTURE(v.out);
        CAPTURE(v.err);
        CHECK(v.status == 0);
        const std::uint64_t tail = cut / fmt::block_size * fmt::block_size;
        CHECK(contains(v.out, "torn tail at offset " + std::to_string(tail)));
        CHECK(contains(v.out, "short block at end of file"));
        v = wal({"verify", "--json", log.string()}, d.path);
        CHECK(json_state(v.out) == "torn-tail");
        CHECK(json_number(v.out, "last_seq") < full);
        CHECK(json_number(v.out, "last_seq") > 0);
        // An empty log is clean and holds nothing.
        fs::resize_file(log, 0);
        v = wal({"verify", "--json", log.string()}, d.path);
        CHECK(v.status == 0);
        CHECK(json_state(v.out) == "clean");
        CHECK(json_number(v.out, "last_seq") == 0);
    }

} // TEST_SUITE
