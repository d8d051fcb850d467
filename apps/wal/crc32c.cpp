// SPDX-License-Identifier: MIT
// CRC32C: SSE4.2 crc32 instruction when the CPU has it, slicing-by-8 table otherwise.
#include "apps/wal/crc32c.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace bioring::apps::wal {

namespace {

constexpr std::uint32_t poly = 0x82F63B78u; // 0x1EDC6F41 bit-reversed

using Tables = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr Tables make_tables() noexcept {
    Tables t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) {
            c = (c & 1) ? (c >> 1) ^ poly : c >> 1;
        }
        t[0][i] = c;
    }
    for (std::uint32_t i = 0; i < 256; ++i) {
        for (int s = 1; s < 8; ++s) {
            t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
        }
    }
    return t;
}

constexpr Tables tables = make_tables();

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t crc_hw(const unsigned char* p, std::size_t n,
                                                       std::uint32_t c) noexcept {
    std::uint64_t c64 = c;
    while (n >= 8) {
        std::uint64_t v;
        std::memcpy(&v, p, 8);
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        n -= 8;
    }
    c = static_cast<std::uint32_t>(c64);
    while (n > 0) {
        c = _mm_crc32_u8(c, *p++);
        --n;
    }
    return c;
}

bool have_sse42() noexcept {
    static const bool have = __builtin_cpu_supports("sse4.2");
    return have;
}
#endif

std::uint32_t crc_sw(const unsigned char* p, std::size_t n, std::uint32_t c) noexcept {
    while (n >= 8) {
        std::uint64_t v;
        std::memcpy(&v, p, 8); // little-endian: x86_64 and the other targets we build for
        v ^= c;
        c = tables[7][v & 0xff] ^ tables[6][(v >> 8) & 0xff] ^ tables[5][(v >> 16) & 0xff] ^
            tables[4][(v >> 24) & 0xff] ^ tables[3][(v >> 32) & 0xff] ^
            tables[2][(v >> 40) & 0xff] ^ tables[1][(v >> 48) & 0xff] ^ tables[0][v >> 56];
        p += 8;
        n -= 8;
    }
    while (n > 0) {
        c = (c >> 8) ^ tables[0][(c ^ *p++) & 0xff];
        --n;
    }
    return c;
}

} // namespace

std::uint32_t crc32c_table(const void* data, std::size_t len, std::uint32_t crc) noexcept {
    return ~crc_sw(static_cast<const unsigned char*>(data), len, ~crc);
}

std::uint32_t crc32c(const void* data, std::size_t len, std::uint32_t crc) noexcept {
#if defined(__x86_64__)
    if (have_sse42()) {
        return ~crc_hw(static_cast<const unsigned char*>(data), len, ~crc);
    }
#endif
    return crc32c_table(data, len, crc);
}

bool crc32c_hardware() noexcept {
#if defined(__x86_64__)
    return have_sse42();
#else
    return false;
#endif
}

} // namespace bioring::apps::wal
