// SPDX-License-Identifier: MIT
// The backing allocator: where slab pages come from.
//
// Slabs come from mimalloc's mi_malloc_aligned/mi_free. Debian ships mimalloc only as a
// shared library that exports malloc/free, so linking it would replace glibc malloc in the
// whole process; instead it is dlopen()ed with RTLD_LOCAL before main (while the process
// has one thread: see backing.cpp) and called through function pointers. When that fails,
// or in sanitizer builds (BIORING_SANITIZED, so that ASan/LSan/TSan see every byte), or when
// BIORING_BACKING=system is set in the environment, slabs come from std::aligned_alloc, and
// very large ones from mmap. The choice is made once per process and reported by
// backing_name() (and so by slabinfo()).
// Every request passes FailureInjector::should_fail() first.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bioring::detail {

/// Get @bytes of memory aligned to @align (a power of two, at least 64).
/// Context: any thread; may take the system allocator's locks or call mmap.
/// Returns: the memory, or nullptr when the system (or the FailureInjector) refuses.
void* backing_alloc(std::size_t bytes, std::size_t align) noexcept;

/// Give back memory from backing_alloc() with the same @bytes and @align.
/// Context: any thread.
void backing_free(void* p, std::size_t bytes, std::size_t align) noexcept;

/// Returns: a human-readable name of the backing in use, e.g. "mimalloc 2.0.9 (dlopen)".
const char* backing_name() noexcept;

/// Returns: bytes currently obtained from the backing allocator.
std::uint64_t backing_bytes() noexcept;

} // namespace bioring::detail
