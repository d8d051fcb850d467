// SPDX-License-Identifier: MIT
// Crash tests: bioring-copy and bioring-crypt are killed with SIGKILL at random moments
// (before the temporary file exists, during the I/O, around the sync and the rename), 20
// times each. After every kill DST must be absent (when it was), unchanged (when it
// existed), or complete and correct; the only other files allowed are the recognisable
// temporary files ".DST.bioring-tmp.<pid>" of the killed runs; every 5th kill is followed
// by a clean run that must remove all of them and produce the right DST.
// Timing: the kill delay is drawn uniformly from [0, 1.3 x the measured duration of a clean
// run], so the kills spread over the whole run on a fast or a loaded machine alike.
#include "apps/common/safe_output.hpp"
#include "tests/reliability/reliability_support.hpp"

#include <algorithm>
#include <cstdio>
#include <set>

using namespace reliability_test;

namespace {

const std::string copy_exe = BIORING_COPY_EXE;
const std::string crypt_exe = BIORING_CRYPT_EXE;

struct Counts {
    int kills = 0, absent = 0, unchanged = 0, complete = 0, temps_left = 0, exited = 0;
};

// @args: the app's argv without DST. @expected: DST after a complete run.
void kill_sweep(const char* what, std::vector<std::string> args, const fs::path& dir,
                const std::string& expected, unsigned seed) {
    const fs::path dst = dir / "dst";
    const std::string old = "the previous destination";
    std::vector<std::string> full = args;
    full.push_back(dst.string());
    // A clean run: its duration sets the range of kill delays.
    const auto t0 = std::chrono::steady_clock::now();
    Result clean = run_env(full, {{"BIORING_FAULT", ""}}, dir);
    const auto took = std::chrono::steady_clock::now() - t0;
    REQUIRE(clean.status == 0);
    REQUIRE(slurp(dst) == expected);
    const auto max_delay_us =
        std::chrono::duration_cast<std::chrono::microseconds>(took).count() * 13 / 10 + 1000;
    std::mt19937 rng(seed);
    Counts c;
    std::set<std::string> allowed_temps; // temporaries of killed runs not cleaned yet
    for (int i = 0; i < 20; ++i) {
        CAPTURE(i);
        const int state = i % 3; // 0: DST absent, 1: DST holds old data, 2: DST already complete
        std::error_code ec;
        fs::remove(dst, ec);
        if (state == 1) {
            write_file(dst, old);
        } else if (state == 2) {
            write_file(dst, expected);
        }
        EnvProc p(full, child_env({{"BIORING_FAULT", ""}}), dir);
        const long delay = std::uniform_int_distribution<long>(0, max_delay_us)(rng);
        std::this_thread::sleep_for(std::chrono::microseconds(delay));
        ::kill(p.pid(), SIGKILL);
        Result r = p.wait(std::chrono::seconds(30));
        ++c.kills;
        CAPTURE(r.status);
        CAPTURE(r.err);
        CHECK((r.status == 128 + SIGKILL || r.status == 0));
        c.exited += r.status == 0;
        allowed_temps.insert(bioring::apps::temp_name_for(dst.string(), p.pid()));
        // DST: absent, unchanged, or complete and correct.
        if (!fs::exists(dst)) {
            CHECK_MESSAGE(state == 0, "a killed run removed an existing destination");
            ++c.absent;
        } else {
            const std::string got = slurp(dst);
            if (got == expected) {
                ++c.complete;
            } else {
                CHECK_MESSAGE((state == 1 && got == old),
                              "DST is neither absent, unchanged nor complete (" << got.size()
                                                                                << " bytes)");
                ++c.unchanged;
            }
        }
        // Leftovers: only the recognisable temporaries of killed runs.
        for (auto& e : fs::directory_iterator(dir)) {
            const std::string path = e.path().string();
            const std::string name = e.path().filename().string();
            if (name == "src" || name == "key" || name == "dst" || name.rfind(".rout.", 0) == 0 ||
                name.rfind(".rerr.", 0) == 0) {
                continue;
            }
            CHECK_MESSAGE(allowed_temps.count(path) == 1, "unexpected leftover " << name);
            c.temps_left += allowed_temps.count(path) == 1;
        }
        if (i % 5 == 4) {
            // The next run removes the stale temporaries (their pids are dead) and succeeds.
            Result next = run_env(full, {{"BIORING_FAULT", ""}}, dir);
            CAPTURE(next.err);
            CHECK(next.status == 0);
            CHECK(slurp(dst) == expected);
            CHECK(temps_in(dir).empty());
            allowed_temps.clear();
        }
    }
    std::printf("crash %s: %d SIGKILLs (clean run %.0f ms; %d finished first): DST absent %d, "
                "unchanged %d, complete %d; %d stale temporaries seen, all removed by the next "
                "run\n",
                what, c.kills, std::chrono::duration<double, std::milli>(took).count(), c.exited,
                c.absent, c.unchanged, c.complete, c.temps_left);
    CHECK(c.kills == 20);
}

} // namespace

TEST_SUITE("reliability") {

    TEST_CASE("bioring-copy killed with SIGKILL at random moments leaves DST absent unchanged or "
              "complete") {
        Scratch d("ext4");
        const std::string data = random_string((4 << 20) + 777, 41);
        write_file(d / "src", data);
        kill_sweep("bioring-copy",
                   {copy_exe, "--quiet", "--bs", "64K", "--qd", "2", (d / "src").string()}, d.path,
                   data, 4242);
    }

    TEST_CASE("bioring-crypt killed with SIGKILL at random moments leaves DST absent unchanged or "
              "complete") {
        Scratch d("ext4");
        const std::string data = random_string(4 << 20, 42);
        write_file(d / "src", data);
        write_file(d / "key", random_string(64, 43));
        std::vector<std::string> args = {
            crypt_exe, "encrypt", "--quiet",   "--key-file", (d / "key").string(), "--bs", "64K",
            "--qd",    "2",       "--threads", "1",          (d / "src").string()};
        // The expected ciphertext: an unkilled run of the same command.
        std::vector<std::string> ref = args;
        ref.push_back((d / "ref").string());
        Result r = run_env(ref, {{"BIORING_FAULT", ""}}, d.path);
        REQUIRE(r.status == 0);
        const std::string cipher = slurp(d / "ref");
        fs::remove(d / "ref");
        REQUIRE(cipher.size() == data.size());
        kill_sweep("bioring-crypt", args, d.path, cipher, 4343);
    }

} // TEST_SUITE
