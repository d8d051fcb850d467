// SPDX-License-Identifier: MIT
// DirectFile: an O_DIRECT file (or block device) driven by the calling thread's reactor.
//
// DESIGN. io/ knows files; runtime/ knows rings. A DirectFile holds the descriptor and
// what the kernel told us at open (direct-I/O alignment, block device or not); each
// request is an awaiter (ReadOp, WriteOp, ...) that lives in the awaiting coroutine's
// frame, embeds the reactor's Operation and allocates nothing. Requests are validated
// before anything is submitted: for O_DIRECT files, buffer addresses must be multiples
// of memory_alignment(), offsets and lengths multiples of offset_alignment(), and a
// refused request is IoResult{-EINVAL} with last_error_message() saying which rule broke
// (tmpfs accepts misaligned O_DIRECT, so the kernel is not relied on). Reads and writes
// move the full length, resubmitting short transfers; a read returns less only at end of
// file. -EINTR never surfaces; -EAGAIN is retried up to 1000 times.
// Buffers from BufferPool::global() lie in arenas the reactor registered with its ring,
// so they go out as READ_FIXED/WRITE_FIXED; register_fixed() makes the descriptor a
// fixed file on the current reactor. On the Asio backend neither exists and the same
// requests run unregistered.
// THREADING. A DirectFile may be used from several reactor threads at once (each request
// runs on the thread that awaits it); open/close/register_fixed/moves are not concurrent
// with requests. LIFETIME. A request keeps a pointer into its DirectFile: do not move or
// destroy the file, nor release the buffer, while a request on it is being awaited.
// ERRORS. open() and size() throw std::system_error naming the path; requests never throw.
#pragma once

#include <bioring/io/alignment.hpp>
#include <bioring/io/detail/close_op.hpp>
#include <bioring/io/error_message.hpp>
#include <bioring/io/detail/fallocate_op.hpp>
#include <bioring/io/detail/file_range_op.hpp>
#include <bioring/io/detail/file_state.hpp>
#include <bioring/io/detail/fsync_op.hpp>
#include <bioring/io/detail/open_op.hpp>
#include <bioring/io/io_options.hpp>
#include <bioring/io/link.hpp>
#include <bioring/io/detail/read_op.hpp>
#include <bioring/io/write_flags.hpp>
#include <bioring/io/detail/write_op.hpp>

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace bioring {

struct OpenOptions {
    bool write = false;    ///< O_RDWR (else O_RDONLY)
    bool create = false;   ///< O_CREAT with @mode
    bool truncate = false; ///< O_TRUNC (requires write)
    bool exclusive =
        false; ///< O_EXCL: with create, fail if it exists; on a block device, exclusive use
    bool dsync = false;   ///< O_DSYNC: each write is durable when it completes
    bool direct = true;   ///< O_DIRECT; false opens a buffered file (no alignment checks)
    unsigned mode = 0644; ///< permissions for a created file
};

class DirectFile {
public:
    /// Open @path. Context: any thread; blocking syscalls; allocates (the path copy).
    /// Returns: the open file. Throws std::system_error whose what() names the path and
    /// the flags: the open's errno (ENOENT, EACCES, EEXIST, ...; EINVAL when the
    /// filesystem refuses O_DIRECT), EINVAL for truncate without write, EISDIR for a
    /// directory.
    static DirectFile open(const std::string& path, const OpenOptions& o = {});
    /// Open @path without blocking the reactor: the openat runs on the ring (Asio: on the
    /// pool); fstat and the alignment probe that follow are synchronous (see open_op.hpp).
    /// Context: a coroutine on a reactor thread; allocates (the path copy).
    /// Returns (co_await): OpenResult: the open file with res 0, or a closed file with
    /// res = -errno, the errors of open() (-EINVAL when the filesystem refuses O_DIRECT or
    /// for truncate without write, -EISDIR, -ENOENT, -EEXIST, ...; -ECANCELED; -ENXIO with
    /// no reactor; -ENOMEM), and last_error_message() naming the path, the flags and the
    /// reason. Never throws.
    static OpenOp open_async(std::string path, const OpenOptions& o = {}, IoOptions io = {});

    /// A closed file (fd() == -1); requests on it complete with -EBADF.
    DirectFile() noexcept = default;
    DirectFile(DirectFile&& other) noexcept;
    DirectFile& operator=(DirectFile&& other) noexcept;
    DirectFile(const DirectFile&) = delete;
    DirectFile& operator=(const DirectFile&) = delete;
    /// Closes synchronously if still open (and drops a fixed-file registration when called
    /// on the reactor thread that made it). Context: any thread; never throws.
    ~DirectFile();

    /// Read @len bytes at @offset into @buf.
    /// Context: a coroutine on a reactor thread; suspends; allocates nothing.
    /// Returns (co_await): IoResult with the bytes read (less than @len only at end of
    /// file, 0 at end of file) or -EINVAL (misaligned for O_DIRECT, or @len over
    /// 0x7ffff000), -EBADF (closed), -ECANCELED (timeout or stop), -ENXIO (no reactor on
    /// this thread), -EAGAIN (after 1000 retries), or the kernel's -errno.
    ReadOp read(void* buf, std::size_t len, std::uint64_t offset, IoOptions o = {}) noexcept {
        return ReadOp(state_, buf, len, offset, std::move(o));
    }
    /// Write @len bytes from @buf at @offset.
    /// Context: as read(). Returns (co_await): @len, or the errors of read(), or -EIO when
    /// an O_DIRECT write stopped short off the alignment (the remainder cannot be written).
    WriteOp write(const void* buf, std::size_t len, std::uint64_t offset,
                  IoOptions o = {}) noexcept {
        return WriteOp(state_, buf, len, offset, std::move(o));
    }
    /// Write with per-write flags (WriteFlags: dsync = RWF_DSYNC/FUA, sync, nowait, append).
    /// Context and Returns: as write(), plus -EINVAL for unknown flags (nothing submitted),
    /// -EAGAIN for nowait when the write would block (returned, not retried), -EOPNOTSUPP
    /// when the file or kernel refuses a flag.
    WriteOp write(const void* buf, std::size_t len, std::uint64_t offset, WriteFlags flags,
                  IoOptions o = {}) noexcept {
        return WriteOp(state_, buf, len, offset, std::move(o), flags);
    }
    /// Vectored read into @iovcnt segments (0 to IOV_MAX). For O_DIRECT every segment's
    /// address and length must be aligned. The array must stay valid until co_await returns.
    /// Context and Returns: as read().
    ReadvOp readv(const iovec* iov, int iovcnt, std::uint64_t offset, IoOptions o = {}) noexcept {
        return ReadvOp(state_, iov, iovcnt, offset, std::move(o));
    }
    /// Vectored write; as readv() and write().
    WritevOp writev(const iovec* iov, int iovcnt, std::uint64_t offset, IoOptions o = {}) noexcept {
        return WritevOp(state_, iov, iovcnt, offset, std::move(o));
    }
    /// Vectored write with per-write flags; as write() with flags.
    WritevOp writev(const iovec* iov, int iovcnt, std::uint64_t offset, WriteFlags flags,
                    IoOptions o = {}) noexcept {
        return WritevOp(state_, iov, iovcnt, offset, std::move(o), flags);
    }
    /// Make data and metadata durable. Context: as read().
    /// Returns (co_await): 0 or -errno (-EBADF closed, -ECANCELED, -ENXIO, ...).
    FsyncOp fsync(IoOptions o = {}) noexcept { return FsyncOp(state_, false, std::move(o)); }
    /// Make data (and the metadata needed to read it) durable. As fsync().
    FsyncOp fdatasync(IoOptions o = {}) noexcept { return FsyncOp(state_, true, std::move(o)); }
    /// fallocate(2) with @mode (0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE|KEEP_SIZE, ...).
    /// Context: as read(). Returns (co_await): 0 or -errno (-EOPNOTSUPP, -ENOSPC, ...).
    FallocateOp fallocate(int mode, std::uint64_t offset, std::uint64_t length,
                          IoOptions o = {}) noexcept {
        return FallocateOp(state_, mode, offset, length, std::move(o));
    }
    /// Set the file's size to @size (ftruncate(2); see file_range_op.hpp for where it runs).
    /// Context: as read(). Returns (co_await): 0 or the kernel's -errno (-EINVAL or -EBADF
    /// on a descriptor not open for writing, -EFBIG, ...; -EBADF when closed).
    TruncateOp ftruncate(std::uint64_t size, IoOptions o = {}) noexcept {
        return TruncateOp(state_, size, std::move(o));
    }
    /// sync_file_range(2) on [@offset, @offset + @nbytes) (nbytes 0: to the end of file)
    /// with SYNC_FILE_RANGE_* @flags. Starts or waits for writeback; durability needs
    /// fdatasync. Context: as read(). Returns (co_await): 0 or -errno (-EINVAL bad flags).
    SyncRangeOp sync_file_range(std::uint64_t offset, std::uint32_t nbytes, unsigned flags,
                                IoOptions o = {}) noexcept {
        return SyncRangeOp(state_, offset, nbytes, flags, std::move(o));
    }

    // Steps of a linked chain (io/link.hpp): `co_await link(f.write_step(...),
    // f.fdatasync_step())`. Building a step submits nothing; a refused step (closed file,
    // misaligned O_DIRECT, unknown flags) fails the whole chain at co_await, unsubmitted.
    // Context: any thread; never allocates.
    /// Write @len bytes (the whole length or the chain fails) from @buf at @offset.
    LinkStep write_step(const void* buf, std::size_t len, std::uint64_t offset,
                        WriteFlags flags = WriteFlags::none) const noexcept;
    /// Read @len bytes (a short read, end of file included, fails the chain) at @offset.
    LinkStep read_step(void* buf, std::size_t len, std::uint64_t offset) const noexcept;
    LinkStep fsync_step() const noexcept;
    LinkStep fdatasync_step() const noexcept;
    LinkStep ftruncate_step(std::uint64_t size) const noexcept;
    LinkStep sync_file_range_step(std::uint64_t offset, std::uint32_t nbytes,
                                  unsigned flags) const noexcept;
    LinkStep fallocate_step(int mode, std::uint64_t offset, std::uint64_t length) const noexcept;

    /// Close asynchronously; the file reads as closed as soon as the close is submitted.
    /// Context: a coroutine (on a reactor thread; without one it closes synchronously).
    /// Returns (co_await): 0 (also when already closed) or -errno from close(2).
    CloseOp close() noexcept { return CloseOp(state_); }

    /// Size in bytes (block devices: BLKGETSIZE64).
    /// Context: any thread; one blocking syscall. Throws std::system_error naming the path.
    std::uint64_t size() const;

    /// Register the descriptor as a fixed file with the calling thread's reactor; requests
    /// awaited on that reactor then use the fixed index (requests on other reactors keep
    /// using the descriptor). Unregistered by close() or the destructor on that thread;
    /// close the file before that reactor goes away.
    /// Context: a reactor thread; not concurrent with requests on this file.
    /// Returns: true if registered (now or before, on this reactor); false when there is no
    /// reactor, the file is closed or already registered with another reactor, or the
    /// backend refused (Asio has no fixed files; a full table) — requests still work.
    bool register_fixed() noexcept;
    /// Drop the registration (on the reactor thread that made it; elsewhere a no-op).
    void unregister_fixed() noexcept;
    /// Whether requests awaited on the calling thread's reactor use a fixed file.
    bool is_fixed() const noexcept;

    /// Whether this buffer, length and offset satisfy the O_DIRECT rules (always true for
    /// a buffered file, for lengths up to 0x7ffff000). Context: any thread; never fails.
    bool is_aligned(const void* buf, std::size_t len, std::uint64_t offset) const noexcept;

    std::size_t memory_alignment() const noexcept { return state_.memory_align; }
    std::size_t offset_alignment() const noexcept { return state_.offset_align; }
    /// Where the alignment came from (statx, the logical block size, or the 4096 fallback).
    DioAlignment::Source alignment_source() const noexcept { return alignment_source_; }
    int fd() const noexcept { return state_.fd; }
    bool is_open() const noexcept { return state_.fd >= 0; }
    bool is_direct() const noexcept { return state_.direct; }
    bool is_block_device() const noexcept { return state_.block_device; }
    const std::string& path() const noexcept { return state_.path; }

private:
    friend class OpenOp;
    void close_now() noexcept;
    /// Fill @f from the freshly opened @fd (fstat, alignment probe). Returns: 0, or an
    /// errno with @why set (nullptr or a reason) — @fd is then still open.
    static int adopt(DirectFile& f, int fd, bool direct, const char*& why) noexcept;
    /// @op with this file's descriptor; -EBADF (and the message) when closed.
    LinkStep step(Operation op, const char* name, std::uint64_t expect, int error) const noexcept;

    detail::FileState state_;
    DioAlignment::Source alignment_source_ = DioAlignment::Source::fallback;
};

/// What `co_await DirectFile::open_async(...)` yields.
struct OpenResult {
    DirectFile file; ///< open when res == 0, closed otherwise
    int res = 0;     ///< 0 or -errno

    bool ok() const noexcept { return res >= 0; }
    explicit operator bool() const noexcept { return ok(); }
};

} // namespace bioring
