// SPDX-License-Identifier: MIT
// The per-layer slabinfo-style table (block_device.hpp).
#include "apps/nbd/block_device.hpp"

#include <cstdio>

namespace bioring::apps::nbd {

BioSet& Layer::probe_set() {
    static BioSet probe(0, 64);
    return probe;
}

void Layer::init_bioset(std::size_t front_pad, std::size_t pool_size) {
    bioset_ = std::make_unique<BioSet>(pool_size, front_pad);
}

std::string stats_table(std::span<Layer* const> layers) {
    std::string out;
    char line[256];
    std::snprintf(line, sizeof line, "%-7s %7s %7s %12s %7s %10s %8s %9s %9s %8s\n", "# layer",
                  "objsize", "in-use", "requests", "allocs", "per-req", "foreign", "reserve",
                  "oversized", "failed");
    out += line;
    const std::uint64_t client =
        layers.empty() ? 0 : layers[0]->stats().requests.load(std::memory_order_relaxed);
    for (Layer* d : layers) {
        const LayerStats& s = d->stats();
        const BioSetStats b = d->bioset().stats();
        const std::uint64_t req = s.requests.load(std::memory_order_relaxed);
        const std::uint64_t frames = s.frames.load(std::memory_order_relaxed);
        std::snprintf(line, sizeof line,
                      "%-7s %7zu %7lld %12llu %7llu %10.2f %8llu %9llu %9llu %8llu\n",
                      d->name().c_str(), d->bioset().object_size(),
                      static_cast<long long>(s.in_use.load(std::memory_order_relaxed)),
                      static_cast<unsigned long long>(req), static_cast<unsigned long long>(frames),
                      client == 0 ? 0.0 : static_cast<double>(frames) / static_cast<double>(client),
                      static_cast<unsigned long long>(s.foreign.load(std::memory_order_relaxed)),
                      static_cast<unsigned long long>(b.reserve_hits),
                      static_cast<unsigned long long>(b.oversized),
                      static_cast<unsigned long long>(b.failures));
        out += line;
    }
    return out;
}

} // namespace bioring::apps::nbd
