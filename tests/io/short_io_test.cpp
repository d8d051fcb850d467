// SPDX-License-Identifier: MIT
// The resubmission paths of io/ requests, driven through the reactor's completion filter
// (a real ring does the I/O; the filter rewrites what the kernel reported): short reads
// and writes are resubmitted for the remainder, -EAGAIN and -EINTR are retried, -EIO and
// a short O_DIRECT write off the alignment surface as values.
#include <bioring/io/direct_file.hpp>

#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>
#include "tests/io/io_support.hpp"
#include "tests/io/tmp_file.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <string>

using namespace bioring;
using namespace bioring::test;

namespace {

bool is_transfer(const Operation& op) {
    return op.code == OpCode::read || op.code == OpCode::write || op.code == OpCode::readv ||
           op.code == OpCode::writev;
}

} // namespace

TEST_SUITE("io") {

    TEST_CASE("a short read is resubmitted for the remainder and stays byte exact") {
        TempPath p;
        posix_write_pattern(p.str(), 0, 1 << 20, 21);
        auto f = open_or_skip(p.str(), OpenOptions{});
        if (!f) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(65536);
            CompletionTap tap([](const Operation& op, int res, int n) {
                return n == 0 && is_transfer(op) && res > 0 ? res / 2 : res;
            });
            const IoResult r = co_await f->read(b.data, 65536, 131072);
            REQUIRE_MESSAGE(r.res == 65536, last_error_message());
            CHECK(first_mismatch(b.data, 65536, 131072, 21) == -1);
            const auto seen = tap.transfers();
            REQUIRE(seen.size() == 2);
            CHECK(seen[0].delivered_res == 32768);
            CHECK(seen[1].offset == 131072 + 32768);
            CHECK(seen[1].len == 32768);
            CHECK(seen[1].code == OpCode::read);
        }());
    }

    TEST_CASE("a short write is resubmitted for the remainder") {
        TempPath p;
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(65536);
            fill_pattern(b.data, 65536, 8192, 22);
            {
                // Report only one page of each write done: the op must finish the rest.
                CompletionTap tap([](const Operation& op, int res, int) {
                    return is_transfer(op) && res > 4096 ? 4096 : res;
                });
                const IoResult w = co_await f->write(b.data, 65536, 8192);
                REQUIRE_MESSAGE(w.res == 65536, last_error_message());
                const auto seen = tap.transfers();
                REQUIRE(seen.size() == 16);
                for (std::size_t i = 0; i < seen.size(); ++i) {
                    CHECK(seen[i].offset == 8192 + 4096 * i);
                    CHECK(seen[i].len == 65536 - 4096 * i);
                }
            }
        }());
        const auto v = posix_read(p.str(), 8192, 65536);
        REQUIRE(v.size() == 65536);
        CHECK(first_mismatch(v.data(), v.size(), 8192, 22) == -1);
    }

    TEST_CASE("a short readv resumes inside the partly done segment") {
        TempPath p;
        posix_write_pattern(p.str(), 0, 1 << 20, 23);
        auto f = open_or_skip(p.str(), OpenOptions{});
        if (!f) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            AlignedBuffer s0(16384), s1(16384), s2(16384), s3(16384);
            iovec iov[4] = {{s0.data, 16384}, {s1.data, 16384}, {s2.data, 16384}, {s3.data, 16384}};
            // First completion: one segment and a page of the next.
            CompletionTap tap([](const Operation& op, int res, int n) {
                return n == 0 && is_transfer(op) && res > 0 ? 16384 + 4096 : res;
            });
            const IoResult r = co_await f->readv(iov, 4, 4096);
            REQUIRE_MESSAGE(r.res == 65536, last_error_message());
            CHECK(first_mismatch(s0.data, 16384, 4096, 23) == -1);
            CHECK(first_mismatch(s1.data, 16384, 4096 + 16384, 23) == -1);
            CHECK(first_mismatch(s2.data, 16384, 4096 + 32768, 23) == -1);
            CHECK(first_mismatch(s3.data, 16384, 4096 + 49152, 23) == -1);
            const auto seen = tap.transfers();
            REQUIRE(seen.size() == 3);
            CHECK(seen[0].code == OpCode::readv);
            CHECK(seen[0].len == 4);
            // The rest of segment 1 as a plain read, then segments 2 and 3 as one readv.
            CHECK(seen[1].code == OpCode::read);
            CHECK(seen[1].offset == 4096 + 16384 + 4096);
            CHECK(seen[1].len == 12288);
            CHECK(seen[2].code == OpCode::readv);
            CHECK(seen[2].offset == 4096 + 32768);
            CHECK(seen[2].len == 2);
        }());
    }

    TEST_CASE("a short writev finishes every segment") {
        TempPath p;
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            AlignedBuffer s0(8192), s1(4096), s2(12288);
            fill_pattern(s0.data, 8192, 0, 24);
            fill_pattern(s1.data, 4096, 8192, 24);
            fill_pattern(s2.data, 12288, 12288, 24);
            iovec iov[3] = {{s0.data, 8192}, {s1.data, 4096}, {s2.data, 12288}};
            CompletionTap tap([](const Operation& op, int res, int) {
                return is_transfer(op) && res > 4096 ? 4096 : res;
            });
            const IoResult w = co_await f->writev(iov, 3, 0);
            REQUIRE_MESSAGE(w.res == 24576, last_error_message());
            CHECK(tap.transfers().size() == 6);
        }());
        const auto v = posix_read(p.str(), 0, 24576);
        REQUIRE(v.size() == 24576);
        CHECK(first_mismatch(v.data(), v.size(), 0, 24) == -1);
    }

    TEST_CASE("a short O_DIRECT read off the alignment ends the read with what was read") {
        TempPath p;
        posix_write_pattern(p.str(), 0, 65536, 25);
        auto f = open_or_skip(p.str(), OpenOptions{});
        if (!f) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(65536);
            CompletionTap tap([](const Operation& op, int res, int) {
                return is_transfer(op) && res > 0 ? 1000 : res;
            });
            const IoResult r = co_await f->read(b.data, 65536, 0);
            CHECK(r.res == 1000);
            CHECK(first_mismatch(b.data, 1000, 0, 25) == -1);
            CHECK(tap.transfers().size() == 1);
        }());
    }

    TEST_CASE("a short O_DIRECT write off the alignment fails with EIO and says why") {
        TempPath p;
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(65536);
            CompletionTap tap([](const Operation& op, int res, int) {
                return is_transfer(op) && res > 0 ? 1000 : res;
            });
            const IoResult w = co_await f->write(b.data, 65536, 0);
            CHECK(w.res == -EIO);
            const std::string msg = last_error_message();
            CHECK(msg.find("stopped after 1000 bytes") != std::string::npos);
            CHECK(msg.find("cannot be written with O_DIRECT") != std::string::npos);
            CHECK(tap.transfers().size() == 1);
        }());
    }

    TEST_CASE("a short buffered read off any alignment is resubmitted") {
        TempPath p;
        posix_write_pattern(p.str(), 0, 10000, 26);
        OpenOptions o;
        o.direct = false;
        DirectFile f = DirectFile::open(p.str(), o);
        sync_wait([&]() -> Task<void> {
            std::vector<std::byte> b(10000);
            CompletionTap tap([](const Operation& op, int res, int n) {
                return n == 0 && is_transfer(op) && res > 0 ? 777 : res;
            });
            const IoResult r = co_await f.read(b.data(), 10000, 0);
            CHECK(r.res == 10000);
            CHECK(first_mismatch(b.data(), 10000, 0, 26) == -1);
            CHECK(tap.transfers().size() == 2);
        }());
    }

    TEST_CASE("EAGAIN twice then success is retried transparently") {
        TempPath p;
        posix_write_pattern(p.str(), 0, 65536, 27);
        auto f = open_or_skip(p.str(), OpenOptions{});
        if (!f) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(65536);
            CompletionTap tap([](const Operation& op, int res, int n) {
                return n < 2 && is_transfer(op) ? -EAGAIN : res;
            });
            const IoResult r = co_await f->read(b.data, 65536, 0);
            CHECK(r.res == 65536);
            CHECK(first_mismatch(b.data, 65536, 0, 27) == -1);
            const auto seen = tap.transfers();
            REQUIRE(seen.size() == 3);
            for (const auto& s : seen) {
                CHECK(s.offset == 0);
                CHECK(s.len == 65536);
            }
        }());
    }

    TEST_CASE("EAGAIN forever gives up after the retry bound") {
        TempPath p;
        posix_write_pattern(p.str(), 0, 4096, 28);
        auto f = open_or_skip(p.str(), OpenOptions{});
        if (!f) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(4096);
            CompletionTap tap([](const Operation&, int, int) { return -EAGAIN; });
            const IoResult r = co_await f->read(b.data, 4096, 0);
            CHECK(r.res == -EAGAIN);
            CHECK(tap.transfers().size() == detail::max_again + 1);
            CHECK(std::string(last_error_message()).find("EAGAIN after 1000") != std::string::npos);
            // fsync obeys the same bound.
            tap.clear();
            const IoResult s = co_await f->fsync();
            CHECK(s.res == -EAGAIN);
            CHECK(tap.seen().size() == detail::max_again + 1);
        }());
    }

    TEST_CASE("EINTR never surfaces") {
        TempPath p;
        posix_write_pattern(p.str(), 0, 8192, 29);
        auto f = open_or_skip(p.str(), OpenOptions{});
        if (!f) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(8192);
            CompletionTap tap(
                [](const Operation&, int res, int n) { return n < 5 ? -EINTR : res; });
            const IoResult r = co_await f->read(b.data, 8192, 0);
            CHECK(r.res == 8192);
            CHECK(first_mismatch(b.data, 8192, 0, 29) == -1);
            CHECK(tap.transfers().size() == 6);
            tap.clear();
            const IoResult s = co_await f->fdatasync();
            CHECK(s.res == 0);
            CHECK(tap.seen().size() == 6);
        }());
    }

    TEST_CASE("EIO surfaces as a value") {
        TempPath p;
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(8192);
            CompletionTap tap([](const Operation&, int, int) { return -EIO; });
            const IoResult w = co_await f->write(b.data, 8192, 0);
            CHECK(w.res == -EIO);
            CHECK(w.error() == std::errc::io_error);
            const IoResult r = co_await f->read(b.data, 8192, 0);
            CHECK(r.res == -EIO);
            const IoResult s = co_await f->fsync();
            CHECK(s.res == -EIO);
            CHECK(tap.seen().size() == 3); // no retries
        }());
    }

    TEST_CASE("a completion reporting more bytes than requested is an EIO") {
        TempPath p;
        posix_write_pattern(p.str(), 0, 8192, 30);
        auto f = open_or_skip(p.str(), OpenOptions{});
        if (!f) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(8192);
            CompletionTap tap(
                [](const Operation&, int res, int) { return res > 0 ? res * 2 : res; });
            const IoResult r = co_await f->read(b.data, 8192, 0);
            CHECK(r.res == -EIO);
            CHECK(std::string(last_error_message()).find("only 8192 were requested") !=
                  std::string::npos);
        }());
    }

} // TEST_SUITE
