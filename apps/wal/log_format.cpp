// SPDX-License-Identifier: MIT
// The bioring-wal log format: encoding records, packing blocks, checking blocks.
#include "apps/wal/log_format.hpp"
#include "apps/wal/crc32c.hpp"

#include <cstring>

namespace bioring::apps::wal {

namespace {

template <class T>
void put(unsigned char* p, T v) noexcept {
    std::memcpy(p, &v, sizeof v); // little-endian hosts only (x86_64, aarch64)
}

template <class T>
T get(const unsigned char* p) noexcept {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

std::uint64_t splitmix64(std::uint64_t x) noexcept {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

} // namespace

void fill_payload(std::uint64_t seq, void* out, std::size_t len) noexcept {
    auto* p = static_cast<unsigned char*>(out);
    std::uint64_t s = splitmix64(seq);
    for (std::size_t i = 0; i < len; i += 8) {
        s = splitmix64(s);
        std::memcpy(p + i, &s, len - i < 8 ? len - i : 8);
    }
}

void encode_record(std::uint64_t seq, std::uint32_t len, void* out) noexcept {
    auto* p = static_cast<unsigned char*>(out);
    put<std::uint32_t>(p, record_magic);
    put<std::uint32_t>(p + 4, len);
    put<std::uint64_t>(p + 8, seq);
    put<std::uint32_t>(p + 16, 0);
    put<std::uint32_t>(p + 20, 0);
    fill_payload(seq, p + record_header_size, len);
    put<std::uint32_t>(p + 16, crc32c(p, record_header_size + len));
}

void BlockPacker::begin(std::uint64_t first_block) noexcept {
    first_ = first_block;
    blocks_ = 0;
    used_ = block_size; // no block open
    in_block_ = 0;
    records_ = 0;
}

void BlockPacker::open_block() noexcept {
    unsigned char* b = buf_ + blocks_ * block_size;
    std::memset(b, 0, block_size);
    ++blocks_;
    used_ = block_header_size;
    in_block_ = 0;
}

bool BlockPacker::add(const void* rec, std::size_t len) noexcept {
    if (used_ + len > block_size) {
        if (blocks_ == max_blocks_) {
            return false;
        }
        if (blocks_ > 0) {
            unsigned char* b = buf_ + (blocks_ - 1) * block_size;
            put<std::uint16_t>(b + 28, static_cast<std::uint16_t>(in_block_));
            put<std::uint16_t>(b + 30, static_cast<std::uint16_t>(used_));
        }
        open_block();
    }
    std::memcpy(buf_ + (blocks_ - 1) * block_size + used_, rec, len);
    used_ += len;
    ++in_block_;
    ++records_;
    return true;
}

std::size_t BlockPacker::finish() noexcept {
    if (blocks_ == 0) {
        return 0;
    }
    unsigned char* last = buf_ + (blocks_ - 1) * block_size;
    put<std::uint16_t>(last + 28, static_cast<std::uint16_t>(in_block_));
    put<std::uint16_t>(last + 30, static_cast<std::uint16_t>(used_));
    for (std::size_t i = 0; i < blocks_; ++i) {
        unsigned char* b = buf_ + i * block_size;
        put<std::uint32_t>(b, block_magic);
        put<std::uint32_t>(b + 4, 0);
        put<std::uint64_t>(b + 8, first_ + i);
        put<std::uint64_t>(b + 16, first_);
        put<std::uint32_t>(b + 24, static_cast<std::uint32_t>(blocks_));
        put<std::uint32_t>(b + 4, crc32c(b, block_size));
    }
    return blocks_;
}

BlockInfo check_block(const unsigned char* blk, std::size_t len, std::uint64_t index) noexcept {
    BlockInfo bi;
    if (len < block_size) {
        bi.reason = "short block at end of file";
        return bi;
    }
    if (get<std::uint32_t>(blk) != block_magic) {
        bi.zero = blk[0] == 0 && std::memcmp(blk, blk + 1, block_size - 1) == 0;
        bi.reason = bi.zero ? "unwritten block (zeros)" : "bad block magic";
        return bi;
    }
    if (get<std::uint64_t>(blk + 8) != index) {
        bi.reason = "block sequence number does not match its position";
        return bi;
    }
    unsigned char hdr[block_header_size];
    std::memcpy(hdr, blk, block_header_size);
    put<std::uint32_t>(hdr + 4, 0);
    std::uint32_t crc = crc32c(hdr, block_header_size);
    crc = crc32c(blk + block_header_size, block_size - block_header_size, crc);
    const bool crc_ok = crc == get<std::uint32_t>(blk + 4);
    bi.valid_alone = crc_ok;
    bi.batch_start = get<std::uint64_t>(blk + 16);
    const std::uint32_t count = get<std::uint16_t>(blk + 28);
    std::size_t used = get<std::uint16_t>(blk + 30);
    if (used > block_size || used < block_header_size) {
        used = block_size; // a damaged header: walk the records to the end of the block
    }

    // Walk the records: their own checks locate damage inside the block.
    std::size_t off = block_header_size;
    std::uint64_t prev = 0;
    std::uint32_t n = 0;
    while (off + record_header_size <= used && (crc_ok ? n < count : true)) {
        const unsigned char* r = blk + off;
        const std::uint32_t magic = get<std::uint32_t>(r);
        if (!crc_ok && magic == 0 && n >= count) {
            break; // zero padding after the records
        }
        const std::uint32_t plen = get<std::uint32_t>(r + 4);
        const std::uint64_t seq = get<std::uint64_t>(r + 8);
        const char* why = nullptr;
        if (magic != record_magic) {
            why = "bad record magic";
        } else if (plen > max_payload || off + record_header_size + plen > used) {
            why = "record length runs past the block";
        } else if (n > 0 && seq != prev + 1) {
            why = "record sequence numbers not contiguous";
        } else {
            unsigned char rh[record_header_size];
            std::memcpy(rh, r, record_header_size);
            put<std::uint32_t>(rh + 16, 0);
            std::uint32_t rc = crc32c(rh, record_header_size);
            rc = crc32c(r + record_header_size, plen, rc);
            if (rc != get<std::uint32_t>(r + 16)) {
                why = "record CRC mismatch";
            } else {
                unsigned char expect[max_payload];
                fill_payload(seq, expect, plen);
                if (std::memcmp(expect, r + record_header_size, plen) != 0) {
                    why = "record payload is not the one written for its sequence number";
                }
            }
        }
        if (why != nullptr) {
            bi.valid = false;
            bi.valid_alone = false; // a record that fails its own check makes the block bad
            bi.damage = static_cast<std::uint32_t>(off);
            bi.reason = why;
            return bi;
        }
        if (n == 0) {
            bi.first_seq = seq;
        }
        prev = seq;
        ++n;
        off += record_header_size + plen;
    }
    if (!crc_ok) {
        bi.reason = "block CRC mismatch (header or padding)";
        return bi;
    }
    if (n != count || n == 0) {
        bi.reason = "record count does not match the records";
        bi.valid_alone = false;
        return bi;
    }
    bi.valid = true;
    bi.records = n;
    bi.last_seq = prev;
    bi.reason = "";
    return bi;
}

} // namespace bioring::apps::wal
