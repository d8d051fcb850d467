// SPDX-License-Identifier: MIT
// Opening and checking the bench target (see target_file.hpp).
#include "bench/target_file.hpp"

#include "bench/options.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/stat.h>
#include <memory>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace bioring::bench {

std::uint32_t dio_alignment(int fd, bool block_device) noexcept {
#ifdef STATX_DIOALIGN
    struct statx stx {};
    if (::statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
        (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align != 0) {
        return stx.stx_dio_offset_align;
    }
#endif
    if (block_device) {
        int lbs = 0;
        if (::ioctl(fd, BLKSSZGET, &lbs) == 0 && lbs > 0) {
            return static_cast<std::uint32_t>(lbs);
        }
    }
    return 4096;
}

TargetFile TargetFile::open(const std::string& path, bool write, bool direct) {
    TargetFile f;
    f.path_ = path;
    const int flags = (write ? O_RDWR : O_RDONLY) | (direct ? O_DIRECT : 0) | O_CLOEXEC;
    f.fd_ = ::open(path.c_str(), flags);
    if (f.fd_ < 0) {
        const int err = errno;
        std::string why = std::strerror(err);
        if (err == EINVAL && direct) {
            why += " (the filesystem refuses O_DIRECT; try --no-direct)";
        }
        throw UsageError("cannot open " + path + ": " + why);
    }
    struct stat st {};
    if (::fstat(f.fd_, &st) != 0) {
        throw UsageError("cannot stat " + path + ": " + std::strerror(errno));
    }
    if (S_ISBLK(st.st_mode)) {
        f.block_ = true;
        std::uint64_t bytes = 0;
        if (::ioctl(f.fd_, BLKGETSIZE64, &bytes) != 0) {
            throw UsageError("cannot get the size of " + path + ": " + std::strerror(errno));
        }
        f.size_ = bytes;
    } else if (S_ISREG(st.st_mode)) {
        f.size_ = static_cast<std::uint64_t>(st.st_size);
    } else {
        throw UsageError(path + " is neither a regular file nor a block device");
    }
    f.alignment_ = dio_alignment(f.fd_, f.block_);
    return f;
}

TargetFile::TargetFile(TargetFile&& o) noexcept
    : fd_(o.fd_), size_(o.size_), alignment_(o.alignment_), block_(o.block_),
      path_(std::move(o.path_)) {
    o.fd_ = -1;
}

TargetFile& TargetFile::operator=(TargetFile&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = o.fd_;
        size_ = o.size_;
        alignment_ = o.alignment_;
        block_ = o.block_;
        path_ = std::move(o.path_);
        o.fd_ = -1;
    }
    return *this;
}

TargetFile::~TargetFile() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

void check_workload(std::uint64_t size, std::uint64_t bs, std::uint64_t qd, std::uint64_t threads,
                    std::uint32_t alignment, bool direct, const std::string& path) {
    if (qd == 0) {
        throw UsageError("--qd must be at least 1");
    }
    if (threads == 0) {
        throw UsageError("--threads must be at least 1");
    }
    if (bs == 0) {
        throw UsageError("--bs must be at least 1 byte");
    }
    if (direct && bs % alignment != 0) {
        throw UsageError("--bs " + std::to_string(bs) +
                         " is not a multiple of the O_DIRECT "
                         "alignment of " +
                         path + " (" + std::to_string(alignment) + " bytes)");
    }
    if (size / threads < bs) {
        throw UsageError(path + " is too small: " + std::to_string(size) + " bytes cannot give " +
                         std::to_string(threads) + " thread(s) one block of " + std::to_string(bs) +
                         " bytes each");
    }
}

void create_filled_file(const std::string& path, std::uint64_t size) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        throw std::system_error(errno, std::system_category(), "create " + path);
    }
    constexpr std::size_t chunk = 1 << 20;
    std::unique_ptr<std::uint64_t[]> buf(new std::uint64_t[chunk / 8]);
    std::uint64_t x = 0x9e3779b97f4a7c15u;
    std::uint64_t done = 0;
    while (done < size) {
        for (std::size_t i = 0; i < chunk / 8; ++i) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = x;
        }
        const std::size_t n = size - done < chunk ? static_cast<std::size_t>(size - done) : chunk;
        const ssize_t w = ::pwrite(fd, buf.get(), n, static_cast<off_t>(done));
        if (w <= 0) {
            const int err = w < 0 ? errno : EIO;
            ::close(fd);
            throw std::system_error(err, std::system_category(), "fill " + path);
        }
        done += static_cast<std::uint64_t>(w);
    }
    if (::fsync(fd) != 0) {
        const int err = errno;
        ::close(fd);
        throw std::system_error(err, std::system_category(), "fsync " + path);
    }
    ::close(fd);
}

} // namespace bioring::bench
