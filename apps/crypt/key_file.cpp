// SPDX-License-Identifier: MIT
// Raw key files (key_file.hpp).
#include "apps/crypt/key_file.hpp"

#include "apps/common/args.hpp"

#include <openssl/crypto.h>

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace bioring::apps {

KeyBytes::~KeyBytes() {
    OPENSSL_cleanse(bytes.data(), bytes.size());
}

void read_key_file(const std::string& path, unsigned bits, std::uint64_t offset, KeyBytes& key) {
    const std::size_t need = bits / 8;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        throw std::system_error(errno, std::system_category(),
                                "cannot open key file '" + path + "'");
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode) || S_ISFIFO(st.st_mode)) {
        ::close(fd);
        throw UsageError("key file '" + path + "' is not a file");
    }
    key.bytes.resize(need);
    std::size_t got = 0;
    while (got < need) {
        ssize_t n =
            ::pread(fd, key.bytes.data() + got, need - got, static_cast<off_t>(offset + got));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int err = errno;
            ::close(fd);
            throw std::system_error(err, std::system_category(),
                                    "cannot read key file '" + path + "'");
        }
        if (n == 0) {
            break;
        }
        got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (got < need) {
        throw UsageError("key file '" + path + "' is too short: --key-size " +
                         std::to_string(bits) + " needs " + std::to_string(need) +
                         " bytes at offset " + std::to_string(offset) + ", it has " +
                         std::to_string(got));
    }
}

bool warn_if_key_exposed(const char* prog, const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
        (st.st_mode & (S_IRWXG | S_IRWXO)) == 0) {
        return false;
    }
    std::fprintf(stderr,
                 "%s: warning: key file '%s' is accessible by its group or others (mode "
                 "%04o); chmod 600 it\n",
                 prog, path.c_str(), static_cast<unsigned>(st.st_mode & 07777));
    return true;
}

} // namespace bioring::apps
