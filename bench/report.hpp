// SPDX-License-Identifier: MIT
// The result record every bench program prints, as text or one JSON object, with the same
// field names, so that compare.sh reads bioring-bench, uring-loop and asio-file-loop alike.
//
// CPU time is getrusage(RUSAGE_SELF): user+sys of every thread of the process, live or
// exited. io_uring's io-wq workers are created with CLONE_THREAD into the submitting
// process's thread group, so their time is in it too (checked: see uring-loop --async).
// Per-core figures are "I/Os per CPU-second": ios / (utime+stime) — what one fully busy
// core would do at this cost.
#pragma once

#include "measure/histogram.hpp"

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace bioring::bench {

using measure::LatencyHistogram;

/// User and system CPU time of the whole process (all threads, io-wq workers included).
struct CpuTimes {
    std::uint64_t user_ns = 0;
    std::uint64_t sys_ns = 0;
    std::uint64_t total_ns() const noexcept { return user_ns + sys_ns; }
    /// Returns: getrusage(RUSAGE_SELF) now.
    static CpuTimes process() noexcept;
    /// Returns: getrusage(RUSAGE_THREAD) of the calling thread.
    static CpuTimes thread() noexcept;
    CpuTimes operator-(const CpuTimes& o) const noexcept {
        return {user_ns - o.user_ns, sys_ns - o.sys_ns};
    }
};

/// Monotonic nanoseconds (vDSO clock_gettime; no syscall).
std::uint64_t now_ns() noexcept;

/// Everything a run measured; print_text()/print_json() derive the rates.
struct Report {
    std::string tool;
    /// Configuration, printed in order under "config"; values are JSON-ready literals.
    std::vector<std::pair<std::string, std::string>> config;
    std::uint64_t ios = 0;
    std::uint64_t bytes = 0;
    double seconds = 0;
    CpuTimes cpu;
    LatencyHistogram latency;
    /// How the I/Os in @latency were picked (--latency: "all", "sample N", "off").
    std::string latency_mode = "all";
    /// Optional counters; negative = not measured (printed as null).
    double enter_calls = -1;
    double slab_allocs = -1;
    double heap_calls = -1;
    /// Free-form notes printed in text mode and as "notes" in JSON.
    std::vector<std::string> notes;

    void set(const std::string& key, const std::string& text); ///< a string value
    void set(const std::string& key, std::uint64_t number);
    void set(const std::string& key, double number);
    void set_bool(const std::string& key, bool value);

    double iops() const noexcept { return seconds > 0 ? static_cast<double>(ios) / seconds : 0; }
    double cpu_ns_per_io() const noexcept {
        return ios ? static_cast<double>(cpu.total_ns()) / static_cast<double>(ios) : 0;
    }
    /// I/Os per CPU-second (= IOPS per fully busy core).
    double iops_per_core() const noexcept {
        return cpu.total_ns() ? static_cast<double>(ios) * 1e9 / static_cast<double>(cpu.total_ns())
                              : 0;
    }

    void print_text(std::FILE* out) const;
    void print_json(std::FILE* out) const;
    void print(std::FILE* out, bool json) const { json ? print_json(out) : print_text(out); }
};

/// JSON string literal for @s (quotes and escapes).

} // namespace bioring::bench
