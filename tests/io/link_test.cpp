// SPDX-License-Identifier: MIT
// Linked requests (io/link.hpp): write -> fdatasync in one io_uring_enter (counted), read ->
// write copies, a failed step cancels the rest (-ECANCELED, and the tail really did not
// run), short reads end a chain, refused steps submit nothing, a chain waits for SQ room
// instead of being split, and O_DIRECT, buffered and fixed files all work. Passes on
// both backends.
#include <bioring/io/direct_file.hpp>
#include <bioring/io/error_message.hpp>
#include <bioring/io/link.hpp>

#include <bioring/alloc/buffer_pool.hpp>
#include <bioring/runtime/op_awaiter.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/spawn.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>
#include "tests/io/io_support.hpp"
#include "tests/io/tmp_file.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <string>

using namespace bioring;
using namespace bioring::test;

namespace {

bool message_has(const char* what) {
    return std::strstr(last_error_message(), what) != nullptr;
}

OpenOptions buffered_rw() {
    OpenOptions o = rw_create();
    o.direct = false;
    return o;
}

} // namespace

TEST_SUITE("io") {

    TEST_CASE("a linked write and fdatasync complete with the full length and 0") {
        for (bool direct : {true, false}) {
            CAPTURE(direct);
            TempPath p;
            OpenOptions o = rw_create();
            o.direct = direct;
            auto f = open_or_skip(p.str(), o);
            if (!f) {
                return;
            }
            sync_wait([&]() -> Task<void> {
                AlignedBuffer w(16384);
                fill_pattern(w.data, 16384, 4096, 7);
                auto [wr, sync] =
                    co_await link(f->write_step(w.data, 16384, 4096), f->fdatasync_step());
                CHECK(wr.res == 16384);
                CHECK(sync.res == 0);
                auto back = posix_read(p.str(), 4096, 16384);
                REQUIRE(back.size() == 16384);
                CHECK(first_mismatch(back.data(), 16384, 4096, 7) == -1);
            }());
        }
    }

    TEST_CASE("a linked write and fdatasync cost exactly one io_uring_enter") {
        TempPath p;
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            Reactor* r = Reactor::current();
            if (r->backend() != Backend::uring) {
                skip("io_uring_enter is counted on the io_uring backend only");
                co_return;
            }
            Buffer b = BufferPool::global().alloc(4096); // a fixed buffer: WRITE_FIXED in the chain
            REQUIRE(b);
            std::memset(b.data, 0x5a, 4096);
            // Warm-up: the first request registers the pool's arenas.
            auto warm = co_await link(f->write_step(b.data, 4096, 0), f->fdatasync_step());
            CHECK(warm[0].res == 4096);
            for (int i = 0; i < 20; ++i) {
                const std::uint64_t enters = r->counters().enter_calls;
                const std::uint64_t cqes = r->counters().cqes_reaped;
                auto [wr, sync] =
                    co_await link(f->write_step(b.data, 4096, 4096u * i), f->fdatasync_step());
                CHECK(wr.res == 4096);
                CHECK(sync.res == 0);
                CHECK(r->counters().enter_calls - enters == 1);
                CHECK(r->counters().cqes_reaped - cqes == 1); // the write's CQE is skipped
            }
            CHECK(r->in_flight() == 0);
            BufferPool::global().free(b);
        }());
    }

    TEST_CASE("a linked read then write copies between files") {
        TempPath src, dst;
        posix_write_pattern(src.str(), 0, 65536, 9);
        auto in = open_or_skip(src.str(), OpenOptions{});
        auto out = open_or_skip(dst.str(), rw_create());
        if (!in || !out) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(65536);
            auto [rd, wr, sync] =
                co_await link(in->read_step(b.data, 65536, 0), out->write_step(b.data, 65536, 0),
                              out->fsync_step());
            CHECK(rd.res == 65536);
            CHECK(wr.res == 65536);
            CHECK(sync.res == 0);
        }());
        auto back = posix_read(dst.str(), 0, 65536);
        REQUIRE(back.size() == 65536);
        CHECK(first_mismatch(back.data(), 65536, 0, 9) == -1);
    }

    TEST_CASE("a failed step cancels the rest of the chain, which does not run") {
        TempPath p, q;
        posix_write_pattern(p.str(), 0, 4096, 1);
        auto ro = DirectFile::open(p.str(), OpenOptions{.direct = false}); // read-only
        auto rw = DirectFile::open(q.str(), buffered_rw());
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(4096);
            // The kernel refuses the write (read-only descriptor): the ftruncate and the
            // fsync after it must not run.
            auto [w, t, s] = co_await link(ro.write_step(b.data, 4096, 0), rw.ftruncate_step(8192),
                                           rw.fsync_step());
            CHECK(w.res == -EBADF);
            CHECK(t.res == -ECANCELED);
            CHECK(s.res == -ECANCELED);
            CHECK(rw.size() == 0);
            CHECK(message_has("linked write (step 1 of 3)"));
            CHECK(message_has(p.c_str()));
            CHECK(message_has("cancelled"));

            // A failure in the middle: the first step ran, the last did not.
            auto [t1, w2, t3] = co_await link(rw.ftruncate_step(100), ro.write_step(b.data, 1, 0),
                                              rw.ftruncate_step(300));
            CHECK(t1.res == 0);
            CHECK(w2.res == -EBADF);
            CHECK(t3.res == -ECANCELED);
            CHECK(rw.size() == 100);

            // The last step failing: the others report success.
            auto [t4, w5] = co_await link(rw.ftruncate_step(200), ro.write_step(b.data, 1, 0));
            CHECK(t4.res == 0);
            CHECK(w5.res == -EBADF);
            CHECK(rw.size() == 200);
        }());
    }

    TEST_CASE("a short read ends the chain with its count and cancels the write after it") {
        TempPath src, dst;
        posix_write_pattern(src.str(), 0, 1000, 2); // shorter than the read
        auto in = DirectFile::open(src.str(), OpenOptions{.direct = false});
        auto out = DirectFile::open(dst.str(), buffered_rw());
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(4096);
            auto [rd, wr] =
                co_await link(in.read_step(b.data, 4096, 0), out.write_step(b.data, 4096, 0));
            CHECK(rd.res == 1000);
            CHECK(wr.res == -ECANCELED);
            CHECK(message_has("moved 1000 of 4096 bytes"));
        }());
        CHECK(posix_read(dst.str(), 0, 4096).empty());
    }

    TEST_CASE("a refused step completes the chain at once and submits nothing") {
        TempPath p;
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        DirectFile closed;
        sync_wait([&]() -> Task<void> {
            Reactor* r = Reactor::current();
            AlignedBuffer b(8192);
            const std::uint64_t submitted = r->counters().sqes_submitted;
            // Misaligned for O_DIRECT (checked before submission, whatever the filesystem).
            auto [a1, a2] = co_await link(f->fdatasync_step(), f->write_step(b.data + 1, 4096, 0));
            CHECK(a1.res == -ECANCELED);
            CHECK(a2.res == -EINVAL);
            auto [c1, c2] = co_await link(closed.fdatasync_step(), f->fdatasync_step());
            CHECK(c1.res == -EBADF);
            CHECK(c2.res == -ECANCELED);
            CHECK(message_has("closed file"));
            auto [u1] =
                co_await link(f->write_step(b.data, 4096, 0, static_cast<WriteFlags>(0x400)));
            CHECK(u1.res == -EINVAL);
            CHECK(message_has("unknown write flags"));
            CHECK(r->counters().sqes_submitted == submitted);
        }());
    }

    TEST_CASE("write steps with RWF_DSYNC and a fixed file link like the others") {
        TempPath p;
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        sync_wait([&]() -> Task<void> {
            f->register_fixed(); // true on io_uring; on Asio requests use the descriptor
            AlignedBuffer b(8192);
            fill_pattern(b.data, 8192, 0, 4);
            auto [w1, w2] =
                co_await link(f->write_step(b.data, 4096, 0, WriteFlags::dsync),
                              f->write_step(b.data + 4096, 4096, 4096, WriteFlags::dsync));
            CHECK(w1.res == 4096);
            CHECK(w2.res == 4096);
            CHECK((co_await f->close()).res == 0);
        }());
        auto back = posix_read(p.str(), 0, 8192);
        REQUIRE(back.size() == 8192);
        CHECK(first_mismatch(back.data(), 8192, 0, 4) == -1);
    }

    TEST_CASE("a chain waits for room in a nearly full SQ instead of being split") {
        TempPath p;
        auto f = DirectFile::open(p.str(), buffered_rw());
        ReactorOptions ro;
        ro.ring_entries = 8;
        Reactor reactor(ro);
        sync_wait([&]() -> Task<void> {
            AlignedBuffer b(4096);
            for (int round = 0; round < 20; ++round) {
                // Six NOPs queued and not yet submitted fill most of the 8-entry SQ.
                int done = 0;
                for (int i = 0; i < 6; ++i) {
                    spawn([](int& d) -> Task<void> {
                        Operation nop;
                        co_await OpAwaiter(nop);
                        ++d;
                    }(done));
                }
                auto res = co_await link(f.write_step(b.data, 4096, 0), f.fdatasync_step(),
                                         f.ftruncate_step(100), f.write_step(b.data, 50, 100),
                                         f.fsync_step());
                CHECK(res[0].res == 4096);
                CHECK(res[1].res == 0);
                CHECK(res[2].res == 0);
                CHECK(res[3].res == 50);
                CHECK(res[4].res == 0);
                while (done < 6) {
                    Operation nop;
                    co_await OpAwaiter(nop);
                }
            }
            // Eight steps fill the 8-entry SQ exactly.
            auto full =
                co_await link(f.fsync_step(), f.fsync_step(), f.fsync_step(), f.fsync_step(),
                              f.fsync_step(), f.fsync_step(), f.fsync_step(), f.fsync_step());
            for (const IoResult& x : full) {
                CHECK(x.res == 0);
            }
        }());
        CHECK(f.size() == 150);
    }

    TEST_CASE("a chain longer than the io_uring SQ is refused unsubmitted") {
        TempPath p;
        auto f = DirectFile::open(p.str(), buffered_rw());
        ReactorOptions ro;
        ro.ring_entries = 4;
        Reactor reactor(ro);
        sync_wait([&]() -> Task<void> {
            auto res = co_await link(f.fsync_step(), f.fsync_step(), f.fsync_step(), f.fsync_step(),
                                     f.fsync_step());
            for (const IoResult& x : res) {
                // The Asio backend has no SQ: there the chain simply runs.
                CHECK(x.res == (reactor.backend() == Backend::uring ? -EINVAL : 0));
            }
            if (reactor.backend() == Backend::uring) {
                CHECK(message_has("refused"));
            }
        }());
    }

} // TEST_SUITE
