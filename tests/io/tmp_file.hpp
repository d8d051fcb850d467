// SPDX-License-Identifier: MIT
// TempPath: a unique path for one test's file, removed when the test ends.
//
// O_DIRECT files live under $BIORING_TEST_DIR (default /dev/shm, tmpfs: O_DIRECT accepted,
// no DIO alignment reported) or, for the ext4 cases, next to the test binary in the build
// tree (ext4 here: statx reports a 512-byte DIO alignment). Never /tmp. The name is a
// scratch name (tests/support/scratch.hpp): a file a killed run left is removed by the next.
#pragma once

#include "tests/support/scratch.hpp"

#include <filesystem>
#include <string>

namespace bioring::test {

class TempPath {
public:
    explicit TempPath(const std::string& dir = test_dir(), const std::string& tag = "io")
        : path_(unique_name(dir, tag) + ".tmp") {
        std::filesystem::remove(path_);
    }
    ~TempPath() {
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
