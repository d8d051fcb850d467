// SPDX-License-Identifier: MIT
// HandlerPool: recycled memory for the Asio backend's completion handlers (runtime-private).
//
// Why. Asio allocates an operation object for every posted handler and every async_wait
// through the handler's associated allocator. The default (std::allocator, with Asio's
// per-thread recycling cache) does not recycle across threads, and the fallback backend's
// handlers cross threads by design: the reactor thread posts a blocking call to a
// thread-pool worker (allocated on the reactor thread, freed on the worker), the worker
// posts its result back (allocated on the worker, freed on the reactor thread). Measured
// before this pool: one heap call per operation from the handlers (the in-flight set made
// two more; see runtime/op_set.hpp). A HandlerPool is a free list of fixed-size blocks shared by all the
// threads of one backend: any thread takes a block, any thread returns it, and after
// warm-up no handler touches the heap.
//
// Model (a mempool of one size class): blocks of block_size bytes, block_align-aligned,
// carved from chunks that live until the pool dies. The free list is guarded by a mutex:
// each I/O takes it four times (two allocations, two frees), each for a few instructions,
// and the same I/O already takes Asio's scheduler mutexes; a lock-free list would need an
// ABA guard because every thread both pops and pushes. An empty free list grows by one
// chunk (a heap call, during warm-up or when more handlers are pending than ever before);
// a request larger than a block, or more aligned, goes to the heap and back (a larger
// handler type would show up in the zero-heap tests, tests/runtime/alloc_count_test.cpp).
//
// Lifetime: the pool must outlive every handler allocated from it, including the ones an
// io_context or thread_pool destroys unrun at shutdown: declare it before them.
#pragma once

#include <bioring/alloc/detail/poison.hpp>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <utility>

namespace bioring::detail {

class HandlerPool {
public:
    /// Largest handler operation served from the pool. With Asio 1.22 (GCC 12, x86-64) a
    /// post of a PooledHandler of three words is a 64-byte executor_op, an async_wait on a
    /// timer bound to io_context::executor_type an 88-byte wait_handler (136 bytes with
    /// the type-erased any_io_executor of asio::steady_timer: hence the backend's timer type).
    static constexpr std::size_t block_size = 128;
    static constexpr std::size_t block_align = 64;  ///< a block starts a cache line
    static constexpr std::size_t chunk_blocks = 64; ///< blocks added per growth

    /// Pre-carve @initial_blocks blocks (rounded up to whole chunks).
    /// Context: any thread. Returns: throws std::bad_alloc.
    explicit HandlerPool(std::size_t initial_blocks) {
        std::lock_guard lk(mu_);
        while (nr_blocks_ < initial_blocks) {
            grow_locked();
        }
    }
    ~HandlerPool() {
        while (chunks_ != nullptr) {
            Chunk* c = chunks_;
            unpoison(c, chunk_bytes);
            chunks_ = c->next;
            ::operator delete (static_cast<void*>(c), std::align_val_t{block_align});
        }
    }
    HandlerPool(const HandlerPool&) = delete;
    HandlerPool& operator=(const HandlerPool&) = delete;

    /// Context: any thread. Returns: @n bytes aligned to @align; throws std::bad_alloc.
    void* allocate(std::size_t n, std::size_t align) {
        if (n > block_size || align > block_align) [[unlikely]] {
            return ::operator new (n, std::align_val_t{align});
        }
        std::lock_guard lk(mu_);
        if (free_ == nullptr) [[unlikely]] {
            grow_locked();
        }
        Block* b = free_;
        unpoison(b, block_size);
        free_ = b->next;
        return b;
    }
    /// Return what allocate(@n, @align) gave. Context: any thread (not only the allocator's).
    void deallocate(void* p, std::size_t n, std::size_t align) noexcept {
        if (n > block_size || align > block_align) [[unlikely]] {
            ::operator delete (p, std::align_val_t{align});
            return;
        }
        auto* b = static_cast<Block*>(p);
        std::lock_guard lk(mu_);
        b->next = free_;
        free_ = b;
        poison(b, block_size);
    }

    /// Returns: blocks carved so far (each growth adds chunk_blocks). Context: any thread.
    std::size_t blocks() const {
        std::lock_guard lk(mu_);
        return nr_blocks_;
    }

private:
    struct Block {
        Block* next;
    };
    // A chunk's first block holds the chunk list link; the other blocks are handed out.
    struct Chunk {
        Chunk* next;
    };
    static constexpr std::size_t chunk_bytes = (chunk_blocks + 1) * block_size;

    [[gnu::noinline]] void grow_locked() {
        void* mem = ::operator new (chunk_bytes, std::align_val_t{block_align});
        auto* c = static_cast<Chunk*>(mem);
        c->next = chunks_;
        chunks_ = c;
        auto* base = static_cast<std::byte*>(mem);
        for (std::size_t i = chunk_blocks; i >= 1; --i) {
            auto* b = reinterpret_cast<Block*>(base + i * block_size);
            b->next = free_;
            free_ = b;
            poison(b, block_size);
        }
        nr_blocks_ += chunk_blocks;
    }

    mutable std::mutex mu_;
    Block* free_ = nullptr;   // guarded by mu_
    Chunk* chunks_ = nullptr; // guarded by mu_ (walked unlocked by the destructor)
    std::size_t nr_blocks_ = 0;
};

/// The Allocator handed to Asio (see PooledHandler): every rebind draws on one pool.
template <class T>
class HandlerAllocator {
public:
    using value_type = T;

    explicit HandlerAllocator(HandlerPool& pool) noexcept : pool_(&pool) {}
    template <class U>
    HandlerAllocator(const HandlerAllocator<U>& other) noexcept : pool_(other.pool_) {}

    T* allocate(std::size_t n) {
        return static_cast<T*>(pool_->allocate(n * sizeof(T), alignof(T)));
    }
    void deallocate(T* p, std::size_t n) noexcept {
        pool_->deallocate(p, n * sizeof(T), alignof(T));
    }

    template <class U>
    bool operator==(const HandlerAllocator<U>& other) const noexcept {
        return pool_ == other.pool_;
    }

private:
    template <class U>
    friend class HandlerAllocator;
    HandlerPool* pool_;
};

/// A completion handler whose Asio operation memory comes from a HandlerPool: Asio finds
/// the nested allocator_type / get_allocator() (its associated_allocator). Not
/// asio::bind_allocator: its binder forwards associated_executor, which makes asio::post
/// wrap the handler in a work_dispatcher (extra work counting per post) and makes a timer's
/// wait operation larger than a block.
template <class F>
struct PooledHandler {
    using allocator_type = HandlerAllocator<void>;

    F fn;
    HandlerPool* pool;

    allocator_type get_allocator() const noexcept { return allocator_type(*pool); }
    template <class... Args>
    void operator()(Args&&... args) {
        fn(std::forward<Args>(args)...);
    }
};

} // namespace bioring::detail
