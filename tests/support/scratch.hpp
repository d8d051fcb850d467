// SPDX-License-Identifier: MIT
// Names for the files, directories, loop devices and mounts a test creates, and removal of
// the ones a killed earlier run left behind.
//
// Every such name is "bioring-test.<tag>.<pid>.<random>" (tag without dots), in /dev/shm
// ($BIORING_TEST_DIR) or in the build tree. The pid tells whether the creator still runs: a
// name whose pid is dead is stale. remove_stale() (run once per process, by the first
// unique_name() call, over /dev/shm, $BIORING_TEST_DIR, the build tree and the working
// directory) detaches loop devices backed by a file in a stale entry, unmounts mounts inside
// one and removes the stale entries. Only direct children of the scanned directories are
// judged, and a live pid, even a reused one, is never touched.
#pragma once

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace bioring::test {

inline constexpr const char* scratch_prefix = "bioring-test.";

/// $BIORING_TEST_DIR, or /dev/shm (tmpfs: O_DIRECT accepted, no DIO alignment reported).
inline std::string test_dir() {
    const char* dir = std::getenv("BIORING_TEST_DIR");
    return dir != nullptr && *dir != '\0' ? dir : "/dev/shm";
}

/// The directory holding the running test binary (the build tree: ext4 here).
inline std::string build_tree_dir() {
    return std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
}

/// Returns: the creator pid encoded in a scratch name (a path's last component or a path
/// containing one), or 0 when @s holds no scratch name.
inline long scratch_owner(const std::string& s) {
    const std::size_t at = s.rfind(scratch_prefix);
    if (at == std::string::npos) {
        return 0;
    }
    const std::size_t tag_end = s.find('.', at + std::char_traits<char>::length(scratch_prefix));
    if (tag_end == std::string::npos) {
        return 0;
    }
    char* end = nullptr;
    const long pid = std::strtol(s.c_str() + tag_end + 1, &end, 10);
    return pid > 0 && end != nullptr && *end == '.' ? pid : 0;
}

/// Returns: true when @s holds a scratch name whose creator is no longer running.
inline bool scratch_is_stale(const std::string& s) {
    const long pid = scratch_owner(s);
    return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

/// Remove the entries of @dirs (direct children only) whose scratch name belongs to a dead
/// process: first detach the loop devices backed by a file in or at such an entry and
/// unmount the mounts inside it. Context: any test; best effort, never throws.
inline void remove_stale(const std::vector<std::string>& dirs) {
    namespace fs = std::filesystem;
    std::vector<std::string> stale;
    for (const auto& d : dirs) {
        std::error_code ec;
        for (fs::directory_iterator it(d, ec), end; !ec && it != end; it.increment(ec)) {
            const std::string name = it->path().filename().string();
            if (name.rfind(scratch_prefix, 0) == 0 && scratch_is_stale(name)) {
                stale.push_back(it->path().string());
            }
        }
    }
    if (stale.empty()) {
        return;
    }
    const auto inside = [&](const std::string& p) {
        for (const auto& s : stale) {
            if (p == s || p.rfind(s + "/", 0) == 0) {
                return true;
            }
        }
        return false;
    };
    if (::geteuid() == 0) {
        // Loop devices first: their backing file may sit inside a stale directory.
        if (FILE* p =
                ::popen("losetup --list --noheadings --output NAME,BACK-FILE 2>/dev/null", "r")) {
            char line[4096];
            std::vector<std::string> devs;
            while (std::fgets(line, sizeof line, p) != nullptr) {
                std::istringstream in(line);
                std::string dev, back;
                in >> dev >> back;
                if (!dev.empty() && inside(back)) {
                    devs.push_back(dev);
                }
            }
            ::pclose(p);
            for (const auto& dev : devs) {
                (void)!std::system(("losetup -d " + dev + " 2>/dev/null").c_str());
            }
        }
        // Mounts inside a stale directory, deepest first.
        std::ifstream mounts("/proc/self/mounts");
        std::vector<std::string> points;
        for (std::string src, point, rest; mounts >> src >> point && std::getline(mounts, rest);) {
            if (inside(point)) {
                points.push_back(point);
            }
        }
        for (auto it = points.rbegin(); it != points.rend(); ++it) {
            ::umount2(it->c_str(), MNT_DETACH);
        }
    }
    for (const auto& s : stale) {
        std::error_code rm;
        fs::remove_all(s, rm);
    }
}

/// Returns: "<dir>/bioring-test.<tag>.<pid>.<random>": unique across processes and runs.
/// The first call of a process removes what dead runs left in test_dir(), the build tree
/// and the working directory.
inline std::string unique_name(const std::string& dir, const std::string& tag) {
    static std::once_flag once;
    std::call_once(once, [] {
        std::error_code ec;
        remove_stale(
            {test_dir(), "/dev/shm", build_tree_dir(), std::filesystem::current_path(ec).string()});
    });
    static std::mutex mu;
    static std::mt19937_64 rng{std::random_device{}()};
    std::lock_guard<std::mutex> g(mu);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
    return dir + "/" + scratch_prefix + tag + "." + std::to_string(::getpid()) + "." + buf;
}

} // namespace bioring::test
