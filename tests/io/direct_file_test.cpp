// SPDX-License-Identifier: MIT
// DirectFile: open and alignment, byte-exact round trips (pool and plain buffers, tmpfs and
// ext4), vectored I/O, refusal of misaligned requests before submission, EOF and unaligned
// tails, fsync/fdatasync/fallocate, async close, fixed files. Passes on both backends.
#include <bioring/io/direct_file.hpp>

#include <bioring/alloc/buffer_pool.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>
#include "tests/io/io_support.hpp"
#include "tests/io/tmp_file.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#include <cerrno>
#include <coroutine>
#include <cstring>
#include <exception>
#include <string>
#include <system_error>

using namespace bioring;
using namespace bioring::test;

namespace {

bool has_fixed_buffers() {
    return Reactor::current()->backend() == Backend::uring;
}

// One pool buffer, returned to the pool at scope end.
struct PoolBuffer {
    explicit PoolBuffer(std::size_t n) : b(BufferPool::global().alloc(n)) { REQUIRE(b); }
    ~PoolBuffer() { BufferPool::global().free(b); }
    PoolBuffer(const PoolBuffer&) = delete;
    PoolBuffer& operator=(const PoolBuffer&) = delete;
    Buffer b;
};

// Write @size pattern bytes at @offset from one buffer and read them back into another;
// both buffers come from the pool (fixed) or from aligned_alloc (plain).
// With @own_tap it also checks which buffers went out as fixed buffers (a caller that has
// its own CompletionTap installed passes false: there is one filter per reactor).
Task<void> round_trip(DirectFile& f, std::size_t size, std::uint64_t offset, bool pool,
                      unsigned seed, bool own_tap = true) {
    CAPTURE(size);
    CAPTURE(offset);
    CAPTURE(pool);
    std::optional<PoolBuffer> pw, pr;
    std::optional<AlignedBuffer> aw, ar;
    std::byte* wbuf;
    std::byte* rbuf;
    if (pool) {
        pw.emplace(size);
        pr.emplace(size);
        wbuf = pw->b.data;
        rbuf = pr->b.data;
    } else {
        aw.emplace(size);
        ar.emplace(size);
        wbuf = aw->data;
        rbuf = ar->data;
    }
    fill_pattern(wbuf, size, offset, seed);
    std::memset(rbuf, 0xA5, size);

    std::optional<CompletionTap> tap;
    if (own_tap) {
        tap.emplace();
    }
    const IoResult w = co_await f.write(wbuf, size, offset);
    REQUIRE_MESSAGE(w.res == static_cast<int>(size), last_error_message());
    const IoResult r = co_await f.read(rbuf, size, offset);
    REQUIRE_MESSAGE(r.res == static_cast<int>(size), last_error_message());
    CHECK(first_mismatch(rbuf, size, offset, seed) == -1);

    if (!own_tap) {
        co_return;
    }
    const auto seen = tap->transfers();
    REQUIRE(seen.size() >= 2);
    for (const auto& s : seen) {
        // Pool buffers go out as READ_FIXED/WRITE_FIXED wherever fixed buffers exist;
        // plain heap buffers never do.
        if (pool && has_fixed_buffers()) {
            CHECK(s.buf_index >= 0);
        } else {
            CHECK(s.buf_index == -1);
        }
    }
}

// A bare eager coroutine with no runtime behind it: it runs to its first real suspension
// on the calling thread, which is all a request without a reactor may do.
struct Bare {
    struct promise_type {
        Bare get_return_object() noexcept { return {}; }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_never final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { std::terminate(); }
    };
};

Bare read_without_reactor(DirectFile& f, std::byte* buf, IoResult& out, bool& finished) {
    out = co_await f.read(buf, 4096, 0);
    finished = true;
}

Bare close_without_reactor(DirectFile& f, IoResult& out, bool& finished) {
    out = co_await f.close();
    finished = true;
}

} // namespace

TEST_SUITE("io") {

    TEST_CASE("open on tmpfs falls back to a 4096 byte alignment") {
        TempPath p;
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        CHECK(f->is_open());
        CHECK(f->is_direct());
        CHECK_FALSE(f->is_block_device());
        CHECK(f->path() == p.str());
        CHECK(f->memory_alignment() == 4096);
        CHECK(f->offset_alignment() == 4096);
        CHECK(f->alignment_source() == DioAlignment::Source::fallback);
        CHECK(f->size() == 0);
    }

    TEST_CASE("open on ext4 takes the alignment from statx") {
        TempPath p(build_tree_dir());
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        struct statx stx {};
        REQUIRE(::statx(AT_FDCWD, p.c_str(), 0, STATX_DIOALIGN, &stx) == 0);
        if ((stx.stx_mask & STATX_DIOALIGN) == 0 || stx.stx_dio_offset_align == 0) {
            BIORING_SKIP("this filesystem reports no STATX_DIOALIGN");
        }
        CHECK(f->alignment_source() == DioAlignment::Source::statx);
        CHECK(f->memory_alignment() == stx.stx_dio_mem_align);
        CHECK(f->offset_alignment() == stx.stx_dio_offset_align);
    }

    TEST_CASE("open of a missing file throws system_error naming the path") {
        TempPath p;
        try {
            (void)DirectFile::open(p.str());
            FAIL("open of a missing file succeeded");
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == ENOENT);
            CHECK(std::string(e.what()).find(p.str()) != std::string::npos);
            CHECK(std::string(e.what()).find("O_DIRECT") != std::string::npos);
        }
    }

    TEST_CASE("open with create and exclusive fails when the file exists") {
        TempPath p;
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        OpenOptions o = rw_create();
        o.truncate = false;
        o.exclusive = true;
        try {
            (void)DirectFile::open(p.str(), o);
            FAIL("exclusive create of an existing file succeeded");
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == EEXIST);
            CHECK(std::string(e.what()).find(p.str()) != std::string::npos);
        }
    }

    TEST_CASE("open with truncate but without write is refused") {
        TempPath p;
        OpenOptions o;
        o.create = true;
        o.truncate = true;
        CHECK_THROWS_AS((void)DirectFile::open(p.str(), o), std::system_error);
        CHECK_FALSE(std::filesystem::exists(p.str()));
    }

    TEST_CASE("open of a directory throws") {
        const std::string dir = test_dir();
        try {
            (void)DirectFile::open(dir);
            FAIL("open of a directory succeeded");
        } catch (const std::system_error& e) {
            CHECK(std::string(e.what()).find(dir) != std::string::npos);
        }
    }

    TEST_CASE("open read only refuses writes with EBADF from the kernel") {
        TempPath p;
        posix_write_pattern(p.str(), 0, 4096, 1);
        auto f = open_or_skip(p.str(), OpenOptions{});
        if (!f) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(4096);
            const IoResult w = co_await f->write(b.data, 4096, 0);
            CHECK(w.res == -EBADF);
            const IoResult r = co_await f->read(b.data, 4096, 0);
            CHECK(r.res == 4096);
            CHECK(first_mismatch(b.data, 4096, 0, 1) == -1);
        }());
    }

    TEST_CASE(
        "write then read back is byte exact across sizes and offsets with pool and plain buffers") {
        TempPath p;
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            const std::size_t sizes[] = {4096, 8192, 65536, 131072, 1 << 20};
            const std::uint64_t offsets[] = {0, 4096, 12288, (1u << 20) + 4096, 8u << 20};
            unsigned seed = 1;
            for (bool pool : {true, false}) {
                for (std::size_t size : sizes) {
                    for (std::uint64_t off : offsets) {
                        co_await round_trip(*f, size, off, pool, seed++);
                    }
                }
            }
        }());
        CHECK(f->size() == (8u << 20) + (1u << 20));
    }

    TEST_CASE("write then read back is byte exact on the ext4 work tree") {
        TempPath p(build_tree_dir());
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        const std::size_t a = f->offset_alignment();
        sync_wait([&]() -> Task<void> {
            co_await round_trip(*f, 4096, 0, true, 7);
            co_await round_trip(*f, 1 << 20, 65536, false, 8);
            co_await round_trip(*f, 65536, 2u << 20, true, 9);
            // The finest alignment the filesystem allows (512 on ext4 here) is accepted.
            AlignedBuffer b(a);
            fill_pattern(b.data, a, a, 10);
            const IoResult w = co_await f->write(b.data, a, a);
            CHECK_MESSAGE(w.res == static_cast<int>(a), last_error_message());
            // ...and half of it is refused, with the filesystem's own number in the message.
            const IoResult bad = co_await f->read(b.data, a / 2, 0);
            CHECK(bad.res == -EINVAL);
            CHECK(std::string(last_error_message())
                      .find("length must be a multiple of " + std::to_string(a)) !=
                  std::string::npos);
        }());
        // Checked with plain pread: what io/ wrote is what the file holds.
        const auto v = posix_read(p.str(), 65536, 1 << 20);
        REQUIRE(v.size() == (1u << 20));
        CHECK(first_mismatch(v.data(), v.size(), 65536, 8) == -1);
        const auto small = posix_read(p.str(), a, a);
        REQUIRE(small.size() == a);
        CHECK(first_mismatch(small.data(), a, a, 10) == -1);
    }

    TEST_CASE("readv and writev move every segment byte exact") {
        TempPath p;
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            PoolBuffer s0(4096), s1(16384);
            AlignedBuffer s2(8192);
            const std::uint64_t off = 65536;
            fill_pattern(s0.b.data, 4096, off, 3);
            fill_pattern(s1.b.data, 16384, off + 4096, 3);
            fill_pattern(s2.data, 8192, off + 4096 + 16384, 3);
            iovec out[3] = {{s0.b.data, 4096}, {s1.b.data, 16384}, {s2.data, 8192}};
            const IoResult w = co_await f->writev(out, 3, off);
            REQUIRE_MESSAGE(w.res == 28672, last_error_message());

            AlignedBuffer r0(12288), r1(4096), r2(12288);
            iovec in[3] = {{r0.data, 12288}, {r1.data, 4096}, {r2.data, 12288}};
            const IoResult r = co_await f->readv(in, 3, off);
            REQUIRE_MESSAGE(r.res == 28672, last_error_message());
            CHECK(first_mismatch(r0.data, 12288, off, 3) == -1);
            CHECK(first_mismatch(r1.data, 4096, off + 12288, 3) == -1);
            CHECK(first_mismatch(r2.data, 12288, off + 16384, 3) == -1);

            // Empty and zero-length segments are fine, and a zero-segment request is a no-op.
            iovec none[1] = {{r0.data, 0}};
            BIORING_CHECK_RES(co_await f->readv(none, 0, 0), 0);
            BIORING_CHECK_RES(co_await f->readv(none, 1, 0), 0);
        }());
    }

    TEST_CASE("misaligned buffer offset or length is refused before submission") {
        TempPath p;
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(3 * 4096);
            BIORING_REQUIRE_RES(co_await f->write(b.data, 8192, 0), 8192);
            const ReactorCounters before = Reactor::current()->counters();

            const IoResult bad_buf = co_await f->read(b.data + 512, 4096, 0);
            CHECK(bad_buf.res == -EINVAL);
            std::string msg = last_error_message();
            CHECK(msg.find("buffer address") != std::string::npos);
            CHECK(msg.find("must be aligned to 4096") != std::string::npos);
            CHECK(msg.find(p.str()) != std::string::npos);

            const IoResult bad_off = co_await f->write(b.data, 4096, 100);
            CHECK(bad_off.res == -EINVAL);
            msg = last_error_message();
            CHECK(msg.find("O_DIRECT write of 4096 bytes at offset 100") != std::string::npos);
            CHECK(msg.find("offset must be a multiple of 4096") != std::string::npos);

            const IoResult bad_len = co_await f->read(b.data, 1000, 0);
            CHECK(bad_len.res == -EINVAL);
            CHECK(std::string(last_error_message()) ==
                  "bioring: O_DIRECT read of 1000 bytes at offset 0: length must be a multiple of "
                  "4096 (file " +
                      p.str() + ")");

            iovec iov[2] = {{b.data, 4096}, {b.data + 4096, 2048}};
            BIORING_CHECK_RES(co_await f->readv(iov, 2, 0), -EINVAL);
            CHECK(std::string(last_error_message()).find("segment 1 length 2048") !=
                  std::string::npos);
            iovec iov2[2] = {{b.data, 4096}, {b.data + 4097, 4096}};
            BIORING_CHECK_RES(co_await f->writev(iov2, 2, 0), -EINVAL);
            CHECK(std::string(last_error_message()).find("segment 1 buffer address") !=
                  std::string::npos);
            BIORING_CHECK_RES(co_await f->readv(iov, -1, 0), -EINVAL);
            BIORING_CHECK_RES(co_await f->read(b.data, std::size_t{1} << 31, 0), -EINVAL);

            // Nothing reached the reactor (tmpfs would have accepted these).
            const ReactorCounters& after = Reactor::current()->counters();
            CHECK(after.sqes_submitted == before.sqes_submitted);
            CHECK(after.ops_completed == before.ops_completed);
            CHECK(f->is_aligned(b.data, 4096, 4096));
            CHECK_FALSE(f->is_aligned(b.data + 512, 4096, 4096));
            CHECK_FALSE(f->is_aligned(b.data, 4096, 512));
        }());
    }

    TEST_CASE("a buffered file accepts unaligned requests") {
        TempPath p;
        OpenOptions o = rw_create();
        o.direct = false;
        DirectFile f = DirectFile::open(p.str(), o);
        CHECK_FALSE(f.is_direct());
        sync_wait([&]() -> Task<void> {
            std::vector<std::byte> w(1000), r(1000);
            fill_pattern(w.data(), 1000, 3, 4);
            BIORING_CHECK_RES(co_await f.write(w.data(), 1000, 3), 1000);
            BIORING_CHECK_RES(co_await f.read(r.data() + 0, 1000, 3), 1000);
            CHECK(first_mismatch(r.data(), 1000, 3, 4) == -1);
            BIORING_CHECK_RES(co_await f.read(r.data(), 1000, 1003), 0);
        }());
        CHECK(f.size() == 1003);
    }

    TEST_CASE("read at end of file returns the short count and then zero") {
        TempPath p;
        posix_write_pattern(p.str(), 0, 3 * 4096, 5);
        auto f = open_or_skip(p.str(), OpenOptions{});
        if (!f) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(16384);
            const IoResult r = co_await f->read(b.data, 16384, 0);
            CHECK(r.res == 3 * 4096);
            CHECK(first_mismatch(b.data, 3 * 4096, 0, 5) == -1);
            BIORING_CHECK_RES(co_await f->read(b.data, 16384, 8192), 4096);
            BIORING_CHECK_RES(co_await f->read(b.data, 4096, 3 * 4096), 0);
            BIORING_CHECK_RES(co_await f->read(b.data, 4096, 1u << 30), 0);
        }());
    }

    TEST_CASE("an unaligned file tail read with O_DIRECT returns exactly the tail bytes") {
        TempPath p;
        posix_write_pattern(p.str(), 0, 2 * 4096 + 1000, 6);
        auto f = open_or_skip(p.str(), OpenOptions{});
        if (!f) {
            return;
        }
        CHECK(f->size() == 2 * 4096 + 1000);
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(16384);
            CompletionTap tap;
            const IoResult all = co_await f->read(b.data, 16384, 0);
            CHECK(all.res == 2 * 4096 + 1000);
            CHECK(first_mismatch(b.data, all.bytes(), 0, 6) == -1);
            // The short count is off the alignment: no second submission.
            CHECK(tap.transfers().size() == 1);

            std::memset(b.data, 0, 4096);
            const IoResult tail = co_await f->read(b.data, 4096, 8192);
            CHECK(tail.res == 1000);
            CHECK(first_mismatch(b.data, 1000, 8192, 6) == -1);
        }());
    }

    TEST_CASE("fsync fdatasync and fallocate complete on an O_DIRECT file") {
        for (const std::string& dir : {test_dir(), build_tree_dir()}) {
            CAPTURE(dir);
            TempPath p(dir);
            OpenOptions o = rw_create();
            o.dsync = true;
            auto f = open_or_skip(p.str(), o);
            if (!f) {
                return;
            }
            sync_wait([&]() -> Task<void> {
                BIORING_CHECK_RES(co_await f->fallocate(0, 0, 1 << 20), 0);
                CHECK(f->size() == (1u << 20));
                BIORING_CHECK_RES(co_await f->fallocate(FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20), 0);
                CHECK(f->size() == (1u << 20));

                AlignedBuffer b(65536);
                fill_pattern(b.data, 65536, 0, 11);
                BIORING_CHECK_RES(co_await f->write(b.data, 65536, 0), 65536);
                BIORING_CHECK_RES(co_await f->fdatasync(), 0);
                BIORING_CHECK_RES(co_await f->fsync(), 0);

                // Punch the middle out: it reads back as zeros, the rest is untouched.
                const int punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
                BIORING_CHECK_RES(co_await f->fallocate(punch, 16384, 16384), 0);
                BIORING_CHECK_RES(co_await f->read(b.data, 65536, 0), 65536);
                CHECK(first_mismatch(b.data, 16384, 0, 11) == -1);
                bool zeros = true;
                for (std::size_t i = 16384; i < 32768; ++i) {
                    zeros = zeros && b.data[i] == std::byte{0};
                }
                CHECK(zeros);
                CHECK(first_mismatch(b.data + 32768, 32768, 32768, 11) == -1);

                // The kernel's refusal comes back as a value.
                BIORING_CHECK_RES(co_await f->fallocate(FALLOC_FL_PUNCH_HOLE, 0, 4096),
                                  -EOPNOTSUPP);
            }());
        }
    }

    TEST_CASE("close is asynchronous and the file reads as closed afterwards") {
        TempPath p;
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        const int fd = f->fd();
        sync_wait([&]() -> Task<void> {
            BIORING_CHECK_RES(co_await f->close(), 0);
            CHECK_FALSE(f->is_open());
            CHECK(f->fd() == -1);
            AlignedBuffer b(4096);
            BIORING_CHECK_RES(co_await f->read(b.data, 4096, 0), -EBADF);
            CHECK(std::string(last_error_message()).find("closed file") != std::string::npos);
            BIORING_CHECK_RES(co_await f->fsync(), -EBADF);
            BIORING_CHECK_RES(co_await f->close(), 0);
        }());
        // The descriptor really is closed.
        CHECK(::fcntl(fd, F_GETFD) == -1);
    }

    TEST_CASE("the destructor closes a file that is still open") {
        TempPath p;
        int fd = -1;
        {
            auto f = open_or_skip(p.str(), rw_create());
            if (!f) {
                return;
            }
            fd = f->fd();
            CHECK(::fcntl(fd, F_GETFD) != -1);
        }
        CHECK(::fcntl(fd, F_GETFD) == -1);
    }

    TEST_CASE("a moved file keeps its descriptor and the source reads as closed") {
        TempPath p;
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        const int fd = f->fd();
        DirectFile g = std::move(*f);
        CHECK(g.fd() == fd);
        CHECK(f->fd() == -1);
        CHECK(g.path() == p.str());
        DirectFile h;
        h = std::move(g);
        CHECK(h.fd() == fd);
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(4096);
            fill_pattern(b.data, 4096, 0, 12);
            BIORING_CHECK_RES(co_await h.write(b.data, 4096, 0), 4096);
            BIORING_CHECK_RES(co_await g.write(b.data, 4096, 0), -EBADF);
        }());
    }

    TEST_CASE("a registered fixed file serves reads and writes and is dropped at close") {
        TempPath p;
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            Reactor* r = Reactor::current();
            CHECK_FALSE(f->is_fixed());
            const bool fixed = f->register_fixed();
            if (r->backend() == Backend::uring) {
                REQUIRE(fixed);
            }
            CHECK(f->is_fixed() == fixed);
            CHECK(f->register_fixed() == fixed); // idempotent on the same reactor

            CompletionTap tap;
            co_await round_trip(*f, 65536, 4096, true, 13, false);
            co_await round_trip(*f, 8192, 0, false, 14, false);
            BIORING_CHECK_RES(co_await f->fsync(), 0);
            REQUIRE(tap.seen().size() == 5);
            for (const auto& s : tap.seen()) {
                CHECK(s.fixed_file == fixed);
            }
            BIORING_CHECK_RES(co_await f->close(), 0);
            CHECK_FALSE(f->is_fixed());
        }());
    }

    TEST_CASE("a fixed file registered on a reactor that is gone is not used by a later reactor") {
        TempPath p;
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        // Each sync_wait builds its own reactor, often at the same address as the last one:
        // the registration must be recognised by reactor identity, not by address.
        bool fixed = false;
        sync_wait([&]() -> Task<void> {
            fixed = f->register_fixed();
            CHECK(f->is_fixed() == fixed);
            co_return;
        }());
        sync_wait([&]() -> Task<void> {
            CHECK_FALSE(f->is_fixed());
            CompletionTap tap;
            co_await round_trip(*f, 8192, 0, false, 21, false);
            for (const auto& s : tap.seen()) {
                CHECK_FALSE(s.fixed_file);
            }
            BIORING_CHECK_RES(co_await f->close(), 0);
        }());
    }

    TEST_CASE("register_fixed without a reactor or on a closed file returns false") {
        TempPath p;
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        CHECK(Reactor::current() == nullptr);
        CHECK_FALSE(f->register_fixed());
        DirectFile closed;
        sync_wait([&]() -> Task<void> {
            CHECK_FALSE(closed.register_fixed());
            co_return;
        }());
    }

    TEST_CASE("a request awaited without a reactor completes with ENXIO and close still closes") {
        TempPath p;
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        REQUIRE(Reactor::current() == nullptr);
        AlignedBuffer b(4096);
        IoResult r{};
        bool finished = false;
        read_without_reactor(*f, b.data, r, finished);
        CHECK(finished); // never suspended: nobody could have resumed it
        CHECK(r.res == -ENXIO);
        CHECK(std::string(last_error_message()).find("without a reactor") != std::string::npos);

        const int fd = f->fd();
        finished = false;
        close_without_reactor(*f, r, finished);
        CHECK(finished);
        CHECK(r.res == 0);
        CHECK_FALSE(f->is_open());
        CHECK(::fcntl(fd, F_GETFD) == -1);
    }

} // TEST_SUITE
