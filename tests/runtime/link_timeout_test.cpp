// SPDX-License-Identifier: MIT
// A per-operation deadline travels as a two-SQE link chain (the operation with IO_LINK, then
// a LINK_TIMEOUT). If the submission queue has one free slot left, the chain must not be
// split across two submits: the kernel would end the chain at the first submit and refuse
// the lone LINK_TIMEOUT, and the operation would silently lose its deadline. A 4-entry ring
// with k NOPs queued ahead of a timed pipe read puts the read at every SQ position.
#include <bioring/runtime/op_awaiter.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>

using namespace bioring;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

int nops_done = 0;

void count_nop(Operation*, int res) noexcept {
    nops_done += res == 0;
}

} // namespace

TEST_SUITE("runtime") {

    TEST_CASE("a deadline is kept when its link chain meets an almost full submission queue") {
        for (int queued = 0; queued <= 4; ++queued) {
            CAPTURE(queued);
            int fds[2];
            REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
            // If the deadline were lost the read would wait forever: after 5 s a byte ends it
            // (and the CHECK below fails) instead of a hang.
            std::atomic<bool> finished{false};
            std::thread watchdog([&] {
                const auto end = Clock::now() + 5s;
                while (!finished.load() && Clock::now() < end) {
                    std::this_thread::sleep_for(5ms);
                }
                if (!finished.load()) {
                    (void)!::write(fds[1], "x", 1);
                }
            });
            nops_done = 0;
            int res = 0;
            {
                Reactor r(ReactorOptions{.ring_entries = 4});
                Operation nops[4];
                auto t = [&]() -> Task<int> {
                    for (int i = 0; i < queued; ++i) {
                        nops[i].complete = &count_nop;
                        r.submit(nops[i]); // queued, not yet submitted
                    }
                    char buf[16];
                    Operation op;
                    op.code = OpCode::read;
                    op.fd = fds[0];
                    op.addr = buf;
                    op.len = sizeof buf;
                    op.timeout_ns = 30'000'000; // 30 ms
                    co_return (co_await OpAwaiter(op)).res;
                };
                const auto start = Clock::now();
                res = sync_wait(t());
                CHECK(Clock::now() - start < 4s);
                r.drain();
            }
            finished = true;
            watchdog.join();
            CHECK(res == -ECANCELED);
            CHECK(nops_done == queued);
            ::close(fds[0]);
            ::close(fds[1]);
        }
    }

} // TEST_SUITE
