// SPDX-License-Identifier: MIT
// The output rules of bioring-copy and bioring-crypt (apps/common/safe_output.hpp, driver.hpp,
// pipeline.hpp), driven through the real binaries as root and as an unprivileged user:
// a replaced DST keeps its owner, group and mode and set-ID bits only with both; DST is
// replaced only when the caller could write it; pseudo-files are copied as read; fds 0-2
// closed at start never receive output meant for them; a DST name of NAME_MAX bytes works;
// the in-flight memory is bounded by the file and the machine.
#include "apps/common/safe_output.hpp"
#include "tests/support/skip.hpp"
#include "tests/apps/app_support.hpp"

#include <cstring>
#include <sys/mount.h>
#include <sys/resource.h>
#include <tuple>
#include <utility>

using namespace apps_test;

namespace {

const std::string copy_exe = BIORING_COPY_EXE;
const std::string crypt_exe = BIORING_CRYPT_EXE;
constexpr uid_t nobody = 65534;

// argv running @args through "/bin/sh -c SCRIPT" where SCRIPT ends in exec "$0" "$@": the
// shell prepares the process (closes fds, sets limits) and becomes the app (same pid).
std::vector<std::string> via_sh(const std::string& script, std::vector<std::string> args) {
    std::vector<std::string> v{"/bin/sh", "-c", script + "; exec \"$0\" \"$@\""};
    v.insert(v.end(), args.begin(), args.end());
    return v;
}

// argv running @args as uid/gid 65534 with no supplementary groups.
std::vector<std::string> as_nobody(std::vector<std::string> args) {
    std::vector<std::string> v{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
    v.insert(v.end(), args.begin(), args.end());
    return v;
}

// setpriv is found through PATH by posix_spawn's caller: give its full path.
std::string setpriv_path() {
    for (const char* p : {"/usr/bin/setpriv", "/bin/setpriv"}) {
        if (::access(p, X_OK) == 0) {
            return p;
        }
    }
    return {};
}

// Can uid 65534 run the app binaries (every directory above them searchable)?
bool nobody_can_run(const Scratch& d) {
    if (::geteuid() != 0 || setpriv_path().empty()) {
        return false;
    }
    std::vector<std::string> a = as_nobody({copy_exe, "--help"});
    a[0] = setpriv_path();
    return run(a, d.path).status == 0;
}

Result run_nobody(std::vector<std::string> args, const fs::path& dir) {
    std::vector<std::string> a = as_nobody(std::move(args));
    a[0] = setpriv_path();
    return run(a, dir);
}

struct stat stat_of(const fs::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st;
}

std::string key_file(const Scratch& d) {
    const fs::path k = d / "key";
    write_file(k, random_string(64, 77));
    return k.string();
}

// One encryption, the way the tests run it for each app.
std::vector<std::string> crypt_args(const Scratch& d, const std::string& src,
                                    const std::string& dst) {
    return {crypt_exe, "encrypt", "--quiet", "--key-file", key_file(d), src, dst};
}

// A ramfs mounted on a scratch subdirectory: a filesystem that refuses O_DIRECT, so the apps
// print their "using buffered I/O" note while the output file is open.
struct Ramfs {
    fs::path path;
    bool mounted = false;
    explicit Ramfs(const Scratch& d) : path(d / "ramfs") {
        fs::create_directories(path);
        mounted = ::mount("bioring-test", path.c_str(), "ramfs", 0, nullptr) == 0;
    }
    ~Ramfs() {
        if (mounted) {
            ::umount2(path.c_str(), MNT_DETACH);
        }
    }
};

// Run @args and return its exit status and peak resident set size in bytes (wait4).
std::pair<int, long> run_rss(const std::vector<std::string>& args, const fs::path& dir) {
    Proc p(args, dir);
    int st = 0;
    struct rusage ru {};
    while (::wait4(p.pid(), &st, 0, &ru) < 0 && errno == EINTR) {
    }
    (void)p.wait(); // collects and removes the output files (the child is already reaped)
    return {WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), ru.ru_maxrss * 1024};
}

} // namespace

TEST_SUITE("apps") {

    TEST_CASE("replacing another user's set-ID file as root keeps its owner group and mode") {
        if (::geteuid() != 0) {
            BIORING_SKIP("needs root to create files owned by another user");
        }
        Scratch d("shm");
        const std::string data = random_string(10000, 1); // a multiple of 512 for crypt below
        write_file(d / "src", data.substr(0, 9728));
        for (mode_t mode : {04755, 02755, 06750, 0640}) {
            for (const bool crypt : {false, true}) {
                CAPTURE(mode);
                CAPTURE(crypt);
                const fs::path dst = d / "victim";
                write_file(dst, "old");
                REQUIRE(::chown(dst.c_str(), nobody, nobody) == 0);
                REQUIRE(::chmod(dst.c_str(), mode) == 0);
                Result r =
                    crypt ? run(crypt_args(d, (d / "src").string(), dst.string()), d.path)
                          : run({copy_exe, "--quiet", (d / "src").string(), dst.string()}, d.path);
                CAPTURE(r.err);
                REQUIRE(r.status == 0);
                const struct stat st = stat_of(dst);
                CHECK(st.st_uid == nobody); // not root: the old owner keeps the file
                CHECK(st.st_gid == nobody);
                CHECK((st.st_mode & 07777) == mode); // set-ID kept: owner and group were kept
                CHECK(count_temps(d.path) == 0);
                if (!crypt) {
                    CHECK(slurp(dst) == data.substr(0, 9728));
                }
                fs::remove(dst);
            }
        }
    }

    TEST_CASE("a replaced set-ID file whose owner cannot be kept loses its set-ID bits") {
        Scratch d("shm");
        if (!nobody_can_run(d)) {
            BIORING_SKIP("needs root, setpriv and app binaries uid 65534 can run");
        }
        // uid 1000's set-uid, set-gid, group-writable file in a directory everyone may write:
        // nobody (in group 65534) may write it, but cannot give the new file uid 1000.
        REQUIRE(::chmod(d.path.c_str(), 0777) == 0);
        // An empty source too: no data write, which would clear set-ID bits in passing.
        for (const std::string& content : {std::string("replacement"), std::string()}) {
            for (const bool crypt : {false, true}) {
                CAPTURE(content);
                CAPTURE(crypt);
                write_file(d / "src", crypt && !content.empty() ? random_string(512, 3) : content);
                REQUIRE(::chmod((d / "src").c_str(), 0644) == 0);
                const fs::path dst = d / "tool";
                write_file(dst, "old");
                REQUIRE(::chown(dst.c_str(), 1000, nobody) == 0);
                REQUIRE(::chmod(dst.c_str(), 06775) == 0);
                std::vector<std::string> args{copy_exe, "--quiet", (d / "src").string(),
                                              dst.string()};
                if (crypt) {
                    args = crypt_args(d, (d / "src").string(), dst.string());
                    REQUIRE(::chmod((d / "key").c_str(), 0644) == 0);
                }
                Result r = run_nobody(args, d.path);
                CAPTURE(r.err);
                REQUIRE(r.status == 0);
                const struct stat st = stat_of(dst);
                CHECK(st.st_uid == nobody);
                CHECK(st.st_gid == nobody);
                CHECK((st.st_mode & 07777) == 0775); // permission bits kept, set-ID bits dropped
                CHECK(count_temps(d.path) == 0);
                fs::remove(dst);
            }
        }
    }

    TEST_CASE("a new DST gets 0666 minus the umask and the temporary file is private") {
        Scratch d("shm");
        write_file(d / "src", "abc");
        Result r = run(
            via_sh("umask 027", {copy_exe, "--quiet", (d / "src").string(), (d / "new").string()}),
            d.path);
        REQUIRE(r.status == 0);
        CHECK((stat_of(d / "new").st_mode & 07777) == 0640);
    }

    TEST_CASE("an unprivileged caller cannot replace a DST it could not write itself") {
        Scratch d("shm");
        if (!nobody_can_run(d)) {
            BIORING_SKIP("needs root, setpriv and app binaries uid 65534 can run");
        }
        write_file(d / "src", random_string(4096, 5));
        REQUIRE(::chmod((d / "src").c_str(), 0644) == 0);
        key_file(d);
        REQUIRE(::chmod((d / "key").c_str(), 0644) == 0);
        for (mode_t dir_mode : {01777, 0777}) { // sticky /tmp-like, and plain world-writable
            REQUIRE(::chmod(d.path.c_str(), dir_mode) == 0);
            struct Case {
                const char* name;
                uid_t owner;
                mode_t mode;
            };
            for (const Case c :
                 {Case{"root-owned 0644", 0, 0644}, Case{"own 0444", nobody, 0444}}) {
                for (const bool crypt : {false, true}) {
                    CAPTURE(dir_mode);
                    CAPTURE(c.name);
                    CAPTURE(crypt);
                    const fs::path dst = d / "target";
                    write_file(dst, "precious");
                    REQUIRE(::chown(dst.c_str(), c.owner, c.owner) == 0);
                    REQUIRE(::chmod(dst.c_str(), c.mode) == 0);
                    std::vector<std::string> args{copy_exe, "--quiet", (d / "src").string(),
                                                  dst.string()};
                    if (crypt) {
                        args = {crypt_exe,
                                "encrypt",
                                "--quiet",
                                "--key-file",
                                (d / "key").string(),
                                (d / "src").string(),
                                dst.string()};
                    }
                    Result r = run_nobody(args, d.path);
                    CAPTURE(r.err);
                    CHECK(r.status == 1);
                    const std::string app = crypt ? "bioring-crypt" : "bioring-copy";
                    CHECK(contains(r.err, app + ": cannot replace '" + dst.string() +
                                              "': Permission denied"));
                    CHECK_FALSE(contains(r.err, "bioring-tmp"));
                    CHECK(slurp(dst) == "precious");
                    CHECK(stat_of(dst).st_uid == c.owner);
                    CHECK(count_temps(d.path) == 0);
                    fs::remove(dst);
                }
            }
        }
    }

    TEST_CASE("a pseudo-file that reports size 0 is copied as read, never as empty") {
        Scratch d("shm");
        const std::string version = slurp("/proc/version");
        struct stat pst {};
        if (version.empty() || ::stat("/proc/version", &pst) != 0 || pst.st_size != 0) {
            BIORING_SKIP("/proc/version is not a size-0 pseudo-file here");
        }
        write_file(d / "dst", "old content");
        Result r = run({copy_exe, "--quiet", "/proc/version", (d / "dst").string()}, d.path);
        CAPTURE(r.err);
        REQUIRE(r.status == 0);
        CHECK(slurp(d / "dst") == version);
        CHECK(contains(r.err, "reports size 0"));

        // /proc/self/cmdline is the copying process's own argv: exact, and different per run.
        const std::string dst2 = (d / "cmdline").string();
        r = run({copy_exe, "--quiet", "--verify", "/proc/self/cmdline", dst2}, d.path);
        REQUIRE(r.status == 0);
        CHECK(slurp(dst2) == copy_exe + '\0' + "--quiet" + '\0' + "--verify" + '\0' +
                                 "/proc/self/cmdline" + '\0' + dst2 + '\0');

        // bioring-crypt sees the real size too: not a sector multiple is refused, DST kept.
        if (version.size() % 512 != 0) {
            r = run(crypt_args(d, "/proc/version", (d / "dst").string()), d.path);
            CHECK(r.status == 1);
            CHECK(contains(r.err, std::to_string(version.size()) +
                                      " bytes, not a multiple of the sector size"));
            CHECK(slurp(d / "dst") == version);
            CHECK(count_temps(d.path) == 0);
        }
    }

    TEST_CASE("fds 0 1 2 closed at start never receive the apps' diagnostics") {
        if (::geteuid() != 0) {
            BIORING_SKIP("needs root to mount a ramfs");
        }
        Scratch d("shm");
        Ramfs ram(d);
        if (!ram.mounted) {
            BIORING_SKIP(std::string("cannot mount a ramfs here: ") + std::strerror(errno));
        }
        // Zeros first: a fresh DST's all-zero blocks are not written, so anything else that
        // lands in the file (a diagnostic written to a descriptor 2 that is the output file)
        // stays there.
        const std::string data = std::string(8192, '\0') + random_string(5000, 9);
        write_file(ram.path / "src", data);
        const std::string src512 = (ram.path / "src512").string(); // 25 sectors for bioring-crypt
        write_file(src512, data.substr(0, 12800));
        for (const char* closing : {"exec 2>&-", "exec 1>&- 2>&-", "exec 0<&- 1>&- 2>&-"}) {
            CAPTURE(closing);
            const fs::path dst = ram.path / "dst";
            Result r = run(via_sh(closing, {copy_exe, "--bs", "4K", (ram.path / "src").string(),
                                            dst.string()}),
                           d.path);
            CHECK(r.status == 0);
            CHECK(slurp(dst) == data);
            CHECK(count_temps(ram.path) == 0);
            // Encrypting writes every block; the result must be exactly what a normal run makes.
            const fs::path enc = ram.path / "enc", ref = ram.path / "ref";
            Result rr = run(crypt_args(d, src512, ref.string()), d.path);
            CAPTURE(rr.err);
            REQUIRE(rr.status == 0);
            r = run(via_sh(closing, crypt_args(d, src512, enc.string())), d.path);
            CHECK(r.status == 0);
            CHECK(slurp(enc) == slurp(ref));
            CHECK(count_temps(ram.path) == 0);
            fs::remove(dst);
            fs::remove(enc);
            fs::remove(ref);
        }
    }

    TEST_CASE("a DST name of NAME_MAX bytes gets a temporary name that fits") {
        Scratch d("shm");
        const std::string name(255, 'n');
        const std::string dst = (d / name).string();
        const std::string tmp = bioring::apps::temp_name_for(dst, 4194304);
        CHECK(fs::path(tmp).filename().string().size() <= 255);
        CHECK(contains(tmp, ".bioring-tmp.4194304"));
        const std::string data = random_string(5000, 4).substr(0, 4608);
        write_file(d / "src", data);
        write_file(dst, "old");
        Result r = run({copy_exe, "--quiet", (d / "src").string(), dst}, d.path);
        CAPTURE(r.err);
        CHECK(r.status == 0);
        CHECK(slurp(dst) == data);
        r = run(crypt_args(d, (d / "src").string(), dst), d.path);
        CAPTURE(r.err);
        CHECK(r.status == 0);
        CHECK(slurp(dst).size() == data.size());
        CHECK(slurp(dst) != data);
        CHECK(count_temps(d.path) == 0);
    }

    TEST_CASE("--threads 256 --qd 4096 on a 1 MiB file stays within a memory bound") {
        Scratch d("shm");
        const std::string data = random_string(1 << 20, 6);
        write_file(d / "src", data);
        const std::vector<std::string> opts{"--threads", "256", "--qd",   "4096",
                                            "--bs",      "4K",  "--quiet"};
        // 256 stripes of one 4K block each: one request per stripe is all the file needs. The
        // bound leaves room for 256 reactor threads and rings (about 160 MB measured); without
        // the clamp each stripe reserved 4096 request frames (2.3 GB).
        constexpr long bound = 512l << 20;
        std::vector<std::string> a{copy_exe};
        a.insert(a.end(), opts.begin(), opts.end());
        a.insert(a.end(), {(d / "src").string(), (d / "dst").string()});
        auto [status, rss] = run_rss(a, d.path);
        CAPTURE(rss);
        CHECK(status == 0);
        CHECK(rss < bound);
        CHECK(slurp(d / "dst") == data);

        a = {crypt_exe, "encrypt", "--key-file", key_file(d)};
        a.insert(a.end(), opts.begin(), opts.end());
        a.insert(a.end(), {(d / "src").string(), (d / "enc").string()});
        std::tie(status, rss) = run_rss(a, d.path);
        CAPTURE(rss);
        CHECK(status == 0);
        CHECK(rss < bound);
        CHECK(slurp(d / "enc").size() == data.size());

        // The summary reports the depth actually used.
        Result r = run({copy_exe, "--threads", "2", "--qd", "4096", "--bs", "4K",
                        (d / "src").string(), (d / "dst").string()},
                       d.path);
        CHECK(r.status == 0);
        CHECK(contains(r.out, "qd 128"));
    }

    TEST_CASE("bioring-crypt --help says aes-xts-plain64 has no authentication") {
        Scratch d("shm");
        Result r = run({crypt_exe, "--help"}, d.path);
        CHECK(r.status == 0);
        CHECK(contains(r.out, "no authentication"));
        CHECK(contains(r.out, "--verify still passes"));
    }

} // TEST_SUITE
