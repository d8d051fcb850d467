// SPDX-License-Identifier: MIT
// Temporary file, fsync, rename, directory fsync; signal-time cleanup (see safe_output.hpp).
#include "apps/common/safe_output.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <system_error>
#include <unistd.h>

namespace bioring::apps {

namespace {

// The one temporary file a process may own at a time, readable from a signal handler.
// g_temp_armed (release) publishes g_temp_path; the handler's acquire load pairs with it.
char g_temp_path[4096];
std::atomic<bool> g_temp_armed{false};
const char* g_prog = "bioring";

void write_all(const char* s) noexcept
{
    std::size_t n = std::strlen(s);
    while (n > 0) {
        ssize_t w = ::write(STDERR_FILENO, s, n);
        if (w <= 0) {
            return;
        }
        s += w;
        n -= static_cast<std::size_t>(w);
    }
}

extern "C" void on_fatal_signal(int signo)
{
    // Only async-signal-safe calls below: unlink, write, _exit.
    bool removed = false;
    if (g_temp_armed.load(std::memory_order_acquire)) {
        removed = ::unlink(g_temp_path) == 0;
    }
    write_all("\n");
    write_all(g_prog);
    write_all(signo == SIGINT ? ": interrupted by SIGINT" :
              signo == SIGTERM ? ": terminated by SIGTERM" : ": hung up (SIGHUP)");
    if (removed) {
        write_all("; removed temporary file ");
        write_all(g_temp_path);
    }
    write_all("\n");
    ::_exit(128 + signo);
}

void arm(const std::string& path) noexcept
{
    std::size_t n = std::min(path.size(), sizeof(g_temp_path) - 1);
    g_temp_armed.store(false, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    std::memcpy(g_temp_path, path.data(), n);
    g_temp_path[n] = '\0';
    g_temp_armed.store(true, std::memory_order_release);
}

void disarm() noexcept
{
    g_temp_armed.store(false, std::memory_order_release);
}

[[noreturn]] void throw_errno(int err, const std::string& what)
{
    throw std::system_error(err, std::system_category(), what);
}

std::string dir_of(const std::string& path)
{
    auto slash = path.find_last_of('/');
    if (slash == std::string::npos) {
        return ".";
    }
    if (slash == 0) {
        return "/";
    }
    return path.substr(0, slash);
}

std::string base_of(const std::string& path)
{
    auto slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Remove ".NAME.bioring-tmp.<pid>" files in @dir whose process is gone.
void remove_stale_temps(const std::string& dir, const std::string& base, const char* prog)
{
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
        return; // the create below reports the directory's problem
    }
    const std::string prefix = "." + base + ".bioring-tmp.";
    while (dirent* e = ::readdir(d)) {
        std::string_view name = e->d_name;
        if (name.size() <= prefix.size() || name.substr(0, prefix.size()) != prefix) {
            continue;
        }
        std::string_view digits = name.substr(prefix.size());
        long pid = 0;
        bool ok = digits.size() <= 9;
        for (char c : digits) {
            ok = ok && c >= '0' && c <= '9';
            pid = pid * 10 + (c - '0');
        }
        if (!ok || pid <= 0) {
            continue;
        }
        if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) {
            continue; // that run is still alive (or not ours to judge): leave it
        }
        std::string path = dir + "/" + std::string(name);
        if (::unlink(path.c_str()) == 0) {
            std::fprintf(stderr, "%s: removed stale temporary file %s (left by a killed run)\n",
                         prog, path.c_str());
        }
    }
    ::closedir(d);
}

} // namespace

void install_signal_cleanup(const char* prog)
{
    g_prog = prog;
    struct sigaction sa {};
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    for (int s : {SIGINT, SIGTERM, SIGHUP}) {
        ::sigaction(s, &sa, nullptr);
    }
    ::signal(SIGPIPE, SIG_IGN);
}

std::string temp_name_for(const std::string& dst, long pid)
{
    std::string dir = dir_of(dst);
    std::string prefix = dir == "/" ? "/" : dir + "/";
    return prefix + "." + base_of(dst) + ".bioring-tmp." + std::to_string(pid);
}

struct stat check_source(const std::string& path)
{
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        throw_errno(errno, "cannot read source '" + path + "'");
    }
    if (S_ISDIR(st.st_mode)) {
        throw_errno(EISDIR, "source '" + path + "' is a directory");
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        throw_errno(EINVAL, "source '" + path + "' is not a regular file or block device");
    }
    if (::access(path.c_str(), R_OK) != 0) {
        throw_errno(errno, "cannot read source '" + path + "'");
    }
    return st;
}

namespace {

// A symlink DST is written through, as cp and dd do: the temporary file goes next to the
// link's target and replaces the target, so the link itself stays a link.
std::string resolve_link(const std::string& dst)
{
    struct stat lst {};
    if (::lstat(dst.c_str(), &lst) != 0 || !S_ISLNK(lst.st_mode)) {
        return dst;
    }
    char* real = ::realpath(dst.c_str(), nullptr);
    if (real == nullptr) {
        throw_errno(errno, "destination '" + dst + "' is a symbolic link that cannot be resolved");
    }
    std::string out = real;
    ::free(real);
    return out;
}

} // namespace

SafeOutput::SafeOutput(const std::string& dst_arg, const struct stat& src, const char* prog)
{
    if (dst_arg.empty()) {
        throw_errno(ENOENT, "destination path is empty");
    }
    if (dst_arg.back() == '/') {
        throw_errno(EISDIR, "destination '" + dst_arg + "' names a directory");
    }
    const std::string dst = resolve_link(dst_arg);
    dst_ = dst;
    dir_ = dir_of(dst);
    struct stat st {};
    const bool exists = ::stat(dst.c_str(), &st) == 0;
    if (!exists && errno != ENOENT) {
        throw_errno(errno, "cannot access destination '" + dst + "'");
    }
    if (exists) {
        if (st.st_dev == src.st_dev && st.st_ino == src.st_ino) {
            throw_errno(EINVAL, "source and destination '" + dst + "' are the same file");
        }
        if (S_ISBLK(src.st_mode) && S_ISBLK(st.st_mode) && st.st_rdev == src.st_rdev) {
            throw_errno(EINVAL, "source and destination '" + dst + "' are the same device");
        }
        if (S_ISDIR(st.st_mode)) {
            throw_errno(EISDIR, "destination '" + dst + "' is a directory");
        }
        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
            throw_errno(EINVAL, "destination '" + dst + "' is not a regular file or block device");
        }
    }
    if (exists && S_ISBLK(st.st_mode)) {
        in_place_ = true;
        write_path_ = dst;
        fd_ = ::open(dst.c_str(), O_RDWR | O_CLOEXEC);
        if (fd_ < 0) {
            throw_errno(errno, "cannot open block device '" + dst + "' for writing");
        }
        if (::ioctl(fd_, BLKGETSIZE64, &device_size_) != 0) {
            int err = errno;
            ::close(fd_);
            fd_ = -1;
            throw_errno(err, "cannot get the size of block device '" + dst + "'");
        }
        return;
    }
    struct stat dst_dir {};
    if (::stat(dir_.c_str(), &dst_dir) != 0) {
        throw_errno(errno, "destination directory '" + dir_ + "'");
    }
    if (!S_ISDIR(dst_dir.st_mode)) {
        throw_errno(ENOTDIR, "destination directory '" + dir_ + "'");
    }
    remove_stale_temps(dir_, base_of(dst), prog);
    write_path_ = temp_name_for(dst, static_cast<long>(::getpid()));
    const mode_t mode = exists ? (st.st_mode & 07777) : 0666;
    // Armed before the file exists: a signal between the two finds nothing to unlink or our
    // own new file, never someone else's (the name carries our pid).
    arm(write_path_);
    fd_ = ::open(write_path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd_ < 0) {
        int err = errno;
        disarm();
        throw_errno(err, "cannot create a temporary file in destination directory '" + dir_ +
                             "' for '" + dst + "'");
    }
    if (exists) {
        (void)::fchmod(fd_, mode); // the umask must not narrow an existing DST's mode
    }
}

SafeOutput::~SafeOutput()
{
    abort();
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

void SafeOutput::truncate(std::uint64_t size)
{
    if (in_place_) {
        return;
    }
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
        throw_errno(errno, "cannot size temporary file '" + write_path_ + "' for '" + dst_ + "'");
    }
}

void SafeOutput::commit()
{
    if (::fsync(fd_) != 0) {
        throw_errno(errno, "cannot flush '" + (in_place_ ? dst_ : write_path_) + "'");
    }
    if (in_place_) {
        committed_ = true;
        return;
    }
    if (::close(fd_) != 0) {
        fd_ = -1;
        throw_errno(errno, "cannot close temporary file '" + write_path_ + "'");
    }
    fd_ = -1;
    if (::rename(write_path_.c_str(), dst_.c_str()) != 0) {
        throw_errno(errno, "cannot rename '" + write_path_ + "' to '" + dst_ + "'");
    }
    committed_ = true;
    disarm();
    int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        throw_errno(errno, "cannot open directory '" + dir_ + "' to make the rename durable");
    }
    int rc = ::fsync(dfd);
    int err = errno;
    ::close(dfd);
    if (rc != 0) {
        throw_errno(err, "cannot flush directory '" + dir_ + "'");
    }
}

void SafeOutput::abort() noexcept
{
    if (committed_ || in_place_ || write_path_.empty()) {
        return;
    }
    disarm();
    ::unlink(write_path_.c_str());
    write_path_.clear();
}

} // namespace bioring::apps
