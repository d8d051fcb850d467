// SPDX-License-Identifier: MIT
// bioring-nbd against hostile clients (tests/nbd/hostile_clients.py, raw sockets): wrong
// magics, oversized options and export names, bad requests, short WRITE payloads, 10,000
// pipelined requests whose replies are never read (RSS bounded), 1,000 idle connections
// and --max-connections, a one-byte-per-second handshake (--handshake-timeout), and
// disconnects with requests in flight. After each the script checks that a well-behaved
// python3-libnbd client is served, that every layer's in-use frames (SIGUSR1) return to 0,
// and that SIGTERM exits 0 with no sanitizer report. The server is the binary of this build
// tree, so the ASan tree runs the same cases under ASan/UBSan, and BIORING_BACKEND=asio
// (inherited by the server) runs them on the Asio backend. Also: BIORING_FAULT's EIO and
// ENOSPC on the backing file, --read-only's EPERM, SIGTERM with requests in flight, and
// kill -9 durability on an O_DIRECT file on ext4 (the build tree).
#include "tests/apps/app_support.hpp"
#include "tests/nbd/server_support.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <sys/stat.h>
#include <string>
#include <utility>
#include <vector>

namespace {

// The script sits next to this file (CMake compiles it by its absolute path).
const std::string script =
    (std::filesystem::path(__FILE__).parent_path() / "hostile_clients.py").string();

void hostile(const char* which, const char* where = "shm") {
    if (apps_test::run({"/usr/bin/python3", "-c", "import nbd"}, "/dev/shm").status != 0) {
        MESSAGE("BIORING-SKIP: python3-libnbd is not installed (./run setup)");
        return;
    }
    REQUIRE_MESSAGE(std::filesystem::exists(script), script);
    apps_test::Scratch dir(where);
    auto r = apps_test::run({"/usr/bin/python3", script, BIORING_NBD_EXE, dir.path.string(), which},
                            dir.path);
    MESSAGE(r.out);
    CHECK_MESSAGE(r.status == 0, r.err);
    CHECK(apps_test::contains(r.out, std::string("ok ") + which));
}

} // namespace

TEST_SUITE("nbd") {

    TEST_CASE("hostile: wrong magics in the greeting and the options and the requests") {
        hostile("magic");
    }

    TEST_CASE(
        "hostile: options over 64 KiB and export names over 4 KiB and lengths past the data") {
        hostile("options");
    }

    TEST_CASE(
        "hostile: requests past the end and zero or over-maximum lengths and unknown commands") {
        hostile("requests");
    }

    TEST_CASE("hostile: a WRITE whose payload is shorter than its header then a disconnect") {
        hostile("short_write");
    }

    TEST_CASE("hostile: 10000 pipelined requests with replies never read keep RSS bounded") {
        hostile("pipeline");
    }

    TEST_CASE("bursts: pipelined WRITEs whose payloads straddle the server's read-ahead, then "
              "READs of them, all come back right") {
        hostile("burst");
    }

    TEST_CASE("bursts with --provided-buffers: headers and payloads cut by 16 KiB ring "
              "buffers all come back right") {
        hostile("burst_provided");
    }

    TEST_CASE("hostile: 1000 idle connections are served and --max-connections refuses beyond") {
        hostile("idle");
    }

    TEST_CASE("hostile: a one-byte-per-second handshake is closed by --handshake-timeout") {
        hostile("slow");
    }

    TEST_CASE("hostile: disconnects with requests in flight") {
        hostile("inflight");
    }

    TEST_CASE("faults: EIO and ENOSPC on the backing file are that request's error only") {
        hostile("faults");
    }

    TEST_CASE("read-only: WRITE and WRITE_ZEROES and TRIM get EPERM while FLUSH and READ work") {
        hostile("read_only");
    }

    TEST_CASE("SIGTERM: requests in flight are answered and flushed and the exit is 0") {
        hostile("sigterm");
    }

    TEST_CASE("kill -9: writes acknowledged with FUA or before a FLUSH survive (20 runs on ext4)") {
        hostile("kill9", "ext4");
    }

    TEST_CASE("key file: one readable by group or others gets a warning and a 0600 one none") {
        apps_test::Scratch dir("shm");
        apps_test::write_file(dir / "disk.img", std::string(1 << 20, '\0'));
        apps_test::write_file(dir / "key", apps_test::random_string(64, 7));
        for (mode_t mode : {0644, 0640, 0604, 0600, 0400}) {
            REQUIRE(::chmod((dir / "key").c_str(), mode) == 0);
            nbd_test::Server s(dir.path, {"--crypt", "aes-xts-plain64", "--key-file",
                                          (dir / "key").string(), (dir / "disk.img").string()});
            auto r = s.stop(SIGTERM);
            CHECK_MESSAGE(r.status == 0, r.err);
            const bool exposed = (mode & 077) != 0;
            CHECK_MESSAGE(apps_test::contains(r.err, "warning: key file") == exposed,
                          "mode " << std::oct << mode << ": " << r.err);
        }
    }

    TEST_CASE("--listen on a non-loopback address is refused without --insecure") {
        apps_test::Scratch dir("shm");
        apps_test::write_file(dir / "disk.img", std::string(65536, '\0'));
        for (const char* addr : {"0.0.0.0:0", "[::]:0", "192.0.2.1:10809", "[::ffff:10.0.0.1]:1"}) {
            auto r = apps_test::run(
                {BIORING_NBD_EXE, "--listen", addr, (dir / "disk.img").string()}, dir.path);
            CHECK_MESSAGE(r.status == 2, addr << ": " << r.err);
            CHECK_MESSAGE(apps_test::contains(r.err, "not a loopback address"), r.err);
            CHECK_MESSAGE(apps_test::contains(r.err, "--insecure"), r.err);
        }
        // Loopback needs nothing; a wildcard with --insecure is served.
        for (std::vector<std::string> args : {std::vector<std::string>{"--listen", "127.0.0.1:0"},
                                              {"--listen", "[::1]:0"},
                                              {"--listen", "0.0.0.0:0", "--insecure"}}) {
            args.push_back((dir / "disk.img").string());
            nbd_test::Server s(dir.path, args, false);
            auto r = s.stop(SIGTERM);
            CHECK_MESSAGE(r.status == 0, args[1] << ": " << r.err);
        }
    }

    TEST_CASE("hostile: --max-connections and --handshake-timeout reject bad values with exit 2") {
        apps_test::Scratch dir("shm");
        apps_test::write_file(dir / "disk.img", std::string(65536, '\0'));
        for (auto [opt, val] :
             {std::pair{"--max-connections", "0"}, std::pair{"--max-connections", "65537"},
              std::pair{"--handshake-timeout", "0"}, std::pair{"--handshake-timeout", "1s"}}) {
            auto r = apps_test::run({BIORING_NBD_EXE, "--socket", (dir / "s").string(), opt, val,
                                     (dir / "disk.img").string()},
                                    dir.path);
            CHECK_MESSAGE(r.status == 2, opt << " " << val << ": " << r.err);
            CHECK_MESSAGE(apps_test::contains(r.err, opt), r.err);
        }
    }

} // TEST_SUITE
