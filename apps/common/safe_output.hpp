// SPDX-License-Identifier: MIT
// SafeOutput: never a half-written file under the destination's name.
//
// A regular-file destination DST is written to a temporary file in DST's own directory
// (".DSTNAME.bioring-tmp.<pid>", so a person seeing one knows what it is and which run left
// it), which commit() fsyncs, renames over DST and makes durable by fsyncing the directory.
// Until then an existing DST is untouched. On any error the destructor removes the temporary
// file; on SIGINT, SIGTERM or SIGHUP the handler installed by install_signal_cleanup() removes
// it (unlink and _exit are async-signal-safe, so this works whichever thread takes the
// signal) and exits with 128 + signal number (130, 143, 129). A run killed with SIGKILL leaves
// its temporary file behind; the next run for the same DST removes temporaries whose pid is no
// longer alive. A block-device DST cannot be renamed over, so it is written in place.
#pragma once

#include <cstdint>
#include <string>
#include <sys/stat.h>

namespace bioring::apps {

/// Install handlers for SIGINT, SIGTERM and SIGHUP that remove the current temporary file,
/// print "@prog: interrupted by SIG...", and _exit(128 + signo). SIGPIPE is ignored.
/// Context: main thread, before other threads start (they inherit the dispositions).
void install_signal_cleanup(const char* prog);

/// stat() a source path and require a regular file or a block device.
/// Returns: the stat; throws std::system_error naming @path (missing, unreadable, a
/// directory, a FIFO, a character device, ...).
struct stat check_source(const std::string& path);

class SafeOutput {
public:
    /// Prepare writing @dst. A block device is opened in place; otherwise stale temporaries
    /// of dead runs are removed and a new temporary file is created (O_EXCL) with the mode of
    /// an existing DST, or 0666 & ~umask.
    /// \param src the source's stat: a DST that is the same inode is refused.
    /// Context: main thread. Returns: throws std::system_error naming the path for a
    /// directory DST, a DST that is neither a regular file nor a block device, the same file
    /// as the source, a missing or unwritable directory.
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

    /// fsync the data, rename the temporary over DST, fsync the directory.
    /// Returns: throws std::system_error naming the file on any failure (the temporary
    /// file is then removed by the destructor and DST is unchanged).
    void commit();

    /// Remove the temporary file now (idempotent). Context: any time; never throws.
    void abort() noexcept;

private:
    std::string dst_;
    std::string dir_;
    std::string write_path_;
    int fd_ = -1;
    bool in_place_ = false;
    bool committed_ = false;
    std::uint64_t device_size_ = 0;
};

/// The temporary name used for @dst by process @pid (exposed for tests and cleanup).
std::string temp_name_for(const std::string& dst, long pid);

} // namespace bioring::apps
