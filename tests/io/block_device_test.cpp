// SPDX-License-Identifier: MIT
// DirectFile on a block device: a loop device with 4096-byte logical blocks over a sparse
// file. Needs root and a working losetup; skipped (BIORING-SKIP) otherwise.
#include <bioring/io/direct_file.hpp>

#include <bioring/alloc/buffer_pool.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>
#include "tests/io/io_support.hpp"
#include "tests/io/tmp_file.hpp"
#include "tests/support/loop_device.hpp"
#include "tests/support/skip.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

using namespace bioring;
using namespace bioring::test;

namespace {

constexpr std::uint64_t backing_size = 64u << 20;

} // namespace

TEST_SUITE("io") {

    TEST_CASE("a loop device opens as a block device with its size and logical block size") {
        if (::geteuid() != 0) {
            BIORING_SKIP("loop devices need root");
        }
        TempPath backing(build_tree_dir(), "loop");
        {
            const int fd = ::open(backing.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
            REQUIRE(fd >= 0);
            REQUIRE(::ftruncate(fd, static_cast<off_t>(backing_size)) == 0); // sparse
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
        CHECK(f->is_block_device());
        CHECK(f->size() == backing_size);
        // 4096-byte logical blocks: offsets and lengths must follow them, whatever the source.
        CHECK(f->offset_alignment() == 4096);
        CHECK(f->alignment_source() != DioAlignment::Source::fallback);
        CAPTURE(f->memory_alignment());
        const std::string source = alignment_source_name(f->alignment_source());
        CAPTURE(source);

        sync_wait([&]() -> Task<void> {
            Buffer w = BufferPool::global().alloc(1 << 20);
            Buffer r = BufferPool::global().alloc(1 << 20);
            REQUIRE(w);
            REQUIRE(r);
            fill_pattern(w.data, 1 << 20, 4u << 20, 41);
            const IoResult wr = co_await f->write(w.data, 1 << 20, 4u << 20);
            CHECK_MESSAGE(wr.res == (1 << 20), last_error_message());
            BIORING_CHECK_RES(co_await f->fsync(), 0);
            const IoResult rd = co_await f->read(r.data, 1 << 20, 4u << 20);
            CHECK_MESSAGE(rd.res == (1 << 20), last_error_message());
            CHECK(first_mismatch(r.data, 1 << 20, 4u << 20, 41) == -1);
            // 512-byte offsets are refused on a 4096-byte-block device.
            const IoResult bad = co_await f->read(r.data, 4096, 512);
            CHECK(bad.res == -EINVAL);
            // The end of the device reads as end of file.
            const IoResult end = co_await f->read(r.data, 8192, backing_size - 4096);
            CHECK(end.res == 4096);
            BufferPool::global().free(w);
            BufferPool::global().free(r);
        }());
    }

} // TEST_SUITE
