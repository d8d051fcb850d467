// SPDX-License-Identifier: MIT
// Per-write flags (WriteFlags: RWF_DSYNC, RWF_SYNC, RWF_NOWAIT, RWF_APPEND) on write and
// writev, O_DIRECT and buffered: the bytes land where they should, unknown flags are
// refused unsubmitted, and RWF_NOWAIT's -EAGAIN is handed back rather than retried.
// Passes on both backends.
#include <bioring/io/direct_file.hpp>
#include <bioring/io/error_message.hpp>
#include <bioring/io/write_flags.hpp>

#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>
#include "tests/io/io_support.hpp"
#include "tests/io/tmp_file.hpp"

#include <doctest/doctest.h>

#include <sys/uio.h>

#include <cerrno>
#include <cstring>
#include <string>

using namespace bioring;
using namespace bioring::test;

TEST_SUITE("io") {

    TEST_CASE("dsync and sync writes land byte exact on O_DIRECT and buffered files") {
        for (bool direct : {true, false}) {
            for (WriteFlags fl : {WriteFlags::dsync, WriteFlags::sync}) {
                CAPTURE(direct);
                TempPath p;
                OpenOptions o = rw_create();
                o.direct = direct;
                auto f = open_or_skip(p.str(), o);
                if (!f) {
                    return;
                }
                sync_wait([&]() -> Task<void> {
                    AlignedBuffer b(3 * 4096);
                    fill_pattern(b.data, 3 * 4096, 4096, 11);
                    CHECK((co_await f->write(b.data, 4096, 4096, fl)).res == 4096);
                    iovec iov[2] = {{b.data + 4096, 4096}, {b.data + 8192, 4096}};
                    CHECK((co_await f->writev(iov, 2, 8192, fl)).res == 8192);
                }());
                auto back = posix_read(p.str(), 4096, 3 * 4096);
                REQUIRE(back.size() == 3 * 4096);
                CHECK(first_mismatch(back.data(), 3 * 4096, 4096, 11) == -1);
            }
        }
    }

    TEST_CASE("an append write goes to the end of file whatever the offset") {
        TempPath p;
        OpenOptions o = rw_create();
        o.direct = false;
        auto f = open_or_skip(p.str(), o);
        REQUIRE(f);
        sync_wait([&]() -> Task<void> {
            char a[100], b[50];
            std::memset(a, 'a', sizeof a);
            std::memset(b, 'b', sizeof b);
            CHECK((co_await f->write(a, sizeof a, 0)).res == 100);
            CHECK((co_await f->write(b, sizeof b, 0, WriteFlags::append)).res == 50);
            CHECK((co_await f->write(b, sizeof b, 7, WriteFlags::append | WriteFlags::dsync)).res ==
                  50);
        }());
        auto back = posix_read(p.str(), 0, 400);
        REQUIRE(back.size() == 200);
        CHECK(static_cast<char>(back[0]) == 'a');
        CHECK(static_cast<char>(back[99]) == 'a');
        CHECK(static_cast<char>(back[100]) == 'b');
        CHECK(static_cast<char>(back[199]) == 'b');
    }

    TEST_CASE("a nowait write either completes or returns EAGAIN unretried") {
        TempPath p;
        OpenOptions o = rw_create();
        o.direct = false;
        auto f = open_or_skip(p.str(), o);
        REQUIRE(f);
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(65536);
            fill_pattern(b.data, 65536, 0, 2);
            const std::uint64_t before = Reactor::current()->counters().sqes_submitted;
            const IoResult r = co_await f->write(b.data, 65536, 0, WriteFlags::nowait);
            CHECK((r.res == 65536 || r.res == -EAGAIN || r.res == -EOPNOTSUPP));
            if (r.res == -EAGAIN) {
                // Handed back at once: one submission, no retry loop.
                CHECK(Reactor::current()->counters().sqes_submitted - before == 1);
            }
        }());
    }

    TEST_CASE("unknown write flags are refused before submission with a message") {
        TempPath p;
        OpenOptions o = rw_create();
        o.direct = false;
        auto f = open_or_skip(p.str(), o);
        REQUIRE(f);
        sync_wait([&]() -> Task<void> {
            char c = 'x';
            const std::uint64_t before = Reactor::current()->counters().sqes_submitted;
            CHECK((co_await f->write(&c, 1, 0, static_cast<WriteFlags>(0x1000))).res == -EINVAL);
            CHECK(std::strstr(last_error_message(), "unknown write flags 0x1000") != nullptr);
            iovec iov{&c, 1};
            CHECK((co_await f->writev(&iov, 1, 0, static_cast<WriteFlags>(0x1))).res == -EINVAL);
            CHECK(Reactor::current()->counters().sqes_submitted == before);
        }());
        CHECK(f->size() == 0);
    }

    TEST_CASE("a write with flags on a closed or read-only file fails like a plain write") {
        TempPath p;
        posix_write_pattern(p.str(), 0, 4096, 1);
        auto ro = DirectFile::open(p.str(), OpenOptions{.direct = false});
        DirectFile closed;
        sync_wait([&]() -> Task<void> {
            char c = 'x';
            CHECK((co_await ro.write(&c, 1, 0, WriteFlags::dsync)).res == -EBADF);
            CHECK((co_await closed.write(&c, 1, 0, WriteFlags::dsync)).res == -EBADF);
        }());
    }

} // TEST_SUITE
