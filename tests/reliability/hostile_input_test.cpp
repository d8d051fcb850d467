// SPDX-License-Identifier: MIT
// Hostile input, the gaps left by tests/apps (which covers most malformed options): special
// files as SRC, DST or key file (FIFOs — which must not block an open —, /dev/null,
// directories), empty and 1-byte sources, and every numeric option of bioring-crypt given
// garbage, a sign, an empty string or 99999999999999P. Each case: the expected exit status
// (2 usage, 1 failure, 0 for inputs that are valid), a message naming the app, no crash, no
// hang (5 s limit), no stray output file, an existing DST unchanged.
#include "tests/reliability/reliability_support.hpp"

#include <sys/stat.h>

using namespace reliability_test;

namespace {

const std::string copy_exe = BIORING_COPY_EXE;
const std::string crypt_exe = BIORING_CRYPT_EXE;

struct Case {
    std::vector<std::string> args;
    int status;
};

} // namespace

TEST_SUITE("reliability") {

    TEST_CASE("special files empty and one-byte inputs and garbage numbers get a clear answer") {
        Scratch d("shm");
        REQUIRE(::mkfifo((d / "fifo").c_str(), 0644) == 0);
        write_file(d / "empty", "");
        write_file(d / "one", "x");
        write_file(d / "src", random_string(8192, 51));
        write_file(d / "key", random_string(64, 52));
        write_file(d / "keep", "keep me");
        fs::create_directory(d / "dir");
        const std::string fifo = (d / "fifo").string(), empty = (d / "empty").string(),
                          one = (d / "one").string(), src = (d / "src").string(),
                          key = (d / "key").string(), keep = (d / "keep").string(),
                          dir = (d / "dir").string(), out = (d / "out").string();
        const std::string C = copy_exe, K = crypt_exe;
        std::vector<Case> cases = {
            {{C, fifo, out}, 1},
            {{C, src, fifo}, 1},
            {{C, "/dev/null", out}, 1},
            {{C, src, "/dev/null"}, 1},
            {{C, dir, out}, 1},
            {{C, src, dir}, 1},
            {{C, src, dir + "/"}, 1},
            {{C, "--bs", "4K", "--qd", "1", fifo, keep}, 1},
            {{C, "--threads", "99999999999999P", src, out}, 2},
            {{C, "--qd", "99999999999999P", src, out}, 2},
            {{C, "--qd=", src, out}, 2},
            {{C, "--bs", "4K ", src, out}, 2},
            {{C, "--bs", "+4K", src, out}, 2},
            {{C, "--bs", "4KK", src, out}, 2},
            {{C, "--", "--bs", src, out}, 2},
            {{K, "encrypt", "--key-file", fifo, src, out}, 2},
            {{K, "encrypt", "--key-file", "/dev/null", src, out}, 2},
            {{K, "encrypt", "--key-file", empty, src, out}, 2},
            {{K, "encrypt", "--key-file", key, fifo, out}, 1},
            {{K, "encrypt", "--key-file", key, src, fifo}, 1},
            {{K, "encrypt", "--key-file", key, "/dev/null", out}, 1},
            {{K, "decrypt", "--key-file", key, src, "/dev/null"}, 1},
            {{K, "decrypt", "--key-file", key, dir, out}, 1},
            {{K, "decrypt", "--key-file", key, src, dir}, 1},
            {{K, "encrypt", "--key-file", key, one, out}, 1},
            {{K, "encrypt", "--key-file", key, one, keep}, 1},
            {{K, "encrypt", "--key-file", key, "--sector-size", "abc", src, out}, 2},
            {{K, "encrypt", "--key-file", key, "--sector-size", "-512", src, out}, 2},
            {{K, "encrypt", "--key-file", key, "--sector-size", "99999999999999P", src, out}, 2},
            {{K, "encrypt", "--key-file", key, "--key-size", "", src, out}, 2},
            {{K, "encrypt", "--key-file", key, "--key-size", "-512", src, out}, 2},
            {{K, "encrypt", "--key-file", key, "--key-size", "99999999999999P", src, out}, 2},
            {{K, "encrypt", "--key-file", key, "--keyfile-offset", "-1", src, out}, 2},
            {{K, "encrypt", "--key-file", key, "--keyfile-offset", "x", src, out}, 2},
            {{K, "encrypt", "--key-file", key, "--skip", "99999999999999P", src, out}, 2},
            {{K, "encrypt", "--key-file", key, "--skip", "", src, out}, 2},
            {{K, "encrypt", "--key-file", key, "--bs", "99999999999999P", src, out}, 2},
            {{K, "encrypt", "--key-file", key, "--bs", "-64K", src, out}, 2},
            {{K, "encrypt", "--key-file", key, "--qd", "99999999999999P", src, out}, 2},
            {{K, "encrypt", "--key-file", key, "--qd", "0", src, out}, 2},
            {{K, "encrypt", "--key-file", key, "--threads", "99999999999999P", src, out}, 2},
            {{K, "encrypt", "--key-file", key, "--threads", "", src, out}, 2},
            {{K, "encrypt", "--key-file", key, "--cipher", "", src, out}, 2},
            {{K, "encrypt", "--key-file", "", src, out}, 2},
            {{K, "", "--key-file", key, src, out}, 2},
            {{K, "encrypt", "--key-file", key, "--verify=yes", src, out}, 2},
        };
        for (const auto& c : cases) {
            CAPTURE(join(c.args));
            Result r = run_env(c.args, {{"BIORING_FAULT", ""}}, d.path, std::chrono::seconds(5));
            CAPTURE(r.err);
            REQUIRE_MESSAGE(r.status != -1, "hung");
            CHECK(r.status == c.status);
            const std::string app = c.args[0] == C ? "bioring-copy: " : "bioring-crypt: ";
            CHECK(contains(r.err, app));
            CHECK_FALSE(fs::exists(d / "out"));
            CHECK(slurp(d / "keep") == "keep me");
            CHECK(temps_in(d.path).empty());
            CHECK(fs::is_fifo(d / "fifo"));
        }
        // Valid edge inputs: empty and 1-byte sources copy exactly; an empty source encrypts to an
        // empty file (dm-crypt has nothing to store either).
        for (const auto& [srcname, content] :
             std::vector<std::pair<std::string, std::string>>{{empty, ""}, {one, "x"}}) {
            Result r = run_env({C, "--quiet", srcname, keep}, {{"BIORING_FAULT", ""}}, d.path,
                               std::chrono::seconds(5));
            CAPTURE(r.err);
            CHECK(r.status == 0);
            CHECK(slurp(d / "keep") == content);
            write_file(d / "keep", "keep me");
        }
        Result r = run_env({K, "encrypt", "--quiet", "--key-file", key, empty, out},
                           {{"BIORING_FAULT", ""}}, d.path, std::chrono::seconds(5));
        CAPTURE(r.err);
        CHECK(r.status == 0);
        CHECK(fs::exists(d / "out"));
        CHECK(slurp(d / "out").empty());
        CHECK(temps_in(d.path).empty());
    }

} // TEST_SUITE
