// SPDX-License-Identifier: MIT
// BioSet: the kernel's bio_set in user space (block/bio.c bioset_init, mm/mempool.c).
//
// DESIGN (to be completed by the implementation): objects of front_pad + sizeof(Bio)
// bytes come from the process-wide SlabRegistry's cache of that size, through the calling
// thread's cache (no lock, no atomic RMW on the hot path). pool_size objects are kept in
// a reserve (mempool): used only when the backing allocator fails, refilled first by
// frees; an object taken while the reserve is below pool_size is never cached per thread
// ("bio: don't rob starving biosets of bios"). A Waiter is woken by the next free.
#pragma once

#include "alloc/bio.hpp"

#include <cstddef>
#include <cstdint>

namespace bioring {

class BioSet {
public:
    static constexpr std::size_t max_front_pad = 64 * 1024; ///< front_pad limit (bytes)
    static constexpr std::size_t max_pool_size = 1u << 20;  ///< pool_size limit (objects)

    /// Create a bioset of objects with a front region of @front_pad bytes (rounded up to 64).
    /// \param pool_size objects held in reserve (0: no reserve), filled at construction.
    /// \param front_pad bytes in front of each Bio; at most max_front_pad.
    /// Context: any thread; may allocate; may block on the registry lock.
    /// Returns: throws std::invalid_argument naming the limit for a front_pad or pool_size
    /// above its maximum; std::bad_alloc if the reserve cannot be filled.
    BioSet(std::size_t pool_size, std::size_t front_pad);
    /// All objects must have been freed. Drops the set's references on its slab caches.
    ~BioSet();
    BioSet(const BioSet&) = delete;
    BioSet& operator=(const BioSet&) = delete;

    /// Allocate one object; its Bio is returned, the front region is bio->front().
    /// Context: any thread; never blocks; lock-free on the thread-cache hit path.
    /// Returns: nullptr when the backing allocator fails and the reserve is empty.
    Bio* alloc() noexcept;

    /// Allocate an object whose front region holds at least @front_size bytes. Up to
    /// front_pad() this is alloc(); above it the object comes from the registry's cache of
    /// round_up(front_size, 64) + sizeof(Bio) bytes (held by this set until it is
    /// destroyed), still one allocation, with bio->front_pad telling which pad was used.
    /// Oversized objects have no reserve.
    /// Returns: nullptr on failure (as alloc()).
    Bio* alloc(std::size_t front_size) noexcept;

    /// Free an object of this set (either size); null is a no-op. Refills the reserve
    /// first, then wakes one waiter.
    /// Context: any thread (a free on a thread other than the allocating one is fine).
    /// Debug builds assert that @bio belongs to this set.
    void free(Bio* bio) noexcept;

    /// An allocation waiting for a free (the runtime's hook for "wait, don't fail").
    struct Waiter {
        void (*wake)(Waiter*) noexcept = nullptr; ///< called once, on the freeing thread
        Waiter* next = nullptr;                   ///< alloc/-private
    };

    /// Queue @w to be woken after the next free of an object of this set.
    /// Context: any thread. wake() runs on the thread that frees, outside any lock the
    /// caller could hold; it must not free into this set, it may retry alloc() or post.
    /// Returns: false, without queueing, when an object is available now (retry alloc()).
    bool wait(Waiter& w) noexcept;
    /// Remove @w if it is still queued. Returns: true if it was removed (it will not wake).
    bool cancel_wait(Waiter& w) noexcept;

    std::size_t front_pad() const noexcept { return front_pad_; }
    std::size_t pool_size() const noexcept { return pool_size_; }
    std::size_t object_size() const noexcept { return front_pad_ + sizeof(Bio); }

private:
    std::size_t pool_size_;
    std::size_t front_pad_;
    // The implementation adds its members here.
};

} // namespace bioring
