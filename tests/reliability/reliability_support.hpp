// SPDX-License-Identifier: MIT
// Helpers for the reliability tests: spawn an app with an explicit environment (fault spec,
// backend) and a deadline, and check the outcome invariant every faulted run must keep.
// Reuses the apps tests' scratch directories and file helpers (tests/apps/app_support.hpp).
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

/// The parent's environment with @set applied (an empty value removes the variable).
inline std::vector<std::string> child_env(const std::map<std::string, std::string>& set)
{
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string kv = *e;
        const std::string key = kv.substr(0, kv.find('='));
        if (set.count(key) == 0) {
            env.push_back(kv);
        }
    }
    for (const auto& [k, v] : set) {
        if (!v.empty()) {
            env.push_back(k + "=" + v);
        }
    }
    return env;
}

/// A spawned app with its own environment; stdout/stderr go to files under @dir.
class EnvProc {
public:
    EnvProc(const std::vector<std::string>& args, const std::vector<std::string>& env,
            const fs::path& dir)
        : out_(dir / (".rout." + std::to_string(seq()))),
          err_(dir / (".rerr." + std::to_string(seq())))
    {
        std::vector<char*> argv, envp;
        for (const auto& a : args) {
            argv.push_back(const_cast<char*>(a.c_str()));
        }
        argv.push_back(nullptr);
        for (const auto& e : env) {
            envp.push_back(const_cast<char*>(e.c_str()));
        }
        envp.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&fa, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), envp.data());
        posix_spawn_file_actions_destroy(&fa);
        REQUIRE_MESSAGE(rc == 0, "cannot spawn " << args[0] << ": " << std::strerror(rc));
    }
    pid_t pid() const { return pid_; }
    /// Wait up to @limit; a process still running then is killed and reported as status -1.
    Result wait(std::chrono::milliseconds limit = std::chrono::seconds(60))
    {
        const auto end = std::chrono::steady_clock::now() + limit;
        int st = 0;
        bool hung = false;
        for (;;) {
            const pid_t r = ::waitpid(pid_, &st, WNOHANG);
            if (r == pid_) {
                break;
            }
            if (r < 0 && errno != EINTR) {
                break;
            }
            if (std::chrono::steady_clock::now() > end) {
                ::kill(pid_, SIGKILL);
                while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
                }
                hung = true;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        Result res;
        res.status = hung ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        res.out = slurp(out_);
        res.err = slurp(err_);
        std::error_code ec;
        fs::remove(out_, ec);
        fs::remove(err_, ec);
        return res;
    }

private:
    static int seq()
    {
        static int n = 0;
        return n++;
    }
    fs::path out_, err_;
    pid_t pid_ = -1;
};

inline Result run_env(const std::vector<std::string>& args,
                      const std::map<std::string, std::string>& set, const fs::path& dir,
                      std::chrono::milliseconds limit = std::chrono::seconds(60))
{
    EnvProc p(args, child_env(set), dir);
    return p.wait(limit);
}

/// Faults a child reports at exit ("injected N faults"), or 0.
inline std::uint64_t faults_reported(const std::string& err)
{
    static const std::regex re("injected ([0-9]+) faults");
    std::smatch m;
    return std::regex_search(err, m, re) ? std::stoull(m[1].str()) : 0;
}

/// Has a temporary file of the apps (".NAME.bioring-tmp.<pid>") anywhere in @dir?
inline std::vector<std::string> temps_in(const fs::path& dir)
{
    std::vector<std::string> v;
    for (auto& e : fs::directory_iterator(dir)) {
        const std::string n = e.path().filename().string();
        if (n.find(".bioring-tmp.") != std::string::npos) {
            v.push_back(n);
        }
    }
    return v;
}

inline std::string join(const std::vector<std::string>& args)
{
    std::string s;
    for (const auto& a : args) {
        s += a + " ";
    }
    return s;
}

} // namespace reliability_test
