// SPDX-License-Identifier: MIT
// AES-XTS in dm-crypt's "aes-xts-plain64" format, on OpenSSL's EVP.
//
// Each sector is one XTS data unit. Its tweak is the plain64 IV: the sector number as a
// 64-bit little-endian integer in a 16-byte block, counted in 512-byte units from the start of
// the data plus --skip (dm-crypt's iv_offset), or in sector-size units with
// --iv-large-sectors. EVP gets one update per sector with the IV set before it: handing it
// several sectors at once would chain the tweak across them, which is not what dm-crypt
// stores. An XtsCipher owns one EVP_CIPHER_CTX and is used by one thread at a time (each
// reactor of bioring-crypt owns its own).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

struct evp_cipher_ctx_st;
struct evp_cipher_st;

namespace bioring::apps {

/// How a byte offset in the data maps to sectors and IVs (cryptsetup's plain-mode options).
struct SectorFormat {
    std::uint32_t sector_size = 512; ///< 512 or 4096 (--sector-size)
    std::uint64_t skip = 0;          ///< IV offset in 512-byte units (--skip)
    bool iv_large_sectors = false;   ///< count IVs in sector_size units (--iv-large-sectors)
};

/// Check a format as cryptsetup/dm-crypt would.
/// Returns: an empty string when valid, else the reason (sector size not 512 or 4096; skip
/// not a multiple of sector_size/512 with iv_large_sectors; skip overflowing the IV).
std::string validate(const SectorFormat& fmt);

/// The plain64 IV (XTS data unit number) of the sector that starts at @byte_offset.
/// Context: pure. Returns: the 64-bit IV value (wraps modulo 2^64 as dm-crypt's does).
std::uint64_t plain64_iv(const SectorFormat& fmt, std::uint64_t byte_offset) noexcept;

class XtsCipher {
public:
    enum class Direction { encrypt, decrypt };

    /// Set up AES-256-XTS (64-byte key) or AES-128-XTS (32-byte key). The first half of
    /// @key is the data key, the second the tweak key (dm-crypt's and IEEE 1619's order).
    /// Context: any thread; allocates.
    /// Returns: throws std::invalid_argument for another key length or two equal halves (XTS
    /// is insecure then, and OpenSSL refuses it), std::runtime_error when OpenSSL fails.
    XtsCipher(std::span<const std::byte> key, Direction dir);
    ~XtsCipher();
    XtsCipher(XtsCipher&& other) noexcept;
    XtsCipher& operator=(XtsCipher&&) = delete;
    XtsCipher(const XtsCipher&) = delete;

    /// Encrypt or decrypt one data unit of @len bytes (a multiple of 16, at least 16) with
    /// tweak @unit as a little-endian 128-bit number. @in and @out may be equal.
    /// Context: the owning thread; never allocates. Returns: false if OpenSSL failed.
    bool crypt_unit(const std::byte* in, std::byte* out, std::size_t len,
                    std::uint64_t unit) noexcept;

    /// Transform @len bytes (a multiple of fmt.sector_size) that start at @byte_offset of
    /// the data, one EVP update per sector with that sector's plain64 IV.
    /// Returns: false if OpenSSL failed or @len is not a multiple of the sector size.
    bool crypt_sectors(const std::byte* in, std::byte* out, std::size_t len,
                       const SectorFormat& fmt, std::uint64_t byte_offset) noexcept;

    std::size_t key_bytes() const noexcept { return key_bytes_; }

private:
    evp_cipher_ctx_st* ctx_ = nullptr;
    std::size_t key_bytes_ = 0;
};

} // namespace bioring::apps
