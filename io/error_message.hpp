// SPDX-License-Identifier: MIT
// The explanation behind the last I/O error value that io/ produced on this thread.
//
// I/O awaiters never throw: a refused request comes back as IoResult{-EINVAL} (or -EIO, ...),
// and the human-readable reason ("length must be a multiple of 4096 ...") is kept here, in a
// fixed thread_local buffer, so that producing it allocates nothing and cannot fail. The
// message stays until the next error on the same thread overwrites it.
#pragma once

namespace bioring {

/// The message describing the last error value io/ returned on the calling thread.
/// Context: any thread; never allocates; the pointer stays valid for the thread's lifetime,
/// its contents change at the next error on this thread.
/// Returns: a NUL-terminated message starting with "bioring: ", or "" if none yet.
const char* last_error_message() noexcept;

/// Forget the last message (last_error_message() returns "" until the next error).
/// Context: any thread; never allocates.
void clear_last_error_message() noexcept;

namespace detail {

/// printf-style: replace this thread's last error message. Truncates at 1023 bytes.
void set_error_message(const char* fmt, ...) noexcept __attribute__((format(printf, 1, 2)));
/// Returns: the text of errno value @err ("Input/output error"); never allocates.
const char* strerror_text(int err) noexcept;

} // namespace detail
} // namespace bioring
