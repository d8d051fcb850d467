// SPDX-License-Identifier: MIT
// CRC32C (Castagnoli, polynomial 0x1EDC6F41 reflected = 0x82F63B78), the checksum of the
// bioring-wal log format (iSCSI, ext4 and RocksDB use the same one). OpenSSL has none.
// With SSE4.2 (checked once, at run time) it uses the crc32 instruction, 8 bytes at a
// time; elsewhere a slicing-by-8 table, built at compile time. Both give the same values
// (RFC 3720 B.4 test vectors: tests/apps/wal_format_test.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace bioring::apps::wal {

/// Extend @crc (0 to start) over @len bytes at @data: crc32c(b, crc32c(a)) == crc32c(a + b).
/// Context: any thread; pure; never fails.
/// Returns: the CRC32C (pre- and post-inverted, as in RFC 3720).
std::uint32_t crc32c(const void* data, std::size_t len, std::uint32_t crc = 0) noexcept;

/// The portable table version (also what crc32c() uses without SSE4.2), for tests.
std::uint32_t crc32c_table(const void* data, std::size_t len, std::uint32_t crc = 0) noexcept;

/// Returns: whether crc32c() uses the SSE4.2 instruction on this machine.
bool crc32c_hardware() noexcept;

} // namespace bioring::apps::wal
