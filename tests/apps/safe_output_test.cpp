// SPDX-License-Identifier: MIT
// SafeOutput: the temporary file, its cleanup, commit by rename, stale-temp removal and the
// refusals (same file, directories, missing directory). Runs on the ext4 work tree.
#include "apps/common/safe_output.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/wait.h>
#include <system_error>
#include <unistd.h>

namespace fs = std::filesystem;
using bioring::apps::check_source;
using bioring::apps::SafeOutput;
using bioring::apps::temp_name_for;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        const char* base = std::getenv("BIORING_TEST_DIR");
        fs::path root = base ? fs::path(base) : fs::current_path();
        path = root / ("safe_output_test." + std::to_string(::getpid()));
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
};

void write_file(const fs::path& p, const std::string& s) {
    std::ofstream(p, std::ios::binary) << s;
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

std::size_t count_temps(const fs::path& dir) {
    std::size_t n = 0;
    for (auto& e : fs::directory_iterator(dir)) {
        n += e.path().filename().string().find(".bioring-tmp.") != std::string::npos;
    }
    return n;
}

} // namespace

TEST_SUITE("apps") {

    TEST_CASE("commit renames the temporary file over an existing destination") {
        TempDir d;
        write_file(d.path / "src", "source");
        write_file(d.path / "dst", "old");
        ::chmod((d.path / "dst").c_str(), 0600);
        auto st = check_source(d.path / "src");
        {
            SafeOutput out((d.path / "dst").string(), st, "test");
            CHECK(out.write_path() == temp_name_for((d.path / "dst").string(), ::getpid()));
            CHECK(fs::exists(out.write_path()));
            CHECK(read_file(d.path / "dst") == "old");
            REQUIRE(::pwrite(out.fd(), "new data", 8, 0) == 8);
            out.truncate(3);
            out.commit();
        }
        CHECK(read_file(d.path / "dst") == "new");
        CHECK((fs::status(d.path / "dst").permissions() & fs::perms::all) ==
              (fs::perms::owner_read | fs::perms::owner_write));
        CHECK(count_temps(d.path) == 0);
    }

    TEST_CASE("an uncommitted output removes its temporary file and keeps the destination") {
        TempDir d;
        write_file(d.path / "src", "source");
        write_file(d.path / "dst", "old");
        auto st = check_source(d.path / "src");
        std::string tmp;
        {
            SafeOutput out((d.path / "dst").string(), st, "test");
            tmp = out.write_path();
            REQUIRE(::pwrite(out.fd(), "partial", 7, 0) == 7);
        }
        CHECK_FALSE(fs::exists(tmp));
        CHECK(read_file(d.path / "dst") == "old");
        CHECK(count_temps(d.path) == 0);
    }

    TEST_CASE("stale temporary files of dead runs are removed and live ones kept") {
        TempDir d;
        write_file(d.path / "src", "source");
        pid_t child = ::fork();
        if (child == 0) {
            ::_exit(0);
        }
        REQUIRE(child > 0);
        ::waitpid(child, nullptr, 0);
        const std::string dst = (d.path / "dst").string();
        write_file(temp_name_for(dst, child), "stale");
        // Liveness is the run's lock on its file, not its pid: pid 1 exists, but nothing holds
        // this file, so it is stale; the one locked here (as a live run does) is kept.
        write_file(temp_name_for(dst, 1), "pid alive, file unlocked");
        write_file(temp_name_for(dst, 999999999), "locked by a live run");
        const int held = ::open(temp_name_for(dst, 999999999).c_str(), O_RDWR | O_CLOEXEC);
        REQUIRE(held >= 0);
        struct flock fl {};
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        REQUIRE(::fcntl(held, F_OFD_SETLK, &fl) == 0);
        write_file(d.path / ".other.bioring-tmp.123", "not ours");
        auto st = check_source(d.path / "src");
        {
            SafeOutput out(dst, st, "test");
            CHECK_FALSE(fs::exists(temp_name_for(dst, child)));
            CHECK_FALSE(fs::exists(temp_name_for(dst, 1)));
            CHECK(fs::exists(temp_name_for(dst, 999999999)));
            CHECK(fs::exists(d.path / ".other.bioring-tmp.123"));
        }
        ::close(held);
    }

    TEST_CASE("same file directories and missing paths are refused with the path named") {
        TempDir d;
        write_file(d.path / "src", "source");
        fs::create_hard_link(d.path / "src", d.path / "link");
        fs::create_directory(d.path / "sub");
        auto st = check_source(d.path / "src");
        auto refused = [&](const fs::path& dst, const std::string& needle) {
            CAPTURE(dst);
            try {
                SafeOutput out(dst.string(), st, "test");
                FAIL("accepted");
            } catch (const std::system_error& e) {
                CHECK(std::string(e.what()).find(needle) != std::string::npos);
            }
        };
        refused(d.path / "src", "same file");
        refused(d.path / "link", "same file");
        refused(d.path / "sub", "is a directory");
        refused(d.path / "missing" / "dst", (d.path / "missing").string());
        refused(d.path / "src" / "dst", (d.path / "src").string());
        refused("/dev/null", "not a regular file");
        CHECK_THROWS_AS(check_source(d.path / "nope"), std::system_error);
        CHECK_THROWS_AS(check_source(d.path / "sub"), std::system_error);
        CHECK_THROWS_AS(check_source("/dev/null"), std::system_error);
        REQUIRE(::mkfifo((d.path / "fifo").c_str(), 0600) == 0);
        CHECK_THROWS_AS(check_source(d.path / "fifo"), std::system_error);
        CHECK(count_temps(d.path) == 0);
        CHECK(count_temps(d.path / "sub") == 0);
    }

} // TEST_SUITE
