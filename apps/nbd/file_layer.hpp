// SPDX-License-Identifier: MIT
// FileLayer: the bottom of bioring-nbd's stack, an O_DIRECT file or block device on the
// reactor's ring (DirectFile) — or a buffered one (bioring-nbd --cache writeback), which has
// no alignment rules: every request goes straight to the file through the page cache, and
// the export keeps the file's exact size.
//
// Requests aligned to the file's O_DIRECT rules go straight to the file; others are served
// through bounce buffers from BufferPool, widened to whole blocks (read-modify-write for
// writes), under a RangeLock on the widened blocks so that concurrent overlapping writes
// are never lost. Every mutating request (write, trim, zero) holds its blocks.
// trim = fallocate(PUNCH_HOLE|KEEP_SIZE) on the whole blocks inside the range (a trim that
// the filesystem cannot do is ignored, as the protocol allows); zero = PUNCH_HOLE when a
// hole is acceptable, else ZERO_RANGE, else (not fast) written zeroes. A FUA write is
// followed by an fdatasync of the file (FuaMode::flush, the default) or written with
// RWF_DSYNC (FuaMode::dsync: durable for its own range alone); FLUSH is fdatasync. Block
// status comes from lseek(SEEK_DATA/SEEK_HOLE) — a blocking syscall on the reactor thread, made only once the file may have holes (it had some at
// open, or this layer punched one).
// Inline I/O (set_inline_io, bioring-nbd --tmpfs-io inline, its default for a file on
// tmpfs): reads and writes are pread/pwrite calls on the reactor thread instead of ring
// requests. tmpfs cannot do non-blocking I/O (RWF_NOWAIT is refused), so io_uring hands
// every one of its reads and writes to a worker thread — two context switches around a
// memory copy that never waits for a device (only for memory: swap-in, reclaim). Inline,
// the copy is the whole request. Syncs, trims and zeroes stay on the ring; so does
// fault injection (BIORING_FAULT sees ring completions only).
// A regular file's size is exported rounded down to the O_DIRECT block (O_DIRECT cannot
// write a partial last block without extending the file); main() warns when that drops
// bytes.
#pragma once

#include "apps/nbd/block_device.hpp"
#include "apps/nbd/range_lock.hpp"

#include <bioring/io/direct_file.hpp>

#include <atomic>

namespace bioring::apps::nbd {

/// How a WRITE with FUA is made durable. Both are correct; which is faster depends on the
/// kernel and the device (bench/nbd_fua_latency.py measures both through a running server).
enum class FuaMode {
    flush, ///< write, then fdatasync the file
    dsync, ///< write with RWF_DSYNC: only the request's own blocks
};

class FileLayer final : public BlockDevice {
public:
    /// Serve @file (O_DIRECT, or buffered: alignment 1; write access unless @read_only).
    /// Context: any thread; blocking syscalls (size, fstat). Throws std::system_error
    /// naming the path.
    FileLayer(DirectFile file, bool read_only, std::size_t pool_size = 64);

    std::uint64_t size() const noexcept override { return size_; }
    std::uint32_t alignment() const noexcept override { return align_; }
    bool can_trim() const noexcept override { return !read_only_; }
    bool can_fast_zero() const noexcept override { return !read_only_; }
    bool may_have_holes() const noexcept override {
        return maybe_sparse_.load(std::memory_order_relaxed);
    }
    /// Bytes of the file past size() (not exported; see the header comment).
    std::uint64_t dropped_tail() const noexcept { return dropped_; }
    const DirectFile& file() const noexcept { return file_; }
    RangeLock& range_lock() noexcept { return lock_; }
    /// Context: before serving (not synchronised with requests in flight).
    void set_fua_mode(FuaMode m) noexcept { fua_mode_ = m; }
    /// Reads and writes as pread/pwrite on the calling reactor's thread (header comment).
    /// Only for a file whose I/O never waits for a device (memory_file()).
    /// Context: before serving.
    void set_inline_io(bool on) noexcept { inline_io_ = on; }
    bool inline_io() const noexcept { return inline_io_; }
    /// Whether @f is a memory file whose I/O io_uring can only run on a worker thread: on
    /// tmpfs or ramfs, and refusing RWF_NOWAIT. Context: any thread; blocking syscalls.
    static bool memory_file(const DirectFile& f) noexcept;
    /// fdatasync calls made (FLUSH, FUA writes in FuaMode::flush, and FUA writes on a file
    /// that refuses RWF_DSYNC).
    std::uint64_t syncs() const noexcept { return syncs_.load(std::memory_order_relaxed); }
    /// FUA write requests issued as RWF_DSYNC writes of their own blocks (FuaMode::dsync).
    std::uint64_t dsync_writes() const noexcept {
        return dsync_writes_.load(std::memory_order_relaxed);
    }

    Task<IoResult> read(std::byte* buf, std::uint32_t len, std::uint64_t off) override {
        return do_read(*bioset_, buf, len, off);
    }
    Task<IoResult> write(const std::byte* buf, std::uint32_t len, std::uint64_t off,
                         bool fua) override {
        return do_write(*bioset_, buf, len, off, fua);
    }
    Task<IoResult> flush() override { return do_flush(*bioset_); }
    Task<IoResult> trim(std::uint64_t off, std::uint32_t len) override {
        return do_trim(*bioset_, off, len);
    }
    Task<IoResult> zero(std::uint64_t off, std::uint32_t len, bool may_trim, bool fast) override {
        return do_zero(*bioset_, off, len, may_trim, fast);
    }
    Task<IoResult> block_status(std::uint64_t off, std::uint32_t len,
                                std::span<Extent> out) override {
        return do_block_status(*bioset_, off, len, out);
    }

private:
    template <class Op>
    class FileIo;
    /// co_await: the file's read or write of [off, off + len), on the ring or inline.
    FileIo<ReadOp> file_read(void* buf, std::size_t len, std::uint64_t off) noexcept;
    FileIo<WriteOp> file_write(const void* buf, std::size_t len, std::uint64_t off,
                                           WriteFlags flags = WriteFlags::none) noexcept;
    /// The one coroutine behind write, trim and zero (one frame per request either way).
    struct Modify {
        enum Kind : std::uint8_t { write, trim, zero } kind;
        bool fua, may_trim, fast;
    };
    Task<IoResult> do_modify(BioSet& bs, Modify m, const std::byte* src, std::uint32_t len,
                             std::uint64_t off);
    Task<IoResult> do_read(BioSet& bs, std::byte* buf, std::uint32_t len, std::uint64_t off);
    Task<IoResult> do_write(BioSet& bs, const std::byte* buf, std::uint32_t len, std::uint64_t off,
                            bool fua);
    Task<IoResult> do_flush(BioSet& bs);
    Task<IoResult> do_trim(BioSet& bs, std::uint64_t off, std::uint32_t len);
    Task<IoResult> do_zero(BioSet& bs, std::uint64_t off, std::uint32_t len, bool may_trim,
                           bool fast);
    Task<IoResult> do_block_status(BioSet& bs, std::uint64_t off, std::uint32_t len,
                                   std::span<Extent> out);
    /// Bounce buffer bytes for an unaligned request of @len: whole blocks plus one, at most
    /// BufferPool::max_buffer (longer requests go through in pieces).
    std::size_t bounce_size(std::uint64_t len) const noexcept;
    bool in_range(std::uint64_t off, std::uint64_t len) const noexcept {
        return off <= size_ && len <= size_ - off;
    }

    DirectFile file_;
    std::uint64_t size_ = 0;
    std::uint64_t dropped_ = 0;
    std::uint32_t align_ = 4096;
    bool read_only_ = false;
    FuaMode fua_mode_ = FuaMode::flush;
    bool inline_io_ = false;
    std::atomic<bool> maybe_sparse_{true};
    RangeLock lock_;
    std::atomic<std::uint64_t> syncs_{0};
    std::atomic<std::uint64_t> dsync_writes_{0};
};

} // namespace bioring::apps::nbd
