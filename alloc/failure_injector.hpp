// SPDX-License-Identifier: MIT
// FailureInjector: a process-wide switch that makes the backing allocator fail, for tests.
//
// Every request for fresh memory (slab pages from mimalloc/aligned_alloc/mmap, buffer
// arenas) asks should_fail() first, so a test can make "the system is out of memory" happen
// on demand and watch the reserves (BioSet, the largest buffer class) keep things moving.
// Objects already carved and sitting in depots or thread caches are not affected: like the
// kernel's fault injection on the page allocator, only trips to the backing allocator fail.
// All state is in relaxed atomics: the switch is flipped by a test thread while others
// allocate, and only the counts matter, not an order between them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bioring {

class FailureInjector {
public:
    /// Make every backing request fail until off().
    /// Context: any thread.
    static void fail_always() noexcept;
    /// Make every @n-th backing request fail (counted from this call); n == 0 means off.
    /// Context: any thread.
    static void fail_every(std::uint64_t n) noexcept;
    /// Let backing requests succeed until @n bytes have been handed out (counted from this
    /// call), then fail every request that would go beyond.
    /// Context: any thread.
    static void fail_after_bytes(std::uint64_t n) noexcept;
    /// Make only the @k-th backing request (counted from this call, 1-based) fail; every
    /// other request succeeds. k == 0 means off. calls() then counts the requests seen, so
    /// a sweep can arm fail_nth(UINT64_MAX) once to learn how many requests a run makes.
    /// Context: any thread.
    static void fail_nth(std::uint64_t k) noexcept;
    /// Let @k - 1 backing requests succeed (counted from this call), then fail the k-th and
    /// every later one: "the system ran out of memory at that point". k == 0 means off.
    /// Context: any thread.
    static void fail_from(std::uint64_t k) noexcept;
    /// Returns: backing requests seen since fail_every(), fail_nth() or fail_from() was armed.
    static std::uint64_t calls() noexcept;
    /// Stop injecting failures (the failure count is kept).
    static void off() noexcept;
    /// Returns: the number of failures injected since the process started.
    static std::uint64_t failures() noexcept;

    /// The hook the backing allocator calls before asking the system for @bytes.
    /// Context: any thread; lock-free; a relaxed load when off.
    /// Returns: true when this request must fail (and counts it).
    static bool should_fail(std::size_t bytes) noexcept;
};

} // namespace bioring
