// SPDX-License-Identifier: MIT
// LatencyHistogram: a log-linear histogram of nanosecond latencies (HdrHistogram's shape).
//
// Every power-of-two octave is split into 64 linear sub-buckets, so a reported percentile
// is within 1/64 (1.6 %) of the true value; values below 128 ns are exact. The counters
// are one fixed array inside the object: record() is a clz, a shift and an increment and
// never allocates, so it can sit on the per-I/O path of every benchmark loop. One
// histogram per thread; merge() them after the threads have joined.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace bioring::measure {

class LatencyHistogram {
public:
    static constexpr unsigned sub_bits = 6;
    static constexpr std::uint64_t sub_count = 1u << sub_bits;
    /// Values at or above 2^max_bits ns (about 18 minutes) are clamped into the last bucket.
    static constexpr unsigned max_bits = 40;
    static constexpr std::size_t bucket_count = (max_bits - sub_bits + 1) * sub_count;

    /// Count one latency of @ns nanoseconds.
    /// Context: any thread owning this histogram; never allocates; O(1).
    void record(std::uint64_t ns) noexcept {
        if (ns > max_) {
            max_ = ns;
        }
        ++counts_[index_of(ns)];
        ++total_;
    }

    /// Add @other's counts to this one (threads each keep their own, then merge).
    void merge(const LatencyHistogram& other) noexcept {
        for (std::size_t i = 0; i < bucket_count; ++i) {
            counts_[i] += other.counts_[i];
        }
        total_ += other.total_;
        if (other.max_ > max_) {
            max_ = other.max_;
        }
    }

    /// Returns: the latency (ns) at or below which @q (0..1) of the samples lie: the upper
    /// edge of the bucket holding that rank, capped by the exact maximum; 0 when empty.
    std::uint64_t percentile(double q) const noexcept {
        if (total_ == 0) {
            return 0;
        }
        auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_) + 0.5);
        if (rank == 0) {
            rank = 1;
        }
        if (rank > total_) {
            rank = total_;
        }
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < bucket_count; ++i) {
            seen += counts_[i];
            if (seen >= rank) {
                const std::uint64_t high = upper_edge(i);
                return high < max_ ? high : max_;
            }
        }
        return max_;
    }

    std::uint64_t count() const noexcept { return total_; }
    std::uint64_t max() const noexcept { return max_; }

    /// Bucket of @ns: exact below 2*sub_count, then sub_count buckets per octave.
    static std::size_t index_of(std::uint64_t ns) noexcept {
        if (ns >= (std::uint64_t{1} << max_bits)) {
            return bucket_count - 1;
        }
        if (ns < sub_count) {
            return static_cast<std::size_t>(ns);
        }
        const unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(ns));
        const unsigned shift = msb - sub_bits;
        return static_cast<std::size_t>(shift) * sub_count + static_cast<std::size_t>(ns >> shift);
    }

    /// Largest value that maps to bucket @i (inverse of index_of).
    static std::uint64_t upper_edge(std::size_t i) noexcept {
        if (i < 2 * sub_count) {
            return i;
        }
        const std::uint64_t shift = i / sub_count - 1;
        const std::uint64_t mantissa = i % sub_count + sub_count;
        return ((mantissa + 1) << shift) - 1;
    }

private:
    std::array<std::uint64_t, bucket_count> counts_{};
    std::uint64_t total_ = 0;
    std::uint64_t max_ = 0;
};

} // namespace bioring::measure
