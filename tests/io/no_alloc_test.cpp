// SPDX-License-Identifier: MIT
// The io/ awaiters allocate nothing: after warm-up, request coroutines that write and read
// an O_DIRECT file (pool buffers, a deadline and a stop token on every request) make zero
// calls into the C heap, and each request costs exactly one frame from the bioset — on the
// io_uring backend and on the Asio fallback alike.
// The count comes from malloc-family hooks in this binary (operator new reaches malloc
// too). Sanitizer builds own malloc, so there the test reports a skip.
#include <bioring/io/direct_file.hpp>

#include <bioring/alloc/buffer_pool.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>
#include "tests/io/heap_hooks.hpp"
#include "tests/io/io_support.hpp"
#include "tests/io/tmp_file.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <stop_token>
#include <string>

using namespace bioring;
using namespace bioring::test;
using namespace std::chrono_literals;

namespace {

// One request: its frame comes from the reactor's bioset; its awaiters live in the frame.
[[maybe_unused]] Task<int> request(DirectFile& f, std::byte* wbuf, std::byte* rbuf,
                                   std::uint64_t offset, std::stop_token stop) {
    IoOptions o;
    o.timeout = 10s;
    o.stop = stop;
    const IoResult w = co_await f.write(wbuf, 4096, offset, o);
    const IoResult r = co_await f.read(rbuf, 4096, offset, std::move(o));
    co_return w.res == 4096 && r.res == 4096 ? 0 : 1;
}

} // namespace

TEST_SUITE("io") {

    TEST_CASE("reads and writes through DirectFile make no heap allocation in steady state") {
#if defined(BIORING_SANITIZED)
        BIORING_SKIP("sanitizer builds replace malloc; the heap-call count runs in Release only");
#else
        // The hooks see both malloc and operator new (else a zero below would prove nothing).
        const std::uint64_t probe0 = heap_calls.load();
        void* volatile probe = std::malloc(16);
        std::free(probe);
        int* volatile probe_new = new int(1);
        delete probe_new;
        REQUIRE(heap_calls.load() - probe0 >= 2);

        TempPath p;
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        std::stop_source src;
        struct Outcome {
            std::uint64_t heap = 0;
            std::uint64_t frames = 0;
            int failures = 0;
            Backend backend = Backend::uring;
        };
        constexpr int warmup = 1000;
        constexpr int measured = 20000;
        const Outcome out = sync_wait([&]() -> Task<Outcome> {
            Buffer wb = BufferPool::global().alloc(4096);
            Buffer rb = BufferPool::global().alloc(4096);
            REQUIRE(wb);
            REQUIRE(rb);
            Outcome o;
            o.backend = Reactor::current()->backend();
            for (int i = 0; i < warmup; ++i) {
                o.failures +=
                    co_await request(*f, wb.data, rb.data, (i % 64) * 4096u, src.get_token());
            }
            const std::uint64_t heap0 = heap_calls.load();
            const std::uint64_t frames0 = Reactor::current()->counters().requests_allocated;
            for (int i = 0; i < measured; ++i) {
                o.failures +=
                    co_await request(*f, wb.data, rb.data, (i % 64) * 4096u, src.get_token());
            }
            o.heap = heap_calls.load() - heap0;
            o.frames = Reactor::current()->counters().requests_allocated - frames0;
            BufferPool::global().free(wb);
            BufferPool::global().free(rb);
            co_return o;
        }());
        CHECK(out.failures == 0);
        MESSAGE("heap calls over ", measured, " requests: ", out.heap, "; frames: ", out.frames);
        // On either backend (BIORING_BACKEND=asio: the fallback's pool posts, post-backs and
        // deadline timers draw on its handler pool, and its in-flight table is preallocated).
        MESSAGE("backend: ", std::string(backend_name(out.backend)));
        CHECK(out.heap == 0);
        CHECK(out.frames == measured);
#endif
    }

} // TEST_SUITE
