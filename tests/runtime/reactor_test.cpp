// SPDX-License-Identifier: MIT
// Reactor: operations, timers, cancellation (stop_token, cancel(), cross-thread, link
// timeouts), the completion filter, fixed files and buffers, a tiny SQ, backend report.
// Every case runs on both backends (plain ctest and BIORING_BACKEND=asio).
#include <bioring/runtime/reactor.hpp>

#include <bioring/alloc/buffer_pool.hpp>
#include <bioring/runtime/op_awaiter.hpp>
#include <bioring/runtime/sleep.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/when_all.hpp>
#include "support.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>

using namespace bioring;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

struct Pipe {
    int rd = -1;
    int wr = -1;
    Pipe() { REQUIRE(::pipe2(&rd, O_CLOEXEC) == 0); }
    ~Pipe() {
        ::close(rd);
        ::close(wr);
    }
};

Operation read_op(int fd, void* buf, std::uint32_t len) {
    Operation op;
    op.code = OpCode::read;
    op.fd = fd;
    op.addr = buf;
    op.len = len;
    return op;
}

Operation nop_op() {
    return Operation{};
}

// What a container's seccomp profile does: io_uring_setup fails with EPERM.
bool forbid_io_uring_setup() {
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
    return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
           ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

bool forced_asio() {
    const char* e = std::getenv("BIORING_BACKEND");
    return e != nullptr && std::string(e) == "asio";
}

} // namespace

TEST_SUITE("runtime") {

    TEST_CASE("the backend is chosen at start-up and reported") {
        Reactor r;
        const std::string rep = r.report();
        INFO(rep);
        if (forced_asio()) {
            CHECK(r.backend() == Backend::asio);
            CHECK(rep.find("asio") == 0);
            CHECK(rep.find("BIORING_BACKEND") != std::string::npos);
        } else if (r.backend() == Backend::uring) {
            CHECK(rep.find("io_uring") == 0);
        } else {
            CHECK(rep.find("io_uring refused") != std::string::npos); // fell back: says why
        }
        CHECK(backend_report() == rep);
        CHECK(std::string(backend_name(r.backend())) ==
              (r.backend() == Backend::uring ? "io_uring" : "asio"));
    }

    TEST_CASE(
        "when a seccomp profile refuses io_uring the reactor falls back to asio and says why") {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::close(fds[0]);
            int code = 0;
            std::string out;
            if (!forbid_io_uring_setup()) {
                ::_exit(3);
            }
            ::unsetenv("BIORING_BACKEND");
            try {
                Reactor r;
                out = r.report();
                if (r.backend() != Backend::asio) {
                    code = 4;
                }
                // The fallback really works: a timer and a pipe read through the thread pool.
                int res =
                    sync_wait([]() -> Task<int> { co_return (co_await sleep_for(1ms)).res; }());
                if (res != 0) {
                    code = 5;
                }
            } catch (...) {
                code = 6;
            }
            // Forcing io_uring surfaces the refusal instead.
            ::setenv("BIORING_BACKEND", "uring", 1);
            try {
                Reactor r;
                code = 7;
            } catch (const std::system_error& e) {
                if (e.code().value() != EPERM) {
                    code = 8;
                }
            }
            [[maybe_unused]] ssize_t w = ::write(fds[1], out.data(), out.size());
            ::_exit(code);
        }
        ::close(fds[1]);
        char buf[512] = {};
        ssize_t n = ::read(fds[0], buf, sizeof buf - 1);
        ::close(fds[0]);
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        REQUIRE(WIFEXITED(status));
        const std::string report(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
        INFO(report);
        if (WEXITSTATUS(status) == 3) {
            BIORING_SKIP("cannot install a seccomp filter here");
        }
        CHECK(WEXITSTATUS(status) == 0);
        CHECK(report.find("asio (io_uring refused: EPERM") == 0);
        CHECK(report.find("seccomp") != std::string::npos);
    }

    TEST_CASE("a nop completes later and the counters see it") {
        Reactor r;
        auto t = []() -> Task<int> { co_return (co_await OpAwaiter(nop_op())).res; };
        CHECK(sync_wait(t()) == 0);
        CHECK(r.counters().ops_completed == 1);
        CHECK(r.counters().sqes_submitted >= 1);
        CHECK(r.counters().requests_allocated >= 1);
        if (r.backend() == Backend::uring) {
            CHECK(r.counters().cqes_reaped >= 1);
            CHECK(r.counters().enter_calls >= 1);
        }
    }

    TEST_CASE("a loop turn submits every queued SQE and reaps a batch with one io_uring_enter") {
        Reactor r;
        if (r.backend() != Backend::uring) {
            BIORING_SKIP("io_uring_enter batching is an io_uring property");
        }
        constexpr int depth = 32;
        constexpr int rounds = 200;
        auto worker = []() -> Task<void> {
            for (int i = 0; i < rounds; ++i) {
                co_await OpAwaiter(Operation{});
            }
        };
        auto all = [&]() -> Task<void> {
            std::vector<Task<void>> v;
            for (int i = 0; i < depth; ++i) {
                v.push_back(worker());
            }
            co_await when_all(std::move(v));
        };
        sync_wait(all());
        const auto& c = r.counters();
        const double per_op = static_cast<double>(c.enter_calls) / (depth * rounds);
        INFO("enter_calls " << c.enter_calls << " for " << depth * rounds << " nops");
        CHECK(c.ops_completed == depth * rounds);
        CHECK(c.cqes_reaped >= depth * rounds);
        CHECK(c.enter_calls >= rounds); // at least one enter per round of 32
        CHECK(per_op < 0.25);           // ... and nowhere near one per operation
    }

    TEST_CASE("an awaiter that cannot submit resumes at once with the reason") {
        // No reactor on this thread: -ENXIO, with or without a stop token, nothing submitted.
        std::stop_source never;
        OpAwaiter plain(nop_op());
        OpAwaiter stoppable(nop_op(), never.get_token());
        static_assert(std::is_same_v<decltype(plain), OpAwaiter<false>>);
        static_assert(std::is_same_v<decltype(stoppable), OpAwaiter<true>>);
        static_assert(sizeof(OpAwaiter<false>) < sizeof(OpAwaiter<true>),
                      "an awaiter without a token carries no cancellation state");
        CHECK_FALSE(plain.await_ready());
        CHECK_FALSE(plain.await_suspend(std::noop_coroutine()));
        CHECK(plain.await_resume().res == -ENXIO);
        CHECK_FALSE(stoppable.await_suspend(std::noop_coroutine()));
        CHECK(stoppable.await_resume().res == -ENXIO);

        // A stop requested before the co_await: -ECANCELED, and the reactor saw no operation.
        Reactor r;
        std::stop_source stop;
        stop.request_stop();
        OpAwaiter stopped(nop_op(), stop.get_token());
        CHECK_FALSE(stopped.await_suspend(std::noop_coroutine()));
        CHECK(stopped.await_resume().res == -ECANCELED);
        CHECK(r.in_flight() == 0);
        CHECK(r.counters().ops_completed == 0);
    }

    TEST_CASE("a second reactor on the same thread is refused") {
        Reactor r;
        CHECK_THROWS_AS(Reactor{}, std::logic_error);
    }

    TEST_CASE("timers fire after their delay") {
        auto t = []() -> Task<int> {
            auto start = Clock::now();
            IoResult r = co_await sleep_for(20ms);
            CHECK(Clock::now() - start >= 20ms);
            co_return r.res;
        };
        CHECK(sync_wait(t()) == 0);
    }

    TEST_CASE("a long timer is cancelled through a stop_token") {
        std::stop_source src;
        auto sleeper = [](std::stop_token st) -> Task<int> {
            co_return (co_await sleep_for(10s, st)).res;
        };
        auto stopper = [](std::stop_source* s) -> Task<int> {
            co_await sleep_for(10ms);
            s->request_stop();
            co_return 0;
        };
        auto both = [&]() -> Task<std::vector<int>> {
            std::vector<Task<int>> v;
            v.push_back(sleeper(src.get_token()));
            v.push_back(stopper(&src));
            co_return co_await when_all(std::move(v));
        };
        auto start = Clock::now();
        auto res = sync_wait(both());
        CHECK(res[0] == -ECANCELED);
        CHECK(Clock::now() - start < 5s);
        // Already stopped: the operation is not even submitted.
        CHECK(sync_wait(sleeper(src.get_token())) == -ECANCELED);
    }

    TEST_CASE("a long timer is cancelled through Reactor::cancel") {
        Reactor r;
        Operation op;
        op.code = OpCode::timeout;
        op.timeout_ns = 10'000'000'000ull;
        OpAwaiter<false>* awaiter = nullptr;
        auto sleeper = [&]() -> Task<int> {
            OpAwaiter a(op);
            awaiter = &a;
            IoResult res = co_await a;
            awaiter = nullptr;
            co_return res.res;
        };
        auto canceller = [&]() -> Task<int> {
            co_await sleep_for(5ms);
            REQUIRE(awaiter != nullptr);
            r.cancel(awaiter->operation());
            co_return 0;
        };
        auto both = [&]() -> Task<std::vector<int>> {
            std::vector<Task<int>> v;
            v.push_back(sleeper());
            v.push_back(canceller());
            co_return co_await when_all(std::move(v));
        };
        auto start = Clock::now();
        CHECK(sync_wait(both())[0] == -ECANCELED);
        CHECK(Clock::now() - start < 5s);
    }

    TEST_CASE("an in-flight pipe read is cancelled and its owner destroyed after the completion") {
        Pipe p;
        Reactor r;
        std::stop_source src;
        auto owner = [&](std::stop_token st) -> Task<int> {
            // The buffer lives in the owner's frame: it must outlive the kernel's last CQE.
            std::array<char, 512> buf{};
            IoResult res = co_await OpAwaiter(read_op(p.rd, buf.data(), buf.size()), st);
            co_return res.res;
        };
        auto stopper = [&]() -> Task<int> {
            co_await sleep_for(10ms);
            src.request_stop();
            co_return 0;
        };
        auto both = [&]() -> Task<std::vector<int>> {
            std::vector<Task<int>> v;
            v.push_back(owner(src.get_token()));
            v.push_back(stopper());
            co_return co_await when_all(std::move(v)); // frames destroyed right after
        };
        CHECK(sync_wait(both())[0] == -ECANCELED);
        CHECK(r.in_flight() == 0);
        // The pipe still works: nothing of the cancelled read is left to steal data.
        CHECK(::write(p.wr, "x", 1) == 1);
        char c = 0;
        CHECK(::read(p.rd, &c, 1) == 1);
        CHECK(c == 'x');
    }

    TEST_CASE("a pipe read is cancelled from another thread") {
        Pipe p;
        Reactor r;
        char buf[16];
        Operation op = read_op(p.rd, buf, sizeof buf);
        OpAwaiter a(op);
        std::atomic<bool> submitted{false};
        std::thread canceller;
        auto t = [&]() -> Task<int> {
            Operation* raw = &a.operation();
            canceller = std::thread([&r, raw, &submitted] {
                while (!submitted.load()) {
                    std::this_thread::yield();
                }
                std::this_thread::sleep_for(10ms);
                r.cancel(*raw);
            });
            submitted = true;
            OpAwaiter<false>& awaiter =
                a; // GCC 12 copies an awaiter named through a lambda capture
            IoResult res = co_await awaiter;
            co_return res.res;
        };
        CHECK(sync_wait(t()) == -ECANCELED);
        canceller.join();
    }

    TEST_CASE("a per-operation timeout on a pipe read completes it with ECANCELED") {
        Pipe p;
        auto t = [&]() -> Task<int> {
            char buf[64];
            Operation op = read_op(p.rd, buf, sizeof buf);
            op.timeout_ns = 20'000'000; // 20 ms
            auto start = Clock::now();
            IoResult r = co_await OpAwaiter(op);
            CHECK(Clock::now() - start >= 15ms);
            co_return r.res;
        };
        CHECK(sync_wait(t()) == -ECANCELED);
    }

    TEST_CASE("a per-operation timeout that does not expire leaves the result alone") {
        Pipe p;
        REQUIRE(::write(p.wr, "hello", 5) == 5);
        auto t = [&]() -> Task<int> {
            char buf[64];
            Operation op = read_op(p.rd, buf, sizeof buf);
            op.timeout_ns = 5'000'000'000ull;
            co_return (co_await OpAwaiter(op)).res;
        };
        auto start = Clock::now();
        CHECK(sync_wait(t()) == 5);
        CHECK(Clock::now() - start < 4s); // the swallowed link timeout did not hold us
    }

    TEST_CASE("the completion filter rewrites results into EIO EAGAIN and short counts") {
        Reactor r;
        struct Script {
            int calls = 0;
        } script;
        r.set_completion_filter(
            [](void* ctx, const Operation& op, int res) noexcept -> int {
                auto* s = static_cast<Script*>(ctx);
                ++s->calls;
                if (op.code == OpCode::nop) {
                    return -EIO;
                }
                if (op.code == OpCode::read && res > 1) {
                    return s->calls == 2 ? -EAGAIN : res / 2; // short count
                }
                return res;
            },
            &script);
        Pipe p;
        REQUIRE(::write(p.wr, "abcdefgh", 8) == 8);
        auto t = [&]() -> Task<std::vector<int>> {
            std::vector<int> out;
            char buf[4];
            out.push_back((co_await OpAwaiter(nop_op())).res);
            out.push_back((co_await OpAwaiter(read_op(p.rd, buf, 4))).res);
            out.push_back((co_await OpAwaiter(read_op(p.rd, buf, 4))).res);
            co_return out;
        };
        auto v = sync_wait(t());
        CHECK(v[0] == -EIO);
        CHECK(v[1] == -EAGAIN);
        CHECK(v[2] == 2);
        r.set_completion_filter(nullptr, nullptr);
        CHECK(sync_wait([]() -> Task<int> { co_return (co_await OpAwaiter(nop_op())).res; }()) ==
              0);
    }

    TEST_CASE("a registered file is read through its fixed-file index") {
        Reactor r;
        Pipe p;
        int idx = r.register_file(p.rd);
        REQUIRE(idx >= 0);
        REQUIRE(::write(p.wr, "fixed", 5) == 5);
        auto t = [&]() -> Task<std::string> {
            char buf[16] = {};
            Operation op = read_op(idx, buf, sizeof buf);
            op.fixed_file = true;
            IoResult res = co_await OpAwaiter(op);
            co_return std::string(buf, res.bytes());
        };
        CHECK(sync_wait(t()) == "fixed");
        r.unregister_file(idx);
        CHECK(r.register_file(-1) < 0);
    }

    TEST_CASE("closing a fixed file frees its slot and leaves the caller's descriptor open") {
        Reactor r;
        Pipe p;
        int idx = r.register_file(p.rd);
        REQUIRE(idx >= 0);
        auto close_fixed = [&]() -> Task<int> {
            Operation op;
            op.code = OpCode::close;
            op.fd = idx;
            op.fixed_file = true;
            co_return (co_await OpAwaiter(op)).res;
        };
        CHECK(sync_wait(close_fixed()) == 0);
        CHECK(r.register_file(p.wr) == idx); // the slot is free again
        CHECK(::write(p.wr, "k", 1) == 1);   // both caller descriptors still work
        char c = 0;
        CHECK(::read(p.rd, &c, 1) == 1);
        r.unregister_file(idx);
    }

    TEST_CASE("BufferPool buffers are found in the registered buffer table") {
        Reactor r;
        Buffer b = BufferPool::global().alloc(4096);
        REQUIRE(b);
        int idx = r.buffer_index(b.data, 4096);
        if (r.backend() == Backend::uring) {
            CHECK(idx == b.arena);
            CHECK(r.report().find("fixed buffers") != std::string::npos);
        } else {
            CHECK(idx == -1); // the Asio backend has no registered buffers
        }
        int stack_var = 0;
        CHECK(r.buffer_index(&stack_var, sizeof stack_var) == -1);
        BufferPool::global().free(b);
    }

    TEST_CASE("a tiny ring flushes a full submission queue and drops nothing") {
        Reactor r(ReactorOptions{.ring_entries = 4});
        auto many = []() -> Task<int> {
            std::vector<Task<int>> v;
            for (int i = 0; i < 500; ++i) {
                v.push_back(
                    []() -> Task<int> { co_return (co_await OpAwaiter(Operation{})).res; }());
            }
            auto res = co_await when_all(std::move(v));
            int ok = 0;
            for (int x : res) {
                ok += x == 0;
            }
            co_return ok;
        };
        CHECK(sync_wait(many()) == 500);
        CHECK(r.counters().ops_completed == 500);
    }

    TEST_CASE("an operation on a bad descriptor completes with EBADF as a value") {
        char buf[8];
        auto t = [&]() -> Task<int> { co_return (co_await OpAwaiter(read_op(-1, buf, 8))).res; };
        CHECK(sync_wait(t()) == -EBADF);
    }

} // TEST_SUITE
