// SPDX-License-Identifier: MIT
// bioring-copy and bioring-crypt in a hostile process environment: signal dispositions
// inherited as ignored (nohup, background jobs), a file size limit (ulimit -f, SIGXFSZ),
// terminating signals beyond SIGINT/SIGTERM, and a concurrent run in another PID namespace
// whose temporary file must survive the stale-temporary cleanup (apps/common/safe_output.hpp).
#include "apps/common/safe_output.hpp"
#include "tests/support/skip.hpp"
#include "tests/reliability/reliability_support.hpp"

#include <sys/wait.h>

using namespace reliability_test;

namespace {

const std::string copy_exe = BIORING_COPY_EXE;
const std::string crypt_exe = BIORING_CRYPT_EXE;

// argv running @args through "/bin/sh -c SCRIPT; exec APP ARGS": the shell prepares the
// process and becomes the app (same pid, so temp_name_for(dst, pid) names its file).
std::vector<std::string> via_sh(const std::string& script, std::vector<std::string> args) {
    std::vector<std::string> v{"/bin/sh", "-c", script + "; exec \"$0\" \"$@\""};
    v.insert(v.end(), args.begin(), args.end());
    return v;
}

// A large sparse source: no memory, and 4K requests at queue depth 1 take seconds.
void make_sparse(const fs::path& p, long long bytes) {
    const int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, bytes) == 0);
    ::close(fd);
}

// The app's arguments for a slow run of @app from @src to @dst.
std::vector<std::string> slow_run(bool crypt, const Scratch& d, const fs::path& src,
                                  const fs::path& dst) {
    if (crypt) {
        write_file(d / "key", random_string(64, 21));
        return {crypt_exe,
                "encrypt",
                "--quiet",
                "--qd",
                "1",
                "--bs",
                "4K",
                "--threads",
                "1",
                "--key-file",
                (d / "key").string(),
                src.string(),
                dst.string()};
    }
    return {copy_exe, "--quiet",   "--qd", "1",          "--bs",
            "4K",     "--threads", "1",    src.string(), dst.string()};
}

template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > end) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

// Has @pid exited (without reaping it)?
bool exited(pid_t pid) {
    siginfo_t si{};
    return ::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           si.si_pid == pid;
}

} // namespace

TEST_SUITE("reliability") {

    TEST_CASE("signals ignored by whoever started the app stay ignored (nohup, background jobs)") {
        Scratch d("shm");
        make_sparse(d / "src", 8ll << 30);
        for (const bool crypt : {false, true}) {
            CAPTURE(crypt);
            write_file(d / "dst", "unchanged");
            Proc p(via_sh("trap '' HUP INT", slow_run(crypt, d, d / "src", d / "dst")), d.path);
            const std::string tmp = bioring::apps::temp_name_for((d / "dst").string(), p.pid());
            CHECK(wait_until([&] { return fs::exists(tmp); }, std::chrono::seconds(10)));
            ::kill(p.pid(), SIGHUP);
            ::kill(p.pid(), SIGINT);
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            CHECK_FALSE(exited(p.pid())); // still copying: both were ignored
            CHECK(fs::exists(tmp));
            ::kill(p.pid(), SIGTERM); // not ignored at start: the cleanup handler
            Result r = p.wait();
            CAPTURE(r.err);
            CHECK(r.status == 128 + SIGTERM);
            CHECK(contains(r.err, "SIGTERM"));
            CHECK_FALSE(contains(r.err, "SIGHUP"));
            CHECK(temps_in(d.path).empty());
            CHECK(slurp(d / "dst") == "unchanged");
        }
    }

    TEST_CASE("a file size limit (ulimit -f, SIGXFSZ) is a clean error: exit 1, DST intact") {
        Scratch d("shm");
        write_file(d / "src", random_string(4 << 20, 22));
        for (const bool crypt : {false, true}) {
            CAPTURE(crypt);
            write_file(d / "dst", "unchanged");
            // 2048 blocks: 1 MiB (dash counts 512-byte blocks) or 2 MiB (bash, 1 KiB blocks).
            std::vector<std::string> args = slow_run(crypt, d, d / "src", d / "dst");
            Result r = run(via_sh("ulimit -f 2048", args), d.path);
            CAPTURE(r.err);
            CHECK(r.status == 1);
            CHECK(contains(r.err, "File too large"));
            CHECK(contains(r.err, (d / "dst").string()));
            CHECK(temps_in(d.path).empty());
            CHECK(slurp(d / "dst") == "unchanged");
            // A new DST: nothing is left under its name either.
            r = run(via_sh("ulimit -f 2048", slow_run(crypt, d, d / "src", d / "new")), d.path);
            CHECK(r.status == 1);
            CHECK_FALSE(fs::exists(d / "new"));
            CHECK(temps_in(d.path).empty());
        }
    }

    TEST_CASE("SIGQUIT SIGUSR1 SIGUSR2 and SIGALRM during a run remove the temporary file") {
        Scratch d("shm");
        make_sparse(d / "src", 8ll << 30);
        for (const int sig : {SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM}) {
            for (const bool crypt : {false, true}) {
                CAPTURE(sig);
                CAPTURE(crypt);
                write_file(d / "dst", "unchanged");
                Proc p(slow_run(crypt, d, d / "src", d / "dst"), d.path);
                const std::string tmp = bioring::apps::temp_name_for((d / "dst").string(), p.pid());
                CHECK(wait_until([&] { return fs::exists(tmp); }, std::chrono::seconds(10)));
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
                ::kill(p.pid(), sig);
                Result r = p.wait();
                CAPTURE(r.err);
                CHECK(r.status == 128 + sig);
                CHECK(contains(r.err, std::string("SIG") + sigabbrev_np(sig)));
                CHECK(contains(r.err, "removed temporary file"));
                CHECK(temps_in(d.path).empty());
                CHECK(slurp(d / "dst") == "unchanged");
            }
        }
    }

    TEST_CASE("a live run in another PID namespace keeps its temporary file during cleanup") {
        Scratch d("shm");
        const std::string unshare = "/usr/bin/unshare";
        if (::geteuid() != 0 || ::access(unshare.c_str(), X_OK) != 0 ||
            run({unshare, "--pid", "--fork", "--mount-proc", "/bin/true"}, d.path).status != 0) {
            BIORING_SKIP("cannot make a PID namespace here (needs root and unshare)");
        }
        // The inner run's pid is small (a few hundred) in its namespace and names its file; a pid
        // that small is usually not alive out here, which is what fooled kill(pid, 0).
        make_sparse(d / "big", 1ll << 30);
        const std::vector<std::string> inner_app = slow_run(false, d, d / "big", d / "dst");
        // --mount-proc: a /proc of the new namespace, so the app (and LeakSanitizer in sanitizer
        // builds) finds itself there.
        std::vector<std::string> inner{unshare,
                                       "--pid",
                                       "--fork",
                                       "--mount-proc",
                                       "/bin/sh",
                                       "-c",
                                       "i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); "
                                       "done; \"$0\" \"$@\""};
        inner.insert(inner.end(), inner_app.begin(), inner_app.end());
        Proc p(inner, d.path);
        std::vector<std::string> found;
        CHECK(wait_until([&] { return !(found = temps_in(d.path)).empty(); },
                         std::chrono::seconds(20)));
        REQUIRE(found.size() == 1);
        const std::string name = found[0];
        const long inner_pid = std::stol(name.substr(name.rfind('.') + 1));
        MESSAGE("inner run's temporary file "
                << name << "; pid " << inner_pid
                << (::kill(static_cast<pid_t>(inner_pid), 0) != 0 ? " is not alive out here"
                                                                  : " is alive out here too"));

        // A concurrent run for the same DST cleans up stale temporaries first.
        const std::string small = random_string(10000, 23);
        write_file(d / "small", small);
        Result other =
            run({copy_exe, "--quiet", (d / "small").string(), (d / "dst").string()}, d.path);
        CAPTURE(other.err);
        CHECK(other.status == 0);
        CHECK_FALSE(contains(other.err, "stale"));
        const bool inner_still_running = !exited(p.pid());
        CHECK((fs::exists(d / name) || !inner_still_running));

        Result r = p.wait();
        CAPTURE(r.err);
        CHECK(r.status == 0); // its file was never removed under it
        CHECK(temps_in(d.path).empty());
        // Whichever run committed last; normally the inner one (1 GiB of zeros, kept sparse).
        if (fs::file_size(d / "dst") == small.size()) {
            CHECK(slurp(d / "dst") == small);
        } else {
            CHECK(fs::file_size(d / "dst") == (1ull << 30));
        }
    }

    TEST_CASE("a temporary file left by a SIGKILLed bioring-crypt is removed by the next run") {
        Scratch d("shm");
        make_sparse(d / "src", 8ll << 30);
        Proc p(slow_run(true, d, d / "src", d / "dst"), d.path);
        const std::string tmp = bioring::apps::temp_name_for((d / "dst").string(), p.pid());
        CHECK(wait_until([&] { return fs::exists(tmp); }, std::chrono::seconds(10)));
        ::kill(p.pid(), SIGKILL);
        CHECK(p.wait().status == 128 + SIGKILL);
        REQUIRE(fs::exists(tmp));
        write_file(d / "small", "fresh");
        Result r = run({copy_exe, "--quiet", (d / "small").string(), (d / "dst").string()}, d.path);
        CHECK(r.status == 0);
        CHECK(contains(r.err, "stale temporary file"));
        CHECK_FALSE(fs::exists(tmp));
        CHECK(slurp(d / "dst") == "fresh");
    }

} // TEST_SUITE
