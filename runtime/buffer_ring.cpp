// SPDX-License-Identifier: MIT
// BufferRing (buffer_ring.hpp): the buffers, and their io_uring registration.
#include <bioring/runtime/buffer_ring.hpp>

#include <liburing.h>

#include <cassert>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>

namespace bioring {

BufferRing::BufferRing(unsigned count, std::uint32_t size, std::uint16_t group, io_uring* ring)
    : count_(count), size_(size), group_(group), out_(count, false) {
    if (count == 0 || count > max_count || (count & (count - 1)) != 0) {
        throw std::invalid_argument("buffer ring of " + std::to_string(count) +
                                    " buffers: a power of two from 1 to " +
                                    std::to_string(max_count) + " is needed");
    }
    if (size == 0 || size > max_size) {
        throw std::invalid_argument("buffer ring buffers of " + std::to_string(size) +
                                    " bytes: 1 to " + std::to_string(max_size) + " allowed");
    }
    void* mem = nullptr;
    if (posix_memalign(&mem, 4096, std::size_t{count} * size) != 0) {
        throw std::bad_alloc();
    }
    mem_ = static_cast<std::byte*>(mem);
    if (ring != nullptr) {
        void* br = nullptr;
        if (posix_memalign(&br, 4096, std::size_t{count} * sizeof(io_uring_buf)) != 0) {
            std::free(mem_);
            throw std::bad_alloc();
        }
        br_ = static_cast<io_uring_buf_ring*>(br);
        io_uring_buf_ring_init(br_);
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uintptr_t>(br_);
        reg.ring_entries = count;
        reg.bgid = group;
        if (io_uring_register_buf_ring(ring, &reg, 0) != 0) {
            std::free(br_); // refused (old kernel, no memory to pin): hand buffers out here
            br_ = nullptr;
        }
    }
    if (br_ != nullptr) {
        for (unsigned id = 0; id < count; ++id) {
            io_uring_buf_ring_add(br_, data(id), size_, static_cast<unsigned short>(id),
                                  io_uring_buf_ring_mask(count_), static_cast<int>(id));
        }
        io_uring_buf_ring_advance(br_, static_cast<int>(count));
    } else {
        free_.reserve(count);
        for (unsigned id = count; id-- > 0;) {
            free_.push_back(static_cast<std::uint16_t>(id)); // id 0 taken first
        }
    }
}

BufferRing::~BufferRing() {
    // The owning reactor closed its io_uring first, which drops the registration.
    std::free(br_);
    std::free(mem_);
}

void BufferRing::add(unsigned id) noexcept {
    io_uring_buf_ring_add(br_, data(id), size_, static_cast<unsigned short>(id),
                          io_uring_buf_ring_mask(count_), 0);
    io_uring_buf_ring_advance(br_, 1);
}

void BufferRing::give_back(unsigned id) noexcept {
    assert(id < count_ && out_[id] && "give_back of a buffer that is not held");
    out_[id] = false;
    --held_;
    if (br_ != nullptr) {
        add(id);
    } else {
        free_.push_back(static_cast<std::uint16_t>(id)); // reserved: never allocates
    }
}

int BufferRing::take() noexcept {
    if (free_.empty()) {
        return -1;
    }
    const unsigned id = free_.back();
    free_.pop_back();
    out_[id] = true;
    ++held_;
    return static_cast<int>(id);
}

void BufferRing::picked(unsigned id) noexcept {
    assert(id < count_ && !out_[id]);
    out_[id] = true;
    ++held_;
}

} // namespace bioring
