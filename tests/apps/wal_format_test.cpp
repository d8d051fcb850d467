// SPDX-License-Identifier: MIT
// bioring-wal's CRC32C (RFC 3720 test vectors, hardware == table) and log format (packing,
// block and record checks, where damage is located).
#include "apps/wal/crc32c.hpp"
#include "apps/wal/log_format.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

using namespace bioring::apps::wal;

TEST_SUITE("apps") {

    TEST_CASE("wal crc32c matches the RFC 3720 B.4 test vectors in hardware and by table") {
        unsigned char buf[48];
        struct Vec {
            const char* name;
            std::size_t len;
            std::uint32_t crc;
        };
        const auto both = [](const void* p, std::size_t n) {
            CHECK(crc32c(p, n) == crc32c_table(p, n));
            return crc32c_table(p, n);
        };
        std::memset(buf, 0, 32);
        CHECK(both(buf, 32) == 0x8a9136aau);
        std::memset(buf, 0xff, 32);
        CHECK(both(buf, 32) == 0x62a8ab43u);
        for (int i = 0; i < 32; ++i) {
            buf[i] = static_cast<unsigned char>(i);
        }
        CHECK(both(buf, 32) == 0x46dd794eu);
        for (int i = 0; i < 32; ++i) {
            buf[i] = static_cast<unsigned char>(31 - i);
        }
        CHECK(both(buf, 32) == 0x113fdb5cu);
        const unsigned char scsi_read[48] = {
            0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
            0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
        CHECK(both(scsi_read, 48) == 0xd9963a56u);
        CHECK(both("123456789", 9) == 0xe3069283u);
        CHECK(both("", 0) == 0u);
        MESSAGE("crc32c uses " << (crc32c_hardware() ? "SSE4.2" : "the table"));
    }

    TEST_CASE(
        "wal crc32c extends across pieces and agrees with the table at every length and offset") {
        std::mt19937 rng(7);
        std::vector<unsigned char> data(1000);
        for (auto& b : data) {
            b = static_cast<unsigned char>(rng());
        }
        for (std::size_t off = 0; off < 9; ++off) {
            for (std::size_t len = 0; len + off <= data.size(); len += 37) {
                const std::uint32_t whole = crc32c(data.data() + off, len);
                CHECK(whole == crc32c_table(data.data() + off, len));
                const std::size_t half = len / 3;
                CHECK(crc32c(data.data() + off + half, len - half,
                             crc32c(data.data() + off, half)) == whole);
            }
        }
    }

    namespace {

    struct Packed {
        std::vector<unsigned char> mem;
        unsigned char* buf = nullptr;
        std::size_t blocks = 0;
    };

    // Records first_seq .. first_seq + n - 1 with @len-byte payloads, one batch from @first_block.
    Packed pack(std::uint64_t first_block, std::uint64_t first_seq, std::size_t n,
                std::uint32_t len, std::size_t max_blocks = 64) {
        Packed p;
        p.mem.resize(max_blocks * block_size);
        p.buf = p.mem.data();
        BlockPacker packer(p.buf, max_blocks);
        packer.begin(first_block);
        std::vector<unsigned char> rec(record_header_size + len);
        for (std::size_t i = 0; i < n; ++i) {
            encode_record(first_seq + i, len, rec.data());
            REQUIRE(packer.add(rec.data(), rec.size()));
        }
        CHECK(packer.records() == n);
        p.blocks = packer.finish();
        return p;
    }

    } // namespace

    TEST_CASE("wal format: packed blocks check out (positions and counts and contiguous sequence "
              "numbers)") {
        for (std::uint32_t len : {1u, 100u, 128u, 1000u, static_cast<unsigned>(max_payload)}) {
            CAPTURE(len);
            const std::size_t n = 50;
            Packed p = pack(7, 1000, n, len);
            const std::size_t per_block =
                (block_size - block_header_size) / (record_header_size + len);
            CHECK(p.blocks == (n + per_block - 1) / per_block);
            std::uint64_t next = 1000;
            for (std::size_t b = 0; b < p.blocks; ++b) {
                BlockInfo bi = check_block(p.buf + b * block_size, block_size, 7 + b);
                CAPTURE(bi.reason);
                REQUIRE(bi.valid);
                CHECK(bi.valid_alone);
                CHECK(bi.batch_start == 7);
                CHECK(bi.first_seq == next);
                next = bi.last_seq + 1;
            }
            CHECK(next == 1000 + n);
            // The same block at another position is not valid: block_seq is its offset.
            CHECK_FALSE(check_block(p.buf, block_size, 8).valid);
            CHECK_FALSE(check_block(p.buf, block_size - 1, 7).valid);
        }
    }

    TEST_CASE("wal format: a full batch buffer refuses the next record and keeps what it has") {
        Packed p;
        p.mem.resize(2 * block_size);
        BlockPacker packer(p.mem.data(), 2);
        packer.begin(0);
        std::vector<unsigned char> rec(record_header_size + max_payload);
        encode_record(1, max_payload, rec.data());
        CHECK(packer.add(rec.data(), rec.size()));
        encode_record(2, max_payload, rec.data());
        CHECK(packer.add(rec.data(), rec.size()));
        encode_record(3, max_payload, rec.data());
        CHECK_FALSE(packer.add(rec.data(), rec.size()));
        CHECK(packer.finish() == 2);
        CHECK(check_block(p.mem.data() + block_size, block_size, 1).last_seq == 2);
    }

    TEST_CASE("wal format: damage is located at the record that holds it or at the block for "
              "header damage") {
        const std::uint32_t len = 128;
        const std::size_t rec = record_header_size + len;
        Packed p = pack(0, 1, 20, len);
        REQUIRE(p.blocks >= 1);
        // A payload byte of the third record.
        std::vector<unsigned char> blk(p.buf, p.buf + block_size);
        blk[block_header_size + 2 * rec + record_header_size + 5] ^= 0x40;
        BlockInfo bi = check_block(blk.data(), block_size, 0);
        CHECK_FALSE(bi.valid);
        CHECK_FALSE(bi.valid_alone);
        CHECK(bi.damage == block_header_size + 2 * rec);
        CHECK(std::string(bi.reason) == "record CRC mismatch");
        // A record whose CRC was recomputed over a wrong payload: the payload check finds it.
        blk.assign(p.buf, p.buf + block_size);
        blk[block_header_size + rec + record_header_size] ^= 1;
        unsigned char* r = blk.data() + block_header_size + rec;
        std::memset(r + 16, 0, 4);
        const std::uint32_t c = crc32c(r, rec);
        std::memcpy(r + 16, &c, 4);
        bi = check_block(blk.data(), block_size, 0);
        CHECK(bi.damage == block_header_size + rec);
        // The padding after the records: the block CRC catches it, the records are intact.
        blk.assign(p.buf, p.buf + block_size);
        blk[block_size - 1] ^= 1;
        bi = check_block(blk.data(), block_size, 0);
        CHECK_FALSE(bi.valid);
        CHECK(bi.damage == 0);
        // Zeros: an unwritten block.
        blk.assign(block_size, 0);
        bi = check_block(blk.data(), block_size, 0);
        CHECK_FALSE(bi.valid_alone);
        CHECK(std::string(bi.reason) == "unwritten block (zeros)");
    }

    TEST_CASE("wal format: payloads are a function of the sequence number") {
        unsigned char a[100], b[100];
        fill_payload(42, a, sizeof a);
        fill_payload(42, b, sizeof b);
        CHECK(std::memcmp(a, b, sizeof a) == 0);
        fill_payload(43, b, sizeof b);
        CHECK(std::memcmp(a, b, sizeof a) != 0);
    }

} // TEST_SUITE
