// SPDX-License-Identifier: MIT
// Result<T>: a value or an error, for requests whose success carries an object (a
// connected Socket from Socket::connect or Listener::accept). A small in-house
// std::expected (GCC 12 has no std::expected in C++20) with its member names, so that it
// can become std::expected<T, std::error_code> under C++23 with no caller edits. The error
// is the errno (generic category); the sentence that explains it is in
// last_error_message(), as for IoResult.
#pragma once

#include <new>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>

namespace bioring {

/// std::unexpected's spelling for Result: `return bioring::unexpected(errc)`.
struct unexpected {
    std::error_code error;
    explicit unexpected(std::error_code e) noexcept : error(e) {}
    explicit unexpected(std::errc e) noexcept : error(std::make_error_code(e)) {}
};

/// A value or an error_code, with std::expected's member names.
template <class T>
class Result {
public:
    using value_type = T;
    using error_type = std::error_code;

    Result() requires std::is_default_constructible_v<T> : has_(true) { new (&value_) T(); }
    Result(const T& v) : has_(true) { new (&value_) T(v); }
    Result(T&& v) noexcept(std::is_nothrow_move_constructible_v<T>) : has_(true) {
        new (&value_) T(std::move(v));
    }
    Result(unexpected u) noexcept : has_(false), error_(u.error) {}
    Result(const Result& o) : has_(o.has_), error_(o.error_) {
        if (has_) {
            new (&value_) T(o.value_);
        }
    }
    Result(Result&& o) noexcept(std::is_nothrow_move_constructible_v<T>)
        : has_(o.has_), error_(o.error_) {
        if (has_) {
            new (&value_) T(std::move(o.value_));
        }
    }
    Result& operator=(Result o) noexcept(std::is_nothrow_move_constructible_v<T>) {
        reset();
        has_ = o.has_;
        error_ = o.error_;
        if (has_) {
            new (&value_) T(std::move(o.value_));
        }
        return *this;
    }
    ~Result() { reset(); }

    bool has_value() const noexcept { return has_; }
    explicit operator bool() const noexcept { return has_; }

    /// Returns: the value. Throws std::system_error holding error() when there is none.
    T& value() & {
        check();
        return value_;
    }
    const T& value() const& {
        check();
        return value_;
    }
    T&& value() && {
        check();
        return std::move(value_);
    }
    T& operator*() noexcept { return value_; }
    const T& operator*() const noexcept { return value_; }
    T* operator->() noexcept { return &value_; }
    const T* operator->() const noexcept { return &value_; }
    template <class U>
    T value_or(U&& other) const& {
        return has_ ? value_ : static_cast<T>(std::forward<U>(other));
    }

    /// Returns: the error; an empty error_code when a value is held.
    std::error_code error() const noexcept { return error_; }

private:
    void check() const {
        if (!has_) {
            throw std::system_error(error_);
        }
    }
    void reset() noexcept {
        if (has_) {
            value_.~T();
            has_ = false;
        }
    }
    bool has_;
    std::error_code error_{};
    union {
        T value_;
    };
};

/// Result<void>: success or an error_code.
template <>
class Result<void> {
public:
    using value_type = void;
    using error_type = std::error_code;
    Result() noexcept = default;
    Result(unexpected u) noexcept : error_(u.error) {}
    bool has_value() const noexcept { return !error_; }
    explicit operator bool() const noexcept { return has_value(); }
    void value() const {
        if (error_) {
            throw std::system_error(error_);
        }
    }
    std::error_code error() const noexcept { return error_; }

private:
    std::error_code error_{};
};

} // namespace bioring
