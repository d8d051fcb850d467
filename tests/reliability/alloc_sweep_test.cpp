// SPDX-License-Identifier: MIT
// Allocation-failure sweep: a copy of a few hundred requests, each request a coroutine whose
// frame comes from a BioSet (leading BioSet&: frame and Bio in one object), while the k-th
// trip to the backing allocator fails, for k = 1..K (K: the trips a clean run makes, learnt
// by a counting run first). With a reserve (pool_size >= 1) the copy must complete
// byte-identical, the reserve having served the failed allocation; with pool_size 0 the
// request cannot be built, and the copy must stop with an error, drain what is in flight and
// give every object and every slab back (checked here with the backing allocator's byte
// count, and by LSan in the ASan build).
// What is under injection: after arming, the only allocations are request frames (the
// workers, when_all and sync_wait frames and the data buffers are made before), so the
// k-th failure always lands on a request.
#include <bioring/alloc/detail/backing.hpp>
#include <bioring/alloc/bioset.hpp>
#include <bioring/alloc/failure_injector.hpp>
#include <bioring/io/direct_file.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>
#include <bioring/runtime/when_all.hpp>
#include "tests/apps/app_support.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

using namespace apps_test;
using namespace bioring;

namespace {

constexpr std::size_t block = 4096;
constexpr std::size_t nblocks = 300;
// Large enough that a request frame fits the pad in every build (ASan frames included), so
// every frame is a regular object of the set (oversized objects have no reserve).
constexpr std::size_t front_pad = 12288;

struct Ctx {
    DirectFile* src = nullptr;
    DirectFile* dst = nullptr;
    std::byte* bufs = nullptr; // one block per request, made before arming
    std::size_t next = 0;
    bool failed = false;
    std::string error;
    std::size_t done = 0;
};

Task<void> request(BioSet& bs, Ctx* c, std::size_t b) {
    (void)bs;
    std::byte* buf = c->bufs + b * block;
    IoResult r = co_await c->src->read(buf, block, b * block);
    if (r.bytes() != block) {
        c->failed = true;
        c->error = "read failed";
        co_return;
    }
    IoResult w = co_await c->dst->write(buf, block, b * block);
    if (w.bytes() != block) {
        c->failed = true;
        c->error = "write failed";
        co_return;
    }
    ++c->done;
}

// As the apps' pipeline does: an empty Task (frame allocation failed, reserve empty) stops
// the copy with an error instead of waiting.
Task<void> worker(Ctx* c, BioSet* bs) {
    while (!c->failed && c->next < nblocks) {
        const std::size_t b = c->next++;
        Task<void> t = request(*bs, c, b);
        if (!t) {
            c->failed = true;
            c->error = "out of memory for a request";
            break;
        }
        co_await std::move(t);
    }
}

Task<void> armed(Task<void> all, std::uint64_t k, bool from) {
    if (from) {
        FailureInjector::fail_from(k);
    } else {
        FailureInjector::fail_nth(k);
    }
    co_await std::move(all);
    FailureInjector::off();
}

struct Outcome {
    bool ok = false;
    std::uint64_t calls = 0;    // backing trips while armed
    std::uint64_t injected = 0; // failures injected (0 or 1)
    BioSetStats stats;
};

Outcome copy_once(const fs::path& dir, std::size_t pool, unsigned qd, std::uint64_t k, bool from,
                  const std::string& data) {
    Outcome o;
    std::error_code ec;
    fs::remove(dir / "dst", ec);
    std::unique_ptr<std::byte, decltype(&std::free)> bufs(
        static_cast<std::byte*>(std::aligned_alloc(4096, nblocks * block)), &std::free);
    REQUIRE(bufs);
    DirectFile src = DirectFile::open((dir / "src").string());
    OpenOptions wo;
    wo.write = wo.create = wo.truncate = true;
    DirectFile dst = DirectFile::open((dir / "dst").string(), wo);
    Ctx c;
    c.src = &src;
    c.dst = &dst;
    c.bufs = bufs.get();
    const std::uint64_t before = FailureInjector::failures();
    {
        BioSet bs(pool, front_pad);
        std::vector<Task<void>> workers;
        for (unsigned i = 0; i < qd; ++i) {
            workers.push_back(worker(&c, &bs));
            REQUIRE(workers.back());
        }
        Task<void> all = when_all(std::move(workers));
        REQUIRE(all);
        sync_wait(armed(std::move(all), k, from));
        o.calls = FailureInjector::calls();
        FailureInjector::off();
        o.stats = bs.stats();
    }
    o.injected = FailureInjector::failures() - before;
    o.ok = !c.failed;
    if (o.ok) {
        CHECK(c.done == nblocks);
        CHECK(slurp(dir / "dst") == data);
    } else {
        CHECK(c.error == "out of memory for a request");
    }
    return o;
}

} // namespace

TEST_SUITE("reliability") {

    TEST_CASE("failing the k-th backing allocation: a reserve always completes the copy, none "
              "fails cleanly") {
        Scratch d("shm");
        const std::string data = random_string(nblocks * block, 31);
        write_file(d / "src", data);
        Reactor reactor; // made before any arming: its own bioset and ring are not under test
        int runs = 0, completed = 0, failed_cleanly = 0;
        std::uint64_t injected = 0;
        for (unsigned qd : {8u, 32u, 64u}) {
            for (std::size_t pool : {std::size_t{0}, std::size_t{1}, std::size_t{4}}) {
                CAPTURE(qd);
                CAPTURE(pool);
                // The counting run: how many backing trips does this copy make? (It also warms
                // the caches of the frames made outside the sweep, so the byte count below
                // compares like with like.)
                Outcome clean = copy_once(d.path, pool, qd, UINT64_MAX, false, data);
                REQUIRE(clean.ok);
                const std::uint64_t trips = clean.calls;
                CHECK(trips >= 1); // the sweep must actually reach the backing allocator
                const std::uint64_t base_bytes = detail::backing_bytes();
                std::uint64_t hits = 0, clean_failures = 0;
                for (std::uint64_t k = 1; k <= trips + 1; ++k) {
                    CAPTURE(k);
                    Outcome o = copy_once(d.path, pool, qd, k, false, data);
                    CHECK(o.injected <= 1);
                    ++runs;
                    injected += o.injected;
                    hits += o.stats.reserve_hits;
                    if (pool >= 1) {
                        CHECK_MESSAGE(o.ok, "a copy with a reserve failed");
                    } else if (!o.ok) {
                        // A failed trip may be absorbed (a magazine refill that got part of its
                        // batch); when it is not, the request could not be built: a clean error.
                        CHECK(o.injected == 1);
                        CHECK(o.stats.failures >= 1);
                        ++clean_failures;
                    }
                    completed += o.ok;
                    failed_cleanly += !o.ok;
                }
                (void)hits; // one failed trip is usually absorbed by a magazine refill
                if (pool == 0) {
                    CHECK_MESSAGE(clean_failures >= 1, "no injected failure reached a request");
                }
                // Every object and slab of the sets went back (their caches died with them).
                CHECK(detail::backing_bytes() == base_bytes);
            }
        }
        std::printf("alloc sweep: %d runs, %d completed byte-identical, %d failed cleanly, %llu "
                    "backing failures injected\n",
                    runs, completed, failed_cleanly, static_cast<unsigned long long>(injected));
        CHECK(failed_cleanly > 0);
        CHECK(completed > failed_cleanly);
    }

    TEST_CASE("out of memory from the k-th backing allocation on: a reserve of queue depth "
              "completes the copy") {
        // As the apps' pipeline sizes it: pool_size = queue depth, so every request in flight can
        // be served by the reserve once the slab cache cannot grow any more.
        Scratch d("shm");
        const std::string data = random_string(nblocks * block, 32);
        write_file(d / "src", data);
        Reactor reactor;
        int runs = 0, completed = 0, failed_cleanly = 0;
        std::uint64_t injected = 0;
        for (unsigned qd : {16u, 64u}) {
            for (bool reserve : {true, false}) {
                const std::size_t pool = reserve ? qd : 0;
                CAPTURE(qd);
                CAPTURE(pool);
                Outcome clean = copy_once(d.path, pool, qd, UINT64_MAX, true, data);
                REQUIRE(clean.ok);
                const std::uint64_t trips = clean.calls;
                CHECK(trips >= 1);
                const std::uint64_t base_bytes = detail::backing_bytes();
                std::uint64_t hits = 0;
                int fails = 0;
                for (std::uint64_t k = 1; k <= trips + 1; ++k) {
                    CAPTURE(k);
                    Outcome o = copy_once(d.path, pool, qd, k, true, data);
                    ++runs;
                    injected += o.injected;
                    hits += o.stats.reserve_hits;
                    if (reserve) {
                        CHECK_MESSAGE(o.ok, "a copy with a reserve of queue depth failed");
                    } else if (!o.ok) {
                        CHECK(o.stats.failures >= 1);
                        ++fails;
                    }
                    completed += o.ok;
                    failed_cleanly += !o.ok;
                }
                if (reserve) {
                    CHECK_MESSAGE(hits >= 1, "the reserve never served a failed allocation");
                } else {
                    CHECK_MESSAGE(fails >= 1, "no copy without a reserve ran out of memory");
                }
                CHECK(detail::backing_bytes() == base_bytes);
            }
        }
        std::printf("alloc out-of-memory-from-k sweep: %d runs, %d completed byte-identical, %d "
                    "failed cleanly, %llu backing failures injected\n",
                    runs, completed, failed_cleanly, static_cast<unsigned long long>(injected));
    }

} // TEST_SUITE
