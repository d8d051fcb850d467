// SPDX-License-Identifier: MIT
// FailureInjector state: a mode word and per-mode counters, all relaxed atomics (no other
// memory is published through them; a test only needs each request to be counted once).
#include <bioring/alloc/failure_injector.hpp>

#include <atomic>

namespace bioring {
namespace {

enum Mode : unsigned {
    mode_off = 0,
    mode_always = 1,
    mode_every = 2,
    mode_bytes = 3,
    mode_nth = 4,
    mode_from = 5,
};

std::atomic<unsigned> g_mode{mode_off};
std::atomic<std::uint64_t> g_param{0};
std::atomic<std::uint64_t> g_calls{0};
std::atomic<std::uint64_t> g_bytes{0};
std::atomic<std::uint64_t> g_failures{0};

void arm(unsigned mode, std::uint64_t param) noexcept {
    g_mode.store(mode_off, std::memory_order_relaxed);
    g_param.store(param, std::memory_order_relaxed);
    g_calls.store(0, std::memory_order_relaxed);
    g_bytes.store(0, std::memory_order_relaxed);
    g_mode.store(mode, std::memory_order_relaxed);
}

} // namespace

void FailureInjector::fail_always() noexcept {
    arm(mode_always, 0);
}

void FailureInjector::fail_every(std::uint64_t n) noexcept {
    arm(n == 0 ? mode_off : mode_every, n);
}

void FailureInjector::fail_after_bytes(std::uint64_t n) noexcept {
    arm(mode_bytes, n);
}

void FailureInjector::fail_nth(std::uint64_t k) noexcept {
    arm(k == 0 ? mode_off : mode_nth, k);
}

void FailureInjector::fail_from(std::uint64_t k) noexcept {
    arm(k == 0 ? mode_off : mode_from, k);
}

std::uint64_t FailureInjector::calls() noexcept {
    return g_calls.load(std::memory_order_relaxed);
}

void FailureInjector::off() noexcept {
    g_mode.store(mode_off, std::memory_order_relaxed);
}

std::uint64_t FailureInjector::failures() noexcept {
    return g_failures.load(std::memory_order_relaxed);
}

bool FailureInjector::should_fail(std::size_t bytes) noexcept {
    const unsigned mode = g_mode.load(std::memory_order_relaxed);
    if (mode == mode_off) [[likely]] {
        return false;
    }
    bool fail = true;
    if (mode == mode_every) {
        const std::uint64_t call = g_calls.fetch_add(1, std::memory_order_relaxed) + 1;
        fail = call % g_param.load(std::memory_order_relaxed) == 0;
    } else if (mode == mode_nth) {
        const std::uint64_t call = g_calls.fetch_add(1, std::memory_order_relaxed) + 1;
        fail = call == g_param.load(std::memory_order_relaxed);
    } else if (mode == mode_from) {
        const std::uint64_t call = g_calls.fetch_add(1, std::memory_order_relaxed) + 1;
        fail = call >= g_param.load(std::memory_order_relaxed);
    } else if (mode == mode_bytes) {
        const std::uint64_t limit = g_param.load(std::memory_order_relaxed);
        const std::uint64_t before = g_bytes.fetch_add(bytes, std::memory_order_relaxed);
        fail = before + bytes > limit;
        if (fail) {
            // A refused request hands nothing out, so it must not use up the budget.
            g_bytes.fetch_sub(bytes, std::memory_order_relaxed);
        }
    }
    if (fail) {
        g_failures.fetch_add(1, std::memory_order_relaxed);
    }
    return fail;
}

} // namespace bioring
