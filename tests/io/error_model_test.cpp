// SPDX-License-Identifier: MIT
// The error model (DESIGN.md): a failed request is an IoResult with -errno, never an
// exception, and the thread's last_error_message() then names the operation, the file and
// the reason — for errors the kernel reports as well as for requests io/ refuses itself.
#include "tests/io/io_support.hpp"

#include <bioring/io/error_message.hpp>
#include <bioring/runtime/sync_wait.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <string>

using namespace bioring;
using namespace bioring::test;

TEST_SUITE("io") {

    TEST_CASE(
        "a read the kernel fails with EIO names the read, the offset, the file and the reason") {
        TempPath p;
        posix_write_pattern(p.str(), 0, 1 << 16, 3);
        auto f = open_or_skip(p.str(), OpenOptions{});
        if (!f) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(4096);
            CompletionTap tap([](const Operation& op, int res, int) {
                return op.code == OpCode::read ? -EIO : res;
            });
            clear_last_error_message();
            const IoResult r = co_await f->read(b.data, 4096, 8192);
            CHECK(r.res == -EIO);
            CHECK(r.error() == std::errc::io_error);
            const std::string msg = last_error_message();
            CHECK(msg.find("read of 4096 bytes at offset 8192") != std::string::npos);
            CHECK(msg.find(p.str()) != std::string::npos);
            CHECK(msg.find("Input/output error") != std::string::npos);
        }());
    }

    TEST_CASE("an fsync the kernel fails with ENOSPC names the fsync, the file and the reason") {
        TempPath p;
        posix_write_pattern(p.str(), 0, 4096, 3);
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            CompletionTap tap([](const Operation& op, int res, int) {
                return op.code == OpCode::fsync ? -ENOSPC : res;
            });
            clear_last_error_message();
            const IoResult r = co_await f->fsync();
            CHECK(r.res == -ENOSPC);
            const std::string msg = last_error_message();
            CHECK(msg.find("fsync of " + p.str()) != std::string::npos);
            CHECK(msg.find("No space left on device") != std::string::npos);
        }());
    }

} // TEST_SUITE
