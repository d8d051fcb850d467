// SPDX-License-Identifier: MIT
// libFuzzer target for the apps' command-line parsing (apps/common/args.cpp): parse_size,
// parse_uint, parse_size_in and ArgParser on arbitrary bytes.
// What it checks beyond "no crash, no sanitizer report": every value the parsers accept is
// consistent with the text (digits only, suffix scaling without overflow, range and
// multiple respected), and the only exception that escapes is UsageError.
// The input is split on NUL bytes: the first piece feeds the number parsers, all pieces
// together form an argv for an ArgParser with the apps' kinds of options.
#include "apps/common/args.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

using bioring::apps::ArgParser;
using bioring::apps::UsageError;

namespace {

[[noreturn]] void broken(const char* what) {
    __builtin_trap(); // libFuzzer reports the input that got here
    (void)what;
}

void check_numbers(std::string_view text) {
    try {
        const std::uint64_t v = bioring::apps::parse_uint(text, "--n", 3, 1000);
        if (v < 3 || v > 1000 || text.empty() ||
            text.find_first_not_of("0123456789") != std::string_view::npos) {
            broken("parse_uint accepted a bad value");
        }
        if (std::to_string(v) !=
            std::string(text.substr(text.find_first_not_of('0') == std::string_view::npos
                                        ? text.size() - 1
                                        : text.find_first_not_of('0')))) {
            broken("parse_uint value differs from its digits");
        }
    } catch (const UsageError&) {
    }
    try {
        const std::uint64_t v = bioring::apps::parse_size(text, "--bs");
        // Accepted: the digits times a power of 1024; the text must start with a digit.
        if (text.empty() || text[0] < '0' || text[0] > '9') {
            broken("parse_size accepted text without leading digits");
        }
        std::size_t i = 0;
        unsigned __int128 digits = 0;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
            digits = digits * 10 + static_cast<unsigned>(text[i] - '0');
            if (digits > UINT64_MAX) {
                broken("parse_size accepted an overflowing number");
            }
            ++i;
        }
        if (digits != 0 && (v == 0 || v % static_cast<std::uint64_t>(digits) != 0)) {
            broken("parse_size value is not a multiple of its digits");
        }
        if (digits == 0 && v != 0) {
            broken("parse_size made something out of zero");
        }
    } catch (const UsageError&) {
    }
    try {
        const std::uint64_t v = bioring::apps::parse_size_in(text, "--bs", 4096, 1 << 20, 4096);
        if (v < 4096 || v > (1u << 20) || v % 4096 != 0) {
            broken("parse_size_in broke its range or multiple");
        }
    } catch (const UsageError&) {
    }
}

void check_parser(const std::vector<std::string>& pieces) {
    std::vector<char*> argv;
    std::string prog = "fuzz";
    argv.push_back(prog.data());
    std::vector<std::string> own = pieces;
    for (auto& p : own) {
        argv.push_back(p.data());
    }
    argv.push_back(nullptr);
    ArgParser p;
    std::uint64_t bs = 0, qd = 0;
    bool verify = false, json = false, help = false;
    p.value("--bs", [&](std::string_view v) {
        bs = bioring::apps::parse_size_in(v, "--bs", 4096, 1 << 20, 4096);
    });
    p.value("--qd",
            [&](std::string_view v) { qd = bioring::apps::parse_uint(v, "--qd", 1, 4096); });
    p.flag("--verify", &verify);
    p.flag("--json", &json);
    try {
        const auto pos = p.parse(static_cast<int>(argv.size() - 1), argv.data(), &help);
        if (pos.size() > own.size()) {
            broken("more positionals than arguments");
        }
        if (bs != 0 && (bs < 4096 || bs > (1u << 20))) {
            broken("--bs out of range after parse");
        }
        if (qd > 4096) {
            broken("--qd out of range after parse");
        }
    } catch (const UsageError&) {
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view all(reinterpret_cast<const char*>(data), size);
    std::vector<std::string> pieces;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= all.size(); ++i) {
        if (i == all.size() || all[i] == '\0') {
            pieces.emplace_back(all.substr(start, i - start));
            start = i + 1;
        }
    }
    check_numbers(pieces.front());
    if (pieces.size() <= 16) {
        check_parser(pieces);
    }
    return 0;
}
