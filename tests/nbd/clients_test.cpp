// SPDX-License-Identifier: MIT
// bioring-nbd against real NBD clients: nbdinfo, nbdcopy, qemu-img, qemu-io, fio's nbd
// engine and python3-libnbd (tests/nbd/protocol_cases.py), on a plain, a read-only and a
// --crypt export; the crypt export's bytes are checked against bioring-crypt itself. Also
// the command line, the socket's mode, the exit on SIGINT/SIGTERM and --stats/SIGUSR1.
// A client that is not installed makes its case a BIORING-SKIP (./run setup installs them).
#include "tests/apps/app_support.hpp"
#include "tests/nbd/nbd_support.hpp"
#include "tests/nbd/server_support.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <cstring>
#include <regex>
#include <string>
#include <sys/stat.h>
#include <vector>

using apps_test::contains;
using apps_test::Scratch;
using nbd_test::Server;
using nbd_test::tool;

namespace {

constexpr std::size_t MiB = 1 << 20;

#define SKIP_WITHOUT(...)                                                                          \
    do {                                                                                           \
        const std::string m = nbd_test::missing({__VA_ARGS__});                                    \
        if (!m.empty()) {                                                                          \
            MESSAGE("BIORING-SKIP: " << m << " is not installed (./run setup)");                   \
            return;                                                                                \
        }                                                                                          \
    } while (0)

// A file of @size bytes with random data at [0, 64K) and [1M, 1M+64K), holes elsewhere.
std::string sparse_file(const Scratch& dir, const std::string& name, std::size_t size) {
    const std::string p = (dir / name).string();
    apps_test::write_file(p, "");
    std::filesystem::resize_file(p, size);
    int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    const std::string a = apps_test::random_string(65536, 1);
    const std::string b = apps_test::random_string(65536, 2);
    REQUIRE(::pwrite(fd, a.data(), a.size(), 0) == 65536);
    REQUIRE(::pwrite(fd, b.data(), b.size(), MiB) == 65536);
    ::close(fd);
    return p;
}

std::string key_file(const Scratch& dir) {
    const auto k = nbd_test::test_key();
    const std::string p = (dir / "key").string();
    apps_test::write_file(p, std::string(reinterpret_cast<const char*>(k.data()), k.size()));
    return p;
}

void expect_clean_stop(Server& s, int sig = SIGTERM) {
    apps_test::Result r = s.stop(sig);
    CHECK_MESSAGE(r.status == 0, r.err);
    CHECK(contains(r.err, "data flushed"));
}

} // namespace

TEST_SUITE("nbd") {

    TEST_CASE("nbdinfo: --json describes the export and --list and --map agree with the file") {
        SKIP_WITHOUT("nbdinfo");
        Scratch dir("shm");
        const std::string f = sparse_file(dir, "disk.img", 4 * MiB);
        Server s(dir.path, {"--export", "disk", "--threads", "2", f});
        CHECK(contains(s.banner(), "export 'disk'"));
        CHECK(contains(s.banner(), s.socket_path()));

        auto r = tool({"nbdinfo", "--json", s.uri("disk")}, dir.path);
        REQUIRE_MESSAGE(r.status == 0, r.err);
        CHECK(contains(r.out, "\"export-size\": 4194304"));
        CHECK(contains(r.out, "\"protocol\": \"newstyle-fixed\""));
        CHECK(contains(r.out, "\"can_multi_conn\": true"));
        CHECK(contains(r.out, "\"can_trim\": true"));
        CHECK(contains(r.out, "\"can_fast_zero\": true"));
        CHECK(contains(r.out, "\"is_read_only\": false"));
        CHECK(contains(r.out, "\"block_size_maximum\": 33554432"));
        CHECK(contains(r.out, "base:allocation"));

        r = tool({"nbdinfo", "--list", "--json", s.uri()}, dir.path);
        REQUIRE_MESSAGE(r.status == 0, r.err);
        CHECK(contains(r.out, "\"export-name\": \"disk\""));

        r = tool({"nbdinfo", "--map", s.uri("disk")}, dir.path);
        REQUIRE_MESSAGE(r.status == 0, r.err);
        // data, hole, data, hole: "OFFSET LENGTH TYPE DESCRIPTION" lines.
        std::regex line(R"(\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+))");
        std::vector<std::string> kinds;
        std::uint64_t total = 0;
        for (std::sregex_iterator it(r.out.begin(), r.out.end(), line), end; it != end; ++it) {
            total += std::stoull((*it)[2]);
            kinds.push_back((*it)[4]);
        }
        CHECK(total == 4 * MiB);
        REQUIRE(kinds.size() == 4);
        CHECK(kinds[0] == "data");
        CHECK(kinds[1] == "hole,zero");
        CHECK(kinds[2] == "data");
        CHECK(kinds[3] == "hole,zero");
        expect_clean_stop(s);
    }

    TEST_CASE("nbdcopy: in and out over 4 connections with 64 requests in flight (tmpfs I/O "
              "inline and on the ring, provided buffers)") {
        SKIP_WITHOUT("nbdcopy");
        for (const char* variant : {"inline", "ring", "provided"}) {
            CAPTURE(variant);
            const bool provided = std::string(variant) == "provided";
            const char* tmpfs_io = provided ? "inline" : variant;
            Scratch dir("shm");
            const std::string src = (dir / "src.img").string();
            apps_test::write_file(src, apps_test::random_string(24 * MiB, 5));
            const std::string disk = (dir / "disk.img").string();
            apps_test::write_file(disk, "");
            std::filesystem::resize_file(disk, 24 * MiB);
            std::vector<std::string> args = {"--threads", "2", "--max-requests", "64",
                                             "--tmpfs-io", tmpfs_io, disk};
            if (provided) {
                args.insert(args.begin(), "--provided-buffers");
            }
            Server s(dir.path, args);
            auto r = tool(
                {"nbdcopy", "--connections=4", "--requests=64", "--flush", src, s.uri()},
                dir.path);
            REQUIRE_MESSAGE(r.status == 0, r.err);
            CHECK(apps_test::slurp(disk) == apps_test::slurp(src));
            const std::string back = (dir / "back.img").string();
            r = tool({"nbdcopy", "--connections=4", "--requests=64", s.uri(), back}, dir.path);
            REQUIRE_MESSAGE(r.status == 0, r.err);
            CHECK(apps_test::slurp(back) == apps_test::slurp(src));
            expect_clean_stop(s);
        }
    }

    TEST_CASE("nbdcopy: --cache writeback exports an odd-sized file whole and round-trips") {
        SKIP_WITHOUT("nbdcopy");
        Scratch dir("ext4");
        const std::size_t size = 8 * MiB + 777; // no O_DIRECT block divides it
        const std::string src = (dir / "src.img").string();
        apps_test::write_file(src, apps_test::random_string(size, 11));
        const std::string disk = (dir / "disk.img").string();
        apps_test::write_file(disk, "");
        std::filesystem::resize_file(disk, size);
        Server s(dir.path, {"--threads", "2", "--cache", "writeback", disk});
        auto r = tool({"nbdinfo", "--size", s.uri()}, dir.path);
        REQUIRE_MESSAGE(r.status == 0, r.err);
        CHECK(std::stoull(r.out) == size);
        r = tool({"nbdcopy", "--connections=2", "--flush", src, s.uri()}, dir.path);
        REQUIRE_MESSAGE(r.status == 0, r.err);
        const std::string back = (dir / "back.img").string();
        r = tool({"nbdcopy", s.uri(), back}, dir.path);
        REQUIRE_MESSAGE(r.status == 0, r.err);
        CHECK(apps_test::slurp(disk) == apps_test::slurp(src));
        CHECK(apps_test::slurp(back) == apps_test::slurp(src));
        expect_clean_stop(s);
    }

    TEST_CASE("qemu-img: convert onto the export and compare and map it") {
        SKIP_WITHOUT("qemu-img");
        Scratch dir("ext4");
        const std::string src = sparse_file(dir, "src.img", 8 * MiB);
        const std::string disk = (dir / "disk.img").string();
        apps_test::write_file(disk, apps_test::random_string(8 * MiB, 9)); // to be overwritten
        Server s(dir.path, {"--threads", "2", disk});
        auto r =
            tool({"qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src, s.uri()}, dir.path);
        REQUIRE_MESSAGE(r.status == 0, r.err);
        r = tool({"qemu-img", "compare", "-f", "raw", "-F", "raw", src, s.uri()}, dir.path);
        CHECK_MESSAGE(r.status == 0, r.out << r.err);
        CHECK(apps_test::slurp(disk) == apps_test::slurp(src));
        r = tool({"qemu-img", "map", "--output=json", "-f", "raw", s.uri()}, dir.path);
        REQUIRE_MESSAGE(r.status == 0, r.err);
        CHECK(contains(r.out, "\"data\": true"));
        CHECK(contains(r.out, "\"zero\": true"));
        // A differing byte is found.
        int fd = ::open(src.c_str(), O_WRONLY | O_CLOEXEC);
        REQUIRE(::pwrite(fd, "!", 1, 5 * MiB + 3) == 1);
        ::close(fd);
        r = tool({"qemu-img", "compare", "-f", "raw", "-F", "raw", src, s.uri()}, dir.path);
        CHECK(r.status == 1);
        CHECK(contains(r.out, "Content mismatch at offset 5242880")); // qemu reports its sector
        expect_clean_stop(s);
    }

    TEST_CASE("qemu-io: patterns and unaligned I/O and write -z and FUA and discard and flush") {
        SKIP_WITHOUT("qemu-io");
        Scratch dir("ext4");
        const std::string disk = (dir / "disk.img").string();
        apps_test::write_file(disk, apps_test::random_string(4 * MiB, 4));
        Server s(dir.path, {disk});
        auto r = tool({"qemu-io",
                       "-f",
                       "raw",
                       "-c",
                       "write -P 0xab 1000 5000",
                       "-c",
                       "read -P 0xab 1000 5000",
                       "-c",
                       "write -P 0x11 4095 3",
                       "-c",
                       "read -P 0x11 4095 3",
                       "-c",
                       "read -P 0xab 4098 1902",
                       "-c",
                       "write -z 65536 131072",
                       "-c",
                       "read -P 0 65536 131072",
                       "-c",
                       "write -z -u 262144 65536",
                       "-c",
                       "read -P 0 262144 65536",
                       "-c",
                       "write -f -P 0xcd 1048576 65536",
                       "-c",
                       "read -P 0xcd 1048576 65536",
                       "-c",
                       "discard 2097152 1048576",
                       "-c",
                       "flush",
                       "-c",
                       "aio_write -P 0x5a 3145728 65536",
                       "-c",
                       "aio_flush",
                       "-c",
                       "read -P 0x5a 3145728 65536",
                       s.uri()},
                      dir.path);
        REQUIRE_MESSAGE(r.status == 0, r.err);
        CHECK_FALSE(contains(r.out, "failed"));
        CHECK_FALSE(contains(r.err, "failed"));
        const std::string d = apps_test::slurp(disk);
        CHECK(d.substr(1000, 3095) == std::string(3095, '\xab'));
        CHECK(d.substr(4095, 3) == std::string(3, '\x11'));
        CHECK(d.substr(65536, 131072) == std::string(131072, '\0'));
        CHECK(d.substr(1048576, 65536) == std::string(65536, '\xcd'));
        CHECK(d.substr(3145728, 65536) == std::string(65536, '\x5a'));
        expect_clean_stop(s);
    }

    TEST_CASE("python3-libnbd: protocol cases on a read-write export") {
        SKIP_WITHOUT("/usr/bin/python3");
        if (apps_test::run({"/usr/bin/python3", "-c", "import nbd"}, "/dev/shm").status != 0) {
            MESSAGE("BIORING-SKIP: python3-libnbd is not installed (./run setup)");
            return;
        }
        Scratch dir("shm");
        const std::string f = sparse_file(dir, "disk.img", 4 * MiB);
        Server s(dir.path, {"--export", "disk", "--max-requests", "4", f});
        auto r =
            apps_test::run({"/usr/bin/python3", BIORING_SOURCE_DIR "/tests/nbd/protocol_cases.py",
                            "plain", s.socket_path(), f, "disk"},
                           dir.path);
        MESSAGE(r.out);
        CHECK_MESSAGE(r.status == 0, r.err);
        CHECK(contains(r.out, "ok 300 pipelined"));
        expect_clean_stop(s);
    }

    TEST_CASE("python3-libnbd: protocol cases on a read-only export") {
        if (apps_test::run({"/usr/bin/python3", "-c", "import nbd"}, "/dev/shm").status != 0) {
            MESSAGE("BIORING-SKIP: python3-libnbd is not installed (./run setup)");
            return;
        }
        Scratch dir("shm");
        const std::string f = sparse_file(dir, "disk.img", 4 * MiB);
        const std::string before = apps_test::slurp(f);
        Server s(dir.path, {"--export", "ro", "--read-only", f});
        auto r =
            apps_test::run({"/usr/bin/python3", BIORING_SOURCE_DIR "/tests/nbd/protocol_cases.py",
                            "readonly", s.socket_path(), f, "ro"},
                           dir.path);
        MESSAGE(r.out);
        CHECK_MESSAGE(r.status == 0, r.err);
        expect_clean_stop(s);
        CHECK(apps_test::slurp(f) == before);
    }

    TEST_CASE("python3-libnbd: protocol cases on a crypt export") {
        if (apps_test::run({"/usr/bin/python3", "-c", "import nbd"}, "/dev/shm").status != 0) {
            MESSAGE("BIORING-SKIP: python3-libnbd is not installed (./run setup)");
            return;
        }
        Scratch dir("shm");
        const std::string f = (dir / "disk.img").string();
        apps_test::write_file(f, std::string(4 * MiB + 8192, '\0'));
        Server s(dir.path, {"--export", "c", "--crypt", "aes-xts-plain64", "--key-file",
                            key_file(dir), "--offset", "8192", f});
        auto r =
            apps_test::run({"/usr/bin/python3", BIORING_SOURCE_DIR "/tests/nbd/protocol_cases.py",
                            "crypt", s.socket_path(), f, "c"},
                           dir.path);
        MESSAGE(r.out);
        CHECK_MESSAGE(r.status == 0, r.err);
        expect_clean_stop(s);
    }

    TEST_CASE("python3-libnbd: 4 MiB and 32 MiB requests round trip and 32 MiB + 1 is refused") {
        if (apps_test::run({"/usr/bin/python3", "-c", "import nbd"}, "/dev/shm").status != 0) {
            MESSAGE("BIORING-SKIP: python3-libnbd is not installed (./run setup)");
            return;
        }
        for (const bool crypt : {false, true}) {
            CAPTURE(crypt);
            Scratch dir("shm");
            const std::string f = sparse_file(dir, "disk.img", 40 * MiB);
            // --max-requests 4: a 32 MiB request takes every permit of its connection.
            std::vector<std::string> args{"--export", "big", "--max-requests", "4"};
            if (crypt) {
                for (const std::string& a : {std::string("--crypt"), std::string("aes-xts-plain64"),
                                             std::string("--key-file"), key_file(dir)}) {
                    args.push_back(a);
                }
            }
            args.push_back(f);
            Server s(dir.path, args);
            auto r = apps_test::run({"/usr/bin/python3",
                                     BIORING_SOURCE_DIR "/tests/nbd/protocol_cases.py",
                                     crypt ? "large-crypt" : "large", s.socket_path(), f, "big"},
                                    dir.path);
            MESSAGE(r.out);
            CHECK_MESSAGE(r.status == 0, r.err);
            CHECK(contains(r.out, "ok 4 MiB and 32 MiB"));
            expect_clean_stop(s);
        }
    }

    TEST_CASE("fio nbd engine: random writes and reads verified with crc32c") {
        SKIP_WITHOUT("fio");
        if (tool({"fio", "--enghelp=nbd"}, "/dev/shm").status != 0) {
            MESSAGE("BIORING-SKIP: this fio has no nbd engine");
            return;
        }
        Scratch dir("shm");
        const std::string disk = (dir / "disk.img").string();
        apps_test::write_file(disk, "");
        std::filesystem::resize_file(disk, 16 * MiB);
        Server s(dir.path, {"--threads", "2", disk});
        const std::string uri = s.uri();
        auto r = tool({"fio", "--name=w", "--ioengine=nbd", "--uri=" + uri, "--rw=randwrite",
                       "--bs=4k,64k", "--bsrange=4k-64k", "--size=16m", "--iodepth=32",
                       "--verify=crc32c", "--do_verify=1", "--verify_fatal=1", "--randseed=7"},
                      dir.path);
        REQUIRE_MESSAGE(r.status == 0, r.out << r.err);
        CHECK(contains(r.out, "err= 0"));
        r = tool({"fio", "--name=w", "--ioengine=nbd", "--uri=" + uri, "--rw=randwrite",
                  "--bs=4k,64k", "--bsrange=4k-64k", "--size=16m", "--iodepth=32",
                  "--verify=crc32c", "--verify_only=1", "--verify_fatal=1", "--randseed=7"},
                 dir.path);
        REQUIRE_MESSAGE(r.status == 0, r.out << r.err);
        CHECK(contains(r.out, "err= 0"));
        // The same verification must fail against other data.
        apps_test::write_file(disk, apps_test::random_string(16 * MiB, 1));
        r = tool({"fio", "--name=w", "--ioengine=nbd", "--uri=" + uri, "--rw=randwrite",
                  "--bs=4k,64k", "--bsrange=4k-64k", "--size=16m", "--iodepth=32",
                  "--verify=crc32c", "--verify_only=1", "--verify_fatal=1", "--randseed=7"},
                 dir.path);
        CHECK(r.status != 0);
        expect_clean_stop(s);
    }

    TEST_CASE("crypt export: client writes land as bioring-crypt encrypt output and back") {
        SKIP_WITHOUT("nbdcopy");
        struct Fmt {
            const char* sector;
            const char* skip;
            bool large;
            const char* offset;
        };
        for (const Fmt fm : {Fmt{"512", "0", false, "0"}, Fmt{"4096", "16", true, "65536"}}) {
            CAPTURE(fm.sector);
            Scratch dir("shm");
            const std::string key = key_file(dir);
            const std::string plain = (dir / "plain.img").string();
            apps_test::write_file(plain, apps_test::random_string(8 * MiB, 3));
            const std::uint64_t off = std::stoull(fm.offset);
            std::vector<std::string> copt{"--sector-size", fm.sector, "--skip", fm.skip};
            if (fm.large) {
                copt.push_back("--iv-large-sectors");
            }
            // bioring-crypt's output for the same plaintext and options.
            std::vector<std::string> enc{BIORING_CRYPT_EXE, "encrypt", "--key-file", key};
            enc.insert(enc.end(), copt.begin(), copt.end());
            enc.push_back(plain);
            enc.push_back((dir / "ref.img").string());
            auto r = apps_test::run(enc, dir.path);
            REQUIRE_MESSAGE(r.status == 0, r.err);

            // A client writes the plaintext through the export.
            const std::string disk = (dir / "disk.img").string();
            const std::string header = apps_test::random_string(off, 8);
            apps_test::write_file(disk, header + std::string(8 * MiB, '\0'));
            std::vector<std::string> args{"--crypt", "aes-xts-plain64", "--key-file",
                                          key,       "--offset",        fm.offset};
            args.insert(args.end(), copt.begin(), copt.end());
            args.push_back(disk);
            {
                Server s(dir.path, args);
                r = tool({"nbdcopy", "--connections=2", "--requests=16", plain, s.uri()}, dir.path);
                REQUIRE_MESSAGE(r.status == 0, r.err);
                expect_clean_stop(s);
            }
            const std::string d = apps_test::slurp(disk);
            CHECK(d.substr(0, off) == header);
            CHECK(d.substr(off) == apps_test::slurp((dir / "ref.img").string()));

            // A bioring-crypt file read through the export is the plaintext.
            apps_test::write_file(disk, header + apps_test::slurp((dir / "ref.img").string()));
            {
                Server s(dir.path, args);
                const std::string back = (dir / "back.img").string();
                r = tool({"nbdcopy", s.uri(), back}, dir.path);
                REQUIRE_MESSAGE(r.status == 0, r.err);
                CHECK(apps_test::slurp(back) == apps_test::slurp(plain));
                expect_clean_stop(s);
            }
        }
    }

    TEST_CASE("command line: usage errors exit 2 and setup errors exit 1 naming the culprit") {
        Scratch dir("shm");
        const std::string f = (dir / "disk.img").string();
        apps_test::write_file(f, std::string(65536, 'x'));
        const std::string sock = (dir / "s.sock").string();
        struct Case {
            std::vector<std::string> args;
            int status;
            const char* says;
        };
        const std::vector<Case> cases = {
            {{}, 2, "missing FILE"},
            {{f}, 2, "--socket PATH"},
            {{"--socket", sock, "--listen", "127.0.0.1:0", f}, 2, "exactly one"},
            {{"--socket", sock, "--threads", "0", f}, 2, "--threads"},
            {{"--socket", sock, "--max-requests", "x", f}, 2, "--max-requests"},
            {{"--socket", sock, "--fua", "sometimes", f}, 2, "--fua 'sometimes'"},
            {{"--socket", sock, "--cache", "directsync", f}, 2, "--cache 'directsync'"},
            {{"--socket", sock, "--tmpfs-io", "sync", f}, 2, "--tmpfs-io 'sync'"},
            {{"--socket", sock, "--crypt", "aes-cbc-essiv", f}, 2, "aes-cbc-essiv"},
            {{"--socket", sock, "--crypt", "aes-xts-plain64", f}, 2, "--key-file"},
            {{"--socket", sock, "--key-file", f, f}, 2, "need --crypt"},
            {{"--socket", sock, "--bogus", f}, 2, "--bogus"},
            {{"--socket", sock, f, f}, 2, "too many"},
            {{"--socket", sock, "--crypt", "aes-xts-plain64", "--key-file", f, "--offset", "100",
              f},
             2,
             "--offset"},
            {{"--socket", sock, (dir / "nope.img").string()}, 1, "nope.img"},
            {{"--socket", sock, dir.path.string()}, 1, "directory"},
            {{"--socket", "/nonexistent-dir/x.sock", f}, 1, "/nonexistent-dir/x.sock"},
            {{"--listen", "256.1.1.1:10809", f}, 2, "256.1.1.1"},
            {{"--socket", sock, "--crypt", "aes-xts-plain64", "--key-file",
              (dir / "nokey").string(), f},
             1,
             "nokey"},
        };
        for (const auto& c : cases) {
            std::vector<std::string> argv{BIORING_NBD_EXE};
            argv.insert(argv.end(), c.args.begin(), c.args.end());
            auto r = apps_test::run(argv, dir.path);
            CAPTURE(r.err);
            CHECK(r.status == c.status);
            CHECK(contains(r.err, c.says));
            CHECK_FALSE(std::filesystem::exists(sock));
        }
        auto r = apps_test::run({BIORING_NBD_EXE, "--help"}, dir.path);
        CHECK(r.status == 0);
        CHECK(contains(r.out, "usage: bioring-nbd"));
    }

    TEST_CASE("SIGINT: the socket is 0600 and requests finish and data is flushed and exit 0") {
        SKIP_WITHOUT("nbdinfo");
        Scratch dir("ext4");
        const std::string f = sparse_file(dir, "disk.img", 4 * MiB);
        Server s(dir.path, {"--stats", f});
        struct stat st {};
        REQUIRE(::stat(s.socket_path().c_str(), &st) == 0);
        CHECK(S_ISSOCK(st.st_mode));
        CHECK((st.st_mode & 0777) == 0600);
        auto r = tool({"nbdinfo", "--size", s.uri()}, dir.path);
        CHECK(contains(r.out, "4194304"));
        ::kill(s.pid(), SIGUSR1);
        for (int i = 0; i < 200 && !contains(s.err(), "# layer"); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        CHECK(contains(s.err(), "# layer"));
        apps_test::Result done = s.stop(SIGINT);
        CHECK_MESSAGE(done.status == 0, done.err);
        CHECK(contains(done.err, "data flushed"));
        // --stats at exit: one table per layer, the NBD layer first, no foreign frames.
        CHECK(contains(done.err, "\nnbd "));
        CHECK(contains(done.err, "\nfile "));
        CHECK_FALSE(std::filesystem::exists(s.socket_path()));
    }

    TEST_CASE("TCP: --listen serves nbd:// and nbdcopy round-trips over it") {
        SKIP_WITHOUT("nbdcopy");
        Scratch dir("shm");
        const std::string disk = (dir / "disk.img").string();
        apps_test::write_file(disk, std::string(4 * MiB, '\0'));
        Server s(dir.path, {"--listen", "127.0.0.1:0", disk}, false);
        std::smatch m;
        REQUIRE(std::regex_search(s.banner(), m, std::regex(R"(127\.0\.0\.1:(\d+))")));
        const std::string uri = "nbd://127.0.0.1:" + m[1].str() + "/";
        const std::string src = (dir / "src.img").string();
        apps_test::write_file(src, apps_test::random_string(4 * MiB, 12));
        auto r = tool({"nbdcopy", src, uri}, dir.path);
        REQUIRE_MESSAGE(r.status == 0, r.err);
        CHECK(apps_test::slurp(disk) == apps_test::slurp(src));
        expect_clean_stop(s);
    }

} // TEST_SUITE
