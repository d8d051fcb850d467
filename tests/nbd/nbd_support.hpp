// SPDX-License-Identifier: MIT
// Helpers for the nbd tests: backing files with known contents, the reference cipher, and
// running a Task on a fresh reactor.
#pragma once

#include "apps/crypt/xts.hpp"

#include <cstddef>
#include <cstdint>
#include <fcntl.h>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

namespace nbd_test {

inline std::vector<std::byte> random_bytes(std::size_t n, unsigned seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::byte> v(n);
    for (auto& b : v) {
        b = std::byte(rng());
    }
    return v;
}

inline void write_whole(const std::string& path, const std::vector<std::byte>& data) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        throw std::runtime_error("cannot create " + path);
    }
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n <= 0) {
            ::close(fd);
            throw std::runtime_error("cannot write " + path);
        }
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
}

inline std::vector<std::byte> read_whole(const std::string& path) {
    std::vector<std::byte> v;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return v;
    }
    std::byte buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        v.insert(v.end(), buf, buf + n);
    }
    ::close(fd);
    return v;
}

/// The key bytes of the tests' crypt exports (64 bytes: AES-256-XTS, halves differ).
inline std::vector<std::byte> test_key() {
    std::vector<std::byte> k(64);
    for (std::size_t i = 0; i < k.size(); ++i) {
        k[i] = std::byte(i * 7 + 3);
    }
    return k;
}

/// @plain encrypted as bioring-crypt encrypt does (XtsCipher, the same code and format).
inline std::vector<std::byte> encrypt_ref(const std::vector<std::byte>& plain,
                                          const bioring::apps::SectorFormat& fmt) {
    auto key = test_key();
    bioring::apps::XtsCipher c(key, bioring::apps::XtsCipher::Direction::encrypt);
    std::vector<std::byte> out(plain.size());
    if (!c.crypt_sectors(plain.data(), out.data(), plain.size(), fmt, 0)) {
        throw std::runtime_error("encrypt_ref failed");
    }
    return out;
}

} // namespace nbd_test
