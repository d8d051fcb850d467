// SPDX-License-Identifier: MIT
// OpSet: the Asio backend's set of in-flight operations (runtime-private).
//
// Why: AsioBackend::cancel(user_data) may name an operation that already completed (and
// whose memory may be gone), so the owner checks membership before touching it. A
// std::unordered_set did that with a node allocation per insert and a free per erase, two
// heap calls per I/O; this table makes none once sized.
//
// Model: linear probing over a power-of-two table of Operation*, at most half full; the
// address is Fibonacci-hashed (its low bits are alignment). erase() shifts the following
// entries of the probe run back (no tombstones), so lookups never degrade and the table
// never needs a rehash to stay fast. Only growth allocates: the table is sized from
// ring_entries and doubles when more operations than that are in flight (the Asio backend
// has no SQ to bound them). Owner thread only.
#pragma once

#include <bioring/runtime/operation.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace bioring::detail {

class OpSet {
public:
    /// Room for @expected entries without growth. Returns: throws std::bad_alloc.
    explicit OpSet(std::size_t expected) {
        std::size_t cap = 16;
        while (cap < 2 * expected) {
            cap *= 2;
        }
        rehash(cap);
    }

    /// Add @op (no-op if present). Returns: throws std::bad_alloc only when it grows.
    void insert(Operation* op) {
        if (2 * (size_ + 1) > cap_) [[unlikely]] {
            rehash(2 * cap_);
        }
        std::size_t i = home(op);
        while (slots_[i] != nullptr) {
            if (slots_[i] == op) {
                return;
            }
            i = (i + 1) & (cap_ - 1);
        }
        slots_[i] = op;
        ++size_;
    }

    bool contains(const Operation* op) const noexcept { return find(op) != npos; }

    /// Remove @op if present.
    void erase(const Operation* op) noexcept {
        std::size_t i = find(op);
        if (i == npos) {
            return;
        }
        // Backward-shift deletion: move up every later entry of the probe run whose home
        // is not in (i, j], so that no lookup meets a hole before its entry.
        const std::size_t mask = cap_ - 1;
        std::size_t j = i;
        for (;;) {
            j = (j + 1) & mask;
            Operation* e = slots_[j];
            if (e == nullptr) {
                break;
            }
            const std::size_t h = home(e);
            const bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
            if (!stays) {
                slots_[i] = e;
                i = j;
            }
        }
        slots_[i] = nullptr;
        --size_;
    }

    std::size_t size() const noexcept { return size_; }
    /// Call f(op) for every entry; @f must not insert or erase.
    template <class F>
    void for_each(F f) const {
        for (std::size_t i = 0; i < cap_; ++i) {
            if (slots_[i] != nullptr) {
                f(slots_[i]);
            }
        }
    }
    /// Returns: slots in the table (a power of two, at least twice size()).
    std::size_t capacity() const noexcept { return cap_; }

private:
    static constexpr std::size_t npos = ~std::size_t{0};

    std::size_t home(const Operation* op) const noexcept {
        // Fibonacci hashing of the address (low bits are alignment): the top bits mix best.
        const auto k = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(op));
        return static_cast<std::size_t>((k * 0x9E3779B97F4A7C15ull) >> shift_);
    }
    std::size_t find(const Operation* op) const noexcept {
        std::size_t i = home(op);
        while (slots_[i] != nullptr) {
            if (slots_[i] == op) {
                return i;
            }
            i = (i + 1) & (cap_ - 1);
        }
        return npos;
    }
    [[gnu::noinline]] void rehash(std::size_t cap) {
        std::unique_ptr<Operation*[]> old = std::move(slots_);
        const std::size_t old_cap = cap_;
        slots_ = std::make_unique<Operation*[]>(cap); // value-initialised: all empty
        cap_ = cap;
        shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(cap));
        size_ = 0;
        for (std::size_t i = 0; i < old_cap; ++i) {
            if (old[i] != nullptr) {
                insert(old[i]);
            }
        }
    }

    std::unique_ptr<Operation*[]> slots_;
    std::size_t cap_ = 0;
    std::size_t size_ = 0;
    unsigned shift_ = 64;
};

} // namespace bioring::detail
