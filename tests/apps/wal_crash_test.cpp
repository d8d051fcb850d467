// SPDX-License-Identifier: MIT
// bioring-wal crash test: kill -9 a bench at random moments, then verify: every record a
// producer was told was durable is in the log, intact.
//
// What was acknowledged: the bench runs with --acked, so after each durable batch (and after
// its producers were woken) it writes the highest acknowledged sequence number of each log
// to DIR/wal-<i>.acked and syncs it. That value is written only after the log's write and
// sync completed, so it never claims more than the log holds; a kill between an ack and
// the side-file write leaves it behind, never ahead. The test then requires, per log:
// verify exits 0 (a clean log or a torn tail, no damage) and its last durable sequence
// number (contiguous from 1, every record checked) >= the .acked value.
// Runs alternate tmpfs and ext4, fdatasync and RWF_DSYNC, appending and --prealloc; most
// kills come 0-300 ms after both logs have acknowledged records, some at start-up.
// kill -9 kills the process, not the machine: the page cache survives, so this checks the
// ordering of acknowledgements against completed writes, not the disk's honesty.
#include "tests/apps/wal_support.hpp"

#include <chrono>
#include <csignal>
#include <random>
#include <thread>

using namespace wal_test;

TEST_SUITE("apps") {

    TEST_CASE("wal crash: kill -9 at random moments loses nothing acknowledged (24 runs)") {
        std::mt19937 rng(static_cast<unsigned>(::getpid()));
        int runs_with_acks = 0, torn = 0;
        for (int run = 0; run < 24; ++run) {
            const char* where = run % 2 == 0 ? "shm" : "ext4";
            const char* sync = run % 3 == 2 ? "dsync" : "fdatasync";
            CAPTURE(run);
            CAPTURE(where);
            CAPTURE(sync);
            Scratch d(where);
            // Every fourth run overwrites preallocated zeros instead of appending.
            const char* prealloc = run % 4 == 1 ? "4M" : "0";
            CAPTURE(prealloc);
            Proc p({wal_exe, "bench", d.path.string(), "--seconds", "60", "--threads", "2",
                    "--producers", "32", "--record-size", std::to_string(64 + run * 97 % 900),
                    "--sync", sync, "--prealloc", prealloc, "--acked"},
                   d.path);
            // Most runs: wait until both logs have acknowledged something (the bench is in
            // its steady state), then kill 0-300 ms later. Every sixth run: kill 0-100 ms after
            // the start, wherever it is (opening, preallocating, first batch).
            const bool early = run % 6 == 5;
            if (!early) {
                const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(20);
                while ((read_acked(d / "wal-0.acked") <= 0 || read_acked(d / "wal-1.acked") <= 0) &&
                       std::chrono::steady_clock::now() < limit) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(2));
                }
            }
            const int ms = std::uniform_int_distribution<int>(0, early ? 100 : 300)(rng);
            std::this_thread::sleep_for(std::chrono::milliseconds(ms));
            REQUIRE(::kill(p.pid(), SIGKILL) == 0);
            Result r = p.wait();
            CAPTURE(r.err);
            REQUIRE(r.status == 128 + SIGKILL); // it was still running: killed mid-flight
            for (int i = 0; i < 2; ++i) {
                const fs::path log = d / ("wal-" + std::to_string(i) + ".log");
                const long long acked = read_acked(d / ("wal-" + std::to_string(i) + ".acked"));
                CAPTURE(i);
                CAPTURE(acked);
                CHECK(acked >= 0);
                if (!fs::exists(log)) {
                    CHECK(acked == 0);
                    continue;
                }
                Result v = wal({"verify", "--json", log.string()}, d.path);
                CAPTURE(v.out);
                CAPTURE(v.err);
                CHECK(v.status == 0);
                const std::string state = json_state(v.out);
                CHECK((state == "clean" || state == "torn-tail"));
                torn += state == "torn-tail";
                CHECK(json_number(v.out, "last_seq") >= acked);
                runs_with_acks += acked > 0;
                if (!early) {
                    CHECK(acked > 0); // the kill came after acknowledgements: something to check
                }
            }
        }
        MESSAGE(runs_with_acks << " logs had acknowledged records; " << torn << " had a torn tail");
        CHECK(runs_with_acks >= 40); // all but the early kills' logs had acknowledgements
    }

} // TEST_SUITE
