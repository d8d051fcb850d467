// SPDX-License-Identifier: MIT
// A cross-thread wake-up sent with IORING_OP_MSG_RING that the kernel refuses must still
// arrive, through the target's eventfd; the poster stops using MSG_RING afterwards.
//
// How the refusal is produced: while the target reactor sleeps inside io_uring_enter (the
// syscall holds its own reference to the ring), the target's ring descriptor number is
// pointed at a pipe with dup2. The poster's MSG_RING then names a file that is not a ring
// and completes with -EBADFD, a real kernel failure of the kind an old kernel or a
// restricted target gives. The target's remote task puts the ring descriptor back before
// the target enters the kernel again.
#include <bioring/runtime/reactor.hpp>

#include "tests/support/skip.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <thread>

using namespace bioring;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// The io_uring descriptors open in this process.
std::set<int> ring_fds() {
    std::set<int> s;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
        std::error_code ec;
        const auto target = std::filesystem::read_symlink(e.path(), ec).string();
        if (!ec && target == "anon_inode:[io_uring]") {
            s.insert(std::stoi(e.path().filename().string()));
        }
    }
    return s;
}

struct RestoreTask : RemoteTask {
    int saved = -1;
    int ring_fd = -1;
    std::atomic<bool> ran{false};
};

void restore_and_mark(RemoteTask* t) noexcept {
    auto* self = static_cast<RestoreTask*>(t);
    (void)::dup2(self->saved, self->ring_fd);
    self->ran.store(true, std::memory_order_release);
}

} // namespace

TEST_SUITE("runtime") {

    TEST_CASE("a cross-thread wake-up whose MSG_RING fails falls back to the eventfd") {
        Reactor poster;
        if (poster.backend() != Backend::uring) {
            BIORING_SKIP("MSG_RING wake-ups exist only on the io_uring backend");
        }
        REQUIRE(poster.report().find("MSG_RING") != std::string::npos);
        const std::set<int> before = ring_fds();

        std::atomic<Reactor*> target{nullptr};
        std::atomic<bool> stop{false};
        std::atomic<bool> release{false}; // the owner keeps its reactor alive until then
        RestoreTask task;
        task.run = &restore_and_mark;
        std::thread owner([&] {
            Reactor r;
            r.set_msg_ring_target(true);
            target.store(&r);
            r.run_until([&] { return task.ran.load(std::memory_order_acquire) || stop.load(); });
            r.drain();
            target.store(nullptr);
            while (!release.load()) {
                std::this_thread::yield();
            }
        });
        while (target.load() == nullptr) {
            std::this_thread::yield();
        }
        Reactor* const tr = target.load();
        std::set<int> mine;
        for (int fd : ring_fds()) {
            if (before.count(fd) == 0) {
                mine.insert(fd);
            }
        }
        REQUIRE(mine.size() == 1);
        task.ring_fd = *mine.begin();
        task.saved = ::fcntl(task.ring_fd, F_DUPFD_CLOEXEC, 0);
        REQUIRE(task.saved >= 0);
        int p[2];
        REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
        std::this_thread::sleep_for(50ms); // let the owner block in io_uring_enter
        REQUIRE(::dup3(p[0], task.ring_fd, O_CLOEXEC) == task.ring_fd);

        tr->post_remote(task); // queues a MSG_RING on the poster's ring
        const auto end = Clock::now() + 3s;
        while (!task.ran.load(std::memory_order_acquire) && Clock::now() < end) {
            poster.run_once(false); // submit the MSG_RING, reap its failure
            std::this_thread::sleep_for(1ms);
        }
        const bool delivered = task.ran.load(std::memory_order_acquire);
        if (!delivered) {
            // The wake-up was lost: repair and wake the owner so the test can end.
            (void)::dup2(task.saved, task.ring_fd);
            stop = true;
            while (target.load() != nullptr) {
                tr->wake();
                std::this_thread::sleep_for(10ms);
            }
        }
        release = true;
        owner.join();
        CHECK(delivered);
        // The poster saw the refusal and uses the eventfd from now on.
        CHECK(poster.report().find("eventfd wake-ups") != std::string::npos);
        ::close(task.saved);
        ::close(p[0]);
        ::close(p[1]);
    }

} // TEST_SUITE
