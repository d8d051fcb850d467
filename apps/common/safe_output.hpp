// SPDX-License-Identifier: MIT
// SafeOutput: never a half-written file under the destination's name.
//
// A regular-file destination DST is written to a temporary file in DST's own directory
// (".DSTNAME.bioring-tmp.<pid>", DSTNAME shortened when needed so the name fits NAME_MAX
// whenever DST's does), which commit() fsyncs, gives DST's owner, group and mode (see
// below), renames over DST and makes durable by fsyncing the directory. Until then an
// existing DST is untouched. On any error the destructor removes the temporary file; on a
// terminating signal the handler installed by install_signal_cleanup() removes it (unlink
// and _exit are async-signal-safe, so this works whichever thread takes the signal).
// A block-device DST cannot be renamed over, so it is written in place.
//
// OUTPUT RULES.
// - Permission: an existing DST is replaced only when the caller could write it itself
//   (faccessat W_OK with the effective ids), else "cannot replace 'DST': Permission
//   denied" before anything is created. In a sticky directory the caller must also own DST
//   or the directory (as rename(2) demands), checked up front too.
// - Owner, group, mode: the replacement gets the old DST's owner, group and permission bits
//   (fchown/fchmod on the temporary file before the rename). The set-user-ID and
//   set-group-ID bits are kept only when both owner and group were kept, so replacing
//   another user's set-ID file never yields a set-ID file of the caller (root). A new DST
//   gets 0666 & ~umask. The temporary file is 0600 while it is written.
// - Stale temporaries: each run holds an OFD write lock on its temporary file for its whole
//   life. A run removes a temporary file of the same DST only if it can take a read lock on
//   it, i.e. no live process holds it, whatever PID namespace or host (NFS) it runs in; a
//   lock cannot outlive its holder, so a killed run's file is removed by the next run.
#pragma once

#include <cstdint>
#include <string>
#include <sys/stat.h>

namespace bioring::apps {

/// Make sure file descriptors 0, 1 and 2 are open: any that is closed is opened on
/// /dev/null, so that no file the program opens later gets one of them and receives
/// diagnostics meant for stderr. Context: first thing in main, before any other open.
/// Returns: false when /dev/null cannot be opened (the caller must stop: exit 1).
bool ensure_std_fds() noexcept;

/// Install the cleanup for terminating signals. SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGUSR1,
/// SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF and SIGXCPU (all whose default action ends the
/// process) get a handler that removes the current temporary file, prints
/// "@prog: interrupted by SIG..." and _exit(128 + signo). A signal that was ignored when the
/// program started (nohup, a background job's SIGINT) stays ignored, as dd does. SIGPIPE
/// and SIGXFSZ are ignored: a write past RLIMIT_FSIZE (ulimit -f) then fails with EFBIG and
/// is reported like any write error (exit 1, temporary file removed, DST intact).
/// Program faults (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS, SIGTRAP) keep their
/// default action (a core dump to debug); the temporary file they leave is unlocked and the
/// next run removes it.
/// Context: main thread, before other threads start (they inherit the dispositions).
void install_signal_cleanup(const char* prog);

/// stat() a source path and require a regular file or a block device.
/// Returns: the stat; throws std::system_error naming @path (missing, unreadable, a
/// directory, a FIFO, a character device, ...).
struct stat check_source(const std::string& path);

class SafeOutput {
public:
    /// Prepare writing @dst. A block device is opened in place; otherwise an existing DST
    /// must be writable by the caller, stale temporaries of dead runs are removed and a new
    /// temporary file is created (O_EXCL, mode 0600) and locked for the run's life.
    /// \param src the source's stat: a DST that is the same inode is refused.
    /// Context: main thread. Returns: throws std::system_error naming the path for a
    /// directory DST, a DST that is neither a regular file nor a block device, the same file
    /// as the source, a missing or unwritable directory, an existing DST the caller may not
    /// write ("cannot replace 'DST': Permission denied").
    SafeOutput(const std::string& dst, const struct stat& src, const char* prog);
    /// Removes the temporary file unless commit() succeeded.
    ~SafeOutput();
    SafeOutput(const SafeOutput&) = delete;
    SafeOutput& operator=(const SafeOutput&) = delete;

    /// The path to open for O_DIRECT writing (the temporary file, or DST when in place).
    const std::string& write_path() const noexcept { return write_path_; }
    const std::string& dst() const noexcept { return dst_; }
    bool in_place() const noexcept { return in_place_; }
    /// A buffered (non-O_DIRECT) read-write descriptor on write_path(), for the unaligned
    /// tail, ftruncate and fsync.
    int fd() const noexcept { return fd_; }
    /// Size of the block device (in place), else 0.
    std::uint64_t device_size() const noexcept { return device_size_; }

    /// Set the temporary file's size (no-op for a block device).
    /// Returns: throws std::system_error naming the file (ENOSPC, EFBIG, ...).
    void truncate(std::uint64_t size);

    /// Give the temporary file DST's owner, group and mode (see OUTPUT RULES), fsync it,
    /// rename it over DST, fsync the directory.
    /// Returns: throws std::system_error naming the file on any failure (the temporary
    /// file is then removed by the destructor and DST is unchanged).
    void commit();

    /// Remove the temporary file now (idempotent). Context: any time; never throws.
    void abort() noexcept;

private:
    void apply_owner_and_mode();

    std::string dst_;
    std::string dir_;
    std::string write_path_;
    int fd_ = -1;
    bool replacing_ = false; ///< DST existed: keep its owner, group and mode
    struct stat old_ {};     ///< DST's stat when replacing_
    mode_t new_mode_ = 0644; ///< 0666 & ~umask for a new DST
    bool in_place_ = false;
    bool committed_ = false;
    std::uint64_t device_size_ = 0;
};

/// The temporary name used for @dst by process @pid (exposed for tests and cleanup). DST's
/// name is shortened when needed so that the last component stays within NAME_MAX (255).
std::string temp_name_for(const std::string& dst, long pid);

} // namespace bioring::apps
