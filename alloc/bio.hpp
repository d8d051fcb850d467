// SPDX-License-Identifier: MIT
// Bio: the bookkeeping record that sits behind a bioset object's front pad.
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
    BioSet* set = nullptr;         ///< the bioset that allocated this Bio
    SlabCache* cache = nullptr;    ///< the slab cache the object came from
    std::uint32_t front_pad = 0;   ///< bytes from the start of the object to this Bio
    std::uint32_t alloc_flags = 0; ///< alloc/-private (e.g. "came from the reserve")

    // Request side, never read by alloc/.
    void* frame = nullptr;        ///< the coroutine frame in the front region (runtime/), if any
    void* private_data = nullptr; ///< free for the layer that allocated the object (bi_private)

    // Unlike the kernel's bio, no operation, offset, length or status: in bioring a request
    // is a coroutine, and its parameters and awaiters already hold them. Copying them here
    // would add stores to every I/O for a reader that does not exist; a stacked layer reads
    // the request it serves from its own coroutine and keeps per-request context behind
    // private_data (DESIGN.md, "The request path").

    /// The start of the object this Bio belongs to (the front region).
    void* front() noexcept { return reinterpret_cast<char*>(this) - front_pad; }
    /// The Bio of the object whose front region starts at @front, for a set of @front_pad.
    static Bio* from_front(void* front, std::size_t front_pad) noexcept {
        return reinterpret_cast<Bio*>(static_cast<char*>(front) + front_pad);
    }
};

static_assert(sizeof(Bio) == 64, "a Bio is one cache line");

} // namespace bioring
