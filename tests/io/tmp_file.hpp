// SPDX-License-Identifier: MIT
// TempPath: a unique path for one test's file, removed when the test ends.
//
// O_DIRECT files live under $BIORING_TEST_DIR (default /dev/shm, tmpfs: O_DIRECT accepted,
// no DIO alignment reported) or, for the ext4 cases, next to the test binary in the build
// tree (/work/main/build-*/ is ext4: statx reports a 512-byte DIO alignment). Never /tmp.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace bioring::test {

/// $BIORING_TEST_DIR, or /dev/shm.
inline std::string test_dir()
{
    const char* dir = std::getenv("BIORING_TEST_DIR");
    return dir != nullptr && *dir != '\0' ? dir : "/dev/shm";
}

/// The directory holding the running test binary (the build tree: ext4 here).
inline std::string build_tree_dir()
{
    return std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
}

class TempPath {
public:
    explicit TempPath(const std::string& dir = test_dir(), const std::string& tag = "io")
    {
        static std::atomic<unsigned> seq{0};
        path_ = dir + "/bioring-" + tag + "-" + std::to_string(::getpid()) + "-" +
                std::to_string(seq.fetch_add(1)) + ".tmp";
        std::filesystem::remove(path_);
    }
    ~TempPath()
    {
        std::error_code ec;
        std::filesystem::remove(path_, ec);
    }
    TempPath(const TempPath&) = delete;
    TempPath& operator=(const TempPath&) = delete;

    const std::string& str() const noexcept { return path_; }
    const char* c_str() const noexcept { return path_.c_str(); }

private:
    std::string path_;
};

} // namespace bioring::test
