// SPDX-License-Identifier: MIT
// Counting heap calls in a benchmark program (bioring-bench, bioring-wal bench): global operator new/delete (every form) and, in
// builds without a sanitizer, the C allocator (malloc, calloc, realloc, free,
// posix_memalign, aligned_alloc, memalign) are replaced in the binary that links heap_counter.cpp by versions
// that bump a thread-local counter and forward to glibc (__libc_malloc & co). The count
// is per thread, a plain increment of a constinit thread_local (no atomics, no
// allocation), so it costs one add per call. Allocations inside other shared libraries
// that call their own allocators (mimalloc, dlopen'ed by alloc/ for its slabs) are not
// heap calls of this process's default heap and are not counted: slab traffic is reported
// separately as slab allocations.
#pragma once

#include <cstdint>

namespace bioring::measure {

/// Heap calls (allocations and frees) made by the calling thread so far.
std::uint64_t heap_calls_this_thread() noexcept;
/// Returns: whether malloc & co are counted too (false in sanitizer builds, where the
/// sanitizer owns malloc; operator new/delete are counted in every build).
bool heap_counter_covers_malloc() noexcept;

} // namespace bioring::measure
