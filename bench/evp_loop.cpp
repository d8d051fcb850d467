// SPDX-License-Identifier: MIT
// evp-loop: the reference rate for bioring-crypt, a plain single-thread per-sector OpenSSL
// EVP AES-XTS loop over an in-memory buffer (no I/O, no bioring code).
//
// WHY. The apps issue's target is "crypt GB/s >= 0.85 x cores x the single-core rate of a
// plain per-sector EVP loop". This is that loop: for each sector, set the plain64 IV with
// EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, -1) (the cheapest correct re-tweak: no
// re-keying) and EVP_CipherUpdate the sector in place. --threads N runs N such loops at once,
// each on its own buffer and context, to measure the cipher-only ceiling on N cores.
//
// usage: evp-loop [--sector-size 4096] [--mib 256] [--seconds 2] [--threads 1]
//                 [--buffer-kib 256] [--full-init]
// --full-init re-keys every sector (EVP_CipherInit_ex with cipher and key), for comparison.
// Prints one JSON object: {"threads":N,"sector_size":S,"bytes":B,"seconds":T,"gbps":G}.
#include <openssl/evp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Opts {
    std::size_t sector = 4096;
    double seconds = 2.0;
    unsigned threads = 1;
    std::size_t buffer = 256 << 10;
    bool full_init = false;
};

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr,
                 "evp-loop: %s\nusage: evp-loop [--sector-size 512|4096] "
                 "[--seconds S] [--threads N] [--buffer-kib K] [--full-init]\n",
                 why);
    std::exit(2);
}

// Encrypts its buffer over and over for opt.seconds; returns the bytes done.
std::uint64_t loop(const Opts& o, std::atomic<bool>& go, int* failed) {
    unsigned char key[64];
    for (int i = 0; i < 64; ++i) {
        key[i] = static_cast<unsigned char>(i * 7 + 1);
    }
    std::vector<unsigned char> buf(o.buffer);
    for (std::size_t i = 0; i < buf.size(); ++i) {
        buf[i] = static_cast<unsigned char>(i * 131);
    }
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    if (ctx == nullptr ||
        EVP_CipherInit_ex(ctx, EVP_aes_256_xts(), nullptr, key, nullptr, 1) != 1) {
        *failed = 1;
        return 0;
    }
    while (!go.load(std::memory_order_acquire)) {
    }
    std::uint64_t bytes = 0, sector_no = 0;
    const auto t_end = std::chrono::steady_clock::now() + std::chrono::duration<double>(o.seconds);
    while (std::chrono::steady_clock::now() < t_end) {
        for (std::size_t off = 0; off + o.sector <= buf.size(); off += o.sector) {
            unsigned char iv[16] = {};
            std::uint64_t s = sector_no++;
            for (int i = 0; i < 8; ++i) {
                iv[i] = static_cast<unsigned char>(s >> (8 * i));
            }
            int ok = o.full_init ? EVP_CipherInit_ex(ctx, EVP_aes_256_xts(), nullptr, key, iv, 1)
                                 : EVP_CipherInit_ex(ctx, nullptr, nullptr, nullptr, iv, -1);
            int outl = 0;
            if (ok != 1 ||
                EVP_CipherUpdate(ctx, buf.data() + off, &outl, buf.data() + off,
                                 static_cast<int>(o.sector)) != 1 ||
                static_cast<std::size_t>(outl) != o.sector) {
                *failed = 1;
                EVP_CIPHER_CTX_free(ctx);
                return bytes;
            }
            bytes += o.sector;
        }
    }
    EVP_CIPHER_CTX_free(ctx);
    return bytes;
}

} // namespace

int main(int argc, char** argv) {
    Opts o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto val = [&]() -> const char* {
            if (i + 1 >= argc) {
                usage(("missing value for " + a).c_str());
            }
            return argv[++i];
        };
        if (a == "--sector-size") {
            o.sector = std::strtoul(val(), nullptr, 10);
            if (o.sector != 512 && o.sector != 4096) {
                usage("--sector-size must be 512 or 4096");
            }
        } else if (a == "--seconds") {
            o.seconds = std::strtod(val(), nullptr);
            if (!(o.seconds > 0 && o.seconds < 3600)) {
                usage("--seconds must be in (0, 3600)");
            }
        } else if (a == "--threads") {
            o.threads = static_cast<unsigned>(std::strtoul(val(), nullptr, 10));
            if (o.threads < 1 || o.threads > 256) {
                usage("--threads must be 1..256");
            }
        } else if (a == "--buffer-kib") {
            o.buffer = std::strtoul(val(), nullptr, 10) << 10;
        } else if (a == "--full-init") {
            o.full_init = true;
        } else {
            usage(("unknown argument " + a).c_str());
        }
    }
    if (o.buffer < o.sector || o.buffer > (std::size_t{1} << 30)) {
        usage("--buffer-kib must hold at least one sector and be at most 1 GiB");
    }
    std::atomic<bool> go{false};
    std::vector<std::uint64_t> bytes(o.threads, 0);
    std::vector<int> failed(o.threads, 0);
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < o.threads; ++t) {
        ts.emplace_back([&, t] { bytes[t] = loop(o, go, &failed[t]); });
    }
    const auto t0 = std::chrono::steady_clock::now();
    go.store(true, std::memory_order_release);
    for (auto& t : ts) {
        t.join();
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::uint64_t total = 0;
    for (unsigned t = 0; t < o.threads; ++t) {
        if (failed[t] != 0) {
            std::fprintf(stderr, "evp-loop: OpenSSL AES-XTS failed\n");
            return 1;
        }
        total += bytes[t];
    }
    std::printf("{\"threads\":%u,\"sector_size\":%zu,\"full_init\":%s,\"bytes\":%llu,"
                "\"seconds\":%.3f,\"gbps\":%.3f}\n",
                o.threads, o.sector, o.full_init ? "true" : "false",
                static_cast<unsigned long long>(total), secs,
                static_cast<double>(total) / secs / 1e9);
    return 0;
}
