// SPDX-License-Identifier: MIT
// bioring-copy end to end: byte-identical copies of awkward sizes on tmpfs and ext4, sparse
// sources, several pipeline shapes, every refusal (exit status, message naming the file,
// nothing left behind, an existing DST unchanged), ENOSPC on a real small tmpfs, signals,
// a SIGKILLed run's leftover removed by the next run, and hostile command lines.
#include "apps/common/safe_output.hpp"
#include "tests/support/skip.hpp"
#include "tests/apps/app_support.hpp"

#include <cstring>
#include <sys/mount.h>

using namespace apps_test;

namespace {

const std::string copy_exe = BIORING_COPY_EXE;

Result copy_app(std::vector<std::string> args, const fs::path& log_dir) {
    args.insert(args.begin(), copy_exe);
    return run(args, log_dir);
}

void check_copy(const Scratch& d, std::size_t size, std::vector<std::string> extra, unsigned seed) {
    CAPTURE(size);
    CAPTURE(d.path);
    const std::string data = random_string(size, seed);
    write_file(d / "src", data);
    fs::remove(d / "dst");
    extra.push_back((d / "src").string());
    extra.push_back((d / "dst").string());
    Result r = copy_app(extra, d.path);
    CAPTURE(r.err);
    REQUIRE(r.status == 0);
    CHECK(fs::file_size(d / "dst") == size);
    CHECK(slurp(d / "dst") == data);
    CHECK(count_temps(d.path) == 0);
}

} // namespace

TEST_SUITE("apps") {

    TEST_CASE("copy of empty tiny unaligned and odd sizes is byte identical on tmpfs and ext4") {
        for (const char* where : {"shm", "ext4"}) {
            Scratch d(where);
            unsigned seed = 1;
            for (std::size_t size :
                 {std::size_t{0}, std::size_t{1}, std::size_t{511}, std::size_t{4095},
                  std::size_t{4096}, std::size_t{4097}, std::size_t{(1 << 20) + 123}}) {
                check_copy(d, size, {"--verify"}, seed++);
            }
        }
    }

    TEST_CASE("copy with several queue depths block sizes and threads is byte identical") {
        Scratch d("shm");
        struct Shape {
            const char *qd, *bs, *threads;
        };
        const Shape shapes[] = {{"1", "4K", "1"},
                                {"4", "64K", "2"},
                                {"32", "1M", "3"},
                                {"2", "8K", "4"},
                                {"7", "12K", "1"}};
        unsigned seed = 10;
        for (const auto& s : shapes) {
            CAPTURE(s.qd);
            CAPTURE(s.bs);
            CAPTURE(s.threads);
            check_copy(d, 3 * 1024 * 1024 + 777,
                       {"--qd", s.qd, "--bs", s.bs, "--threads", s.threads, "--verify"}, seed++);
        }
        Scratch e("ext4");
        check_copy(e, 2 * 1024 * 1024 + 4096 + 1, {"--qd", "8", "--bs", "64K", "--threads", "2"},
                   77);
    }

    TEST_CASE("a sparse source copies correctly and its holes stay holes") {
        for (const char* where : {"shm", "ext4"}) {
            CAPTURE(where);
            Scratch d(where);
            const std::uint64_t size = 64ull << 20;
            {
                int fd = ::open((d / "src").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
                REQUIRE(fd >= 0);
                REQUIRE(::ftruncate(fd, static_cast<off_t>(size)) == 0);
                const std::string a = random_string(10000, 3);
                REQUIRE(::pwrite(fd, a.data(), a.size(), 5 << 20) ==
                        static_cast<ssize_t>(a.size()));
                REQUIRE(::pwrite(fd, "tail", 4, static_cast<off_t>(size - 4)) == 4);
                ::close(fd);
            }
            Result r = copy_app({"--verify", (d / "src").string(), (d / "dst").string()}, d.path);
            CAPTURE(r.err);
            REQUIRE(r.status == 0);
            CHECK(slurp(d / "dst") == slurp(d / "src"));
            struct stat st {};
            REQUIRE(::stat((d / "dst").c_str(), &st) == 0);
            CHECK(static_cast<std::uint64_t>(st.st_blocks) * 512 < 8ull << 20);
        }
    }

    TEST_CASE("copy replaces an existing destination and prints a JSON summary") {
        Scratch d("ext4");
        const std::string data = random_string(5 << 20, 4);
        write_file(d / "src", data);
        write_file(d / "dst", "old contents");
        Result r =
            copy_app({"--json", "--qd", "4", (d / "src").string(), (d / "dst").string()}, d.path);
        CAPTURE(r.err);
        REQUIRE(r.status == 0);
        CHECK(slurp(d / "dst") == data);
        CHECK(r.out.front() == '{');
        CHECK(contains(r.out, "\"bytes\":" + std::to_string(data.size())));
        CHECK(contains(r.out, "\"requests\":5"));
        CHECK(contains(r.out, "\"mb_per_s\":"));
        CHECK(contains(r.out, "\"allocations_per_request\":"));
        CHECK(count_temps(d.path) == 0);
        Result t = copy_app({(d / "src").string(), (d / "dst2").string()}, d.path);
        REQUIRE(t.status == 0);
        CHECK(contains(t.out, "MB/s"));
        CHECK(contains(t.out, "IOPS"));
        CHECK(t.err.empty()); // stderr is not a tty: no progress bar
        // A symlink DST is written through (like cp) and stays a link; a dangling one is refused.
        fs::create_symlink(d / "dst2", d / "link");
        write_file(d / "src2", "through the link");
        Result l = copy_app({(d / "src2").string(), (d / "link").string()}, d.path);
        REQUIRE(l.status == 0);
        CHECK(fs::is_symlink(d / "link"));
        CHECK(slurp(d / "dst2") == "through the link");
        fs::create_symlink(d / "nowhere", d / "dangling");
        Result g = copy_app({(d / "src2").string(), (d / "dangling").string()}, d.path);
        CHECK(g.status == 1);
        CHECK(contains(g.err, (d / "dangling").string()));
        CHECK(count_temps(d.path) == 0);
    }

    TEST_CASE("copy refuses the same file directories and missing paths with exit status 1") {
        Scratch d("ext4");
        write_file(d / "src", random_string(10000, 5));
        write_file(d / "dst", "keep me");
        fs::create_hard_link(d / "src", d / "link");
        fs::create_directory(d / "dir");
        struct Case {
            std::string src, dst, needle;
        };
        const Case cases[] = {
            {(d / "src").string(), (d / "src").string(), (d / "src").string()},
            {(d / "src").string(), (d / "link").string(), (d / "link").string()},
            {(d / "dir").string(), (d / "dst").string(), (d / "dir").string()},
            {(d / "src").string(), (d / "dir").string(), (d / "dir").string()},
            {(d / "missing").string(), (d / "dst").string(), (d / "missing").string()},
            {(d / "src").string(), (d / "nodir" / "dst").string(), (d / "nodir").string()},
            {(d / "src").string(), (d / "src" / "dst").string(), (d / "src").string()},
            {"/dev/null", (d / "dst").string(), "/dev/null"},
        };
        for (const auto& c : cases) {
            CAPTURE(c.src);
            CAPTURE(c.dst);
            Result r = copy_app({c.src, c.dst}, d.path);
            CAPTURE(r.err);
            CHECK(r.status == 1);
            CHECK(contains(r.err, c.needle));
            CHECK(contains(r.err, "bioring-copy: "));
            CHECK(slurp(d / "dst") == "keep me");
            CHECK(count_temps(d.path) == 0);
            CHECK(count_temps(d / "dir") == 0);
        }
        CHECK_FALSE(fs::exists(d / "nodir"));
        REQUIRE(::mkfifo((d / "fifo").c_str(), 0600) == 0);
        Result f = copy_app({(d / "fifo").string(), (d / "dst").string()}, d.path);
        CHECK(f.status == 1);
        CHECK(contains(f.err, "fifo"));
    }

    TEST_CASE("copy into an unwritable directory fails and leaves nothing") {
        Scratch d("ext4");
        write_file(d / "src", "data");
        fs::create_directory(d / "ro");
        // We are root, so permissions do not stop us; the immutable attribute does (ext4).
        if (std::system(("chattr +i " + (d / "ro").string() + " 2>/dev/null").c_str()) != 0) {
            BIORING_SKIP("chattr +i is not available here");
        }
        Result r = copy_app({(d / "src").string(), (d / "ro" / "dst").string()}, d.path);
        std::system(("chattr -i " + (d / "ro").string()).c_str());
        CAPTURE(r.err);
        CHECK(r.status == 1);
        CHECK(contains(r.err, (d / "ro").string()));
        CHECK(fs::is_empty(d / "ro"));
    }

    TEST_CASE("copy onto a full file system fails cleanly and keeps the old destination") {
        Scratch d("ext4");
        fs::create_directory(d / "small");
        if (::mount("tmpfs", (d / "small").c_str(), "tmpfs", 0, "size=8M") != 0) {
            BIORING_SKIP(std::string("cannot mount a tmpfs (") + std::strerror(errno) + ")");
        }
        struct Unmount {
            fs::path p;
            ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
        } unmount{d / "small"};
        write_file(d / "src", random_string(16 << 20, 6));
        write_file(d / "small" / "dst", "previous");
        for (const char* qd : {"1", "32"}) {
            CAPTURE(qd);
            Result r = copy_app({"--qd", qd, (d / "src").string(), (d / "small" / "dst").string()},
                                d.path);
            CAPTURE(r.err);
            CHECK(r.status == 1);
            CHECK(contains(r.err, (d / "small" / "dst").string()));
            CHECK(contains(r.err, std::strerror(ENOSPC)));
            CHECK(slurp(d / "small" / "dst") == "previous");
            CHECK(count_temps(d / "small") == 0);
        }
    }

    TEST_CASE(
        "SIGTERM and SIGINT during a long copy exit 143 and 130 and remove the temporary file") {
        Scratch d("shm");
        {
            // Large and sparse: costs no memory, and 4K requests at queue depth 1 take seconds.
            int fd = ::open((d / "src").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
            REQUIRE(fd >= 0);
            REQUIRE(::ftruncate(fd, 8ll << 30) == 0);
            ::close(fd);
        }
        write_file(d / "dst", "unchanged");
        const std::string tmp = bioring::apps::temp_name_for((d / "dst").string(), 0);
        for (int sig : {SIGTERM, SIGINT}) {
            CAPTURE(sig);
            Proc p(
                {copy_exe, "--qd", "1", "--bs", "4K", (d / "src").string(), (d / "dst").string()},
                d.path);
            const std::string my_tmp = bioring::apps::temp_name_for((d / "dst").string(), p.pid());
            // Wait until the copy is under way (its temporary file exists), then interrupt it.
            for (int i = 0; i < 400 && !fs::exists(my_tmp); ++i) {
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            }
            CHECK(fs::exists(my_tmp));
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            ::kill(p.pid(), sig);
            Result r = p.wait();
            CAPTURE(r.err);
            CHECK(r.status == 128 + sig);
            CHECK_FALSE(fs::exists(my_tmp));
            CHECK(count_temps(d.path) == 0);
            CHECK(slurp(d / "dst") == "unchanged");
            CHECK(contains(r.err, sig == SIGTERM ? "SIGTERM" : "SIGINT"));
        }
    }

    TEST_CASE("a temporary file left by a killed copy is removed by the next run") {
        Scratch d("shm");
        {
            int fd = ::open((d / "big").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
            REQUIRE(fd >= 0);
            REQUIRE(::ftruncate(fd, 8ll << 30) == 0);
            ::close(fd);
        }
        Proc p({copy_exe, "--qd", "1", "--bs", "4K", (d / "big").string(), (d / "dst").string()},
               d.path);
        const std::string left = bioring::apps::temp_name_for((d / "dst").string(), p.pid());
        for (int i = 0; i < 400 && !fs::exists(left); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        ::kill(p.pid(), SIGKILL);
        CHECK(p.wait().status == 128 + SIGKILL);
        CHECK(fs::exists(left));
        CHECK_FALSE(fs::exists(d / "dst"));
        const std::string data = random_string(100000, 8);
        write_file(d / "src", data);
        Result r = copy_app({(d / "src").string(), (d / "dst").string()}, d.path);
        REQUIRE(r.status == 0);
        CHECK(contains(r.err, "stale temporary file"));
        CHECK_FALSE(fs::exists(left));
        CHECK(slurp(d / "dst") == data);
        CHECK(count_temps(d.path) == 0);
    }

    TEST_CASE("a block device destination is written in place and only up to the data") {
        Scratch d("ext4");
        const std::string image = (d / "image").string();
        write_file(image, std::string(8 << 20, '\xab'));
        std::string dev;
        {
            FILE* f = ::popen(("losetup -f --show " + image + " 2>/dev/null").c_str(), "r");
            char buf[256] = {};
            if (f != nullptr) {
                if (std::fgets(buf, sizeof buf, f) != nullptr) {
                    dev = buf;
                }
                ::pclose(f);
            }
            while (!dev.empty() && (dev.back() == '\n' || dev.back() == ' ')) {
                dev.pop_back();
            }
        }
        if (dev.empty()) {
            BIORING_SKIP("cannot attach a loop device");
        }
        struct Detach {
            std::string dev;
            ~Detach() { std::system(("losetup -d " + dev).c_str()); }
        } detach{dev};
        const std::string data = random_string(1000000 + 77, 9);
        write_file(d / "src", data);
        Result r = copy_app({"--verify", "--bs", "64K", (d / "src").string(), dev}, d.path);
        CAPTURE(r.err);
        REQUIRE(r.status == 0);
        CHECK(contains(r.err, "block device"));
        CHECK(contains(r.err, "in place"));
        const std::string back = slurp(dev);
        REQUIRE(back.size() == 8u << 20);
        CHECK(back.substr(0, data.size()) == data);
        CHECK(back.substr(data.size()) == std::string((8 << 20) - data.size(), '\xab'));
        // And the device as a source: all of it, by BLKGETSIZE64.
        Result b = copy_app({(dev), (d / "out").string()}, d.path);
        CAPTURE(b.err);
        REQUIRE(b.status == 0);
        CHECK(slurp(d / "out") == back);
        // A device smaller than the source is refused before anything is written.
        write_file(d / "huge", random_string(9 << 20, 10));
        Result h = copy_app({(d / "huge").string(), dev}, d.path);
        CHECK(h.status == 1);
        CHECK(contains(h.err, dev));
        CHECK(slurp(dev) == back);
    }

    TEST_CASE("a progress bar is drawn on a terminal") {
        if (std::system("command -v script >/dev/null 2>&1") != 0) {
            BIORING_SKIP("script(1) is not installed");
        }
        Scratch d("shm");
        {
            int fd = ::open((d / "src").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
            REQUIRE(fd >= 0);
            REQUIRE(::ftruncate(fd, 2ll << 30) == 0);
            ::close(fd);
        }
        // script(1) gives the copy a pseudo-terminal as stdout and stderr.
        const std::string cmd = "script -qec '" + copy_exe + " --qd 1 --bs 4K " +
                                (d / "src").string() + " " + (d / "dst").string() + "' /dev/null";
        Result r = run({"/bin/sh", "-c", cmd}, d.path);
        CAPTURE(r.out.substr(0, 400));
        CHECK(r.status == 0);
        CHECK(contains(r.out, "copy ["));
        CHECK(contains(r.out, "ETA"));
        CHECK(contains(r.out, "2.0 GiB"));
    }

    TEST_CASE("hostile command lines exit 2 with a message and write nothing") {
        Scratch d("shm");
        write_file(d / "src", "x");
        const std::string s = (d / "src").string(), t = (d / "dst").string();
        const std::vector<std::vector<std::string>> bad = {
            {},
            {s},
            {s, t, "extra"},
            {"--bs", "abc", s, t},
            {"--bs", "-4K", s, t},
            {"--bs", "99999999999999P", s, t},
            {"--bs", "0", s, t},
            {"--bs", "1000", s, t},
            {"--bs", "2M", s, t},
            {"--bs", "", s, t},
            {"--qd", "0", s, t},
            {"--qd", "-1", s, t},
            {"--qd", "1e3", s, t},
            {"--qd", "99999999999999999999999", s, t},
            {"--threads", "0", s, t},
            {"--threads", "100000", s, t},
            {"--nope", s, t},
            {"-x", s, t},
            {"--verify=1", s, t},
            {s, t, "--qd"},
            {"", t},
        };
        for (const auto& args : bad) {
            std::string joined;
            for (const auto& a : args) {
                joined += "[" + a + "] ";
            }
            CAPTURE(joined);
            Result r = copy_app(args, d.path);
            CHECK(r.status == 2);
            CHECK(contains(r.err, "bioring-copy: "));
            CHECK_FALSE(fs::exists(d / "dst"));
            CHECK(count_temps(d.path) == 0);
        }
        Result h = copy_app({"--help"}, d.path);
        CHECK(h.status == 0);
        CHECK(contains(h.out, "usage: bioring-copy"));
    }

} // TEST_SUITE
