// SPDX-License-Identifier: MIT
// Per-thread state shared by the frame allocator (task.hpp) and the Reactor: one
// constinit thread_local, so reading it is a plain TLS load with no init guard.
#pragma once

#include <bioring/alloc/bio.hpp>
#include <bioring/alloc/bioset.hpp>
#include <bioring/runtime/counters.hpp>

namespace bioring {

class Reactor;

namespace detail {

struct ThreadContext {
    Reactor* reactor = nullptr;          ///< the Reactor bound to this thread
    BioSet* bioset = nullptr;            ///< its default bioset (set while it runs)
    ReactorCounters* counters = nullptr; ///< its counters
    Bio* new_bio = nullptr;              ///< operator new -> promise constructor handover
};
extern thread_local constinit ThreadContext tl_context;

} // namespace detail
} // namespace bioring
