// SPDX-License-Identifier: MIT
// The workload vocabulary shared by the bench programs: the --rw names and the offset
// generator, so that every program draws offsets the same way (a xorshift64* stream per
// thread, mapped onto the thread's block range by a multiply-shift: no division per I/O).
#pragma once

#include "bench/options.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace bioring::bench {

enum class Workload { randread, randwrite, read, write, randrw, nop };

/// Parse a --rw value. Throws UsageError listing the accepted names.
inline Workload parse_workload(std::string_view s) {
    if (s == "randread")
        return Workload::randread;
    if (s == "randwrite")
        return Workload::randwrite;
    if (s == "read")
        return Workload::read;
    if (s == "write")
        return Workload::write;
    if (s == "randrw")
        return Workload::randrw;
    if (s == "nop")
        return Workload::nop;
    throw UsageError("unknown workload --rw '" + std::string(s) +
                     "' (expected randread, randwrite, read, write, randrw or nop)");
}

inline const char* workload_name(Workload w) noexcept {
    switch (w) {
    case Workload::randread:
        return "randread";
    case Workload::randwrite:
        return "randwrite";
    case Workload::read:
        return "read";
    case Workload::write:
        return "write";
    case Workload::randrw:
        return "randrw";
    case Workload::nop:
        return "nop";
    }
    return "?";
}

inline bool is_random(Workload w) noexcept {
    return w == Workload::randread || w == Workload::randwrite || w == Workload::randrw;
}

inline bool writes(Workload w) noexcept {
    return w == Workload::randwrite || w == Workload::write || w == Workload::randrw;
}

/// Offsets within [base, base + blocks * bs), random or sequential (wrapping).
class OffsetGen {
public:
    OffsetGen(std::uint64_t base, std::uint64_t blocks, std::uint64_t bs, bool random,
              std::uint64_t seed) noexcept
        : base_(base), blocks_(blocks), bs_(bs), random_(random), state_(seed | 1) {}

    std::uint64_t next() noexcept {
        std::uint64_t block;
        if (random_) {
            block = static_cast<std::uint64_t>((static_cast<unsigned __int128>(rand()) * blocks_) >>
                                               64);
        } else {
            block = seq_++;
            if (seq_ == blocks_) {
                seq_ = 0;
            }
        }
        return base_ + block * bs_;
    }

    /// A uniform 64-bit pseudo-random number (xorshift64*), e.g. for the read/write mix.
    std::uint64_t rand() noexcept {
        state_ ^= state_ >> 12;
        state_ ^= state_ << 25;
        state_ ^= state_ >> 27;
        return state_ * 0x2545f4914f6cdd1du;
    }

private:
    std::uint64_t base_;
    std::uint64_t blocks_;
    std::uint64_t bs_;
    bool random_;
    std::uint64_t state_;
    std::uint64_t seq_ = 0;
};

} // namespace bioring::bench
