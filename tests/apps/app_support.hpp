// SPDX-License-Identifier: MIT
// Helpers for the apps tests: the shared process runner and file helpers
// (tests/support/process.hpp), scratch directories on tmpfs (/dev/shm) and on the ext4 work
// tree with names a later run can clean up (tests/support/scratch.hpp).
#pragma once

#include "tests/support/process.hpp"
#include "tests/support/scratch.hpp"
#include "tests/support/skip.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

namespace apps_test {

namespace fs = std::filesystem;

using bioring::test::random_string;
using bioring::test::Result;
using bioring::test::run;
using bioring::test::slurp;
using bioring::test::write_file;
using Proc = bioring::test::Process;

// A scratch directory removed at the end; where = "shm" (tmpfs) or "ext4" (the work tree).
// Its name is a scratch name: what a killed run leaves is removed by the next one.
struct Scratch {
    fs::path path;
    explicit Scratch(const std::string& where) {
        const std::string root =
            where == "shm" ? std::string("/dev/shm") : fs::current_path().string();
        path = bioring::test::unique_name(root, "apps");
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~Scratch() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path operator/(const std::string& name) const { return path / name; }
};

inline std::size_t count_temps(const fs::path& dir) {
    std::size_t n = 0;
    for (auto& e : fs::directory_iterator(dir)) {
        n += e.path().filename().string().find(".bioring-tmp.") != std::string::npos;
    }
    return n;
}

inline bool contains(const std::string& hay, const std::string& needle) {
    return hay.find(needle) != std::string::npos;
}

} // namespace apps_test
