// SPDX-License-Identifier: MIT
// Coroutine frame placement (see task.hpp): frame right-aligned against a Bio inside the
// front region of one bioset object (inline in task.hpp); here the out-of-line rest: heap
// frames, which get the same layout with a Bio whose set is nullptr, so operator delete
// needs nothing but the pointer and the size; the thread context; detached exceptions.
#include <bioring/runtime/task.hpp>

#include <atomic>
#include <cstdio>
#include <exception>
#include <new>
#include <typeinfo>

namespace bioring {

namespace detail {

thread_local constinit ThreadContext tl_context{};

namespace {
std::atomic<std::uint64_t> detached_exception_count{0};
}

void* frame_alloc_heap(std::size_t f) noexcept {
    void* mem = ::operator new (f + sizeof(Bio), std::align_val_t{alignof(Bio)}, std::nothrow);
    tl_context.new_bio = nullptr;
    if (mem == nullptr) {
        return nullptr;
    }
    Bio* bio = ::new (static_cast<char*>(mem) + f) Bio{};
    bio->frame = mem; // set stays nullptr: a heap frame
    return mem;
}

void* frame_alloc_slow(BioSet& bs, std::size_t f) noexcept {
    Bio* bio = bs.alloc(f);
    ThreadContext& tc = tl_context;
    tc.new_bio = bio;
    if (bio == nullptr) {
        return nullptr;
    }
    if (ReactorCounters* c = tc.counters) {
        ++c->requests_allocated;
        if ((bio->alloc_flags & BioSet::flag_reserve) != 0) {
            ++c->reserve_hits;
        }
    }
    char* frame = reinterpret_cast<char*>(bio) - f;
    bio->frame = frame;
    return frame;
}

void frame_free_heap(void* frame) noexcept {
    ::operator delete (frame, std::align_val_t{alignof(Bio)});
}

void report_detached_exception(std::exception_ptr e) noexcept {
    detached_exception_count.fetch_add(1, std::memory_order_relaxed);
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        std::fprintf(stderr, "bioring: exception escaped a spawned task: %s\n", ex.what());
    } catch (...) {
        std::fprintf(stderr, "bioring: non-standard exception escaped a spawned task\n");
    }
}

} // namespace detail

BioSet* default_bioset() noexcept {
    return detail::tl_context.bioset;
}

std::uint64_t detached_exceptions() noexcept {
    return detail::detached_exception_count.load(std::memory_order_relaxed);
}

} // namespace bioring
