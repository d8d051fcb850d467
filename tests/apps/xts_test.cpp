// SPDX-License-Identifier: MIT
// AES-XTS through the app's own cipher code: IEEE 1619-2007 vectors 10-14 (XTS-AES-256 with
// data unit sequence numbers), and dm-crypt's plain64 IV rules checked against an
// independent XTS built here from AES-ECB and GF(2^128) doubling (IEEE 1619 section 5).
#include "apps/crypt/xts.hpp"
#include "tests/apps/xts_reference.hpp"

#include <doctest/doctest.h>
#include <openssl/evp.h>

#include <array>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using bioring::apps::plain64_iv;
using bioring::apps::SectorFormat;
using bioring::apps::validate;
using bioring::apps::XtsCipher;

using namespace xts_ref;

TEST_SUITE("apps") {

    TEST_CASE("IEEE 1619 vectors 10 to 14 encrypt and decrypt through the sector loop") {
        const auto key = from_hex(vector_key);
        const auto pt = vector_plaintext();
        XtsCipher enc(key, XtsCipher::Direction::encrypt);
        XtsCipher dec(key, XtsCipher::Direction::decrypt);
        for (const auto& v : vectors) {
            CAPTURE(v.number);
            const auto ct = from_hex(v.ciphertext);
            REQUIRE(ct.size() == 512);
            // The app's path: a 512-byte sector at data offset 0 with --skip = the unit number.
            SectorFormat fmt{512, v.unit, false};
            std::vector<std::byte> out(512);
            REQUIRE(enc.crypt_sectors(pt.data(), out.data(), 512, fmt, 0));
            CHECK(out == ct);
            // The same unit reached as sector (unit) of the data, with no skip.
            SectorFormat at{512, 0, false};
            if (v.unit <= (UINT64_MAX >> 9)) {
                std::vector<std::byte> out2(512);
                REQUIRE(enc.crypt_sectors(pt.data(), out2.data(), 512, at, v.unit * 512));
                CHECK(out2 == ct);
            }
            std::vector<std::byte> back(512);
            REQUIRE(dec.crypt_sectors(ct.data(), back.data(), 512, fmt, 0));
            CHECK(back == pt);
            // In place.
            std::vector<std::byte> inplace = pt;
            REQUIRE(enc.crypt_unit(inplace.data(), inplace.data(), 512, v.unit));
            CHECK(inplace == ct);
        }
    }

    TEST_CASE("the reference XTS agrees with the IEEE vectors") {
        const auto key = from_hex(vector_key);
        const auto pt = vector_plaintext();
        for (const auto& v : vectors) {
            CAPTURE(v.number);
            CHECK(ref_xts_unit(key, v.unit, pt.data(), 512, true) == from_hex(v.ciphertext));
        }
    }

    TEST_CASE("plain64 IVs follow dm-crypt for 512 and 4096 byte sectors with skip") {
        CHECK(plain64_iv({512, 0, false}, 0) == 0);
        CHECK(plain64_iv({512, 0, false}, 512) == 1);
        CHECK(plain64_iv({512, 7, false}, 1024) == 9);
        // 4096-byte sectors count IVs in 512-byte units unless --iv-large-sectors.
        CHECK(plain64_iv({4096, 0, false}, 4096) == 8);
        CHECK(plain64_iv({4096, 3, false}, 8192) == 19);
        CHECK(plain64_iv({4096, 0, true}, 4096) == 1);
        CHECK(plain64_iv({4096, 16, true}, 8192) == 4);
        CHECK(plain64_iv({512, 5, true}, 512) == 6);
        CHECK(validate({4096, 7, true}).find("--skip") != std::string::npos);
        CHECK(validate({4096, 8, true}).empty());
        CHECK(validate({4096, 7, false}).empty());
        CHECK_FALSE(validate({1024, 0, false}).empty());
    }

    TEST_CASE("sector loops match the reference XTS for every IV rule") {
        struct Case {
            std::uint32_t sector;
            std::uint64_t skip;
            bool large;
            std::uint64_t offset;
            std::size_t key_bytes;
        };
        const Case cases[] = {
            {512, 0, false, 0, 64},     {512, 0, false, 1 << 20, 64}, {512, 12345, false, 4096, 64},
            {4096, 0, false, 0, 64},    {4096, 0, false, 8192, 64},   {4096, 5, false, 4096, 64},
            {4096, 0, true, 0, 64},     {4096, 8, true, 12288, 64},   {512, 9, true, 512, 64},
            {4096, 0, false, 4096, 32}, {512, 3, false, 0, 32},
        };
        unsigned seed = 1;
        for (const auto& c : cases) {
            CAPTURE(c.sector);
            CAPTURE(c.skip);
            CAPTURE(c.large);
            CAPTURE(c.offset);
            CAPTURE(c.key_bytes);
            const auto key = random_bytes(c.key_bytes, seed++);
            const std::size_t len = 4 * c.sector;
            const auto data = random_bytes(len, seed++);
            SectorFormat fmt{c.sector, c.skip, c.large};
            REQUIRE(validate(fmt).empty());
            XtsCipher enc(key, XtsCipher::Direction::encrypt);
            std::vector<std::byte> out(len);
            REQUIRE(enc.crypt_sectors(data.data(), out.data(), len, fmt, c.offset));
            for (std::size_t s = 0; s < len; s += c.sector) {
                std::uint64_t sector512 = (c.offset + s) / 512 + c.skip;
                std::uint64_t iv = c.large ? sector512 / (c.sector / 512) : sector512;
                auto want = ref_xts_unit(key, iv, data.data() + s, c.sector, true);
                CHECK(std::memcmp(want.data(), out.data() + s, c.sector) == 0);
            }
            XtsCipher dec(key, XtsCipher::Direction::decrypt);
            std::vector<std::byte> back(len);
            REQUIRE(dec.crypt_sectors(out.data(), back.data(), len, fmt, c.offset));
            CHECK(back == data);
        }
    }

    TEST_CASE("one call over several sectors differs from per sector tweaks") {
        // Guards the one-update-per-sector rule: chaining two sectors in one XTS unit is wrong.
        const auto key = random_bytes(64, 99);
        const auto data = random_bytes(1024, 98);
        XtsCipher enc(key, XtsCipher::Direction::encrypt);
        std::vector<std::byte> per(1024), chained(1024);
        REQUIRE(enc.crypt_sectors(data.data(), per.data(), 1024, {512, 0, false}, 0));
        REQUIRE(enc.crypt_unit(data.data(), chained.data(), 1024, 0));
        CHECK(std::memcmp(per.data(), chained.data(), 512) == 0);
        CHECK(std::memcmp(per.data() + 512, chained.data() + 512, 512) != 0);
    }

    TEST_CASE("bad keys and misaligned lengths are refused") {
        std::vector<std::byte> same(64, std::byte{0x5a});
        CHECK_THROWS_AS(XtsCipher(same, XtsCipher::Direction::encrypt), std::invalid_argument);
        std::vector<std::byte> same128(32, std::byte{1});
        CHECK_THROWS_AS(XtsCipher(same128, XtsCipher::Direction::decrypt), std::invalid_argument);
        std::vector<std::byte> odd(48, std::byte{1});
        CHECK_THROWS_AS(XtsCipher(odd, XtsCipher::Direction::encrypt), std::invalid_argument);
        const auto key = random_bytes(64, 5);
        XtsCipher enc(key, XtsCipher::Direction::encrypt);
        std::vector<std::byte> buf(4096);
        CHECK_FALSE(enc.crypt_sectors(buf.data(), buf.data(), 1000, {512, 0, false}, 0));
        CHECK_FALSE(enc.crypt_sectors(buf.data(), buf.data(), 4096, {4096, 0, false}, 512));
        CHECK_FALSE(enc.crypt_unit(buf.data(), buf.data(), 15, 0));
        CHECK_FALSE(enc.crypt_unit(buf.data(), buf.data(), 33, 0));
    }

} // TEST_SUITE
