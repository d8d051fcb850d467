// SPDX-License-Identifier: MIT
// Command-line parsing shared by the apps: a tiny GNU-style option parser and strict number
// parsing with size suffixes.
//
// Why not getopt_long: the apps must turn every malformed input into a UsageError (exit 2)
// with a message naming the option, never into a silently clamped value; strtoull accepts
// "-1" (as 2^64-1), leading spaces and "+", and reports overflow only through errno. So the
// number parsers here accept exactly [0-9]+ followed by an optional suffix and detect overflow
// with checked arithmetic. Sizes are binary (K = 1024), like dd and cryptsetup.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace bioring::apps {

/// A bad command line: the app prints the message and exits with status 2.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Parse a byte count: digits with an optional binary suffix K, M, G, T, P or E (either case,
/// optionally followed by "iB" or "B": "4K", "1MiB", "2g"), e.g. for --bs.
/// \param text the argument; \param what the option name for messages ("--bs").
/// Context: any thread; pure.
/// Returns: the value; throws UsageError for an empty string, a sign, any other character,
/// or a value that does not fit in 64 bits ("99999999999999P").
std::uint64_t parse_size(std::string_view text, std::string_view what);

/// Parse a plain unsigned integer (no suffix) and check min <= value <= max.
/// Returns: the value; throws UsageError naming @what and the accepted range otherwise.
std::uint64_t parse_uint(std::string_view text, std::string_view what, std::uint64_t min,
                         std::uint64_t max);

/// As parse_size, then check the range (and a multiple of @multiple when it is non-zero).
std::uint64_t parse_size_in(std::string_view text, std::string_view what, std::uint64_t min,
                            std::uint64_t max, std::uint64_t multiple = 0);

/// A minimal long-option parser: "--name value", "--name=value", boolean "--name", "--"
/// ending the options, "-h" as "--help". Unknown options and missing values are UsageErrors.
class ArgParser {
public:
    using Setter = std::function<void(std::string_view value)>;

    /// Register an option that takes a value; @set throws UsageError to reject it.
    void value(std::string name, Setter set);
    /// Register a boolean flag.
    void flag(std::string name, bool* out);

    /// Parse argv[1..argc); returns the positional arguments in order.
    /// Context: main thread. Returns: throws UsageError on a bad option; sets *help when
    /// --help or -h is present (and stops checking the rest).
    std::vector<std::string> parse(int argc, char** argv, bool* help);

private:
    struct Option {
        std::string name;
        Setter set;
        bool* flag = nullptr;
    };
    std::vector<Option> options_;
};

/// The request-pipeline options bioring-copy and bioring-crypt share; each program gives
/// its own block size and depth defaults.
struct PipelineOptions {
    PipelineOptions(std::uint32_t default_bs, unsigned default_qd) noexcept
        : bs(default_bs), qd(default_qd) {}
    std::uint32_t bs;
    unsigned qd;
    unsigned threads = 0; ///< 0: the program's default
    bool verify = false;
    bool json = false;
    bool quiet = false;
};

/// Register --bs (4 KiB .. the largest I/O buffer, a multiple of 4 KiB), --qd (1..4096),
/// --threads (1..256), --verify, --json and --quiet on @p, writing into @o.
/// Context: main thread; @o must outlive the parse.
void add_pipeline_options(ArgParser& p, PipelineOptions& o);

} // namespace bioring::apps
