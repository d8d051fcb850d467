// SPDX-License-Identifier: MIT
// IovCursor: where a vectored transfer stands inside the caller's iovec array.
//
// The file and socket transfers resubmit the remainder of a request after a short count
// without copying or editing the caller's array; this cursor is the position they resume
// from: the first segment not completely done and the bytes done inside it.
#pragma once

#include <sys/uio.h>

#include <cstddef>

namespace bioring::detail {

struct IovCursor {
    const iovec* iov = nullptr;
    int count = 0;
    int seg = 0;             ///< first segment not completely done
    std::size_t seg_off = 0; ///< bytes done inside segment seg

    /// Step over n more bytes done. Context: any; never allocates.
    void advance(std::size_t n) noexcept {
        while (n > 0 && seg < count) {
            const std::size_t left = iov[seg].iov_len - seg_off;
            if (n < left) {
                seg_off += n;
                return;
            }
            n -= left;
            ++seg;
            seg_off = 0;
        }
    }

    /// Move past finished and empty segments, so seg is the next one with bytes left
    /// (or count when none has).
    void skip_done() noexcept {
        while (seg < count && seg_off == iov[seg].iov_len) {
            ++seg;
            seg_off = 0;
        }
    }
};

} // namespace bioring::detail
