// SPDX-License-Identifier: MIT
// Backing allocator implementation: mimalloc through dlopen, or aligned_alloc/mmap.
// The Backing object is a function-local static, built during static initialisation (see
// g_chosen_before_main) and never destroyed (slabs may be freed by thread-exit drains after
// static destruction).
#include <bioring/alloc/detail/backing.hpp>

#include <bioring/alloc/failure_injector.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include <dlfcn.h>
#include <sys/mman.h>

namespace bioring::detail {
namespace {

// Above this, the system fallback maps slabs directly: glibc would mmap them anyway, but
// with a header that breaks the alignment we need.
constexpr std::size_t mmap_threshold = 2u << 20;

struct Backing {
    using MallocAligned = void* (*)(std::size_t, std::size_t);
    using Free = void (*)(void*);
    using Version = int (*)();

    MallocAligned mi_malloc_aligned = nullptr;
    Free mi_free = nullptr;
    char name[96] = "system (aligned_alloc + mmap)";

    Backing() noexcept {
#ifndef BIORING_SANITIZED
        const char* env = std::getenv("BIORING_BACKING");
        if (env != nullptr && std::strcmp(env, "system") == 0) {
            std::snprintf(name, sizeof name,
                          "system (aligned_alloc + mmap; BIORING_BACKING=system)");
            return;
        }
        void* lib = ::dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
        if (lib == nullptr) {
            std::snprintf(name, sizeof name, "system (aligned_alloc + mmap; no libmimalloc.so.2)");
            return;
        }
        auto ma = reinterpret_cast<MallocAligned>(::dlsym(lib, "mi_malloc_aligned"));
        auto mf = reinterpret_cast<Free>(::dlsym(lib, "mi_free"));
        auto mv = reinterpret_cast<Version>(::dlsym(lib, "mi_version"));
        if (ma == nullptr || mf == nullptr) {
            // The library stays loaded: unloading a malloc implementation is asking for trouble.
            std::snprintf(name, sizeof name, "system (aligned_alloc + mmap; mimalloc lacks mi_*)");
            return;
        }
        mi_malloc_aligned = ma;
        mi_free = mf;
        const int v = mv != nullptr ? mv() : 0;
        std::snprintf(name, sizeof name, "mimalloc %d.%d.%d (dlopen, RTLD_LOCAL)", v / 100,
                      (v / 10) % 10, v % 10);
#else
        std::snprintf(name, sizeof name, "system (aligned_alloc + mmap; sanitizer build)");
#endif
    }
};

Backing& backing() noexcept {
    static Backing* b = new (std::nothrow) Backing();
    return *b;
}

// The choice is made during static initialisation, while the process has one thread.
// libmimalloc's TLS is initial-exec (STATIC_TLS): when one thread dlopen()s it while another
// thread is being created, glibc can miss the new thread when it copies the library's TLS
// image, leaving mimalloc's default-heap pointer NULL there, and that thread's first
// mi_malloc_aligned crashes. Seen as a SIGSEGV in about 1 of 3600 runs of bioring-copy
// --threads 8, whose reactor threads started while the first one loaded the library.
[[maybe_unused]] const Backing& g_chosen_before_main = backing();

std::atomic<std::uint64_t> g_bytes{0};

std::size_t round_up(std::size_t n, std::size_t a) noexcept {
    return (n + a - 1) & ~(a - 1);
}

void* map_aligned(std::size_t bytes, std::size_t align) noexcept {
    // Over-map by the alignment and trim both ends, so the result is aligned and every
    // remaining page belongs to this slab.
    const std::size_t len = round_up(bytes, 4096);
    const std::size_t extra = align > 4096 ? align : 0;
    void* raw =
        ::mmap(nullptr, len + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
        return nullptr;
    }
    auto base = reinterpret_cast<std::uintptr_t>(raw);
    const std::uintptr_t aligned = round_up(base, align > 4096 ? align : 4096);
    if (aligned > base) {
        ::munmap(raw, aligned - base);
    }
    const std::uintptr_t tail = base + len + extra - (aligned + len);
    if (tail != 0) {
        ::munmap(reinterpret_cast<void*>(aligned + len), tail);
    }
    return reinterpret_cast<void*>(aligned);
}

} // namespace

void* backing_alloc(std::size_t bytes, std::size_t align) noexcept {
    if (FailureInjector::should_fail(bytes)) {
        return nullptr;
    }
    Backing& b = backing();
    void* p;
    if (b.mi_malloc_aligned != nullptr) {
        p = b.mi_malloc_aligned(bytes, align);
    } else if (bytes >= mmap_threshold) {
        p = map_aligned(bytes, align);
    } else {
        p = std::aligned_alloc(align, round_up(bytes, align));
    }
    if (p != nullptr) {
        g_bytes.fetch_add(bytes, std::memory_order_relaxed);
    }
    return p;
}

void backing_free(void* p, std::size_t bytes, std::size_t /*align*/) noexcept {
    if (p == nullptr) {
        return;
    }
    g_bytes.fetch_sub(bytes, std::memory_order_relaxed);
    Backing& b = backing();
    if (b.mi_free != nullptr) {
        b.mi_free(p);
    } else if (bytes >= mmap_threshold) {
        ::munmap(p, round_up(bytes, 4096));
    } else {
        std::free(p);
    }
}

const char* backing_name() noexcept {
    return backing().name;
}

std::uint64_t backing_bytes() noexcept {
    return g_bytes.load(std::memory_order_relaxed);
}

} // namespace bioring::detail
