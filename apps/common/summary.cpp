// SPDX-License-Identifier: MIT
// Text and JSON renderings of a run's summary.
#include "apps/common/summary.hpp"

#include "apps/common/format.hpp"
#include "measure/json.hpp"

#include <cstdio>

namespace bioring::apps {

namespace {

using ull = unsigned long long;

} // namespace

// Paths are appended, never formatted into a fixed buffer: a long path must not truncate
// the JSON into something a script would misparse.
std::string Summary::text() const {
    std::string out = app + ": " + operation + " " + source + " -> " + destination +
                      (in_place ? " (block device, written in place)" : "") + "\n";
    out += format("  %llu bytes in %.3f s: %.1f MB/s, %.0f IOPS\n", static_cast<ull>(bytes),
                  seconds, mb_per_s(), iops());
    out += format("  %llu requests (bs %llu, qd %u, threads %u), %.2f allocations per request%s\n",
                  static_cast<ull>(requests), static_cast<ull>(block_size), queue_depth, threads,
                  allocations_per_request(), verified ? ", verified" : "");
    out += "  backend: " + backend + "\n";
    return out;
}

std::string Summary::json() const {
    std::string out = "{\"app\":" + measure::json_string(app) +
                      ",\"operation\":" + measure::json_string(operation) +
                      ",\"source\":" + measure::json_string(source) +
                      ",\"destination\":" + measure::json_string(destination);
    out +=
        format(",\"bytes\":%llu,\"seconds\":%.6f,\"mb_per_s\":%.3f,\"iops\":%.1f,"
               "\"requests\":%llu,\"io_ops\":%llu,\"allocations\":%llu,"
               "\"allocations_per_request\":%.4f,\"reserve_hits\":%llu,\"block_size\":%llu,"
               "\"queue_depth\":%u,\"threads\":%u,\"verified\":%s,\"in_place\":%s",
               static_cast<ull>(bytes), seconds, mb_per_s(), iops(), static_cast<ull>(requests),
               static_cast<ull>(io_ops), static_cast<ull>(allocations), allocations_per_request(),
               static_cast<ull>(reserve_hits), static_cast<ull>(block_size), queue_depth, threads,
               verified ? "true" : "false", in_place ? "true" : "false");
    out += ",\"backend\":" + measure::json_string(backend) + "}\n";
    return out;
}

} // namespace bioring::apps
