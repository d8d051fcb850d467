// SPDX-License-Identifier: MIT
// Helpers for the bioring-wal tests: run the program, read numbers out of its JSON lines,
// read a bench's .acked side file.
#pragma once

#include "apps/wal/crc32c.hpp"
#include "tests/apps/app_support.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace wal_test {

using namespace apps_test;

inline const std::string wal_exe = BIORING_WAL_EXE;

inline Result wal(std::vector<std::string> args, const fs::path& dir) {
    args.insert(args.begin(), wal_exe);
    return run(args, dir);
}

/// The unsigned number after "key": in @json (one object), or -1 when absent.
inline long long json_number(const std::string& json, const std::string& key) {
    const std::string k = "\"" + key + "\":";
    const std::size_t at = json.find(k);
    if (at == std::string::npos || !std::isdigit(static_cast<unsigned char>(json[at + k.size()]))) {
        return -1;
    }
    return std::strtoll(json.c_str() + at + k.size(), nullptr, 10);
}

/// The "state" of a verify --json line ("clean", "torn-tail", "damaged").
inline std::string json_state(const std::string& json) {
    const std::string k = "\"state\":\"";
    const std::size_t at = json.find(k);
    if (at == std::string::npos) {
        return "";
    }
    return json.substr(at + k.size(), json.find('"', at + k.size()) - at - k.size());
}

/// The sequence number in a .acked file: 0 when it is empty (nothing acknowledged yet);
/// -1 when it is torn or damaged (its CRC does not match).
inline long long read_acked(const fs::path& p) {
    const std::string s = slurp(p);
    if (s.empty()) {
        return 0;
    }
    if (s.size() < 12) {
        return -1;
    }
    std::uint64_t seq;
    std::uint32_t crc;
    std::memcpy(&seq, s.data(), 8);
    std::memcpy(&crc, s.data() + 8, 4);
    if (bioring::apps::wal::crc32c(s.data(), 8) != crc) {
        return -1;
    }
    return static_cast<long long>(seq);
}

} // namespace wal_test
