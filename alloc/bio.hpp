// SPDX-License-Identifier: MIT
// Bio: the request descriptor that sits behind a bioset object's front pad.
//
// An object of a BioSet is laid out as [ front region (front_pad bytes) | Bio ], like the
// kernel's struct bio behind bio_set.front_pad: the front region holds whatever the user
// embeds (in bioring, a request coroutine's frame), and the Bio is always at
// object + front_pad, so either is reached from the other in O(1).
#pragma once

#include <cstddef>
#include <cstdint>

namespace bioring {

class BioSet;
class SlabCache;

struct alignas(64) Bio {
    // Owner bookkeeping: written by alloc/ when the object is handed out, read-only for users.
    BioSet* set = nullptr;        ///< the bioset that allocated this Bio
    SlabCache* cache = nullptr;   ///< the slab cache the object came from
    std::uint32_t front_pad = 0;  ///< bytes from the start of the object to this Bio
    std::uint32_t alloc_flags = 0;///< alloc/-private (e.g. "came from the reserve")

    // Request descriptor: filled by the runtime and by users, never read by alloc/.
    void* frame = nullptr;        ///< coroutine frame that owns this request, when there is one
    void* private_data = nullptr; ///< free for the user (bi_private)
    std::uint64_t offset = 0;     ///< byte offset of the request in its file
    std::uint32_t length = 0;     ///< byte length of the request
    std::int32_t status = 0;      ///< last result: bytes or -errno
    std::uint32_t opcode = 0;     ///< user-defined
    std::uint32_t reserved_ = 0;

    /// The start of the object this Bio belongs to (the front region).
    void* front() noexcept { return reinterpret_cast<char*>(this) - front_pad; }
    /// The Bio of the object whose front region starts at @front, for a set of @front_pad.
    static Bio* from_front(void* front, std::size_t front_pad) noexcept {
        return reinterpret_cast<Bio*>(static_cast<char*>(front) + front_pad);
    }
};

static_assert(sizeof(Bio) == 64, "a Bio is one cache line");

} // namespace bioring
