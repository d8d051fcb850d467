// SPDX-License-Identifier: MIT
// Command-line parsing shared by the bench programs (bioring-bench, uring-loop,
// asio-file-loop), so that they accept the same spellings and refuse the same garbage.
//
// Every user error is a UsageError; each main() catches it, prints "<tool>: <message>" and
// exits with status 2. Numbers are parsed strictly: "4k" is a size, "4kx", "", "-1" and
// values that overflow are errors, never silently truncated.
#pragma once

#include "bench/latency.hpp"
#include "bench/report.hpp"

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace bioring::bench {

enum class Workload; // bench/workload.hpp

/// A bad command line: the message says what and why; the tool exits with status 2.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Parse an unsigned integer (decimal). Throws UsageError naming @what on garbage/overflow.
std::uint64_t parse_uint(std::string_view text, std::string_view what);
/// Parse a byte size with an optional binary suffix: 512, 4k, 4K, 4KiB, 1m, 1G, 2t.
/// Throws UsageError naming @what on garbage or overflow.
std::uint64_t parse_size(std::string_view text, std::string_view what);
/// Parse a finite, non-negative decimal (e.g. seconds: "2", "0.5").
double parse_seconds(std::string_view text, std::string_view what);

/// A minimal GNU-style option reader: "--name value", "--name=value" and bare flags.
/// Usage: while (args.next()) {
///            if (args.is("--qd")) { qd = parse_uint(args.value(), "--qd"); }
///            ... else { args.unknown(); } }
class ArgReader {
public:
    ArgReader(int argc, char** argv);
    /// Advance to the next argument. Returns: false at the end.
    bool next();
    /// Returns: whether the current argument is option @name (with or without "=value").
    bool is(std::string_view name) const noexcept;
    /// The value of the current option (the "=value" part or the following argument).
    /// Throws UsageError when it is missing.
    std::string value();
    /// The argument after the current option's value, for options that take two ("--latency
    /// sample N"). Throws UsageError naming @what when there is none.
    std::string second_value(std::string_view what);
    /// The current argument, as typed.
    const std::string& current() const noexcept { return current_; }
    /// Throw UsageError for the current argument ("unknown option ...").
    [[noreturn]] void unknown() const;
    /// Throw UsageError when a flag was given a value ("--json=1").
    void no_value() const;
    /// A pair of flags "--NAME" / "--no-NAME" (@name without dashes): when the current
    /// argument is one of them, set *@out to true / false. Returns: whether it was.
    bool on_off(std::string_view name, bool* out);

private:
    std::vector<std::string> args_;
    std::size_t pos_ = 0;
    std::string current_;
    std::string name_;
    std::string inline_value_;
    bool has_inline_value_ = false;
};

/// The options every bench program takes, with their shared defaults. Each program
/// derives its own Options from this and adds its specific ones.
struct CommonOptions {
    CommonOptions(); // rw = Workload::randread (defined where Workload is complete)

    Workload rw;
    std::uint64_t bs = 4096;
    std::uint64_t qd = 32;
    std::uint64_t threads = 1;
    double seconds = 2.0;
    std::uint64_t ios = 0; // 0: run for seconds
    std::uint64_t rwmixread = 50;
    std::string file;
    bool direct = true;
    int pin = -1; // -1: pin when threads > 1
    bool json = false;
    LatencyMode latency; // --latency (bench/latency.hpp); default: sample 64
};

/// Handle the current argument if it is a common option: --help/-h (prints @usage to
/// stdout and exits 0), --rw, --rwmixread, --bs, --qd, --threads, --seconds, --ios,
/// --file, --direct/--no-direct, --pin/--no-pin, --latency, --json. Range checks that
/// differ between the programs are left to them (only --rwmixread's 0..100 is checked here).
/// Returns: true when it consumed the option; false to let the caller try its own.
/// Throws UsageError on a bad value.
bool parse_common_option(ArgReader& a, CommonOptions& o, void (*usage)(std::FILE*));

/// The limits every bench program shares, checked after parsing: --qd 1..4096 (a ring's
/// SQ), --threads 1..1024, --bs from 1 byte to @max_bs (@max_bs_what names that limit in
/// the message), and --seconds 0 only with --ios. Throws UsageError naming the option.
void check_common_limits(const CommonOptions& o, std::uint64_t max_bs,
                         const std::string& max_bs_what);

/// Returns: the SQ size both io_uring programs give their ring for @qd requests in flight:
/// the smallest power of two >= qd, at least 8 (so their SQEs and CQEs cycle through the
/// same memory, which at QD 128 matters for the L1 cache).
unsigned ring_entries_for(unsigned qd) noexcept;

/// Parse --latency's value: "all", "off", or "sample" followed by N (1..2^24) as the next
/// argument (@a supplies it). Throws UsageError on anything else.
LatencyMode parse_latency(const std::string& kind, ArgReader& a);

/// Record the options every program reports first in @rep's config: rw, bs, qd, threads,
/// file (@file: the path actually used), direct and latency (how I/Os were timed).
/// rwmixread, which comes after each program's own keys, stays with the programs.
void set_common_config(Report& rep, const CommonOptions& o, const std::string& file);

/// The body of each program's main(): run @body; a UsageError prints "<prog>: message" and
/// returns 2, any other exception returns 1. @on_error (may be null) runs first in both
/// cases (bioring-bench removes the file it created).
template <class Body>
int run_main(const char* prog, Body body, void (*on_error)() noexcept = nullptr) {
    try {
        return body();
    } catch (const UsageError& e) {
        if (on_error != nullptr) {
            on_error();
        }
        std::fprintf(stderr, "%s: %s\n", prog, e.what());
        return 2;
    } catch (const std::exception& e) {
        if (on_error != nullptr) {
            on_error();
        }
        std::fprintf(stderr, "%s: %s\n", prog, e.what());
        return 1;
    }
}

} // namespace bioring::bench
