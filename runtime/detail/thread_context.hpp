// SPDX-License-Identifier: MIT
// Per-thread state shared by the frame allocator (task.hpp) and the Reactor: one
// constinit thread_local, so reading it is a plain TLS load with no init guard.
#pragma once

#include <bioring/alloc/bio.hpp>
#include <bioring/alloc/bioset.hpp>
#include <bioring/runtime/counters.hpp>

#include <atomic>
#include <cstdint>

namespace bioring {

class Reactor;

namespace detail {

struct ThreadContext {
    Reactor* reactor = nullptr;          ///< the Reactor bound to this thread
    BioSet* bioset = nullptr;            ///< its default bioset (set while it runs)
    ReactorCounters* counters = nullptr; ///< its counters
    Bio* new_bio = nullptr;              ///< operator new -> promise constructor handover
    /// The promise of the Task that this thread's innermost Task awaiter is resuming inline
    /// (set around that resume()); its final awaiter, when it runs on this thread inside
    /// that resume(), sets it to nullptr to say "finished inline" (task.hpp).
    void* inline_child = nullptr;
    /// Detached tasks started minus detached tasks finished on this thread (its reactor's
    /// count; may go negative when tasks finish on another thread, so only the sum over a
    /// Runtime's reactors means "tasks alive"). Written by this thread only.
    std::atomic<std::int64_t>* detached_live = nullptr;
};
extern thread_local constinit ThreadContext tl_context;

/// Count a detached task started (+1) or finished (-1) on this thread. One relaxed load and
/// store, no read-modify-write: the counter has a single writer.
inline void note_detached(std::int64_t delta) noexcept {
    if (std::atomic<std::int64_t>* c = tl_context.detached_live) {
        c->store(c->load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
    }
}

} // namespace detail
} // namespace bioring
