// SPDX-License-Identifier: MIT
// Running a program from a test (posix_spawn, stdout and stderr captured in files, an
// optional environment and deadline) and the file helpers those tests share.
#pragma once

#include <doctest/doctest.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace bioring::test {

struct Result {
    int status = -1; ///< exit status, 128 + signal, or -1 when killed at its deadline
    std::string out, err;
};

/// The whole content of @p, read(2) until EOF (block devices report st_size 0); "" if it
/// cannot be opened.
inline std::string slurp(const std::filesystem::path& p) {
    std::string s;
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return s;
    }
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size > 0) {
        s.reserve(static_cast<std::size_t>(st.st_size));
    }
    std::size_t got = 0;
    for (;;) {
        s.resize(got + (1 << 20));
        ssize_t n = ::read(fd, s.data() + got, 1 << 20);
        if (n <= 0) {
            break;
        }
        got += static_cast<std::size_t>(n);
    }
    s.resize(got);
    ::close(fd);
    return s;
}

inline void write_file(const std::filesystem::path& p, const std::string& s) {
    std::ofstream(p, std::ios::binary | std::ios::trunc) << s;
}

/// @n bytes of a deterministic stream seeded with @seed.
inline std::string random_string(std::size_t n, unsigned seed) {
    std::mt19937_64 rng(seed);
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; i += 8) {
        std::uint64_t v = rng();
        for (std::size_t j = 0; j < 8 && i + j < n; ++j) {
            s[i + j] = static_cast<char>(v >> (8 * j));
        }
    }
    return s;
}

/// The parent's environment with @set applied (an empty value removes the variable).
inline std::vector<std::string> child_env(const std::map<std::string, std::string>& set) {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string kv = *e;
        if (set.count(kv.substr(0, kv.find('='))) == 0) {
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

/// A spawned program whose stdout and stderr go to files under @dir (removed by wait()).
class Process {
public:
    /// @env: the child's whole environment (nullptr: the parent's).
    Process(const std::vector<std::string>& args, const std::filesystem::path& dir,
            const std::vector<std::string>* env = nullptr)
        : out_(dir / (".out." + std::to_string(seq()))),
          err_(dir / (".err." + std::to_string(seq()))) {
        std::vector<char*> argv, envp;
        for (const auto& a : args) {
            argv.push_back(const_cast<char*>(a.c_str()));
        }
        argv.push_back(nullptr);
        if (env != nullptr) {
            for (const auto& e : *env) {
                envp.push_back(const_cast<char*>(e.c_str()));
            }
            envp.push_back(nullptr);
        }
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&fa, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(),
                                   env != nullptr ? envp.data() : environ);
        posix_spawn_file_actions_destroy(&fa);
        REQUIRE_MESSAGE(rc == 0, "cannot spawn " << args[0] << ": " << std::strerror(rc));
    }
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    pid_t pid() const { return pid_; }

    /// Wait for the exit, at most @limit when given: a process still running then is
    /// killed and reported with status -1.
    Result wait(std::optional<std::chrono::milliseconds> limit = std::nullopt) {
        int st = 0;
        bool hung = false;
        if (!limit) {
            while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
            }
        } else {
            const auto end = std::chrono::steady_clock::now() + *limit;
            for (;;) {
                const pid_t r = ::waitpid(pid_, &st, WNOHANG);
                if (r == pid_ || (r < 0 && errno != EINTR)) {
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
        }
        Result r;
        r.status = hung ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        r.out = slurp(out_);
        r.err = slurp(err_);
        std::error_code ec;
        std::filesystem::remove(out_, ec);
        std::filesystem::remove(err_, ec);
        return r;
    }

private:
    static int seq() {
        static int n = 0;
        return n++;
    }
    std::filesystem::path out_, err_;
    pid_t pid_ = -1;
};

/// Run @args to completion with the parent's environment.
inline Result run(const std::vector<std::string>& args, const std::filesystem::path& dir) {
    return Process(args, dir).wait();
}

} // namespace bioring::test
