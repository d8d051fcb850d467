// SPDX-License-Identifier: MIT
// ASan poisoning of free slab objects (mm/kasan's kasan_slab_free, in user space).
//
// A slab object is freed into a magazine or the depot, not back to malloc, so without this
// ASan would see a use after free of a bioset object as an ordinary access. In ASan builds
// an object is poisoned for exactly as long as it is free; the bytes between object_size
// and the stride stay poisoned always (an overflow past the object is reported too). The
// depot's free-list link (the first word) is unpoisoned only while the depot reads or
// writes it. Other builds compile these to nothing.
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define BIORING_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BIORING_ASAN 1
#endif
#endif

#ifdef BIORING_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace bioring::detail {

/// True in builds where poisoning is done (tests check the poisoning only there).
#ifdef BIORING_ASAN
inline constexpr bool asan_poisoning = true;
#else
inline constexpr bool asan_poisoning = false;
#endif

/// Mark [p, p + n) unaddressable. Context: any thread; noexcept, no-op without ASan.
inline void poison(const void* p, std::size_t n) noexcept {
#ifdef BIORING_ASAN
    __asan_poison_memory_region(p, n);
#else
    (void)p;
    (void)n;
#endif
}

/// Mark [p, p + n) addressable again. Context: any thread; noexcept, no-op without ASan.
inline void unpoison(const void* p, std::size_t n) noexcept {
#ifdef BIORING_ASAN
    __asan_unpoison_memory_region(p, n);
#else
    (void)p;
    (void)n;
#endif
}

} // namespace bioring::detail
