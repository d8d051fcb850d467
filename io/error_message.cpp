// SPDX-License-Identifier: MIT
// Thread-local storage of the last io/ error message (see error_message.hpp).
#include <bioring/io/error_message.hpp>

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace bioring {
namespace {

constexpr std::size_t message_capacity = 1024;
// A plain array rather than std::string: writing a message must not allocate (it happens
// on the request path, inside noexcept awaiters).
thread_local char last_message[message_capacity] = "";

} // namespace

const char* last_error_message() noexcept {
    return last_message;
}

void clear_last_error_message() noexcept {
    last_message[0] = '\0';
}

namespace detail {

void set_error_message(const char* fmt, ...) noexcept {
    std::va_list args;
    va_start(args, fmt);
    std::vsnprintf(last_message, message_capacity, fmt, args);
    va_end(args);
}

const char* strerror_text(int err) noexcept {
    // strerrordesc_np (glibc 2.32) reads a static table: no locale, no buffer, no malloc.
    const char* d = ::strerrordesc_np(err);
    return d != nullptr ? d : "unknown error";
}

} // namespace detail
} // namespace bioring
