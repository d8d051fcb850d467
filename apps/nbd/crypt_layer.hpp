// SPDX-License-Identifier: MIT
// CryptLayer: dm-crypt plain "aes-xts-plain64" over the device below, the on-disk format of
// bioring-crypt (apps/crypt/xts.hpp): sector n of the data is XTS data unit
// plain64_iv(fmt, n * sector_size), and the data starts @offset bytes into the device below.
//
// Cipher work runs on the reactor thread of the request, with that thread's own EVP
// contexts (created on the thread's first request, then reused), one EVP call per sector.
// Reads decrypt in place in the caller's buffer; writes encrypt into a bounce buffer (the
// caller's plaintext is left alone). Requests not aligned to the sector size are widened
// to whole sectors (read, decrypt, patch, encrypt, write) under this layer's RangeLock.
// No trim: a discarded sector would read back as the decryption of whatever the device
// returns, not as zeroes, so trim() fails with -EOPNOTSUPP (the front end does not
// advertise it); zero() writes encrypted zeroes and is never "fast"; block status
// reports everything as data.
#pragma once

#include "apps/crypt/xts.hpp"
#include "apps/nbd/block_device.hpp"
#include "apps/nbd/range_lock.hpp"

#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace bioring::apps::nbd {

class CryptLayer final : public BlockDevice {
public:
    /// Encrypt onto @lower (which must outlive this layer) with @key (32 or 64 bytes, as
    /// XtsCipher), @fmt (validated), data from byte @offset (a multiple of the sector size).
    /// Context: any thread; allocates. Returns: throws std::invalid_argument for a bad key,
    /// format or offset (the message says which), std::runtime_error when OpenSSL fails.
    CryptLayer(BlockDevice& lower, std::span<const std::byte> key, SectorFormat fmt,
               std::uint64_t offset, std::size_t pool_size = 64);
    ~CryptLayer() override;

    std::uint64_t size() const noexcept override { return size_; }
    std::uint32_t alignment() const noexcept override {
        return std::max(fmt_.sector_size, lower_.alignment());
    }
    bool can_trim() const noexcept override { return false; }
    bool can_fast_zero() const noexcept override { return false; }
    bool may_have_holes() const noexcept override { return false; }

    Task<IoResult> read(std::byte* buf, std::uint32_t len, std::uint64_t off) override {
        return do_read(*bioset_, buf, len, off);
    }
    Task<IoResult> write(const std::byte* buf, std::uint32_t len, std::uint64_t off,
                         bool fua) override {
        return do_write(*bioset_, buf, len, off, fua, false);
    }
    Task<IoResult> flush() override { return do_flush(*bioset_); }
    Task<IoResult> trim(std::uint64_t off, std::uint32_t len) override {
        return do_refuse(*bioset_, off, len);
    }
    Task<IoResult> zero(std::uint64_t off, std::uint32_t len, bool may_trim, bool fast) override;
    Task<IoResult> block_status(std::uint64_t off, std::uint32_t len,
                                std::span<Extent> out) override {
        return do_block_status(*bioset_, off, len, out);
    }

private:
    struct Ciphers {
        Ciphers(std::span<const std::byte> key)
            : enc(key, XtsCipher::Direction::encrypt), dec(key, XtsCipher::Direction::decrypt) {}
        XtsCipher enc, dec;
    };
    /// This thread's cipher contexts (created on its first request).
    Ciphers* ciphers() noexcept;

    Task<IoResult> do_read(BioSet& bs, std::byte* buf, std::uint32_t len, std::uint64_t off);
    /// Write @src (nullptr: zeroes) — the one coroutine behind write() and zero().
    Task<IoResult> do_write(BioSet& bs, const std::byte* src, std::uint32_t len, std::uint64_t off,
                            bool fua, bool zeroes);
    Task<IoResult> do_flush(BioSet& bs);
    Task<IoResult> do_refuse(BioSet& bs, std::uint64_t off, std::uint32_t len);
    Task<IoResult> do_block_status(BioSet& bs, std::uint64_t off, std::uint32_t len,
                                   std::span<Extent> out);
    std::size_t bounce_size(std::uint64_t len) const noexcept;
    bool in_range(std::uint64_t off, std::uint64_t len) const noexcept {
        return off <= size_ && len <= size_ - off;
    }

    BlockDevice& lower_;
    std::vector<std::byte> key_;
    SectorFormat fmt_;
    std::uint64_t offset_ = 0;
    std::uint64_t size_ = 0;
    const std::uint64_t generation_;
    RangeLock lock_;
    std::mutex ciphers_mu_;
    std::vector<std::pair<std::thread::id, std::unique_ptr<Ciphers>>> ciphers_;
};

} // namespace bioring::apps::nbd
