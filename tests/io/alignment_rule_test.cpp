// SPDX-License-Identifier: MIT
// O_DIRECT requests are checked against the alignment discovered for the file, not against
// a fixed 512: on a file whose alignment is 4096 (tmpfs's fallback, a loop device with
// 4096-byte sectors) offsets, lengths and buffer addresses that are multiples of 512 but not
// of 4096 are refused before submission, with a message naming 4096; on the ext4 work tree,
// where statx reports 512, the same requests go through.
#include <bioring/io/direct_file.hpp>

#include <bioring/io/error_message.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>
#include "tests/io/io_support.hpp"
#include "tests/io/tmp_file.hpp"
#include "tests/support/loop_device.hpp"
#include "tests/support/skip.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <string>

using namespace bioring;
using namespace bioring::test;

namespace {

bool names(const std::string& want) {
    return std::string(last_error_message()).find(want) != std::string::npos;
}

// Every request below is a multiple of 512 but not of @a (>= 1024) in one respect: it must
// come back -EINVAL without reaching the reactor.
Task<void> refuse_sub_alignment(DirectFile& f, std::size_t a) {
    AlignedBuffer b(4 * a, a);
    const std::string need = "multiple of " + std::to_string(a);
    const ReactorCounters before = Reactor::current()->counters();
    for (std::size_t off = 512; off < a; off *= 2) {
        CAPTURE(off);
        BIORING_CHECK_RES(co_await f.write(b.data, a, off), -EINVAL);
        CHECK(names("offset must be a " + need));
        BIORING_CHECK_RES(co_await f.read(b.data, a, off), -EINVAL);
        CHECK(names("offset must be a " + need));
        BIORING_CHECK_RES(co_await f.write(b.data, off, 0), -EINVAL);
        CHECK(names("length must be a " + need));
        BIORING_CHECK_RES(co_await f.read(b.data, a + off, 0), -EINVAL);
        CHECK(names("length must be a " + need));
        if (f.memory_alignment() == a) {
            BIORING_CHECK_RES(co_await f.read(b.data + off, a, 0), -EINVAL);
            CHECK(names("must be aligned to " + std::to_string(a)));
        }
        iovec iov[2] = {{b.data, a}, {b.data + a, a}};
        BIORING_CHECK_RES(co_await f.writev(iov, 2, off), -EINVAL);
        CHECK(names("offset must be a " + need));
        BIORING_CHECK_RES(co_await f.readv(iov, 2, off), -EINVAL);
        CHECK(names("offset must be a " + need));
        iovec short_seg[2] = {{b.data, a}, {b.data + a, off}};
        BIORING_CHECK_RES(co_await f.writev(short_seg, 2, 0), -EINVAL);
        CHECK(names("length " + std::to_string(off) + " must be a " + need));
        CHECK_FALSE(f.is_aligned(b.data, a, off));
    }
    const ReactorCounters& after = Reactor::current()->counters();
    CHECK(after.sqes_submitted == before.sqes_submitted);
    CHECK(after.ops_completed == before.ops_completed);
    // The aligned request itself goes through.
    BIORING_CHECK_RES(co_await f.write(b.data, a, a), static_cast<int>(a));
    BIORING_CHECK_RES(co_await f.read(b.data + a, a, a), static_cast<int>(a));
}

} // namespace

TEST_SUITE("io") {

    TEST_CASE("O_DIRECT on tmpfs refuses 512-byte multiples of offset and length below its 4096") {
        TempPath p;
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        const std::size_t a = f->offset_alignment();
        REQUIRE(a == 4096);
        sync_wait(refuse_sub_alignment(*f, a));
        CHECK(f->size() == 2 * a); // only the aligned write landed
    }

    TEST_CASE(
        "O_DIRECT on a 4096-byte-sector loop device refuses 512-byte offsets before submission") {
        if (::geteuid() != 0) {
            BIORING_SKIP("loop devices need root");
        }
        TempPath backing(build_tree_dir(), "loop");
        {
            const int fd = ::open(backing.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
            REQUIRE(fd >= 0);
            REQUIRE(::ftruncate(fd, 8 << 20) == 0);
            ::close(fd);
        }
        LoopDevice loop(backing.str(), 4096);
        if (!loop.ok()) {
            BIORING_SKIP("losetup could not attach a loop device here");
        }
        OpenOptions o;
        o.write = true;
        auto f = open_or_skip(loop.path(), o);
        if (!f) {
            return;
        }
        REQUIRE(f->offset_alignment() == 4096);
        sync_wait(refuse_sub_alignment(*f, 4096));
    }

    TEST_CASE("O_DIRECT on ext4 with a 512-byte alignment accepts 512-byte offsets and lengths") {
        TempPath p(build_tree_dir());
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        if (f->offset_alignment() != 512) {
            BIORING_SKIP("this filesystem's O_DIRECT alignment is " +
                         std::to_string(f->offset_alignment()) + ", not 512");
        }
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(8192);
            fill_pattern(b.data, 1536, 512, 7);
            BIORING_CHECK_RES(co_await f->write(b.data, 1536, 512), 1536);
            AlignedBuffer r(8192);
            BIORING_CHECK_RES(co_await f->read(r.data, 1536, 512), 1536);
            CHECK(first_mismatch(r.data, 1536, 512, 7) == -1);
        }());
    }

    TEST_CASE("a short O_DIRECT write stopping off the offset alignment but on the memory one "
              "fails on a 4096-byte-sector device") {
        // On a loop device with 4096-byte sectors the memory alignment (the queue's DMA
        // alignment, 512) is finer than the offset alignment: a short count that keeps the buffer
        // aligned but not the offset must still end the write with EIO, not resubmit a remainder
        // the kernel would refuse.
        if (::geteuid() != 0) {
            BIORING_SKIP("loop devices need root");
        }
        TempPath backing(build_tree_dir(), "loop");
        {
            const int fd = ::open(backing.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
            REQUIRE(fd >= 0);
            REQUIRE(::ftruncate(fd, 1 << 20) == 0);
            ::close(fd);
        }
        LoopDevice loop(backing.str(), 4096);
        if (!loop.ok()) {
            BIORING_SKIP("losetup could not attach a loop device here");
        }
        OpenOptions o;
        o.write = true;
        auto f = open_or_skip(loop.path(), o);
        if (!f) {
            return;
        }
        const std::size_t off_a = f->offset_alignment();
        const std::size_t mem_a = f->memory_alignment();
        if (mem_a * 2 > off_a) {
            BIORING_SKIP("this filesystem's memory alignment (" + std::to_string(mem_a) +
                         ") is not finer than its offset alignment (" + std::to_string(off_a) +
                         ")");
        }
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(8192);
            const int cut = static_cast<int>(off_a / 2); // a multiple of mem_a, not of off_a
            CompletionTap tap(
                [cut](const Operation&, int res, int n) { return n == 0 ? cut : res; });
            const IoResult w = co_await f->write(b.data, 8192, 0);
            CHECK(w.res == -EIO);
            CHECK(names("off the " + std::to_string(off_a) + "-byte alignment"));
            CHECK(tap.transfers().size() == 1); // no remainder was submitted
        }());
    }

} // TEST_SUITE
