// SPDX-License-Identifier: MIT
// IoResult: the outcome of an I/O request as a value, never an exception (DESIGN.md, "Error
// model"). It carries the kernel's convention, bytes or -errno, in one int; the sentence
// that names the file, the operation and the reason is kept per thread (last_error_message()
// in io/error_message.hpp), so a result costs no allocation and no extra word.
#pragma once

#include <cstddef>
#include <system_error>

namespace bioring {

/// The outcome of one kernel operation: bytes transferred (>= 0) or a negative errno.
struct IoResult {
    int res = 0;

    /// Returns: true when the operation succeeded (res >= 0).
    bool ok() const noexcept { return res >= 0; }
    /// Returns: bytes transferred, 0 on error.
    std::size_t bytes() const noexcept { return res >= 0 ? static_cast<std::size_t>(res) : 0; }
    /// Returns: the error (generic category), or an empty error_code on success.
    std::error_code error() const noexcept {
        return res >= 0 ? std::error_code{} : std::error_code(-res, std::generic_category());
    }
    explicit operator bool() const noexcept { return ok(); }
};

} // namespace bioring
