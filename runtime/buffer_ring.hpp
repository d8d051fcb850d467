// SPDX-License-Identifier: MIT
// BufferRing: receive buffers that the kernel picks when data arrives (io_uring's provided
// buffer ring, IORING_REGISTER_PBUF_RING), so a socket waiting for data holds no buffer of
// its own: idle connections share one reactor's buffers instead of owning one each.
//
// A reactor owns its rings (Reactor::buffer_ring(count, size) makes one on first use, one
// per size) and frees them when it is destroyed, after its io_uring is closed. A receive
// through a ring (Socket::recv_select) yields the id of the buffer the bytes landed in;
// the caller reads them at data(id) and gives the buffer back with give_back(id), after
// which it can be picked again. Where the kernel cannot pick (the Asio backend, or an
// io_uring that refuses the registration) the ring itself hands a free buffer to a receive
// when it starts: the same API and results, without the sharing while waiting
// (kernel_picks() says which). When no buffer is free the receive fails with -ENOBUFS.
// Threads: the owning reactor's only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

struct io_uring;
struct io_uring_buf_ring;

namespace bioring {

class BufferRing {
public:
    /// Largest count() and buffer_size().
    static constexpr unsigned max_count = 32768;
    static constexpr std::uint32_t max_size = 1u << 20;

    BufferRing(const BufferRing&) = delete;
    BufferRing& operator=(const BufferRing&) = delete;
    ~BufferRing();

    /// The bytes of buffer @id (0..count()-1), buffer_size() of them.
    std::byte* data(unsigned id) const noexcept { return mem_ + std::size_t{id} * size_; }
    std::uint32_t buffer_size() const noexcept { return size_; }
    unsigned count() const noexcept { return count_; }
    /// Buffers handed to receivers and not given back yet.
    unsigned held() const noexcept { return held_; }
    /// Whether the kernel picks a buffer when data arrives (a registered io_uring ring).
    bool kernel_picks() const noexcept { return br_ != nullptr; }
    /// Return buffer @id (from a receive through this ring) for reuse.
    /// Context: the owning reactor's thread; never allocates.
    void give_back(unsigned id) noexcept;

    // Internal: Socket::recv_select.
    std::uint16_t group() const noexcept { return group_; }
    /// Without kernel picking: a free buffer's id, now held, or -1 when none is free.
    int take() noexcept;
    /// With kernel picking: the kernel filled buffer @id.
    void picked(unsigned id) noexcept;

private:
    friend class Reactor;
    /// @count (a power of two) buffers of @size bytes. With @ring: registered as buffer
    /// group @group of that io_uring; if the kernel refuses, the ring hands buffers out
    /// itself. Throws std::invalid_argument (bad count or size), std::bad_alloc.
    BufferRing(unsigned count, std::uint32_t size, std::uint16_t group, io_uring* ring);
    void add(unsigned id) noexcept;

    std::byte* mem_ = nullptr;
    unsigned count_;
    std::uint32_t size_;
    std::uint16_t group_;
    unsigned held_ = 0;
    io_uring_buf_ring* br_ = nullptr;  ///< the shared ring, when the kernel picks
    std::vector<std::uint16_t> free_;  ///< free ids, when it does not
    std::vector<bool> out_;            ///< id held by a receiver (catches a double give_back)
};

} // namespace bioring
