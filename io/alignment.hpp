// SPDX-License-Identifier: MIT
// O_DIRECT alignment: learning it from the kernel, and refusing requests that break it.
//
// The kernel's rule for direct I/O is a memory alignment for buffer addresses and a
// (usually larger) offset alignment that applies to file offsets and to every length.
// statx(STATX_DIOALIGN) reports both on Linux >= 6.1 for filesystems that know them
// (ext4, xfs, btrfs, block devices); otherwise the device's logical block size is the
// safe value for both, and 4096 when even that is unknown (tmpfs reports nothing).
// The checks run before submission because some filesystems (tmpfs) accept misaligned
// O_DIRECT silently, so the kernel cannot be relied on to refuse it.
#pragma once

#include <bioring/io/detail/file_state.hpp>

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

namespace bioring {

struct DioAlignment {
    enum class Source : std::uint8_t {
        statx,              ///< STATX_DIOALIGN reported it
        logical_block_size, ///< the device's logical block size (BLKSSZGET or sysfs)
        fallback,           ///< nothing known: 4096
    };
    std::uint32_t memory = 4096; ///< buffer addresses must be multiples of this
    std::uint32_t offset = 4096; ///< file offsets and lengths must be multiples of this
    Source source = Source::fallback;
};

/// Name of an alignment source ("statx", "logical block size", "fallback").
const char* alignment_source_name(DioAlignment::Source s) noexcept;

namespace detail {

/// Learn the direct-I/O alignment of the open file @fd (block device when @block_device).
/// Context: any thread; makes blocking syscalls (statx, ioctl, a sysfs read).
/// Returns: the alignment; never fails (falls back to 4096).
DioAlignment probe_alignment(int fd, bool block_device) noexcept;

/// Check one contiguous transfer against @f's O_DIRECT alignment (no-op for buffered files).
/// \param op_name "read" or "write", for the message.
/// Returns: 0, or -EINVAL with last_error_message() naming the broken rule.
int check_transfer(const FileState& f, const char* op_name, const void* buf, std::size_t len,
                   std::uint64_t offset) noexcept;

/// Check a vectored transfer: segment count, total length, and for O_DIRECT files every
/// segment's address and length and the offset. Sets @total to the sum of the lengths.
/// Returns: 0, or -EINVAL with last_error_message() naming the broken rule.
int check_vector(const FileState& f, const char* op_name, const iovec* iov, int iovcnt,
                 std::uint64_t offset, std::size_t& total) noexcept;

} // namespace detail
} // namespace bioring
