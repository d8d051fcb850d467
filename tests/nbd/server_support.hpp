// SPDX-License-Identifier: MIT
// Helpers for the tests that run bioring-nbd against real clients: start the server on a
// Unix socket (or TCP) in a scratch directory, wait until it listens, stop it with a
// signal; find client programs on PATH (a missing one makes the test a BIORING-SKIP).
#pragma once

#include "tests/apps/app_support.hpp"

#include <chrono>
#include <csignal>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <vector>

namespace nbd_test {

namespace fs = std::filesystem;

/// The full path of @prog on PATH, or "" when it is not installed.
inline std::string which(const std::string& prog) {
    if (prog.find('/') != std::string::npos) {
        return ::access(prog.c_str(), X_OK) == 0 ? prog : "";
    }
    const char* path = std::getenv("PATH");
    std::string p = path != nullptr ? path : "/usr/bin:/bin";
    p += ":/usr/sbin:/sbin";
    std::size_t start = 0;
    while (start <= p.size()) {
        std::size_t end = p.find(':', start);
        if (end == std::string::npos) {
            end = p.size();
        }
        std::string cand = p.substr(start, end - start) + "/" + prog;
        if (end > start && ::access(cand.c_str(), X_OK) == 0) {
            return cand;
        }
        start = end + 1;
    }
    return "";
}

/// Resolve every tool; returns the first missing one ("" when all are there).
inline std::string missing(std::initializer_list<const char*> tools) {
    for (const char* t : tools) {
        if (which(t).empty()) {
            return t;
        }
    }
    return "";
}

/// Run @args (args[0] looked up on PATH) with output captured.
inline apps_test::Result tool(std::vector<std::string> args, const fs::path& dir) {
    args[0] = which(args[0]);
    REQUIRE_MESSAGE(!args[0].empty(), "tool not found");
    return apps_test::run(args, dir);
}

/// A running bioring-nbd (its stdout and stderr go to files in the scratch directory).
class Server {
public:
    /// Start bioring-nbd with @args (FILE last) on @dir/nbd.sock, or as @args say when
    /// @unix_socket is false; waits until it prints its "serving" line.
    Server(const fs::path& dir, std::vector<std::string> args, bool unix_socket = true)
        : sock_((dir / "nbd.sock").string()) {
        static int seq = 0;
        const std::string tag = std::to_string(seq++);
        out_ = dir / ("server.out." + tag);
        err_ = dir / ("server.err." + tag);
        std::vector<std::string> argv{BIORING_NBD_EXE};
        if (unix_socket) {
            argv.push_back("--socket");
            argv.push_back(sock_);
        }
        argv.insert(argv.end(), args.begin(), args.end());
        std::vector<char*> cargv;
        for (auto& a : argv) {
            cargv.push_back(a.data());
        }
        cargv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&fa, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int rc = posix_spawn(&pid_, cargv[0], &fa, nullptr, cargv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        REQUIRE_MESSAGE(rc == 0, "cannot spawn bioring-nbd");
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        for (;;) {
            banner_ = apps_test::slurp(out_);
            if (banner_.find("serving") != std::string::npos) {
                break;
            }
            int st = 0;
            if (::waitpid(pid_, &st, WNOHANG) == pid_) {
                pid_ = -1;
                FAIL("bioring-nbd exited before serving: " << apps_test::slurp(err_));
            }
            REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                            "bioring-nbd did not start");
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
    ~Server() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            int st = 0;
            ::waitpid(pid_, &st, 0);
        }
    }
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// nbd+unix URI of the export @name.
    std::string uri(const std::string& name = "") const {
        return "nbd+unix:///" + name + "?socket=" + sock_;
    }
    const std::string& socket_path() const { return sock_; }
    /// What the server printed on stdout when it started.
    const std::string& banner() const { return banner_; }
    pid_t pid() const { return pid_; }
    /// stderr so far.
    std::string err() const { return apps_test::slurp(err_); }

    /// Send @sig and wait for the exit. Returns: status (128 + signal if killed), output.
    apps_test::Result stop(int sig = SIGTERM) {
        apps_test::Result r;
        ::kill(pid_, sig);
        int st = 0;
        while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
        r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        r.out = apps_test::slurp(out_);
        r.err = apps_test::slurp(err_);
        return r;
    }

private:
    std::string sock_;
    fs::path out_, err_;
    std::string banner_;
    pid_t pid_ = -1;
};

} // namespace nbd_test
