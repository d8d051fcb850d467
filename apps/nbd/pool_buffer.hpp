// SPDX-License-Identifier: MIT
// PoolBuffer: a BufferPool buffer owned by a request frame, returned to the pool when the
// frame ends (any co_return path).
#pragma once

#include <bioring/alloc/buffer_pool.hpp>

#include <cstddef>
#include <utility>

namespace bioring::apps::nbd {

class PoolBuffer {
public:
    PoolBuffer() noexcept = default;
    /// Take a buffer of at least @bytes (<= BufferPool::max_buffer) from the global pool.
    /// Context: any thread; no heap call once the pool's thread cache is warm.
    explicit PoolBuffer(std::size_t bytes) noexcept : b_(BufferPool::global().alloc(bytes)) {}
    /// Take ownership of @b (a buffer of BufferPool::global()).
    static PoolBuffer adopt(Buffer b) noexcept {
        PoolBuffer p;
        p.b_ = b;
        return p;
    }
    PoolBuffer(PoolBuffer&& o) noexcept : b_(std::exchange(o.b_, Buffer{})) {}
    PoolBuffer& operator=(PoolBuffer&& o) noexcept {
        if (this != &o) {
            reset();
            b_ = std::exchange(o.b_, Buffer{});
        }
        return *this;
    }
    PoolBuffer(const PoolBuffer&) = delete;
    PoolBuffer& operator=(const PoolBuffer&) = delete;
    ~PoolBuffer() { reset(); }

    void reset() noexcept {
        if (b_) {
            BufferPool::global().free(b_);
            b_ = Buffer{};
        }
    }
    /// Returns: false when the pool had no memory (the request fails with -ENOMEM).
    explicit operator bool() const noexcept { return static_cast<bool>(b_); }
    std::byte* data() const noexcept { return b_.data; }
    std::size_t capacity() const noexcept { return b_.capacity; }

private:
    Buffer b_{};
};

} // namespace bioring::apps::nbd
