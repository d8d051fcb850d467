// SPDX-License-Identifier: MIT
// Temporary file, fsync, rename, directory fsync; signal-time cleanup (see safe_output.hpp).
#include "apps/common/safe_output.hpp"

#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string_view>
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

void write_all(const char* s) noexcept {
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

// The terminating signals that get the cleanup handler (see install_signal_cleanup).
constexpr int cleanup_signals[] = {SIGHUP,  SIGINT,  SIGTERM,   SIGQUIT, SIGUSR1,
                                   SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGXCPU};

const char* signal_text(int signo) noexcept {
    switch (signo) {
    case SIGINT:
        return ": interrupted by SIGINT";
    case SIGTERM:
        return ": terminated by SIGTERM";
    case SIGHUP:
        return ": hung up (SIGHUP)";
    case SIGQUIT:
        return ": interrupted by SIGQUIT";
    case SIGUSR1:
        return ": interrupted by SIGUSR1";
    case SIGUSR2:
        return ": interrupted by SIGUSR2";
    case SIGALRM:
        return ": interrupted by SIGALRM";
    case SIGVTALRM:
        return ": interrupted by SIGVTALRM";
    case SIGPROF:
        return ": interrupted by SIGPROF";
    case SIGXCPU:
        return ": CPU time limit exceeded (SIGXCPU)";
    default:
        return ": interrupted by a signal";
    }
}

extern "C" void on_fatal_signal(int signo) {
    // Only async-signal-safe calls below: unlink, write, _exit.
    bool removed = false;
    if (g_temp_armed.load(std::memory_order_acquire)) {
        removed = ::unlink(g_temp_path) == 0;
    }
    write_all("\n");
    write_all(g_prog);
    write_all(signal_text(signo));
    if (removed) {
        write_all("; removed temporary file ");
        write_all(g_temp_path);
    }
    write_all("\n");
    ::_exit(128 + signo);
}

void arm(const std::string& path) noexcept {
    std::size_t n = std::min(path.size(), sizeof(g_temp_path) - 1);
    g_temp_armed.store(false, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    std::memcpy(g_temp_path, path.data(), n);
    g_temp_path[n] = '\0';
    g_temp_armed.store(true, std::memory_order_release);
}

void disarm() noexcept {
    g_temp_armed.store(false, std::memory_order_release);
}

[[noreturn]] void throw_errno(int err, const std::string& what) {
    throw std::system_error(err, std::system_category(), what);
}

std::string dir_of(const std::string& path) {
    auto slash = path.find_last_of('/');
    if (slash == std::string::npos) {
        return ".";
    }
    if (slash == 0) {
        return "/";
    }
    return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
    auto slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The longest last path component the directory takes (NAME_MAX where unknown).
std::size_t name_max(const std::string& dir) {
    const long n = ::pathconf(dir.c_str(), _PC_NAME_MAX);
    return n > 0 ? static_cast<std::size_t>(n) : NAME_MAX;
}

// ".NAME.bioring-tmp." for DST's last component @base, NAME cut so that the prefix plus a
// pid (10 digits) and a retry suffix ("-99") fit in @max bytes. The cut is by bytes: a
// multi-byte character may be split, which only makes the temporary name less readable.
std::string temp_prefix(const std::string& base, std::size_t max) {
    constexpr std::string_view tag = ".bioring-tmp.";
    constexpr std::size_t reserve = 1 + tag.size() + 10 + 3;
    const std::size_t keep = max > reserve ? max - reserve : 1;
    std::string prefix(1, '.');
    prefix.append(base, 0, keep);
    prefix.append(tag);
    return prefix;
}

// An OFD lock on the whole file: @type F_WRLCK (the owner, for the run's life) or F_RDLCK
// (the cleanup's probe). OFD locks belong to the open file description, so they are not
// lost when another descriptor of the process on the same file is closed, and the kernel
// (or the NFS lock manager) drops them when the holder dies.
int lock_file(int fd, short type, bool wait) noexcept {
    struct flock fl {};
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 0;
    int rc;
    while ((rc = ::fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl)) != 0 && errno == EINTR) {
    }
    return rc;
}

// Remove this DST's temporary files in @dir that no live run holds: a file is stale when a
// read lock on it can be taken (its run would hold a write lock). The name is checked to
// still be the locked inode before it is unlinked.
void remove_stale_temps(const std::string& dir, const std::string& prefix, const char* prog) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
        return; // the create below reports the directory's problem
    }
    const int dfd = ::dirfd(d);
    while (dirent* e = ::readdir(d)) {
        std::string_view name = e->d_name;
        if (name.size() <= prefix.size() || name.substr(0, prefix.size()) != prefix) {
            continue;
        }
        const int fd = ::openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
            continue; // not ours to judge (another user's file, a special file)
        }
        struct stat held {
        }, named{};
        if (::fstat(fd, &held) == 0 && S_ISREG(held.st_mode) &&
            lock_file(fd, F_RDLCK, false) == 0 &&
            ::fstatat(dfd, e->d_name, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
            named.st_dev == held.st_dev && named.st_ino == held.st_ino &&
            ::unlinkat(dfd, e->d_name, 0) == 0) {
            std::fprintf(stderr, "%s: removed stale temporary file %s/%s (left by a killed run)\n",
                         prog, dir == "/" ? "" : dir.c_str(), e->d_name);
        }
        ::close(fd);
    }
    ::closedir(d);
}

} // namespace

bool ensure_std_fds() noexcept {
    for (int fd = 0; fd <= 2; ++fd) {
        if (::fcntl(fd, F_GETFD) >= 0 || errno != EBADF) {
            continue;
        }
        // The lowest free descriptor is @fd itself: every lower one is open.
        const int got = ::open("/dev/null", O_RDWR);
        if (got != fd) {
            if (got >= 0) {
                ::close(got);
            }
            return false;
        }
    }
    return true;
}

void install_signal_cleanup(const char* prog) {
    g_prog = prog;
    struct sigaction sa {};
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    for (int s : cleanup_signals) {
        sigaddset(&sa.sa_mask, s); // one cleanup at a time
    }
    sa.sa_flags = 0;
    for (int s : cleanup_signals) {
        struct sigaction old {};
        if (::sigaction(s, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) {
            continue; // ignored by whoever started us (nohup, a background job): keep it so
        }
        ::sigaction(s, &sa, nullptr);
    }
    ::signal(SIGPIPE, SIG_IGN);
    ::signal(SIGXFSZ, SIG_IGN);
}

std::string temp_name_for(const std::string& dst, long pid) {
    const std::string dir = dir_of(dst);
    const std::string prefix = dir == "/" ? "/" : dir + "/";
    return prefix + temp_prefix(base_of(dst), name_max(dir)) + std::to_string(pid);
}

struct stat check_source(const std::string& path) {
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
std::string resolve_link(const std::string& dst) {
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

SafeOutput::SafeOutput(const std::string& dst_arg, const struct stat& src, const char* prog) {
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
    if (exists) {
        // Replace only what the caller could write itself (as cp would), checked before
        // anything is created so a refusal leaves nothing behind.
        if (::faccessat(AT_FDCWD, dst.c_str(), W_OK, AT_EACCESS) != 0) {
            throw_errno(errno, "cannot replace '" + dst_arg + "'");
        }
        // In a sticky directory rename(2) may replace only the caller's own file (or any
        // file in the caller's own directory); root (CAP_FOWNER) may replace any.
        const uid_t me = ::geteuid();
        if ((dst_dir.st_mode & S_ISVTX) != 0 && me != 0 && st.st_uid != me &&
            dst_dir.st_uid != me) {
            throw_errno(EACCES, "cannot replace '" + dst_arg + "'");
        }
        replacing_ = true;
        old_ = st;
    } else {
        const mode_t mask = ::umask(0);
        ::umask(mask);
        new_mode_ = 0666 & ~mask;
    }
    const std::string prefix = temp_prefix(base_of(dst), name_max(dir_));
    remove_stale_temps(dir_, prefix, prog);
    const std::string first = temp_name_for(dst, static_cast<long>(::getpid()));
    // The pid name is taken unless a live run of another PID namespace holds it; then a
    // suffix ("-1", "-2", ...) makes a free name.
    for (int attempt = 0; attempt < 100 && fd_ < 0; ++attempt) {
        write_path_ = attempt == 0 ? first : first + "-" + std::to_string(attempt);
        // Armed before the file exists: a signal between the two finds nothing to unlink or
        // our own new file, never someone else's (O_EXCL below).
        arm(write_path_);
        const int fd =
            ::open(write_path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            const int err = errno;
            disarm();
            if (err == EEXIST) {
                continue;
            }
            write_path_.clear();
            throw_errno(err, "cannot create a temporary file in destination directory '" + dir_ +
                                 "' for '" + dst + "'");
        }
        if (lock_file(fd, F_WRLCK, true) != 0) {
            const int err = errno;
            ::unlink(write_path_.c_str());
            disarm();
            ::close(fd);
            write_path_.clear();
            throw_errno(err, "cannot lock temporary file in '" + dir_ + "' for '" + dst + "'");
        }
        // A concurrent run's cleanup may have found the file before we locked it and removed
        // it: then the name is no longer ours, and we start again with a new file.
        struct stat held {
        }, named{};
        if (::fstat(fd, &held) == 0 && held.st_nlink > 0 &&
            ::lstat(write_path_.c_str(), &named) == 0 && named.st_dev == held.st_dev &&
            named.st_ino == held.st_ino) {
            fd_ = fd;
            break;
        }
        disarm();
        ::close(fd);
    }
    if (fd_ < 0) {
        write_path_.clear();
        throw_errno(EEXIST, "cannot create a temporary file in destination directory '" + dir_ +
                                "' for '" + dst + "'");
    }
}

SafeOutput::~SafeOutput() {
    abort();
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

void SafeOutput::truncate(std::uint64_t size) {
    if (in_place_) {
        return;
    }
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
        throw_errno(errno, "cannot size temporary file '" + write_path_ + "' for '" + dst_ + "'");
    }
}

void SafeOutput::commit() {
    if (!in_place_) {
        apply_owner_and_mode();
    }
    if (::fsync(fd_) != 0) {
        throw_errno(errno, "cannot flush '" + (in_place_ ? dst_ : write_path_) + "'");
    }
    if (in_place_) {
        committed_ = true;
        return;
    }
    // Renamed while still open: the lock on it keeps other runs' cleanup away until the
    // name is DST's.
    if (::rename(write_path_.c_str(), dst_.c_str()) != 0) {
        throw_errno(errno, "cannot rename '" + write_path_ + "' to '" + dst_ + "'");
    }
    committed_ = true;
    disarm();
    const int rc_close = ::close(fd_);
    const int err_close = errno;
    fd_ = -1;
    if (rc_close != 0) {
        throw_errno(err_close, "cannot close '" + dst_ + "'");
    }
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

void SafeOutput::apply_owner_and_mode() {
    mode_t mode = new_mode_;
    if (replacing_) {
        mode = old_.st_mode & 07777;
        // Root keeps any owner; another caller may keep its own uid and a group it is in.
        if (::fchown(fd_, old_.st_uid, old_.st_gid) != 0) {
            (void)::fchown(fd_, static_cast<uid_t>(-1), old_.st_gid);
        }
        struct stat now {};
        if (::fstat(fd_, &now) != 0) {
            throw_errno(errno, "cannot stat temporary file '" + write_path_ + "'");
        }
        if (now.st_uid != old_.st_uid || now.st_gid != old_.st_gid) {
            mode &= ~static_cast<mode_t>(S_ISUID | S_ISGID); // never set-ID as someone else
        }
    }
    // After fchown (which clears set-ID bits) and after all writes (which may too).
    if (::fchmod(fd_, mode) != 0) {
        throw_errno(errno, "cannot set the mode of temporary file '" + write_path_ + "'");
    }
}

void SafeOutput::abort() noexcept {
    if (committed_ || in_place_ || write_path_.empty()) {
        return;
    }
    disarm();
    ::unlink(write_path_.c_str());
    write_path_.clear();
}

} // namespace bioring::apps
