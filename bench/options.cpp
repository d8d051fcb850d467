// SPDX-License-Identifier: MIT
// Strict number and option parsing for the bench programs (see options.hpp).
#include "bench/options.hpp"

#include "bench/workload.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace bioring::bench {

namespace {

std::string quoted(std::string_view s) {
    return "'" + std::string(s) + "'";
}

} // namespace

std::uint64_t parse_uint(std::string_view text, std::string_view what) {
    std::uint64_t v = 0;
    if (text.empty() || !std::isdigit(static_cast<unsigned char>(text.front()))) {
        throw UsageError(std::string(what) + ": expected a non-negative integer, got " +
                         quoted(text));
    }
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec == std::errc::result_out_of_range) {
        throw UsageError(std::string(what) + ": " + quoted(text) + " is too large");
    }
    if (ec != std::errc{} || end != text.data() + text.size()) {
        throw UsageError(std::string(what) + ": expected a non-negative integer, got " +
                         quoted(text));
    }
    return v;
}

std::uint64_t parse_size(std::string_view text, std::string_view what) {
    std::size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) {
        ++digits;
    }
    if (digits == 0) {
        throw UsageError(std::string(what) + ": expected a size such as 4096, 4k or 1M, got " +
                         quoted(text));
    }
    const std::uint64_t n = parse_uint(text.substr(0, digits), what);
    std::string suffix;
    for (char c : text.substr(digits)) {
        suffix += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    unsigned shift = 0;
    if (suffix.empty() || suffix == "b") {
        shift = 0;
    } else if (suffix == "k" || suffix == "kb" || suffix == "kib") {
        shift = 10;
    } else if (suffix == "m" || suffix == "mb" || suffix == "mib") {
        shift = 20;
    } else if (suffix == "g" || suffix == "gb" || suffix == "gib") {
        shift = 30;
    } else if (suffix == "t" || suffix == "tb" || suffix == "tib") {
        shift = 40;
    } else {
        throw UsageError(std::string(what) + ": unknown size suffix in " + quoted(text) +
                         " (use k, m, g or t; binary units)");
    }
    if (shift != 0 && n > (std::numeric_limits<std::uint64_t>::max() >> shift)) {
        throw UsageError(std::string(what) + ": " + quoted(text) + " is too large");
    }
    return n << shift;
}

double parse_seconds(std::string_view text, std::string_view what) {
    const std::string s(text);
    char* end = nullptr;
    const double v = s.empty() ? NAN : std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v) || v < 0 ||
        !(std::isdigit(static_cast<unsigned char>(s.front())) || s.front() == '.')) {
        throw UsageError(std::string(what) + ": expected a non-negative number of seconds, got " +
                         quoted(text));
    }
    return v;
}

ArgReader::ArgReader(int argc, char** argv) : args_(argv + (argc > 0 ? 1 : 0), argv + argc) {}

bool ArgReader::next() {
    if (pos_ >= args_.size()) {
        return false;
    }
    current_ = args_[pos_++];
    has_inline_value_ = false;
    inline_value_.clear();
    const auto eq = current_.find('=');
    if (current_.rfind("--", 0) == 0 && eq != std::string::npos) {
        name_ = current_.substr(0, eq);
        inline_value_ = current_.substr(eq + 1);
        has_inline_value_ = true;
    } else {
        name_ = current_;
    }
    return true;
}

bool ArgReader::is(std::string_view name) const noexcept {
    return name_ == name;
}

std::string ArgReader::value() {
    if (has_inline_value_) {
        return inline_value_;
    }
    if (pos_ >= args_.size()) {
        throw UsageError("option " + name_ + " needs a value");
    }
    return args_[pos_++];
}

std::string ArgReader::second_value(std::string_view what) {
    if (pos_ >= args_.size()) {
        throw UsageError("option " + name_ + " " + std::string(what) + " needs a value");
    }
    return args_[pos_++];
}

void ArgReader::unknown() const {
    if (current_.rfind("-", 0) == 0) {
        throw UsageError("unknown option " + quoted(current_) + " (see --help)");
    }
    throw UsageError("unexpected argument " + quoted(current_) + " (see --help)");
}

void ArgReader::no_value() const {
    if (has_inline_value_) {
        throw UsageError("option " + name_ + " takes no value");
    }
}

bool ArgReader::on_off(std::string_view name, bool* out) {
    const std::string_view n = name_;
    bool on;
    if (n.size() == name.size() + 2 && n.starts_with("--") && n.substr(2) == name) {
        on = true;
    } else if (n.size() == name.size() + 5 && n.starts_with("--no-") && n.substr(5) == name) {
        on = false;
    } else {
        return false;
    }
    no_value();
    *out = on;
    return true;
}

CommonOptions::CommonOptions() : rw(Workload::randread) {}

bool parse_common_option(ArgReader& a, CommonOptions& o, void (*usage)(std::FILE*)) {
    if (a.on_off("direct", &o.direct)) {
        return true;
    }
    if (a.is("--help") || a.is("-h")) {
        usage(stdout);
        std::exit(0);
    } else if (a.is("--rw")) {
        o.rw = parse_workload(a.value());
    } else if (a.is("--rwmixread")) {
        o.rwmixread = parse_uint(a.value(), "--rwmixread");
        if (o.rwmixread > 100) {
            throw UsageError("--rwmixread must be 0..100");
        }
    } else if (a.is("--bs")) {
        o.bs = parse_size(a.value(), "--bs");
    } else if (a.is("--qd")) {
        o.qd = parse_uint(a.value(), "--qd");
    } else if (a.is("--threads")) {
        o.threads = parse_uint(a.value(), "--threads");
    } else if (a.is("--seconds")) {
        o.seconds = parse_seconds(a.value(), "--seconds");
    } else if (a.is("--ios")) {
        o.ios = parse_uint(a.value(), "--ios");
    } else if (a.is("--file")) {
        o.file = a.value();
    } else if (a.is("--pin")) {
        a.no_value();
        o.pin = 1;
    } else if (a.is("--no-pin")) {
        a.no_value();
        o.pin = 0;
    } else if (a.is("--json")) {
        a.no_value();
        o.json = true;
    } else if (a.is("--latency")) {
        o.latency = parse_latency(a.value(), a);
    } else {
        return false;
    }
    return true;
}

LatencyMode parse_latency(const std::string& kind, ArgReader& a) {
    LatencyMode m;
    if (kind == "all") {
        m.kind = LatencyMode::Kind::all;
    } else if (kind == "off") {
        m.kind = LatencyMode::Kind::off;
    } else if (kind == "sample") {
        m.kind = LatencyMode::Kind::sample;
        const std::uint64_t n = parse_uint(a.second_value("sample"), "--latency sample");
        if (n == 0 || n > LatencyMode::max_every) {
            throw UsageError("--latency sample N: N must be 1.." +
                             std::to_string(LatencyMode::max_every) + ", got " + std::to_string(n));
        }
        m.every = static_cast<std::uint32_t>(n);
    } else {
        throw UsageError("unknown --latency '" + kind + "' (expected all, sample N or off)");
    }
    return m;
}

unsigned ring_entries_for(unsigned qd) noexcept {
    unsigned entries = 8;
    while (entries < qd) {
        entries <<= 1;
    }
    return entries;
}

void check_common_limits(const CommonOptions& o, std::uint64_t max_bs,
                         const std::string& max_bs_what) {
    if (o.qd == 0) {
        throw UsageError("--qd must be at least 1");
    }
    if (o.qd > 4096) {
        throw UsageError("--qd " + std::to_string(o.qd) + " is above the ring limit of 4096");
    }
    if (o.threads == 0 || o.threads > 1024) {
        throw UsageError("--threads must be 1..1024");
    }
    if (o.bs == 0) {
        throw UsageError("--bs must be at least 1 byte");
    }
    if (o.bs > max_bs) {
        throw UsageError("--bs " + std::to_string(o.bs) + " is above " + max_bs_what);
    }
    if (o.seconds == 0 && o.ios == 0) {
        throw UsageError("--seconds 0 needs --ios N");
    }
}

void set_common_config(Report& rep, const CommonOptions& o, const std::string& file) {
    rep.set("rw", workload_name(o.rw));
    rep.set("bs", o.bs);
    rep.set("qd", o.qd);
    rep.set("threads", o.threads);
    rep.set("file", file);
    rep.set_bool("direct", o.direct);
    rep.set("latency", o.latency.describe());
    rep.latency_mode = o.latency.describe();
}

} // namespace bioring::bench
