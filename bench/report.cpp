// SPDX-License-Identifier: MIT
// Report printing and CPU/clock helpers shared by the bench programs (see report.hpp).
#include "bench/report.hpp"

#include "measure/json.hpp"

#include <cinttypes>
#include <cmath>
#include <ctime>
#include <sys/resource.h>

namespace bioring::bench {

using measure::json_string;

namespace {

std::uint64_t to_ns(const timeval& tv) noexcept {
    return static_cast<std::uint64_t>(tv.tv_sec) * 1'000'000'000u +
           static_cast<std::uint64_t>(tv.tv_usec) * 1000u;
}

CpuTimes usage(int who) noexcept {
    rusage ru{};
    if (::getrusage(who, &ru) != 0) {
        return {};
    }
    return {to_ns(ru.ru_utime), to_ns(ru.ru_stime)};
}

std::string number(double v) {
    if (!std::isfinite(v)) {
        return "null";
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

} // namespace

CpuTimes CpuTimes::process() noexcept {
    return usage(RUSAGE_SELF);
}

CpuTimes CpuTimes::thread() noexcept {
    return usage(RUSAGE_THREAD);
}

std::uint64_t now_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

void Report::set(const std::string& key, const std::string& text) {
    config.emplace_back(key, json_string(text));
}

void Report::set(const std::string& key, std::uint64_t v) {
    config.emplace_back(key, std::to_string(v));
}

void Report::set(const std::string& key, double v) {
    config.emplace_back(key, number(v));
}

void Report::set_bool(const std::string& key, bool v) {
    config.emplace_back(key, v ? "true" : "false");
}

void Report::print_text(std::FILE* out) const {
    std::fprintf(out, "%s:", tool.c_str());
    for (const auto& [k, v] : config) {
        std::fprintf(out, " %s=%s", k.c_str(), v.c_str());
    }
    std::fprintf(out, "\n");
    const double cpu_s = static_cast<double>(cpu.total_ns()) / 1e9;
    std::fprintf(out, "  ios %" PRIu64 " in %.3f s: %.0f IOPS, %.1f MB/s\n", ios, seconds, iops(),
                 seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0.0);
    std::fprintf(out,
                 "  cpu %.3f s (user %.3f, sys %.3f; %.2f cores busy): %.0f ns/IO, "
                 "%.1f kIOPS per core\n",
                 cpu_s, static_cast<double>(cpu.user_ns) / 1e9,
                 static_cast<double>(cpu.sys_ns) / 1e9, seconds > 0 ? cpu_s / seconds : 0.0,
                 cpu_ns_per_io(), iops_per_core() / 1e3);
    if (latency.count() == 0) {
        std::fprintf(out, "  latency: not measured (--latency %s)\n", latency_mode.c_str());
    } else {
        std::fprintf(out,
                     "  latency us (--latency %s, %" PRIu64 " I/Os timed): p50 %.1f  p90 %.1f  "
                     "p99 %.1f  p99.9 %.1f  max %.1f\n",
                     latency_mode.c_str(), latency.count(),
                     static_cast<double>(latency.percentile(0.50)) / 1e3,
                     static_cast<double>(latency.percentile(0.90)) / 1e3,
                     static_cast<double>(latency.percentile(0.99)) / 1e3,
                     static_cast<double>(latency.percentile(0.999)) / 1e3,
                     static_cast<double>(latency.max()) / 1e3);
    }
    const double n = ios ? static_cast<double>(ios) : 1.0;
    std::fprintf(out, "  per I/O: io_uring_enter %s, slab allocs %s, heap calls %s\n",
                 enter_calls < 0 ? "n/a" : number(enter_calls / n).c_str(),
                 slab_allocs < 0 ? "n/a" : number(slab_allocs / n).c_str(),
                 heap_calls < 0 ? "n/a" : number(heap_calls / n).c_str());
    for (const auto& note : notes) {
        std::fprintf(out, "  note: %s\n", note.c_str());
    }
}

void Report::print_json(std::FILE* out) const {
    const double n = ios ? static_cast<double>(ios) : 1.0;
    std::string s = "{\"tool\":" + json_string(tool) + ",\"config\":{";
    for (std::size_t i = 0; i < config.size(); ++i) {
        if (i != 0) {
            s += ',';
        }
        s += json_string(config[i].first);
        s += ':';
        s += config[i].second;
    }
    s += "},\"ios\":" + std::to_string(ios);
    s += ",\"bytes\":" + std::to_string(bytes);
    s += ",\"seconds\":" + number(seconds);
    s += ",\"iops\":" + number(iops());
    s += ",\"mb_s\":" + number(seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0.0);
    s += ",\"cpu_user_s\":" + number(static_cast<double>(cpu.user_ns) / 1e9);
    s += ",\"cpu_sys_s\":" + number(static_cast<double>(cpu.sys_ns) / 1e9);
    s += ",\"cpu_ns_per_io\":" + number(cpu_ns_per_io());
    s += ",\"iops_per_core\":" + number(iops_per_core());
    // latency_ns is null when no I/O was timed (--latency off), so that no reader takes
    // zeros for measurements.
    s += ",\"latency_samples\":" + std::to_string(latency.count());
    if (latency.count() == 0) {
        s += ",\"latency_ns\":null";
    } else {
        s += ",\"latency_ns\":{\"p50\":" + std::to_string(latency.percentile(0.50)) +
             ",\"p90\":" + std::to_string(latency.percentile(0.90)) +
             ",\"p99\":" + std::to_string(latency.percentile(0.99)) +
             ",\"p99_9\":" + std::to_string(latency.percentile(0.999)) +
             ",\"max\":" + std::to_string(latency.max()) + "}";
    }
    s += ",\"enter_calls_per_io\":" + (enter_calls < 0 ? "null" : number(enter_calls / n));
    s += ",\"slab_allocs_per_io\":" + (slab_allocs < 0 ? "null" : number(slab_allocs / n));
    s += ",\"heap_calls_per_io\":" + (heap_calls < 0 ? "null" : number(heap_calls / n));
    s += ",\"notes\":[";
    for (std::size_t i = 0; i < notes.size(); ++i) {
        if (i != 0) {
            s += ',';
        }
        s += json_string(notes[i]);
    }
    s += "]}";
    std::fprintf(out, "%s\n", s.c_str());
}

} // namespace bioring::bench
