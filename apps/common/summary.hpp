// SPDX-License-Identifier: MIT
// Summary: what a run did, printed as text for people or one JSON object for scripts.
#pragma once

#include <cstdint>
#include <string>

namespace bioring::apps {

struct Summary {
    std::string app;       ///< "bioring-copy"
    std::string operation; ///< "copy", "encrypt", "decrypt"
    std::string source, destination;
    std::string backend;           ///< backend_report()
    std::uint64_t bytes = 0;       ///< payload bytes moved
    double seconds = 0;            ///< wall time of the data phase (verify excluded)
    std::uint64_t requests = 0;    ///< request coroutines run (one per block)
    std::uint64_t io_ops = 0;      ///< reads + writes submitted
    std::uint64_t allocations = 0; ///< frames allocated from the bioset (ReactorCounters)
    std::uint64_t reserve_hits = 0;
    unsigned threads = 1, queue_depth = 0;
    std::uint64_t block_size = 0;
    bool verified = false;
    bool in_place = false;

    double mb_per_s() const noexcept { return seconds > 0 ? bytes / seconds / 1e6 : 0.0; }
    double iops() const noexcept { return seconds > 0 ? io_ops / seconds : 0.0; }
    double allocations_per_request() const noexcept {
        return requests > 0 ? static_cast<double>(allocations) / requests : 0.0;
    }
    /// Human-readable, several lines, ending in a newline.
    std::string text() const;
    /// One JSON object on one line, ending in a newline.
    std::string json() const;
};

} // namespace bioring::apps
