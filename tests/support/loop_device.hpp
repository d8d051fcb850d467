// SPDX-License-Identifier: MIT
// LoopDevice: a loop device attached to a backing file for one test, detached at the end.
// The backing file must carry a scratch name (tests/support/scratch.hpp), so a device left
// attached by a killed run is detached by the next run's remove_stale().
#pragma once

#include "tests/support/scratch.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace bioring::test {

class LoopDevice {
public:
    /// Attach @backing (needs root and losetup); @sector_size 0 keeps the default 512.
    /// ok() tells whether it worked.
    explicit LoopDevice(const std::string& backing, unsigned sector_size = 0) {
        if (::geteuid() != 0) {
            return;
        }
        std::string cmd = "losetup --find --show ";
        if (sector_size != 0) {
            cmd += "-b " + std::to_string(sector_size) + " ";
        }
        cmd += backing + " 2>/dev/null";
        FILE* p = ::popen(cmd.c_str(), "r");
        if (p == nullptr) {
            return;
        }
        char line[256] = {};
        if (std::fgets(line, sizeof line, p) != nullptr) {
            device_ = line;
            while (!device_.empty() && (device_.back() == '\n' || device_.back() == ' ')) {
                device_.pop_back();
            }
        }
        if (::pclose(p) != 0) {
            device_.clear();
        }
    }
    ~LoopDevice() {
        if (!device_.empty()) {
            (void)!std::system(("losetup -d " + device_ + " 2>/dev/null").c_str());
        }
    }
    LoopDevice(const LoopDevice&) = delete;
    LoopDevice& operator=(const LoopDevice&) = delete;

    bool ok() const { return !device_.empty(); }
    const std::string& path() const { return device_; }

private:
    std::string device_;
};

} // namespace bioring::test
