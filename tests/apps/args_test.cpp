// SPDX-License-Identifier: MIT
// Strict size/number parsing and the option parser: every malformed input is a UsageError.
#include "apps/common/args.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using bioring::apps::ArgParser;
using bioring::apps::parse_size;
using bioring::apps::parse_size_in;
using bioring::apps::parse_uint;
using bioring::apps::UsageError;

TEST_SUITE("apps") {

    TEST_CASE("sizes accept digits with binary suffixes") {
        CHECK(parse_size("0", "--bs") == 0);
        CHECK(parse_size("4096", "--bs") == 4096);
        CHECK(parse_size("4K", "--bs") == 4096);
        CHECK(parse_size("4k", "--bs") == 4096);
        CHECK(parse_size("1M", "--bs") == 1048576);
        CHECK(parse_size("1MiB", "--bs") == 1048576);
        CHECK(parse_size("2GB", "--bs") == 2ull << 30);
        CHECK(parse_size("3T", "--bs") == 3ull << 40);
        CHECK(parse_size("15E", "--bs") == 15ull << 60);
        CHECK(parse_size("18446744073709551615", "--bs") == UINT64_MAX);
    }

    TEST_CASE("sizes reject garbage signs and overflow with the option name") {
        for (const char* bad : {"", "-1", "+1", " 1", "1 ", "abc", "1X", "1KB2", "0x10", "1.5M",
                                "99999999999999P", "18446744073709551616", "16E", "1Ki"}) {
            CAPTURE(bad);
            try {
                (void)parse_size(bad, "--bs");
                FAIL("accepted");
            } catch (const UsageError& e) {
                CHECK(std::string(e.what()).find("--bs") != std::string::npos);
            }
        }
    }

    TEST_CASE("ranged sizes and integers enforce bounds and multiples") {
        CHECK(parse_size_in("64K", "--bs", 4096, 1 << 20, 4096) == 65536);
        CHECK_THROWS_AS(parse_size_in("2M", "--bs", 4096, 1 << 20, 4096), UsageError);
        CHECK_THROWS_AS(parse_size_in("1000", "--bs", 512, 1 << 20, 512), UsageError);
        CHECK_THROWS_AS(parse_size_in("0", "--bs", 4096, 1 << 20), UsageError);
        CHECK(parse_uint("32", "--qd", 1, 4096) == 32);
        CHECK_THROWS_AS(parse_uint("0", "--qd", 1, 4096), UsageError);
        CHECK_THROWS_AS(parse_uint("4097", "--qd", 1, 4096), UsageError);
        CHECK_THROWS_AS(parse_uint("4K", "--qd", 1, 1 << 20), UsageError);
        CHECK_THROWS_AS(parse_uint("-3", "--qd", 1, 4096), UsageError);
    }

    TEST_CASE("the option parser takes both value spellings and positionals") {
        std::string bs, qd;
        bool verify = false;
        ArgParser p;
        p.value("bs", [&](std::string_view v) { bs = v; });
        p.value("qd", [&](std::string_view v) { qd = v; });
        p.flag("verify", &verify);
        const char* argv[] = {"x", "--bs", "4K", "a", "--qd=8", "--verify", "--", "--b"};
        bool help = true;
        auto pos = p.parse(8, const_cast<char**>(argv), &help);
        CHECK_FALSE(help);
        CHECK(bs == "4K");
        CHECK(qd == "8");
        CHECK(verify);
        REQUIRE(pos.size() == 2);
        CHECK(pos[0] == "a");
        CHECK(pos[1] == "--b");
    }

    TEST_CASE("the option parser rejects unknown options and missing values") {
        bool verify = false;
        ArgParser p;
        p.value("bs", [](std::string_view) {});
        p.flag("verify", &verify);
        bool help = false;
        const char* a1[] = {"x", "--nope"};
        CHECK_THROWS_AS(p.parse(2, const_cast<char**>(a1), &help), UsageError);
        const char* a2[] = {"x", "--bs"};
        CHECK_THROWS_AS(p.parse(2, const_cast<char**>(a2), &help), UsageError);
        const char* a3[] = {"x", "--verify=yes"};
        CHECK_THROWS_AS(p.parse(2, const_cast<char**>(a3), &help), UsageError);
        const char* a4[] = {"x", "-v"};
        CHECK_THROWS_AS(p.parse(2, const_cast<char**>(a4), &help), UsageError);
        const char* a5[] = {"x", "a", "-h", "--nope"};
        auto pos = p.parse(4, const_cast<char**>(a5), &help);
        CHECK(help);
    }

} // TEST_SUITE
