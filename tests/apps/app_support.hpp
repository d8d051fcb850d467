// SPDX-License-Identifier: MIT
// Helpers for the apps tests: run an app binary (posix_spawn, output captured in files),
// scratch directories on tmpfs (/dev/shm) and on the ext4 work tree, file helpers.
#pragma once

#include <doctest/doctest.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <random>
#include <spawn.h>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace apps_test {

namespace fs = std::filesystem;

struct Result {
    int status = -1; ///< exit status, or 128 + signal
    std::string out, err;
};

inline std::string slurp(const fs::path& p)
{
    // read(2) until EOF: block devices report st_size 0.
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

inline void write_file(const fs::path& p, const std::string& s)
{
    std::ofstream(p, std::ios::binary | std::ios::trunc) << s;
}

inline std::string random_string(std::size_t n, unsigned seed)
{
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

// A spawned app whose stdout/stderr go to files under @dir.
class Proc {
public:
    Proc(const std::vector<std::string>& args, const fs::path& dir)
        : id_(next_id()), out_(dir / (".out." + std::to_string(id_))),
          err_(dir / (".err." + std::to_string(id_)))
    {
        std::vector<char*> argv;
        for (const auto& a : args) {
            argv.push_back(const_cast<char*>(a.c_str()));
        }
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&fa, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        REQUIRE_MESSAGE(rc == 0, "cannot spawn " << args[0]);
    }
    pid_t pid() const { return pid_; }
    Result wait()
    {
        int st = 0;
        while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
        }
        Result r;
        r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        r.out = slurp(out_);
        r.err = slurp(err_);
        fs::remove(out_);
        fs::remove(err_);
        return r;
    }

private:
    static int next_id()
    {
        static int n = 0;
        return n++;
    }
    int id_;
    fs::path out_, err_;
    pid_t pid_ = -1;
};

inline Result run(const std::vector<std::string>& args, const fs::path& dir)
{
    Proc p(args, dir);
    Result r = p.wait();
    return r;
}

// A scratch directory removed at the end; where = "shm" (tmpfs) or "ext4" (the work tree).
struct Scratch {
    fs::path path;
    explicit Scratch(const std::string& where)
    {
        static int n = 0;
        fs::path root = where == "shm" ? fs::path("/dev/shm") : fs::current_path();
        path = root / ("bioring-apps-test." + std::to_string(::getpid()) + "." +
                       std::to_string(n++));
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~Scratch()
    {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path operator/(const std::string& name) const { return path / name; }
};

inline std::size_t count_temps(const fs::path& dir)
{
    std::size_t n = 0;
    for (auto& e : fs::directory_iterator(dir)) {
        n += e.path().filename().string().find(".bioring-tmp.") != std::string::npos;
    }
    return n;
}

inline bool contains(const std::string& hay, const std::string& needle)
{
    return hay.find(needle) != std::string::npos;
}

} // namespace apps_test
