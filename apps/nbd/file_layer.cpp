// SPDX-License-Identifier: MIT
// FileLayer (file_layer.hpp): direct requests when aligned, bounce buffers and
// read-modify-write under the range lock when not; fallocate for trim and zero.
#include "apps/nbd/file_layer.hpp"

#include <bioring/alloc/buffer_pool.hpp>

#include <bioring/runtime/this_bio.hpp>

#include <algorithm>
#include <cerrno>
#include <coroutine>
#include <cstring>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <optional>
#include <system_error>
#include <unistd.h>

namespace bioring::apps::nbd {

namespace {

std::uint64_t round_down(std::uint64_t v, std::uint64_t a) noexcept {
    return v & ~(a - 1);
}
std::uint64_t round_up(std::uint64_t v, std::uint64_t a) noexcept {
    return (v + a - 1) & ~(a - 1);
}

} // namespace

// The awaiter of one file read or write: the ring's own (exactly what co_await on the
// DirectFile request costs) or a result already made inline.
template <class Op>
class FileLayer::FileIo {
public:
    explicit FileIo(Op&& ring) noexcept : ring_(std::move(ring)) {}
    explicit FileIo(IoResult done) noexcept : done_(done) {}
    bool await_ready() noexcept { return !ring_ || ring_->await_ready(); }
    decltype(auto) await_suspend(std::coroutine_handle<> h) noexcept {
        return ring_->await_suspend(h);
    }
    IoResult await_resume() noexcept { return ring_ ? ring_->await_resume() : done_; }

private:
    std::optional<Op> ring_;
    IoResult done_{0};
};

// pread/pwrite looped as the ring's requests loop (io/detail/transfer_op.hpp): a read goes
// on until @len bytes or end of file, a write until @len bytes or an error (ENOSPC after a
// partial write included); EINTR is retried.
static IoResult inline_transfer(int fd, std::byte* p, std::size_t len, std::uint64_t off,
                                bool write, int flags) noexcept {
    std::size_t done = 0;
    while (done < len) {
        const iovec iov{p + done, len - done};
        const ssize_t n = write ? ::pwritev2(fd, &iov, 1, static_cast<off_t>(off + done), flags)
                                : ::preadv2(fd, &iov, 1, static_cast<off_t>(off + done), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return IoResult{-errno};
        }
        if (n == 0) {
            if (write) {
                return IoResult{-EIO}; // no progress and no error: never loop forever
            }
            break; // end of file
        }
        done += static_cast<std::size_t>(n);
    }
    return IoResult{static_cast<int>(done)};
}

FileLayer::FileIo<ReadOp> FileLayer::file_read(void* buf, std::size_t len,
                                               std::uint64_t off) noexcept {
    if (!inline_io_) {
        return FileIo<ReadOp>(file_.read(buf, len, off));
    }
    return FileIo<ReadOp>(
        inline_transfer(file_.fd(), static_cast<std::byte*>(buf), len, off, false, 0));
}

FileLayer::FileIo<WriteOp> FileLayer::file_write(const void* buf, std::size_t len,
                                                 std::uint64_t off, WriteFlags flags) noexcept {
    if (!inline_io_) {
        return FileIo<WriteOp>(file_.write(buf, len, off, flags));
    }
    return FileIo<WriteOp>(inline_transfer(file_.fd(),
                                           const_cast<std::byte*>(static_cast<const std::byte*>(buf)),
                                           len, off, true, static_cast<int>(flags)));
}

bool FileLayer::memory_file(const DirectFile& f) noexcept {
    struct statfs fs {};
    if (::fstatfs(f.fd(), &fs) != 0 || (fs.f_type != TMPFS_MAGIC && fs.f_type != RAMFS_MAGIC)) {
        return false;
    }
    // RWF_NOWAIT refused: io_uring would run every read on a worker thread. (One byte: an
    // empty read returns before the flags are checked; the flags are checked before
    // O_DIRECT's alignment.)
    std::byte b[1];
    const iovec iov{b, 1};
    return ::preadv2(f.fd(), &iov, 1, 0, RWF_NOWAIT) < 0 && errno == EOPNOTSUPP;
}

std::size_t FileLayer::bounce_size(std::uint64_t len) const noexcept {
    return static_cast<std::size_t>(
        std::min<std::uint64_t>(BufferPool::max_buffer, round_up(len, align_) + align_));
}

FileLayer::FileLayer(DirectFile file, bool read_only, std::size_t pool_size)
    : BlockDevice("file"), file_(std::move(file)), read_only_(read_only) {
    BioSet& p = probe_set();
    std::size_t pad = frame_pad(do_read(p, nullptr, 0, 0));
    pad = std::max(
        pad, frame_pad(do_modify(p, Modify{Modify::write, false, false, false}, nullptr, 0, 0)));
    pad = std::max(pad, frame_pad(do_flush(p)));
    pad = std::max(pad, frame_pad(do_block_status(p, 0, 0, {})));
    init_bioset(pad, pool_size);
    // A buffered file takes any offset, length and buffer (DirectFile::is_aligned is always
    // true for it), so nothing needs widening and the size is exported as it is.
    align_ = file_.is_direct() ? static_cast<std::uint32_t>(
                                     std::max(file_.offset_alignment(), file_.memory_alignment()))
                               : 1;
    const std::uint64_t full = file_.size();
    size_ = round_down(full, align_);
    dropped_ = full - size_;
    struct stat st {};
    if (::fstat(file_.fd(), &st) != 0) {
        throw std::system_error(errno, std::system_category(),
                                "cannot stat '" + file_.path() + "'");
    }
    // Holes only matter for regular files; a file with fewer blocks than bytes has some.
    maybe_sparse_ = S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_blocks) * 512 <
                                               static_cast<std::uint64_t>(st.st_size);
}

Task<IoResult> FileLayer::do_read(BioSet& bs, std::byte* buf, std::uint32_t len,
                                  std::uint64_t off) {
    LayerRequest req(stats_, co_await this_bio, bs);
    if (!in_range(off, len)) {
        co_return IoResult{-EINVAL};
    }
    if (file_.is_aligned(buf, len, off)) {
        IoResult r = co_await file_read(buf, len, off);
        if (!r) {
            co_return r;
        }
        if (r.bytes() < len) { // the file shrank under us: what is gone reads as zeroes
            std::memset(buf + r.bytes(), 0, len - r.bytes());
        }
        co_return IoResult{0};
    }
    OwnedBuffer b = OwnedBuffer::alloc(bounce_size(len));
    if (!b) {
        co_return IoResult{-ENOMEM};
    }
    const std::uint64_t piece = round_down(b.capacity(), align_);
    const std::uint64_t end = off + len;
    for (std::uint64_t pos = off; pos < end;) {
        const std::uint64_t a = round_down(pos, align_);
        const std::uint64_t piece_end = std::min(end, a + piece);
        const std::uint64_t span = round_up(piece_end, align_) - a;
        IoResult r = co_await file_read(b.data(), span, a);
        if (!r) {
            co_return r;
        }
        if (r.bytes() < span) {
            std::memset(b.data() + r.bytes(), 0, span - r.bytes());
        }
        std::memcpy(buf + (pos - off), b.data() + (pos - a), piece_end - pos);
        pos = piece_end;
    }
    co_return IoResult{0};
}

Task<IoResult> FileLayer::do_write(BioSet& bs, const std::byte* buf, std::uint32_t len,
                                   std::uint64_t off, bool fua) {
    return do_modify(bs, Modify{Modify::write, fua, false, false}, buf, len, off);
}

Task<IoResult> FileLayer::do_trim(BioSet& bs, std::uint64_t off, std::uint32_t len) {
    return do_modify(bs, Modify{Modify::trim, false, true, false}, nullptr, len, off);
}

Task<IoResult> FileLayer::do_zero(BioSet& bs, std::uint64_t off, std::uint32_t len, bool may_trim,
                                  bool fast) {
    return do_modify(bs, Modify{Modify::zero, false, may_trim, fast}, nullptr, len, off);
}

Task<IoResult> FileLayer::do_modify(BioSet& bs, Modify m, const std::byte* src, std::uint32_t len,
                                    std::uint64_t off) {
    LayerRequest req(stats_, co_await this_bio, bs);
    if (read_only_) {
        co_return IoResult{-EPERM};
    }
    if (!in_range(off, len)) {
        co_return IoResult{-ENOSPC};
    }
    const std::uint64_t end = off + len;
    const std::uint64_t ra = round_up(off, align_); // whole blocks inside the range
    const std::uint64_t rb = round_down(end, align_);
    auto hold = lock_.lock(round_down(off, align_), round_up(end, align_));
    co_await hold;

    if (m.kind == Modify::trim) {
        if (ra < rb) {
            IoResult r =
                co_await file_.fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, ra, rb - ra);
            if (r.res == -EOPNOTSUPP) {
                co_return IoResult{0}; // a trim is advisory: doing nothing is correct
            }
            if (!r) {
                co_return r;
            }
            maybe_sparse_.store(true, std::memory_order_relaxed);
        }
        co_return IoResult{0};
    }

    // FUA, FuaMode::dsync: each write of this request carries RWF_DSYNC, so only its own
    // blocks are made durable (the kernel sends them with FUA, or flushes the device cache
    // after them). FuaMode::flush, or a file that refuses RWF_DSYNC: the writes, then an
    // fdatasync of the file.
    const bool dsync = m.fua && fua_mode_ == FuaMode::dsync;
    const WriteFlags wflags = dsync ? WriteFlags::dsync : WriteFlags::none;
    if (dsync) {
        dsync_writes_.fetch_add(1, std::memory_order_relaxed);
    }
    bool sync_after = m.fua && !dsync;

    // The ranges still to be written through bounce buffers (src == nullptr: zeroes).
    struct Range {
        std::uint64_t b, e;
    } todo[2];
    int n = 0;
    if (m.kind == Modify::write) {
        if (file_.is_aligned(src, len, off)) {
            IoResult r = co_await file_write(src, len, off, wflags);
            if (r.res == -EOPNOTSUPP && dsync) { // no RWF_DSYNC here: write, then sync
                sync_after = true;
                r = co_await file_write(src, len, off);
            }
            if (!r) {
                co_return r;
            }
        } else {
            todo[n++] = {off, end};
        }
    } else {
        bool inner_done = false;
        if (ra < rb) {
            IoResult r{-EOPNOTSUPP};
            if (m.may_trim) {
                r = co_await file_.fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, ra,
                                             rb - ra);
                if (r) {
                    maybe_sparse_.store(true, std::memory_order_relaxed);
                }
            }
            if (!r) {
                r = co_await file_.fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, ra,
                                             rb - ra);
            }
            if (r) {
                inner_done = true;
            } else if (r.res != -EOPNOTSUPP && r.res != -EINVAL) {
                co_return r;
            } else if (m.fast) {
                co_return IoResult{-EOPNOTSUPP}; // nothing faster than writing: say so
            }
        }
        if (!inner_done) {
            todo[n++] = {off, end};
        } else {
            if (off < ra) {
                todo[n++] = {off, ra};
            }
            if (rb < end) {
                todo[n++] = {rb, end};
            }
        }
    }

    if (n > 0) {
        OwnedBuffer b = OwnedBuffer::alloc(bounce_size(todo[0].e - todo[0].b));
        if (!b) {
            co_return IoResult{-ENOMEM};
        }
        const std::uint64_t piece = round_down(b.capacity(), align_);
        for (int i = 0; i < n; ++i) {
            for (std::uint64_t pos = todo[i].b; pos < todo[i].e;) {
                const std::uint64_t pa = round_down(pos, align_);
                const std::uint64_t piece_end = std::min(todo[i].e, pa + piece);
                const std::uint64_t pb = round_up(piece_end, align_);
                if (pos != pa) { // head block: keep the bytes before pos
                    IoResult r = co_await file_read(b.data(), align_, pa);
                    if (!r) {
                        co_return r;
                    }
                }
                const std::uint64_t tail = pb - align_;
                if (piece_end != pb && !(pos != pa && tail == pa)) { // tail block
                    IoResult r = co_await file_read(b.data() + (tail - pa), align_, tail);
                    if (!r) {
                        co_return r;
                    }
                }
                if (src != nullptr) {
                    std::memcpy(b.data() + (pos - pa), src + (pos - off), piece_end - pos);
                } else {
                    std::memset(b.data() + (pos - pa), 0, piece_end - pos);
                }
                IoResult r = co_await file_write(b.data(), pb - pa, pa, wflags);
                if (r.res == -EOPNOTSUPP && dsync) {
                    sync_after = true;
                    r = co_await file_write(b.data(), pb - pa, pa);
                }
                if (!r) {
                    co_return r;
                }
                pos = piece_end;
            }
        }
    }
    if (sync_after) {
        syncs_.fetch_add(1, std::memory_order_relaxed);
        IoResult r = co_await file_.fdatasync();
        if (!r) {
            co_return r;
        }
    }
    co_return IoResult{0};
}

Task<IoResult> FileLayer::do_flush(BioSet& bs) {
    LayerRequest req(stats_, co_await this_bio, bs);
    syncs_.fetch_add(1, std::memory_order_relaxed);
    IoResult r = co_await file_.fdatasync();
    co_return r.ok() ? IoResult{0} : r;
}

Task<IoResult> FileLayer::do_block_status(BioSet& bs, std::uint64_t off, std::uint32_t len,
                                          std::span<Extent> out) {
    LayerRequest req(stats_, co_await this_bio, bs);
    if (!in_range(off, len) || len == 0 || out.empty()) {
        co_return IoResult{-EINVAL};
    }
    if (!maybe_sparse_.load(std::memory_order_relaxed)) {
        out[0] = Extent{len, 0};
        co_return IoResult{1};
    }
    const std::uint64_t end = off + len;
    std::size_t n = 0;
    for (std::uint64_t pos = off; pos < end && n < out.size();) {
        off_t d = ::lseek(file_.fd(), static_cast<off_t>(pos), SEEK_DATA);
        if (d < 0 && errno != ENXIO) {
            co_return IoResult{-errno};
        }
        const std::uint64_t data = d < 0 ? end : std::min<std::uint64_t>(end, d);
        if (data > pos) {
            out[n++] = Extent{static_cast<std::uint32_t>(data - pos), state_hole | state_zero};
            pos = data;
            continue;
        }
        off_t h = ::lseek(file_.fd(), static_cast<off_t>(pos), SEEK_HOLE);
        if (h < 0) {
            co_return IoResult{-errno};
        }
        const std::uint64_t hole =
            std::min<std::uint64_t>(end, std::max<std::uint64_t>(h, pos + 1));
        out[n++] = Extent{static_cast<std::uint32_t>(hole - pos), 0};
        pos = hole;
    }
    co_return IoResult{static_cast<int>(n)};
}

} // namespace bioring::apps::nbd
