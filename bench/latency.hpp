// SPDX-License-Identifier: MIT
// --latency all | sample N | off: how a bench program times its I/Os, the same way in every
// program (bioring-bench, uring-loop, asio-file-loop), so that a comparison states what each
// side paid for its latency figures. A clock_gettime through the vDSO costs about 23 ns on
// this project's VMs, a quarter of a page-cached read, so timing every I/O is not free.
//
//   all       every I/O is timed: one clock reading per completion, which is also the start
//             of that slot's next I/O (one reading per I/O).
//   sample N  (default: sample 64) one I/O in N is timed, picked by a countdown at issue
//             (a decrement and a branch, no modulo, no random draw); it costs two readings
//             or, when the previous completion read the clock, one. The others read none.
//   off       no I/O is timed: no percentiles.
// A run that stops at a deadline needs the time now and then: outside "all", one untimed
// completion in LatencyClock::poll_every reads the clock for the deadline check.
#pragma once

#include "measure/histogram.hpp"
#include "bench/report.hpp"

#include <cstdint>
#include <string>

namespace bioring::bench {

/// What --latency asked for.
struct LatencyMode {
    enum class Kind : std::uint8_t { all, sample, off };
    Kind kind = Kind::sample;
    /// sample: one I/O in @every is timed (1..max_every).
    std::uint32_t every = 64;
    static constexpr std::uint32_t max_every = 1u << 24;

    /// Returns: "all", "sample N" or "off": the spelling --latency takes.
    std::string describe() const {
        switch (kind) {
        case Kind::all:
            return "all";
        case Kind::sample:
            return "sample " + std::to_string(every);
        case Kind::off:
            return "off";
        }
        return "?";
    }
};

/// One thread's latency bookkeeping under a LatencyMode. Usage, per I/O:
///     start = clock.issue(now);          // when the I/O is submitted
///     ... the I/O completes ...
///     now = clock.done(start, histogram); // 0: the clock was not read
///     if (now != 0 && now >= deadline) stop;
/// Context: the one thread that issues and completes the I/Os; not thread-safe.
class LatencyClock {
public:
    /// Untimed completions between two deadline readings (modes sample and off).
    static constexpr std::uint32_t poll_every = 64;

    LatencyClock() noexcept : LatencyClock(LatencyMode{}) {}
    explicit LatencyClock(LatencyMode m) noexcept
        : kind_(m.kind), every_(m.every == 0 ? 1 : m.every), sample_left_(every_) {}

    /// The start stamp of an I/O about to be submitted. @now: a clock reading taken just
    /// before (what done() returned for the previous completion), or 0 for none.
    /// Returns: the I/O's start time, or 0 when this I/O is not timed.
    [[gnu::always_inline]] std::uint64_t issue(std::uint64_t now) noexcept {
        if (kind_ == LatencyMode::Kind::all) {
            return now != 0 ? now : now_ns();
        }
        if (kind_ == LatencyMode::Kind::off || --sample_left_ != 0) {
            return 0;
        }
        sample_left_ = every_;
        return now != 0 ? now : now_ns();
    }

    /// After an I/O completed. @start: what issue() returned for it; when it was timed, its
    /// latency goes into @hist.
    /// Returns: the time now when the clock was read (always for a timed I/O, and for one
    /// untimed completion in poll_every), else 0.
    [[gnu::always_inline]] std::uint64_t done(std::uint64_t start,
                                              LatencyHistogram& hist) noexcept {
        if (start != 0) {
            const std::uint64_t now = now_ns();
            hist.record(now - start);
            return now;
        }
        if (--poll_left_ != 0) {
            return 0;
        }
        poll_left_ = poll_every;
        return now_ns();
    }

private:
    LatencyMode::Kind kind_;
    std::uint32_t every_;
    std::uint32_t sample_left_;
    std::uint32_t poll_left_ = poll_every;
};

} // namespace bioring::bench
