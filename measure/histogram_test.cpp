// SPDX-License-Identifier: MIT
// Checks of measure/histogram.hpp (the latency histogram every bench program reports from):
// bucket edges invert index_of, percentiles stay within the stated 1/64 error, merge adds.
// A plain program (measure/ depends on no test framework): prints each failure, exits 1.
#include "measure/histogram.hpp"

#include <cstdio>
#include <cstdlib>
#include <memory>

using bioring::measure::LatencyHistogram;

namespace {

int failures = 0;

void check(bool ok, const char* what, unsigned long long a, unsigned long long b) {
    if (!ok) {
        std::fprintf(stderr, "histogram_test: FAILED %s (%llu vs %llu)\n", what, a, b);
        ++failures;
    }
}

} // namespace

int main() {
    // Every value lands in a bucket whose upper edge is >= it and within 1/64 above it.
    for (std::uint64_t v = 0; v < (1u << 22); v += 1 + v / 97) {
        const std::size_t i = LatencyHistogram::index_of(v);
        const std::uint64_t hi = LatencyHistogram::upper_edge(i);
        check(i < LatencyHistogram::bucket_count, "index in range", i,
              LatencyHistogram::bucket_count);
        check(hi >= v, "upper edge >= value", hi, v);
        check(hi - v <= v / 64 + 1, "bucket width <= value/64", hi, v);
        if (i > 0) {
            check(LatencyHistogram::upper_edge(i - 1) < v, "previous edge below value",
                  LatencyHistogram::upper_edge(i - 1), v);
        }
    }
    check(LatencyHistogram::index_of(~0ull) == LatencyHistogram::bucket_count - 1,
          "huge values clamp to the last bucket", LatencyHistogram::index_of(~0ull), 0);

    // Uniform 1..100000 ns: percentiles near the exact ranks.
    auto h = std::make_unique<LatencyHistogram>();
    for (std::uint64_t v = 1; v <= 100000; ++v) {
        h->record(v);
    }
    check(h->count() == 100000, "count", h->count(), 100000);
    check(h->max() == 100000, "max is exact", h->max(), 100000);
    const struct {
        double q;
        std::uint64_t exact;
    } cases[] = {{0.5, 50000}, {0.9, 90000}, {0.99, 99000}, {0.999, 99900}, {1.0, 100000}};
    for (const auto& c : cases) {
        const std::uint64_t p = h->percentile(c.q);
        check(p >= c.exact && p <= c.exact + c.exact / 64 + 1, "percentile within 1/64", p,
              c.exact);
    }
    check(LatencyHistogram().percentile(0.5) == 0, "empty histogram gives 0", 0, 0);

    // merge() adds counts and keeps the larger max.
    auto a = std::make_unique<LatencyHistogram>();
    auto b = std::make_unique<LatencyHistogram>();
    for (int i = 0; i < 900; ++i)
        a->record(1000);
    for (int i = 0; i < 100; ++i)
        b->record(5000000);
    a->merge(*b);
    check(a->count() == 1000, "merged count", a->count(), 1000);
    check(a->max() == 5000000, "merged max", a->max(), 5000000);
    check(a->percentile(0.5) <= 1000 + 16, "merged p50", a->percentile(0.5), 1000);
    check(a->percentile(0.95) >= 5000000 - 5000000 / 64, "merged p95", a->percentile(0.95),
          5000000);

    if (failures == 0) {
        std::printf("histogram_test: all checks passed\n");
    }
    return failures == 0 ? 0 : 1;
}
