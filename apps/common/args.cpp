// SPDX-License-Identifier: MIT
// Strict number and option parsing for the apps (see args.hpp for why not strtoull/getopt).
#include "apps/common/args.hpp"

#include <bioring/alloc/buffer_pool.hpp>

#include <cctype>

namespace bioring::apps {

namespace {

std::string quoted(std::string_view s) {
    return "'" + std::string(s) + "'";
}

// Digits only; returns the index of the first non-digit. Throws on overflow.
std::uint64_t parse_digits(std::string_view text, std::string_view what, std::size_t* end) {
    if (text.empty()) {
        throw UsageError(std::string(what) + ": empty value");
    }
    if (text[0] == '-') {
        throw UsageError(std::string(what) + ": negative value " + quoted(text) +
                         " is not allowed");
    }
    std::uint64_t v = 0;
    std::size_t i = 0;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
        if (__builtin_mul_overflow(v, 10u, &v) ||
            __builtin_add_overflow(v, static_cast<unsigned>(text[i] - '0'), &v)) {
            throw UsageError(std::string(what) + ": value " + quoted(text) + " is too large");
        }
    }
    if (i == 0) {
        throw UsageError(std::string(what) + ": " + quoted(text) + " is not a number");
    }
    *end = i;
    return v;
}

} // namespace

std::uint64_t parse_size(std::string_view text, std::string_view what) {
    std::size_t end = 0;
    std::uint64_t v = parse_digits(text, what, &end);
    std::string_view suffix = text.substr(end);
    if (suffix.empty()) {
        return v;
    }
    unsigned shift = 0;
    switch (std::toupper(static_cast<unsigned char>(suffix[0]))) {
    case 'K':
        shift = 10;
        break;
    case 'M':
        shift = 20;
        break;
    case 'G':
        shift = 30;
        break;
    case 'T':
        shift = 40;
        break;
    case 'P':
        shift = 50;
        break;
    case 'E':
        shift = 60;
        break;
    default:
        throw UsageError(std::string(what) + ": " + quoted(text) +
                         " has an unknown suffix (use K, M, G, T, P or E)");
    }
    std::string_view rest = suffix.substr(1);
    if (!(rest.empty() || rest == "B" || rest == "iB")) {
        throw UsageError(std::string(what) + ": " + quoted(text) +
                         " has an unknown suffix (use K, M, G, T, P or E)");
    }
    if (v > (UINT64_MAX >> shift)) {
        throw UsageError(std::string(what) + ": value " + quoted(text) + " is too large");
    }
    return v << shift;
}

std::uint64_t parse_uint(std::string_view text, std::string_view what, std::uint64_t min,
                         std::uint64_t max) {
    std::size_t end = 0;
    std::uint64_t v = parse_digits(text, what, &end);
    if (end != text.size()) {
        throw UsageError(std::string(what) + ": " + quoted(text) + " is not a number");
    }
    if (v < min || v > max) {
        throw UsageError(std::string(what) + ": " + quoted(text) + " is out of range (" +
                         std::to_string(min) + ".." + std::to_string(max) + ")");
    }
    return v;
}

std::uint64_t parse_size_in(std::string_view text, std::string_view what, std::uint64_t min,
                            std::uint64_t max, std::uint64_t multiple) {
    std::uint64_t v = parse_size(text, what);
    if (v < min || v > max) {
        throw UsageError(std::string(what) + ": " + quoted(text) + " is out of range (" +
                         std::to_string(min) + ".." + std::to_string(max) + " bytes)");
    }
    if (multiple != 0 && v % multiple != 0) {
        throw UsageError(std::string(what) + ": " + quoted(text) + " is not a multiple of " +
                         std::to_string(multiple));
    }
    return v;
}

void ArgParser::value(std::string name, Setter set) {
    options_.push_back(Option{std::move(name), std::move(set), nullptr});
}

void ArgParser::flag(std::string name, bool* out) {
    options_.push_back(Option{std::move(name), nullptr, out});
}

std::vector<std::string> ArgParser::parse(int argc, char** argv, bool* help) {
    std::vector<std::string> positional;
    *help = false;
    bool options_done = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (options_done || arg.size() < 2 || arg[0] != '-') {
            positional.emplace_back(arg);
            continue;
        }
        if (arg == "--") {
            options_done = true;
            continue;
        }
        if (arg == "-h" || arg == "--help") {
            *help = true;
            return positional;
        }
        if (arg.substr(0, 2) != "--") {
            throw UsageError("unknown option " + quoted(arg));
        }
        std::string_view name = arg.substr(2);
        std::string_view inline_value;
        bool has_inline = false;
        if (auto eq = name.find('='); eq != std::string_view::npos) {
            inline_value = name.substr(eq + 1);
            name = name.substr(0, eq);
            has_inline = true;
        }
        const Option* opt = nullptr;
        for (const auto& o : options_) {
            if (o.name == name) {
                opt = &o;
                break;
            }
        }
        if (opt == nullptr) {
            throw UsageError("unknown option " + quoted(arg));
        }
        if (opt->flag != nullptr) {
            if (has_inline) {
                throw UsageError("option --" + opt->name + " takes no value");
            }
            *opt->flag = true;
            continue;
        }
        if (!has_inline) {
            if (i + 1 >= argc) {
                throw UsageError("option --" + opt->name + " needs a value");
            }
            inline_value = argv[++i];
        }
        opt->set(inline_value);
    }
    return positional;
}

void add_pipeline_options(ArgParser& p, PipelineOptions& o) {
    p.value("bs", [&o](std::string_view v) {
        o.bs = static_cast<std::uint32_t>(
            parse_size_in(v, "--bs", 4096, BufferPool::max_buffer, 4096));
    });
    p.value("qd", [&o](std::string_view v) {
        o.qd = static_cast<unsigned>(parse_uint(v, "--qd", 1, 4096));
    });
    p.value("threads", [&o](std::string_view v) {
        o.threads = static_cast<unsigned>(parse_uint(v, "--threads", 1, 256));
    });
    p.flag("verify", &o.verify);
    p.flag("json", &o.json);
    p.flag("quiet", &o.quiet);
}

} // namespace bioring::apps
