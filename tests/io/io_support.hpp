// SPDX-License-Identifier: MIT
// Shared helpers of the io/ tests: aligned buffers, patterns, open-or-skip, a completion tap.
//
// CompletionTap installs itself as the current reactor's completion filter (the runtime's
// test seam): it records every completion the io/ layer receives and may rewrite the
// result (short counts, -EAGAIN, -EIO), so the resubmission paths run against a real ring.
// It must be created and destroyed inside the coroutine, on the reactor thread.
#pragma once

#include <bioring/io/direct_file.hpp>
#include <bioring/runtime/reactor.hpp>
#include "tests/io/tmp_file.hpp"
#include "tests/support/skip.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <system_error>
#include <vector>

namespace bioring::test {

/// The older spelling of print_skip() kept for the io tests that call it (the caller returns
/// right after it); new tests use BIORING_SKIP (tests/support/skip.hpp).
inline void skip(const std::string& why) {
    print_skip(why);
}

/// Open, or print BIORING-SKIP and return nullopt when the filesystem refuses O_DIRECT.
inline std::optional<DirectFile> open_or_skip(const std::string& path, const OpenOptions& o) {
    try {
        return DirectFile::open(path, o);
    } catch (const std::system_error& e) {
        if (o.direct && e.code().value() == EINVAL) {
            print_skip(std::string("O_DIRECT refused: ") + e.what());
            return std::nullopt;
        }
        throw;
    }
}

inline OpenOptions rw_create() {
    OpenOptions o;
    o.write = true;
    o.create = true;
    o.truncate = true;
    return o;
}

/// A heap buffer aligned to 4096 (plain memory: never a registered buffer).
struct AlignedBuffer {
    explicit AlignedBuffer(std::size_t n, std::size_t align = 4096)
        : size(n), data(static_cast<std::byte*>(std::aligned_alloc(align, round_up(n, align)))) {
        REQUIRE(data != nullptr);
        std::memset(data, 0, n);
    }
    ~AlignedBuffer() { std::free(data); }
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    static std::size_t round_up(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }

    std::size_t size;
    std::byte* data;
};

/// The byte a pattern @seed puts at file position @pos (position dependent, so a
/// transfer landing at the wrong offset is caught).
inline std::byte pattern_byte(std::uint64_t pos, unsigned seed) {
    std::uint64_t x = (pos + 1) * 0x9E3779B97F4A7C15ull ^ (std::uint64_t{seed} << 32);
    x ^= x >> 29;
    return static_cast<std::byte>(x & 0xff);
}

inline void fill_pattern(std::byte* p, std::size_t n, std::uint64_t file_pos, unsigned seed) {
    for (std::size_t i = 0; i < n; ++i) {
        p[i] = pattern_byte(file_pos + i, seed);
    }
}

/// Index of the first byte that differs from the pattern, or -1.
inline long first_mismatch(const std::byte* p, std::size_t n, std::uint64_t file_pos,
                           unsigned seed) {
    for (std::size_t i = 0; i < n; ++i) {
        if (p[i] != pattern_byte(file_pos + i, seed)) {
            return static_cast<long>(i);
        }
    }
    return -1;
}

/// Write @n pattern bytes at @pos with plain pwrite (test setup independent of io/).
inline void posix_write_pattern(const std::string& path, std::uint64_t pos, std::size_t n,
                                unsigned seed) {
    std::vector<std::byte> v(n);
    fill_pattern(v.data(), n, pos, seed);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::pwrite(fd, v.data(), n, static_cast<off_t>(pos)) == static_cast<ssize_t>(n));
    ::close(fd);
}

/// Read @n bytes at @pos with plain pread (independent check of what io/ wrote).
inline std::vector<std::byte> posix_read(const std::string& path, std::uint64_t pos,
                                         std::size_t n) {
    std::vector<std::byte> v(n);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    const ssize_t got = ::pread(fd, v.data(), n, static_cast<off_t>(pos));
    ::close(fd);
    REQUIRE(got >= 0);
    v.resize(static_cast<std::size_t>(got));
    return v;
}

struct SeenCompletion {
    OpCode code;
    std::uint32_t len;
    std::uint64_t offset;
    int kernel_res;    ///< what the backend reported
    int delivered_res; ///< what the tap passed on
    int buf_index;
    bool fixed_file;
};

/// Records (and optionally rewrites) every completion on the current reactor.
class CompletionTap {
public:
    /// @rewrite(op, res, n) gets the n-th (0-based) recorded completion and returns the
    /// result to deliver; empty = pass through.
    using Rewrite = std::function<int(const Operation& op, int res, int n)>;

    explicit CompletionTap(Rewrite rewrite = {}) : rewrite_(std::move(rewrite)) {
        reactor_ = Reactor::current();
        REQUIRE(reactor_ != nullptr);
        reactor_->set_completion_filter(&CompletionTap::filter, this);
    }
    ~CompletionTap() { reactor_->set_completion_filter(nullptr, nullptr); }
    CompletionTap(const CompletionTap&) = delete;
    CompletionTap& operator=(const CompletionTap&) = delete;

    const std::vector<SeenCompletion>& seen() const { return seen_; }
    /// Completions of data-moving ops (read, write, readv, writev).
    std::vector<SeenCompletion> transfers() const {
        std::vector<SeenCompletion> v;
        for (const auto& s : seen_) {
            if (s.code == OpCode::read || s.code == OpCode::write || s.code == OpCode::readv ||
                s.code == OpCode::writev) {
                v.push_back(s);
            }
        }
        return v;
    }
    void clear() { seen_.clear(); }

private:
    static int filter(void* ctx, const Operation& op, int res) noexcept {
        auto* self = static_cast<CompletionTap*>(ctx);
        // Only the io/ codes: the reactor's own timers and cancels pass untouched.
        if (op.code == OpCode::nop || op.code == OpCode::timeout) {
            return res;
        }
        const int n = static_cast<int>(self->seen_.size());
        const int out = self->rewrite_ ? self->rewrite_(op, res, n) : res;
        self->seen_.push_back({op.code, op.len, op.offset, res, out, op.buf_index, op.fixed_file});
        return out;
    }

    Reactor* reactor_ = nullptr;
    Rewrite rewrite_;
    std::vector<SeenCompletion> seen_;
};

} // namespace bioring::test

/// CHECK that an awaited request gave @want, printing last_error_message() if not. The
/// co_await is a statement of its own (not inside doctest's expression decomposer).
#define BIORING_CHECK_RES(expr, want)                                                              \
    do {                                                                                           \
        const ::bioring::IoResult bioring_res_ = (expr);                                           \
        CHECK_MESSAGE(bioring_res_.res == (want), ::bioring::last_error_message());                \
    } while (false)
#define BIORING_REQUIRE_RES(expr, want)                                                            \
    do {                                                                                           \
        const ::bioring::IoResult bioring_res_ = (expr);                                           \
        REQUIRE_MESSAGE(bioring_res_.res == (want), ::bioring::last_error_message());              \
    } while (false)
