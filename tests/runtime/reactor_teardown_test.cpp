// SPDX-License-Identifier: MIT
// A Reactor destroyed while operations are still in flight first runs its loop until every
// one of them has completed (~Reactor's contract): no completion is lost with the ring, and
// no Operation is left pointing into a dead reactor.
#include <bioring/runtime/reactor.hpp>

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

using namespace bioring;

namespace {

int completions = 0;
int last_res = 1;

void note(Operation*, int res) noexcept {
    ++completions;
    last_res = res;
}

} // namespace

TEST_SUITE("runtime") {

    TEST_CASE("a reactor destroyed with a timer and a timed read in flight completes both first") {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        completions = 0;
        char buf[8];
        Operation timer;
        timer.code = OpCode::timeout;
        timer.timeout_ns = 20'000'000; // 20 ms
        timer.complete = &note;
        Operation read;
        read.code = OpCode::read;
        read.fd = fds[0];
        read.addr = buf;
        read.len = sizeof buf;
        read.timeout_ns = 40'000'000; // no data ever comes: the deadline ends it
        read.complete = &note;
        {
            Reactor r;
            r.submit(timer);
            r.submit(read);
            CHECK(r.in_flight() == 2);
        }
        CHECK(completions == 2);
        CHECK(last_res == -ECANCELED); // the read, by its deadline, after the timer
        ::close(fds[0]);
        ::close(fds[1]);
    }

} // TEST_SUITE
