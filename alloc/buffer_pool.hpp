// SPDX-License-Identifier: MIT
// BufferPool: 4 KiB-aligned I/O buffers (bvecs) in the kernel's biovec size classes.
//
// Classes of 1, 4, 16, 64, 128 and 256 pages; a request takes the smallest that fits. The
// memory lives in arenas of arena_bytes (32 MiB, mmap'd, at most max_arenas, never unmapped)
// so that a reactor can register every arena with io_uring as one fixed buffer: each Buffer
// carries its arena index, and lies entirely inside that arena. Arenas are cut into 1 MiB
// chunks, and a class that runs dry takes the next chunk and splits it into its buffers
// (every class divides 1 MiB). Free buffers of a class sit on an intrusive list through their
// own first bytes, under the pool lock, behind small per-thread caches (one stack per class;
// alloc pops and free pushes without locks, refill and flush move half a cache at a time).
// A thread's caches go back to the pool when it exits.
//
// The 256-page class keeps a reserve of reserve_target buffers (filled at construction):
// used only when no arena memory can be had (max_arenas reached, mmap or the
// FailureInjector refuses), refilled first by frees — the same mempool rule as BioSet.
//
// The pool is process-wide (global()) and immortal: threads that exit during static
// destruction can still drain their caches into it.
#pragma once

#include <bioring/alloc/stats.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <utility>

#include <sys/uio.h>

namespace bioring {

/// One I/O buffer: capacity bytes at data, 4096-aligned, inside arena `arena`. A plain
/// value for the hot paths that manage buffers themselves: it must be given back with
/// BufferPool::free() on every path. OwnedBuffer (below) does that by construction.
struct Buffer {
    std::byte* data = nullptr;
    std::uint32_t capacity = 0;
    std::uint16_t arena = 0;
    std::uint8_t size_class = 0;
    explicit operator bool() const noexcept { return data != nullptr; }
};

/// Counters of one size class.
struct BufferClassStats {
    std::size_t bytes = 0;          ///< buffer size of the class
    std::uint64_t carved = 0;       ///< buffers cut from arenas so far
    std::size_t free_in_pool = 0;   ///< on the shared free list
    std::size_t reserve_nr = 0;     ///< in the reserve (256-page class only)
    std::uint64_t reserve_hits = 0; ///< allocations served by the reserve
    std::uint64_t failures = 0;     ///< allocations that returned an empty Buffer
};

class BufferPool {
public:
    static constexpr std::size_t page_size = 4096;
    static constexpr std::size_t max_buffer = 256 * 4096; ///< 1 MiB, the largest class
    static constexpr std::size_t max_arenas = 64;
    static constexpr std::size_t arena_bytes = std::size_t{32} << 20;
    static constexpr std::size_t chunk_bytes = max_buffer; ///< unit a class takes from an arena
    static constexpr std::size_t class_count = 6;
    static constexpr std::array<std::uint32_t, class_count> class_pages{1, 4, 16, 64, 128, 256};
    static constexpr std::size_t reserve_target = 4; ///< 256-page buffers held in reserve

    /// Returns: the process-wide pool (built on first use; its reserve is filled then).
    /// Context: any thread.
    static BufferPool& global();

    /// Allocate a buffer of the smallest class holding @bytes (0 counts as 1 page).
    /// Context: any thread; lock-free on a thread-cache hit; may mmap a new arena.
    /// Returns: an empty Buffer (data == nullptr) when @bytes > max_buffer or no memory.
    Buffer alloc(std::size_t bytes) noexcept;
    /// Return @b; an empty Buffer is a no-op. Any thread may free any buffer.
    /// Context: any thread; lock-free unless the thread cache is full or the reserve short.
    void free(Buffer b) noexcept;

    /// Returns: arenas created so far (never shrinks).
    std::size_t arena_count() const noexcept;
    /// Returns: [base, len) of arena @index (for io_uring registration); {nullptr, 0} if none.
    iovec arena(std::size_t index) const noexcept;

    /// Returns: the class index for @bytes, or -1 when it is larger than max_buffer.
    static int size_class(std::size_t bytes) noexcept;
    /// Returns: the counters of class @c. Context: any thread; takes the pool lock.
    BufferClassStats class_stats(std::size_t c) const;
    /// Move the calling thread's cached buffers back to the pool.
    void drain_this_thread() noexcept;

    BufferPool(const BufferPool&) = delete;
    BufferPool& operator=(const BufferPool&) = delete;

private:
    BufferPool() noexcept;
    friend struct BufferThreadCache;

    bool take_chunk_locked(std::size_t c) noexcept;
    Buffer pop_locked(std::size_t c) noexcept;
    void push_locked(const Buffer& b) noexcept;
    std::size_t refill(std::size_t c, Buffer* out, std::size_t n) noexcept;
    void flush(const Buffer* in, std::size_t n) noexcept;

    mutable std::mutex lock_;
    std::array<iovec, max_arenas> arenas_{};
    std::atomic<std::size_t> arena_count_{0}; ///< release-published after arenas_[i] is set
    std::size_t chunk_next_ = 0;              ///< bump offset in the newest arena, under lock_

    struct FreeNode {
        FreeNode* next;
        std::uint64_t arena;
    };
    struct ClassState {
        FreeNode* free = nullptr;
        std::size_t nr_free = 0;
        std::uint64_t carved = 0;
        std::atomic<std::uint64_t> failures{0};
        std::atomic<std::uint64_t> reserve_hits{0};
    };
    std::array<ClassState, class_count> classes_{};
    std::array<Buffer, reserve_target> reserve_{};
    std::size_t reserve_nr_ = 0;                ///< under lock_
    std::atomic<std::size_t> reserve_short_{0}; ///< reserve_target - reserve_nr_, relaxed hint
};

/// A Buffer that returns itself to its pool when destroyed: move-only, one pointer more
/// than Buffer. `OwnedBuffer b = OwnedBuffer::alloc(4096); if (!b) ...; b.data()`.
class OwnedBuffer {
public:
    OwnedBuffer() noexcept = default;
    /// Take ownership of @b, which came from @pool.
    OwnedBuffer(Buffer b, BufferPool& pool) noexcept : b_(b), pool_(&pool) {}
    /// Returns: a buffer of at least @bytes from @pool, empty when the pool has none
    /// (see BufferPool::alloc). Context: any thread.
    static OwnedBuffer alloc(std::size_t bytes, BufferPool& pool = BufferPool::global()) noexcept {
        return OwnedBuffer(pool.alloc(bytes), pool);
    }
    OwnedBuffer(OwnedBuffer&& o) noexcept : b_(std::exchange(o.b_, Buffer{})), pool_(o.pool_) {}
    OwnedBuffer& operator=(OwnedBuffer&& o) noexcept {
        if (this != &o) {
            reset();
            b_ = std::exchange(o.b_, Buffer{});
            pool_ = o.pool_;
        }
        return *this;
    }
    OwnedBuffer(const OwnedBuffer&) = delete;
    OwnedBuffer& operator=(const OwnedBuffer&) = delete;
    ~OwnedBuffer() { reset(); }

    explicit operator bool() const noexcept { return b_.data != nullptr; }
    std::byte* data() const noexcept { return b_.data; }
    std::size_t capacity() const noexcept { return b_.capacity; }
    std::span<std::byte> span() const noexcept { return {b_.data, b_.capacity}; }
    /// The plain Buffer, still owned by this handle.
    const Buffer& get() const noexcept { return b_; }
    /// Give up ownership: the caller frees the returned Buffer.
    Buffer release() noexcept { return std::exchange(b_, Buffer{}); }
    /// Free the buffer now (no-op when empty).
    void reset() noexcept {
        if (b_.data != nullptr) {
            pool_->free(std::exchange(b_, Buffer{}));
        }
    }

private:
    Buffer b_{};
    BufferPool* pool_ = nullptr;
};

} // namespace bioring
