// SPDX-License-Identifier: MIT
// bench-rusage: run a command and write the CPU time of its whole process tree to a file.
//
// compare.sh wraps every run of every tool in this, so that bioring-bench, fio,
// uring-loop and asio-file-loop are charged by one method: wait4()'s rusage of the
// child, which sums every thread of the child's thread group (io_uring's io-wq workers
// are such threads) and every descendant the child waited for (fio's job processes).
// Unlike /usr/bin/time's %U/%S (10 ms steps) it keeps microseconds.
//
// usage: bench-rusage OUT.json command [args...]   (exit status: the command's)
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

double seconds(const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

double mono() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: bench-rusage OUT.json command [args...]\n");
        return 2;
    }
    // OUT is overwritten: a forgotten OUT would make the command's own path the output.
    const std::size_t n = std::strlen(argv[1]);
    if (n < 5 || std::strcmp(argv[1] + n - 5, ".json") != 0) {
        std::fprintf(stderr,
                     "bench-rusage: OUT '%s' must end in .json (it is overwritten)\n"
                     "usage: bench-rusage OUT.json command [args...]\n",
                     argv[1]);
        return 2;
    }
    const double t0 = mono();
    const pid_t pid = ::fork();
    if (pid < 0) {
        std::fprintf(stderr, "bench-rusage: fork: %s\n", std::strerror(errno));
        return 1;
    }
    if (pid == 0) {
        ::execvp(argv[2], argv + 2);
        std::fprintf(stderr, "bench-rusage: cannot run %s: %s\n", argv[2], std::strerror(errno));
        ::_exit(127);
    }
    int status = 0;
    rusage ru{};
    while (::wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            std::fprintf(stderr, "bench-rusage: wait4: %s\n", std::strerror(errno));
            return 1;
        }
    }
    const double wall = mono() - t0;
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::FILE* out = std::fopen(argv[1], "w");
    if (out == nullptr) {
        std::fprintf(stderr, "bench-rusage: cannot write %s: %s\n", argv[1], std::strerror(errno));
        return 1;
    }
    std::fprintf(out, "{\"user_s\":%.6f,\"sys_s\":%.6f,\"wall_s\":%.6f,\"status\":%d}\n",
                 seconds(ru.ru_utime), seconds(ru.ru_stime), wall, code);
    std::fclose(out);
    return code;
}
