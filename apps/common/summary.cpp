// SPDX-License-Identifier: MIT
// Text and JSON renderings of a run's summary.
#include "apps/common/summary.hpp"

#include "apps/common/format.hpp"

#include <cstdio>

namespace bioring::apps {

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (c < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", c);
                out += buf;
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    return out + "\"";
}

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
    std::string out = "{\"app\":" + json_string(app) + ",\"operation\":" + json_string(operation) +
                      ",\"source\":" + json_string(source) +
                      ",\"destination\":" + json_string(destination);
    out +=
        format(",\"bytes\":%llu,\"seconds\":%.6f,\"mb_per_s\":%.3f,\"iops\":%.1f,"
               "\"requests\":%llu,\"io_ops\":%llu,\"allocations\":%llu,"
               "\"allocations_per_request\":%.4f,\"reserve_hits\":%llu,\"block_size\":%llu,"
               "\"queue_depth\":%u,\"threads\":%u,\"verified\":%s,\"in_place\":%s",
               static_cast<ull>(bytes), seconds, mb_per_s(), iops(), static_cast<ull>(requests),
               static_cast<ull>(io_ops), static_cast<ull>(allocations), allocations_per_request(),
               static_cast<ull>(reserve_hits), static_cast<ull>(block_size), queue_depth, threads,
               verified ? "true" : "false", in_place ? "true" : "false");
    out += ",\"backend\":" + json_string(backend) + "}\n";
    return out;
}

} // namespace bioring::apps
