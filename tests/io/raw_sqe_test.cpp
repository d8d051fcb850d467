// SPDX-License-Identifier: MIT
// The raw-SQE escape hatch (io/raw_sqe.hpp): a caller-prepared NOP, WRITE and FADVISE
// complete with their CQE's result on io_uring; an unknown opcode fails with the kernel's
// -EINVAL; link and CQE-skip flags are refused unsubmitted; the Asio backend answers
// -EOPNOTSUPP with a message.
#include <bioring/io/direct_file.hpp>
#include <bioring/io/error_message.hpp>
#include <bioring/io/raw_sqe.hpp>

#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>
#include "tests/io/io_support.hpp"
#include "tests/io/tmp_file.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <liburing.h>

#include <cerrno>
#include <cstring>
#include <string>

using namespace bioring;
using namespace bioring::test;

namespace {

io_uring_sqe* as_liburing(UringSqe& s) {
    return reinterpret_cast<io_uring_sqe*>(&s);
}

} // namespace

TEST_SUITE("io") {

    TEST_CASE("raw SQEs complete with their CQE's result on io_uring and EOPNOTSUPP on asio") {
        TempPath p;
        OpenOptions o = rw_create();
        o.direct = false;
        auto f = open_or_skip(p.str(), o);
        REQUIRE(f);
        sync_wait([&]() -> Task<void> {
            const bool uring = Reactor::current()->backend() == Backend::uring;
            UringSqe nop{};
            io_uring_prep_nop(as_liburing(nop));
            const IoResult n = co_await submit_sqe(nop);

            char data[] = "raw write";
            UringSqe wr{};
            io_uring_prep_write(as_liburing(wr), f->fd(), data, 9, 0);
            const IoResult w = co_await submit_sqe(wr);

            UringSqe adv{};
            io_uring_prep_fadvise(as_liburing(adv), f->fd(), 0, 0, POSIX_FADV_DONTNEED);
            const IoResult a = co_await submit_sqe(adv);
            if (uring) {
                CHECK(n.res == 0);
                CHECK(w.res == 9);
                CHECK(a.res == 0);
                CHECK(f->size() == 9);
            } else {
                CHECK(n.res == -EOPNOTSUPP);
                CHECK(w.res == -EOPNOTSUPP);
                CHECK(a.res == -EOPNOTSUPP);
                CHECK(std::strstr(last_error_message(), "io_uring backend") != nullptr);
                CHECK(f->size() == 0);
            }
        }());
    }

    TEST_CASE("a raw SQE with an unsupported opcode fails with the kernel's EINVAL") {
        sync_wait([]() -> Task<void> {
            UringSqe bad{};
            bad.opcode = 250; // beyond IORING_OP_LAST of any kernel
            bad.fd = -1;
            const IoResult r = co_await submit_sqe(bad);
            if (Reactor::current()->backend() == Backend::uring) {
                CHECK(r.res == -EINVAL);
                CHECK(std::strstr(last_error_message(), "opcode 250") != nullptr);
            } else {
                CHECK(r.res == -EOPNOTSUPP);
            }
        }());
    }

    TEST_CASE("raw SQEs with link or CQE-skip flags are refused unsubmitted") {
        sync_wait([]() -> Task<void> {
            const std::uint64_t before = Reactor::current()->counters().sqes_submitted;
            for (std::uint8_t fl : {std::uint8_t{IOSQE_IO_LINK}, std::uint8_t{IOSQE_IO_HARDLINK},
                                    std::uint8_t{IOSQE_CQE_SKIP_SUCCESS}}) {
                UringSqe s{};
                io_uring_prep_nop(as_liburing(s));
                s.flags = fl;
                CHECK((co_await submit_sqe(s)).res == -EINVAL);
                CHECK(std::strstr(last_error_message(), "refused") != nullptr);
            }
            CHECK(Reactor::current()->counters().sqes_submitted == before);
        }());
    }

    TEST_CASE("a raw SQE honours a deadline") {
        sync_wait([]() -> Task<void> {
            if (Reactor::current()->backend() != Backend::uring) {
                skip("raw SQEs need io_uring");
                co_return;
            }
            // A TIMEOUT of 10 s, bounded by a 20 ms deadline: -ECANCELED.
            __kernel_timespec ts{10, 0};
            UringSqe t{};
            io_uring_prep_timeout(as_liburing(t), &ts, 0, 0);
            IoOptions o;
            o.timeout = std::chrono::milliseconds(20);
            CHECK((co_await submit_sqe(t, o)).res == -ECANCELED);
        }());
    }

} // TEST_SUITE
