// SPDX-License-Identifier: MIT
// The tests' own cleanup (tests/support/scratch.hpp): what a killed run left behind — a
// scratch directory with a tmpfs mounted inside, a loop device attached to a file in it, a
// scratch file — is detached, unmounted and removed by the next run, and nothing of a run
// that is still alive is touched.
#include "tests/support/loop_device.hpp"
#include "tests/support/scratch.hpp"
#include "tests/support/skip.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

using namespace bioring::test;
namespace fs = std::filesystem;

namespace {

// A pid that no process has now: a child that has exited and been reaped.
pid_t dead_pid() {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::_exit(0);
    }
    int st = 0;
    REQUIRE(::waitpid(pid, &st, 0) == pid);
    return pid;
}

bool mounted(const std::string& point) {
    std::ifstream in("/proc/self/mounts");
    for (std::string src, p, rest; in >> src >> p && std::getline(in, rest);) {
        if (p == point) {
            return true;
        }
    }
    return false;
}

bool loop_attached(const std::string& dev) {
    std::string cmd = "losetup " + dev + " >/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
}

} // namespace

TEST_SUITE("io") {

    TEST_CASE("scratch names carry their creator's pid and only dead creators' entries are stale") {
        const std::string mine = unique_name("/dev/shm", "cleanup");
        CHECK(scratch_owner(mine) == ::getpid());
        CHECK_FALSE(scratch_is_stale(mine));
        CHECK(unique_name("/dev/shm", "cleanup") != mine);
        const pid_t gone = dead_pid();
        CHECK(scratch_is_stale("/x/" + std::string(scratch_prefix) + "t." + std::to_string(gone) +
                               ".abc"));
        CHECK(scratch_owner("/dev/shm/bioring-other.1.2") == 0);
        CHECK(scratch_owner("/dev/shm/bioring-test.tag.notapid.x") == 0);
    }

    TEST_CASE(
        "a killed run's scratch directory, tmpfs mount and loop device are removed by the next") {
        if (::geteuid() != 0) {
            BIORING_SKIP("mounts and loop devices need root");
        }
        const pid_t gone = dead_pid();
        // Inside a live scratch directory of this process, so that no other test process's
        // cleanup (which scans /dev/shm and the build tree) takes the fake leftovers first.
        const std::string root = unique_name(build_tree_dir(), "cleanup");
        fs::create_directories(root);
        const std::string stale =
            root + "/" + scratch_prefix + "cleanup." + std::to_string(gone) + ".0";
        const std::string live = unique_name(root, "cleanup");
        fs::create_directories(stale + "/mnt");
        fs::create_directories(live);
        {
            std::ofstream(stale + "/file") << "left behind";
            std::ofstream(live + "/file") << "in use";
        }
        // The leftovers of the "killed" run: a tmpfs inside its directory, a loop device over a
        // file in it (as tests/apps/copy_test.cpp and tests/io/block_device_test.cpp make them).
        if (::mount("tmpfs", (stale + "/mnt").c_str(), "tmpfs", 0, "size=1M") != 0) {
            fs::remove_all(root);
            BIORING_SKIP("cannot mount a tmpfs here");
        }
        {
            const int fd = ::open((stale + "/image").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
            REQUIRE(fd >= 0);
            REQUIRE(::ftruncate(fd, 1 << 20) == 0);
            ::close(fd);
        }
        std::string dev;
        {
            LoopDevice loop(stale + "/image");
            if (loop.ok()) {
                // Attach a second one that nobody detaches: the killed run's device.
                FILE* p =
                    ::popen(("losetup --find --show " + stale + "/image 2>/dev/null").c_str(), "r");
                REQUIRE(p != nullptr);
                char line[256] = {};
                if (std::fgets(line, sizeof line, p) != nullptr) {
                    dev = line;
                    dev.erase(dev.find_last_not_of(" \n") + 1);
                }
                ::pclose(p);
            }
        }
        CHECK(mounted(stale + "/mnt"));

        remove_stale({root});

        CHECK_FALSE(mounted(stale + "/mnt"));
        CHECK_FALSE(fs::exists(stale));
        if (!dev.empty()) {
            CHECK_FALSE(loop_attached(dev));
        } else {
            MESSAGE("losetup could not attach here: the loop device part was not exercised");
        }
        // The live run's directory is untouched.
        CHECK(fs::exists(live + "/file"));
        fs::remove_all(live);
        fs::remove_all(root);
    }

} // TEST_SUITE
