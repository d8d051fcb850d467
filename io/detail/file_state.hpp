// SPDX-License-Identifier: MIT
// FileState: what an io/ awaiter needs to know about its file, owned by DirectFile.
//
// Awaiters keep a pointer to their DirectFile's FileState, so the DirectFile must stay
// where it is (not moved, not destroyed) while one of its requests is in flight. A file
// registered as a fixed file belongs to one reactor: requests issued on that reactor's
// thread use the fixed index, requests from any other reactor use the plain descriptor.
#pragma once

#include <bioring/runtime/operation.hpp>
#include <bioring/runtime/reactor.hpp>

#include <cstdint>
#include <string>

namespace bioring {

class Reactor;

namespace detail {

/// Linux MAX_RW_COUNT: the most one read/write moves. Requests are refused above it
/// because the result (an int in IoResult) could not represent the count.
inline constexpr std::size_t max_transfer = 0x7ffff000;

struct FileState {
    int fd = -1;          ///< -1 once closed
    int fixed_index = -1; ///< index in the registering reactor's file table, or -1
    /// Reactor::id() of the reactor holding the registration (0: none). An id, not a
    /// pointer: a reactor built later at the same address (sync_wait's, on the stack) must
    /// not be mistaken for the one whose table holds the index.
    std::uint64_t fixed_reactor = 0;

    /// Returns: whether the fixed index is valid on reactor @r.
    bool fixed_on(const Reactor* r) const noexcept {
        return fixed_index >= 0 && r != nullptr && fixed_reactor == r->id();
    }
    std::uint32_t memory_align = 4096; ///< buffer address alignment for O_DIRECT
    std::uint32_t offset_align = 4096; ///< file offset and length alignment for O_DIRECT
    bool direct = false;               ///< opened with O_DIRECT: alignment is enforced
    bool block_device = false;
    /// Sockets: the kernel refused a zero-copy send (-EOPNOTSUPP: not TCP/UDP); later
    /// zero-copy requests on this socket go out as plain sends without asking again.
    mutable bool zero_copy_refused = false;
    std::string path;

    /// Point @op at this file as seen from reactor @r (fixed index when registered there).
    void target(Operation& op, const Reactor* r) const noexcept {
        if (fixed_on(r)) {
            op.fixed_file = true;
            op.fd = fixed_index;
        } else {
            op.fixed_file = false;
            op.fd = fd;
        }
    }
};

} // namespace detail
} // namespace bioring
