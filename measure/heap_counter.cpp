// SPDX-License-Identifier: MIT
// The counting allocator hooks (see heap_counter.hpp).
#include "measure/heap_counter.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace {
thread_local constinit std::uint64_t tl_heap_calls = 0;
} // namespace

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
}

namespace bioring::measure {

std::uint64_t heap_calls_this_thread() noexcept {
    return tl_heap_calls;
}

#if defined(BIORING_SANITIZED)
bool heap_counter_covers_malloc() noexcept {
    return false;
}
#else
bool heap_counter_covers_malloc() noexcept {
    return true;
}
#endif

} // namespace bioring::measure

namespace {

// Sanitizer builds: the sanitizer owns malloc, so operator new must take its memory from
// the sanitizer's malloc (glibc's heap would be freed by the sanitizer's free). Other
// builds go straight to glibc, below the malloc replacements at the end of this file.
#if defined(BIORING_SANITIZED)
void* raw_alloc(std::size_t n) noexcept {
    return std::malloc(n);
}
void* raw_aligned(std::size_t al, std::size_t n) noexcept {
    return std::aligned_alloc(al, (n + al - 1) / al * al);
}
void raw_free(void* p) noexcept {
    std::free(p);
}
#else
void* raw_alloc(std::size_t n) noexcept {
    return __libc_malloc(n);
}
void* raw_aligned(std::size_t al, std::size_t n) noexcept {
    return __libc_memalign(al, n);
}
void raw_free(void* p) noexcept {
    __libc_free(p);
}
#endif

void* counted_alloc(std::size_t n) {
    ++tl_heap_calls;
    void* p = raw_alloc(n == 0 ? 1 : n);
    if (p == nullptr) {
        throw std::bad_alloc();
    }
    return p;
}

void* counted_aligned(std::size_t n, std::align_val_t al) {
    ++tl_heap_calls;
    void* p = raw_aligned(static_cast<std::size_t>(al), n == 0 ? 1 : n);
    if (p == nullptr) {
        throw std::bad_alloc();
    }
    return p;
}

void counted_free(void* p) noexcept {
    if (p != nullptr) {
        ++tl_heap_calls;
        raw_free(p);
    }
}

} // namespace

void* operator new(std::size_t n) {
    return counted_alloc(n);
}
void* operator new[](std::size_t n) {
    return counted_alloc(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    ++tl_heap_calls;
    return raw_alloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    ++tl_heap_calls;
    return raw_alloc(n == 0 ? 1 : n);
}
void* operator new(std::size_t n, std::align_val_t al) {
    return counted_aligned(n, al);
}
void* operator new[](std::size_t n, std::align_val_t al) {
    return counted_aligned(n, al);
}
void* operator new(std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
    ++tl_heap_calls;
    return raw_aligned(static_cast<std::size_t>(al), n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
    ++tl_heap_calls;
    return raw_aligned(static_cast<std::size_t>(al), n == 0 ? 1 : n);
}
void operator delete(void* p) noexcept {
    counted_free(p);
}
void operator delete[](void* p) noexcept {
    counted_free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    counted_free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    counted_free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
    counted_free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
    counted_free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
    counted_free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
    counted_free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    counted_free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    counted_free(p);
}

#if !defined(BIORING_SANITIZED)
// The C allocator, so that malloc from C code and libraries linked into the binary counts
// too. Each forwards to glibc's own entry point.
extern "C" {
void* malloc(std::size_t n) {
    ++tl_heap_calls;
    return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) {
    ++tl_heap_calls;
    return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) {
    ++tl_heap_calls;
    return __libc_realloc(p, n);
}
void free(void* p) {
    if (p != nullptr) {
        ++tl_heap_calls;
        __libc_free(p);
    }
}
void* memalign(std::size_t al, std::size_t n) {
    ++tl_heap_calls;
    return __libc_memalign(al, n);
}
void* aligned_alloc(std::size_t al, std::size_t n) {
    ++tl_heap_calls;
    return __libc_memalign(al, n);
}
int posix_memalign(void** out, std::size_t al, std::size_t n) {
    if (al < sizeof(void*) || (al & (al - 1)) != 0) {
        return EINVAL;
    }
    ++tl_heap_calls;
    void* p = __libc_memalign(al, n);
    if (p == nullptr) {
        return ENOMEM;
    }
    *out = p;
    return 0;
}
}
#endif
