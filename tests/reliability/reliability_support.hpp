// SPDX-License-Identifier: MIT
// Helpers for the reliability tests: spawn an app with an explicit environment (fault spec,
// backend) and a deadline (tests/support/process.hpp), and check the outcome invariant every
// faulted run must keep. Reuses the apps tests' scratch directories (tests/apps/app_support.hpp).
#pragma once

#include "tests/apps/app_support.hpp"

#include <cstring>
#include <map>
#include <poll.h>
#include <regex>
#include <string>
#include <vector>

namespace reliability_test {

using namespace apps_test;

using bioring::test::child_env;

/// A spawned app with its own environment and, by default, a 60 s deadline.
class EnvProc : public bioring::test::Process {
public:
    EnvProc(const std::vector<std::string>& args, const std::vector<std::string>& env,
            const fs::path& dir)
        : Process(args, dir, &env) {}
    /// Wait up to @limit; a process still running then is killed and reported as status -1.
    Result wait(std::chrono::milliseconds limit = std::chrono::seconds(60)) {
        return Process::wait(limit);
    }
};

inline Result run_env(const std::vector<std::string>& args,
                      const std::map<std::string, std::string>& set, const fs::path& dir,
                      std::chrono::milliseconds limit = std::chrono::seconds(60)) {
    EnvProc p(args, child_env(set), dir);
    return p.wait(limit);
}

/// Faults a child reports at exit ("injected N faults"), or 0.
inline std::uint64_t faults_reported(const std::string& err) {
    static const std::regex re("injected ([0-9]+) faults");
    std::smatch m;
    return std::regex_search(err, m, re) ? std::stoull(m[1].str()) : 0;
}

/// Has a temporary file of the apps (".NAME.bioring-tmp.<pid>") anywhere in @dir?
inline std::vector<std::string> temps_in(const fs::path& dir) {
    std::vector<std::string> v;
    for (auto& e : fs::directory_iterator(dir)) {
        const std::string n = e.path().filename().string();
        if (n.find(".bioring-tmp.") != std::string::npos) {
            v.push_back(n);
        }
    }
    return v;
}

inline std::string join(const std::vector<std::string>& args) {
    std::string s;
    for (const auto& a : args) {
        s += a + " ";
    }
    return s;
}

} // namespace reliability_test
