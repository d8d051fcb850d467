// SPDX-License-Identifier: MIT
// bioring-crypt end to end: the IEEE 1619 XTS-AES-256 vectors through the binary (--skip as
// the data unit number), dm-crypt IV rules (--skip, --iv-large-sectors, 512 and 4096-byte
// sectors) against an independent reference XTS computed here, round trips at both sector
// sizes and several pipeline shapes, and every refusal (exit status, message, no output).
#include "apps/common/safe_output.hpp"
#include "tests/apps/app_support.hpp"
#include "tests/apps/xts_reference.hpp"

#include <cstring>

using namespace apps_test;

namespace {

const std::string crypt_exe = BIORING_CRYPT_EXE;

Result crypt(std::vector<std::string> args, const fs::path& log_dir) {
    args.insert(args.begin(), crypt_exe);
    return run(args, log_dir);
}

std::string as_string(const std::vector<std::byte>& v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size());
}

// What dm-crypt stores: per sector, XTS with IV = plain64 sector number.
std::string reference_encrypt(const std::string& key, const std::string& data, std::uint32_t sector,
                              std::uint64_t skip, bool large) {
    std::vector<std::byte> k(key.size());
    std::memcpy(k.data(), key.data(), key.size());
    std::string out;
    for (std::size_t off = 0; off < data.size(); off += sector) {
        std::uint64_t s512 = off / 512 + skip;
        std::uint64_t iv = large ? s512 / (sector / 512) : s512;
        out += as_string(xts_ref::ref_xts_unit(
            k, iv, reinterpret_cast<const std::byte*>(data.data() + off), sector, true));
    }
    return out;
}

} // namespace

TEST_SUITE("apps") {

    TEST_CASE("IEEE 1619 vectors 10 to 14 come out of bioring-crypt with skip as the unit number") {
        Scratch d("shm");
        write_file(d / "key", as_string(xts_ref::from_hex(xts_ref::vector_key)));
        write_file(d / "pt", as_string(xts_ref::vector_plaintext()));
        for (const auto& v : xts_ref::vectors) {
            CAPTURE(v.number);
            const std::string skip = std::to_string(v.unit);
            Result r = crypt({"encrypt", "--key-file", (d / "key").string(), "--skip", skip,
                              (d / "pt").string(), (d / "ct").string()},
                             d.path);
            CAPTURE(r.err);
            REQUIRE(r.status == 0);
            CHECK(slurp(d / "ct") == as_string(xts_ref::from_hex(v.ciphertext)));
            Result back = crypt({"decrypt", "--key-file", (d / "key").string(), "--skip", skip,
                                 (d / "ct").string(), (d / "back").string()},
                                d.path);
            REQUIRE(back.status == 0);
            CHECK(slurp(d / "back") == slurp(d / "pt"));
        }
    }

    TEST_CASE("skip and iv-large-sectors follow dm-crypt at 512 and 4096 byte sectors") {
        Scratch d("shm");
        const std::string key = random_string(64, 21);
        write_file(d / "key", key);
        const std::string data = random_string(256 * 1024 + 3 * 4096, 22);
        write_file(d / "pt", data);
        struct Case {
            std::uint32_t sector;
            std::uint64_t skip;
            bool large;
        };
        const Case cases[] = {{512, 0, false}, {512, 7, false},  {4096, 0, false}, {4096, 5, false},
                              {4096, 0, true}, {4096, 16, true}, {512, 3, true}};
        for (const auto& c : cases) {
            CAPTURE(c.sector);
            CAPTURE(c.skip);
            CAPTURE(c.large);
            std::vector<std::string> args = {"encrypt",
                                             "--key-file",
                                             (d / "key").string(),
                                             "--sector-size",
                                             std::to_string(c.sector),
                                             "--skip",
                                             std::to_string(c.skip),
                                             "--bs",
                                             "64K",
                                             "--qd",
                                             "3",
                                             "--threads",
                                             "2"};
            if (c.large) {
                args.push_back("--iv-large-sectors");
            }
            args.push_back((d / "pt").string());
            args.push_back((d / "ct").string());
            Result r = crypt(args, d.path);
            CAPTURE(r.err);
            REQUIRE(r.status == 0);
            CHECK(slurp(d / "ct") == reference_encrypt(key, data, c.sector, c.skip, c.large));
        }
    }

    TEST_CASE("encrypt then decrypt round trips at both sector sizes and pipeline shapes") {
        for (const char* where : {"shm", "ext4"}) {
            CAPTURE(where);
            Scratch d(where);
            write_file(d / "key", random_string(64, 31));
            write_file(d / "key256", random_string(40, 32));
            struct Shape {
                const char *sector, *bs, *qd, *threads, *key_size;
                std::size_t size;
            };
            const Shape shapes[] = {
                {"512", "1M", "32", "2", "512", (3u << 20) + 512 * 3},
                {"4096", "1M", "8", "1", "512", (2u << 20) + 4096 * 5},
                {"4096", "4K", "1", "3", "512", 40960},
                {"512", "16K", "4", "2", "256", 512 * 101},
                {"512", "1M", "2", "1", "512", 512},
            };
            unsigned seed = 40;
            for (const auto& s : shapes) {
                CAPTURE(s.sector);
                CAPTURE(s.bs);
                CAPTURE(s.size);
                const std::string data = random_string(s.size, seed++);
                write_file(d / "pt", data);
                const std::string key = std::string(s.key_size) == "256" ? (d / "key256").string()
                                                                         : (d / "key").string();
                std::vector<std::string> common = {"--key-file",
                                                   key,
                                                   "--key-size",
                                                   s.key_size,
                                                   "--keyfile-offset",
                                                   std::string(s.key_size) == "256" ? "8" : "0",
                                                   "--sector-size",
                                                   s.sector,
                                                   "--bs",
                                                   s.bs,
                                                   "--qd",
                                                   s.qd,
                                                   "--threads",
                                                   s.threads};
                auto enc = common;
                enc.insert(enc.begin(), "--verify");
                enc.insert(enc.begin(), "encrypt");
                enc.push_back((d / "pt").string());
                enc.push_back((d / "ct").string());
                Result r = crypt(enc, d.path);
                CAPTURE(r.err);
                REQUIRE(r.status == 0);
                const std::string ct = slurp(d / "ct");
                CHECK(ct.size() == data.size());
                CHECK(ct != data);
                auto dec = common;
                dec.insert(dec.begin(), "decrypt");
                dec.push_back((d / "ct").string());
                dec.push_back((d / "back").string());
                Result b = crypt(dec, d.path);
                REQUIRE(b.status == 0);
                CHECK(slurp(d / "back") == data);
                CHECK(count_temps(d.path) == 0);
            }
        }
    }

    TEST_CASE("the Asio backend gives the same bytes as the default backend") {
        Scratch d("ext4");
        write_file(d / "key", random_string(64, 70));
        const std::string data = random_string((2 << 20) + 4096 * 3, 71);
        write_file(d / "pt", data);
        auto encrypt = [&](const char* backend, const std::string& out) {
            if (backend != nullptr) {
                ::setenv("BIORING_BACKEND", backend, 1);
            }
            Result r = crypt({"encrypt", "--json", "--threads", "2", "--bs", "256K", "--key-file",
                              (d / "key").string(), (d / "pt").string(), (d / out).string()},
                             d.path);
            ::unsetenv("BIORING_BACKEND");
            CAPTURE(r.err);
            REQUIRE(r.status == 0);
            return r.out;
        };
        CHECK(contains(encrypt("asio", "ct.asio"), "asio"));
        (void)encrypt(nullptr, "ct.uring"); // the default: io_uring where the kernel allows it
        CHECK(slurp(d / "ct.asio") == slurp(d / "ct.uring"));
        ::setenv("BIORING_BACKEND", "asio", 1);
        Result c = run(
            {BIORING_COPY_EXE, "--verify", "--qd", "4", (d / "pt").string(), (d / "copy").string()},
            d.path);
        ::unsetenv("BIORING_BACKEND");
        REQUIRE(c.status == 0);
        CHECK(slurp(d / "copy") == data);
    }

    TEST_CASE("an interrupted or killed crypt leaves no output and the next run cleans up") {
        Scratch d("shm");
        write_file(d / "key", random_string(64, 80));
        {
            int fd = ::open((d / "big").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
            REQUIRE(fd >= 0);
            REQUIRE(::ftruncate(fd, 8ll << 30) == 0);
            ::close(fd);
        }
        write_file(d / "dst", "unchanged");
        const std::string dst = (d / "dst").string();
        for (int sig : {SIGTERM, SIGINT, SIGKILL}) {
            CAPTURE(sig);
            Proc p({crypt_exe, "encrypt", "--qd", "1", "--bs", "4K", "--threads", "1", "--key-file",
                    (d / "key").string(), (d / "big").string(), dst},
                   d.path);
            const std::string tmp = bioring::apps::temp_name_for(dst, p.pid());
            for (int i = 0; i < 400 && !fs::exists(tmp); ++i) {
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            }
            CHECK(fs::exists(tmp));
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            ::kill(p.pid(), sig);
            Result r = p.wait();
            CHECK(r.status == 128 + sig);
            CHECK(slurp(d / "dst") == "unchanged");
            if (sig == SIGKILL) {
                CHECK(fs::exists(tmp)); // nobody could clean up: the next run must
            } else {
                CHECK_FALSE(fs::exists(tmp));
            }
        }
        write_file(d / "pt", random_string(64 * 1024, 81));
        Result r = crypt({"encrypt", "--key-file", (d / "key").string(), (d / "pt").string(), dst},
                         d.path);
        REQUIRE(r.status == 0);
        CHECK(contains(r.err, "stale temporary file"));
        CHECK(count_temps(d.path) == 0);
        CHECK(fs::file_size(d / "dst") == 64 * 1024);
    }

    TEST_CASE("crypt prints a JSON summary with the request counts") {
        Scratch d("shm");
        write_file(d / "key", random_string(64, 50));
        write_file(d / "pt", random_string(4 << 20, 51));
        Result r = crypt({"encrypt", "--json", "--sector-size", "4096", "--key-file",
                          (d / "key").string(), (d / "pt").string(), (d / "ct").string()},
                         d.path);
        REQUIRE(r.status == 0);
        CHECK(contains(r.out, "\"operation\":\"encrypt\""));
        CHECK(contains(r.out, "\"bytes\":4194304"));
        CHECK(contains(r.out, "\"requests\":16")); // 4 MiB in the default 256K blocks
    }

    TEST_CASE("crypt refuses bad keys sizes and options and leaves no output") {
        Scratch d("shm");
        write_file(d / "key", random_string(64, 60));
        write_file(d / "short", random_string(63, 61));
        write_file(d / "same", std::string(32, 'k') + std::string(32, 'k'));
        write_file(d / "pt", random_string(8192, 62));
        write_file(d / "odd", random_string(8192 + 100, 63));
        write_file(d / "dst", "keep");
        const std::string k = (d / "key").string(), pt = (d / "pt").string(),
                          dst = (d / "dst").string(), fresh = (d / "fresh").string();
        struct Case {
            std::vector<std::string> args;
            int status;
            std::string needle;
        };
        const std::vector<Case> cases = {
            {{"encrypt", "--key-file", (d / "short").string(), pt, dst}, 2, (d / "short").string()},
            {{"encrypt", "--key-file", k, "--keyfile-offset", "1", pt, dst}, 2, "too short"},
            {{"encrypt", "--key-file", (d / "same").string(), pt, dst}, 2, "equal"},
            {{"encrypt", "--key-file", k, "--key-size", "256", "--keyfile-offset", "0",
              (d / "odd").string(), fresh},
             1,
             (d / "odd").string()},
            {{"encrypt", "--key-file", k, (d / "odd").string(), dst},
             1,
             "multiple of the sector size"},
            {{"encrypt", "--key-file", k, "--sector-size", "4096", "--skip", "7",
              "--iv-large-sectors", pt, dst},
             2,
             "--skip"},
            {{"encrypt", "--key-file", k, "--cipher", "aes-cbc-essiv:sha256", pt, dst},
             2,
             "aes-cbc-essiv:sha256"},
            {{"encrypt", "--key-file", (d / "nokey").string(), pt, dst}, 1, (d / "nokey").string()},
            {{"encrypt", pt, dst}, 2, "--key-file"},
            {{"encrypt", "--key-file", d.path.string(), pt, dst}, 2, d.path.string()},
            {{"scramble", "--key-file", k, pt, dst}, 2, "scramble"},
            {{"encrypt", "--key-file", k, "--key-size", "384", pt, dst}, 2, "--key-size"},
            {{"encrypt", "--key-file", k, "--sector-size", "1024", pt, dst}, 2, "--sector-size"},
            {{"encrypt", "--key-file", k, "--skip", "-1", pt, dst}, 2, "--skip"},
            {{"encrypt", "--key-file", k, "--skip", "18446744073709551616", pt, dst}, 2, "--skip"},
            {{"encrypt", "--key-file", k, "--keyfile-offset", "99999999999999P", pt, dst},
             2,
             "--keyfile-offset"},
            {{"encrypt", "--key-file", k, "--bs", "12345", pt, dst}, 2, "--bs"},
            {{"encrypt", "--key-file", k, "--qd", "x", pt, dst}, 2, "--qd"},
            {{"encrypt", "--key-file", k, "--threads", "-2", pt, dst}, 2, "--threads"},
            {{"encrypt", "--key-file", k, "--bogus", pt, dst}, 2, "--bogus"},
            {{"encrypt", "--key-file", k, pt}, 2, "missing"},
            {{}, 2, "missing"},
            {{"encrypt", "--key-file", k, (d / "missing").string(), dst},
             1,
             (d / "missing").string()},
            {{"encrypt", "--key-file", k, pt, pt}, 1, "same file"},
        };
        for (const auto& c : cases) {
            std::string joined;
            for (const auto& a : c.args) {
                joined += "[" + a + "] ";
            }
            CAPTURE(joined);
            Result r = crypt(c.args, d.path);
            CAPTURE(r.err);
            CHECK(r.status == c.status);
            CHECK(contains(r.err, "bioring-crypt: "));
            CHECK(contains(r.err, c.needle));
            CHECK(slurp(d / "dst") == "keep");
            CHECK_FALSE(fs::exists(d / "fresh"));
            CHECK(count_temps(d.path) == 0);
        }
    }

} // TEST_SUITE
