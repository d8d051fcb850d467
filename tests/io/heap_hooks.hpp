// SPDX-License-Identifier: MIT
// Heap-call counting for the no-allocation tests: malloc-family hooks that count every call
// into the C heap (operator new reaches malloc too) in `heap_calls`. Include it from exactly
// one source file of a test binary (it defines malloc). Sanitizer builds own malloc, so
// there the hooks are left out and the tests report a skip.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace {
std::atomic<std::uint64_t> heap_calls{0};
}

#if !defined(BIORING_SANITIZED)
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);

void* malloc(std::size_t n) {
    heap_calls.fetch_add(1, std::memory_order_relaxed);
    return __libc_malloc(n);
}
void* calloc(std::size_t a, std::size_t b) {
    heap_calls.fetch_add(1, std::memory_order_relaxed);
    return __libc_calloc(a, b);
}
void* realloc(void* p, std::size_t n) {
    heap_calls.fetch_add(1, std::memory_order_relaxed);
    return __libc_realloc(p, n);
}
void* memalign(std::size_t a, std::size_t n) {
    heap_calls.fetch_add(1, std::memory_order_relaxed);
    return __libc_memalign(a, n);
}
void* aligned_alloc(std::size_t a, std::size_t n) {
    heap_calls.fetch_add(1, std::memory_order_relaxed);
    return __libc_memalign(a, n);
}
int posix_memalign(void** out, std::size_t a, std::size_t n) {
    heap_calls.fetch_add(1, std::memory_order_relaxed);
    void* p = __libc_memalign(a, n);
    if (p == nullptr) {
        return ENOMEM;
    }
    *out = p;
    return 0;
}
void free(void* p) {
    __libc_free(p);
}
} // extern "C"
#endif
