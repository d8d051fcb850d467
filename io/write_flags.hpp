// SPDX-License-Identifier: MIT
// WriteFlags: per-write flags (pwritev2's RWF_*), passed to DirectFile::write and writev.
//
// They travel in the SQE's rw_flags on io_uring and through pwritev2(2) on the Asio
// backend. A write with flags is not a fast-path submit (Reactor::submit_slow), so plain
// writes pay nothing for them.
#pragma once

#include <cstdint>

namespace bioring {

enum class WriteFlags : std::uint32_t {
    none = 0,
    /// RWF_DSYNC: this write is durable (data and the metadata to read it) when it
    /// completes; on a device with a volatile cache the kernel issues it with FUA.
    dsync = 0x2,
    /// RWF_SYNC: as dsync, plus all metadata (fsync semantics for this write).
    sync = 0x4,
    /// RWF_NOWAIT: fail with -EAGAIN instead of blocking (page-cache miss, lock, block
    /// allocation). Such an -EAGAIN is returned to the caller, never retried.
    nowait = 0x8,
    /// RWF_APPEND: append at the end of file whatever the offset (O_APPEND for one write).
    append = 0x10,
};

inline constexpr WriteFlags operator|(WriteFlags a, WriteFlags b) noexcept {
    return static_cast<WriteFlags>(static_cast<std::uint32_t>(a) | static_cast<std::uint32_t>(b));
}

/// Every flag above: anything else is refused with -EINVAL before submission.
inline constexpr std::uint32_t write_flags_known = 0x2 | 0x4 | 0x8 | 0x10;

} // namespace bioring
