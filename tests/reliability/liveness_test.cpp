// SPDX-License-Identifier: MIT
// Liveness of the reactor loop: work posted from another thread (RemoteTask) that satisfies
// the loop's predicate inline must end run_until() without waiting for an unrelated event.
// Found by the fault injector's hold action (held completions are delivered by a posted
// task): run_once() used to block in the kernel after a turn whose only work was remote
// tasks, with nothing in flight, so run_until() slept forever. A watchdog wakes the
// reactor after 2 s so that a regression fails here instead of hanging the suite.
#include <bioring/runtime/reactor.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

using namespace bioring;

TEST_SUITE("reliability") {

    TEST_CASE(
        "a task posted from another thread that satisfies run_until ends it without a wake-up") {
        Reactor r;
        for (int round = 0; round < 20; ++round) {
            CAPTURE(round);
            struct Flag : RemoteTask {
                bool set = false;
            } task;
            task.run = [](RemoteTask* t) noexcept { static_cast<Flag*>(t)->set = true; };
            std::atomic<bool> returned{false}, rescued{false};
            std::thread poster([&] {
                std::this_thread::sleep_for(std::chrono::milliseconds(round % 2 == 0 ? 0 : 20));
                r.post_remote(task);
                const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
                while (!returned.load() && std::chrono::steady_clock::now() < end) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                }
                if (!returned.load()) {
                    rescued.store(true);
                    r.wake();
                }
            });
            r.run_until([&] { return task.set; });
            returned.store(true);
            poster.join();
            CHECK_FALSE_MESSAGE(rescued.load(), "run_until slept after the posted task ran");
        }
    }

} // TEST_SUITE
