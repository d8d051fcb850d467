// SPDX-License-Identifier: MIT
// Alignment probing (statx, BLKSSZGET, sysfs) and the pre-submission checks.
#include <bioring/io/alignment.hpp>

#include <bioring/io/error_message.hpp>

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace bioring {
namespace {

// glibc 2.36's <sys/stat.h> takes struct statx from <linux/stat.h> when the kernel headers
// are new enough (Debian 12's are: 6.1). With older headers the DIOALIGN fields are missing,
// so we call the syscall with our own copy of the (stable, append-only) kernel layout.
constexpr unsigned statx_dioalign = 0x00002000U; // STATX_DIOALIGN, Linux 6.1

struct RawStatx {
    std::uint32_t mask;
    std::uint32_t blksize;
    std::uint64_t attributes;
    std::uint32_t nlink, uid, gid;
    std::uint16_t mode, spare0;
    std::uint64_t ino, size, blocks, attributes_mask;
    std::uint64_t timestamps[8]; // atime, btime, ctime, mtime: {s64 sec, u32 nsec, s32 pad}
    std::uint32_t rdev_major, rdev_minor, dev_major, dev_minor;
    std::uint64_t mnt_id;
    std::uint32_t dio_mem_align;
    std::uint32_t dio_offset_align;
    std::uint64_t spare3[12];
};
static_assert(offsetof(RawStatx, dio_mem_align) == 0x98, "kernel struct statx layout");
static_assert(sizeof(RawStatx) == 0x100, "kernel struct statx size");

bool is_power_of_two(std::uint64_t v) noexcept {
    return v != 0 && (v & (v - 1)) == 0;
}

// Logical block size of the device behind a regular file, from sysfs; 0 if unknown
// (tmpfs, overlay and other device-less filesystems have no queue directory).
std::uint32_t sysfs_logical_block_size(std::uint32_t major, std::uint32_t minor) noexcept {
    if (major == 0) {
        return 0;
    }
    // A partition has no queue/ of its own; its parent disk's is one level up.
    static const char* const formats[] = {"/sys/dev/block/%u:%u/queue/logical_block_size",
                                          "/sys/dev/block/%u:%u/../queue/logical_block_size"};
    for (const char* format : formats) {
        char path[128];
        std::snprintf(path, sizeof path, format, major, minor);
        const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            continue;
        }
        char text[32] = {};
        const ssize_t n = ::read(fd, text, sizeof text - 1);
        ::close(fd);
        if (n > 0) {
            const unsigned long v = std::strtoul(text, nullptr, 10);
            if (is_power_of_two(v) && v <= 65536) {
                return static_cast<std::uint32_t>(v);
            }
        }
    }
    return 0;
}

} // namespace

const char* alignment_source_name(DioAlignment::Source s) noexcept {
    switch (s) {
    case DioAlignment::Source::statx:
        return "statx";
    case DioAlignment::Source::logical_block_size:
        return "logical block size";
    case DioAlignment::Source::fallback:
        break;
    }
    return "fallback";
}

namespace detail {

DioAlignment probe_alignment(int fd, bool block_device) noexcept {
    DioAlignment a;
    RawStatx stx{};
    const long rc = ::syscall(SYS_statx, fd, "", AT_EMPTY_PATH, statx_dioalign, &stx);
    if (rc == 0 && (stx.mask & statx_dioalign) != 0 && is_power_of_two(stx.dio_mem_align) &&
        is_power_of_two(stx.dio_offset_align)) {
        a.memory = stx.dio_mem_align;
        a.offset = stx.dio_offset_align;
        a.source = DioAlignment::Source::statx;
        return a;
    }
    std::uint32_t lbs = 0;
    if (block_device) {
        int v = 0;
        if (::ioctl(fd, BLKSSZGET, &v) == 0 && v > 0 && is_power_of_two(static_cast<unsigned>(v))) {
            lbs = static_cast<std::uint32_t>(v);
        }
    } else if (rc == 0) {
        lbs = sysfs_logical_block_size(stx.dev_major, stx.dev_minor);
    }
    if (lbs != 0) {
        a.memory = lbs;
        a.offset = lbs;
        a.source = DioAlignment::Source::logical_block_size;
    }
    return a;
}

int check_transfer(const FileState& f, const char* op_name, const void* buf, std::size_t len,
                   std::uint64_t offset) noexcept {
    if (len > max_transfer) {
        set_error_message("bioring: %s of %zu bytes at offset %llu: length exceeds the %zu-byte "
                          "limit of one request (file %s)",
                          op_name, len, static_cast<unsigned long long>(offset), max_transfer,
                          f.path.c_str());
        return -EINVAL;
    }
    if (!f.direct) {
        return 0;
    }
    const char* rule = nullptr;
    std::uint64_t need = 0;
    if (reinterpret_cast<std::uintptr_t>(buf) % f.memory_align != 0) {
        set_error_message("bioring: O_DIRECT %s of %zu bytes at offset %llu: buffer address %p "
                          "must be aligned to %u (file %s)",
                          op_name, len, static_cast<unsigned long long>(offset), buf,
                          f.memory_align, f.path.c_str());
        return -EINVAL;
    }
    if (offset % f.offset_align != 0) {
        rule = "offset";
        need = f.offset_align;
    } else if (len % f.offset_align != 0) {
        rule = "length";
        need = f.offset_align;
    }
    if (rule != nullptr) {
        set_error_message("bioring: O_DIRECT %s of %zu bytes at offset %llu: %s must be a "
                          "multiple of %llu (file %s)",
                          op_name, len, static_cast<unsigned long long>(offset), rule,
                          static_cast<unsigned long long>(need), f.path.c_str());
        return -EINVAL;
    }
    return 0;
}

int check_vector(const FileState& f, const char* op_name, const iovec* iov, int iovcnt,
                 std::uint64_t offset, std::size_t& total) noexcept {
    total = 0;
    if (iovcnt < 0 || iovcnt > IOV_MAX || (iovcnt > 0 && iov == nullptr)) {
        set_error_message("bioring: %s at offset %llu: %d segments, must be 0 to %d (file %s)",
                          op_name, static_cast<unsigned long long>(offset), iovcnt, IOV_MAX,
                          f.path.c_str());
        return -EINVAL;
    }
    for (int i = 0; i < iovcnt; ++i) {
        if (iov[i].iov_len > max_transfer - total) {
            set_error_message("bioring: %s of %d segments at offset %llu: total length exceeds "
                              "the %zu-byte limit of one request (file %s)",
                              op_name, iovcnt, static_cast<unsigned long long>(offset),
                              max_transfer, f.path.c_str());
            return -EINVAL;
        }
        total += iov[i].iov_len;
    }
    if (!f.direct) {
        return 0;
    }
    if (offset % f.offset_align != 0) {
        set_error_message("bioring: O_DIRECT %s of %zu bytes in %d segments at offset %llu: "
                          "offset must be a multiple of %u (file %s)",
                          op_name, total, iovcnt, static_cast<unsigned long long>(offset),
                          f.offset_align, f.path.c_str());
        return -EINVAL;
    }
    for (int i = 0; i < iovcnt; ++i) {
        if (reinterpret_cast<std::uintptr_t>(iov[i].iov_base) % f.memory_align != 0) {
            set_error_message("bioring: O_DIRECT %s of %zu bytes in %d segments at offset %llu: "
                              "segment %d buffer address %p must be aligned to %u (file %s)",
                              op_name, total, iovcnt, static_cast<unsigned long long>(offset), i,
                              iov[i].iov_base, f.memory_align, f.path.c_str());
            return -EINVAL;
        }
        if (iov[i].iov_len % f.offset_align != 0) {
            set_error_message("bioring: O_DIRECT %s of %zu bytes in %d segments at offset %llu: "
                              "segment %d length %zu must be a multiple of %u (file %s)",
                              op_name, total, iovcnt, static_cast<unsigned long long>(offset), i,
                              iov[i].iov_len, f.offset_align, f.path.c_str());
            return -EINVAL;
        }
    }
    return 0;
}

} // namespace detail
} // namespace bioring
