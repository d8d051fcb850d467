// SPDX-License-Identifier: MIT
// Shared helpers of the runtime tests: a counted-lifetime object, a handle-capturing
// awaiter, the registry's slab allocation count; the skip marker (tests/support/skip.hpp).
#pragma once

#include <bioring/alloc/slab_registry.hpp>
#include "tests/support/skip.hpp"

#include <atomic>
#include <coroutine>
#include <cstdio>

namespace bioring::test {

/// Counts live instances (cppcoro's counted.hpp idea): a leak or a double destroy shows.
struct Counted {
    static inline std::atomic<int> constructed{0};
    static inline std::atomic<int> destroyed{0};
    static void reset() noexcept {
        constructed = 0;
        destroyed = 0;
    }
    static int alive() noexcept { return constructed.load() - destroyed.load(); }
    int id = 0;
    Counted() noexcept { ++constructed; }
    explicit Counted(int i) noexcept : id(i) { ++constructed; }
    Counted(const Counted& o) noexcept : id(o.id) { ++constructed; }
    Counted(Counted&& o) noexcept : id(o.id) { ++constructed; }
    Counted& operator=(const Counted&) = default;
    ~Counted() { ++destroyed; }
};

/// Returns: slab allocations so far, summed over every cache of the registry.
inline std::uint64_t slab_allocations() {
    std::uint64_t n = 0;
    for (const auto& s : SlabRegistry::global().stats()) {
        n += s.allocations;
    }
    return n;
}

/// `void* self = co_await HandleAddress{};` — the running coroutine's frame address.
struct HandleAddress {
    void* addr = nullptr;
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
        addr = h.address();
        return false; // resume at once
    }
    void* await_resume() const noexcept { return addr; }
};

} // namespace bioring::test
