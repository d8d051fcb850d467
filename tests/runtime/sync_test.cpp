// SPDX-License-Identifier: MIT
// Event, Semaphore, Mutex, Channel and the bounded spawn: on one reactor (fast paths, FIFO
// order, cancellation before and during a wait, a waiter destroyed while queued) and
// across reactor threads (a waiter woken from another reactor resumes on its own; mutual
// exclusion and channel delivery with producers and consumers on every shard; a stop
// requested from a thread that is no reactor). Run under TSan by the sanitizer build.
#include <bioring/runtime/channel.hpp>
#include <bioring/runtime/event.hpp>
#include <bioring/runtime/mutex.hpp>
#include <bioring/runtime/runtime.hpp>
#include <bioring/runtime/semaphore.hpp>
#include <bioring/runtime/sleep.hpp>
#include <bioring/runtime/spawn.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/when_all.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

using namespace bioring;
using namespace std::chrono_literals;

namespace {

/// `co_await yield{};` — go to the back of this reactor's ready queue.
struct yield {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { Reactor::current()->post(h); }
    void await_resume() const noexcept {}
};

RuntimeOptions threads(unsigned n) {
    RuntimeOptions o;
    o.threads = n;
    return o;
}

Task<void> acquire_and_log(Semaphore& s, std::vector<int>& log, int id) {
    Permit p = co_await s.acquire();
    if (p) {
        log.push_back(id);
    }
}

Task<void> acquire_into(Semaphore& s, Permit& out, std::stop_token st) {
    out = co_await s.acquire(std::move(st));
}

Task<void> wait_into(Event& e, int& res, std::stop_token st = {}) {
    res = (co_await e.wait(std::move(st))).res;
}

struct Gauge {
    int running = 0;
    int most = 0;
    int finished = 0;
};

// A function, not a capturing lambda: spawn(BioSet&, f, ...) keeps its copy of f only
// until the request has started.
Task<void> gauged_request(BioSet&, Gauge* g) {
    ++g->running;
    g->most = std::max(g->most, g->running);
    co_await sleep_for(1ms);
    --g->running;
    ++g->finished;
}

} // namespace

TEST_SUITE("runtime") {

    TEST_CASE("Semaphore: uncontended acquire, try_acquire, RAII release, FIFO hand-off") {
        sync_wait([]() -> Task<void> {
            Semaphore s(2);
            {
                Permit a = co_await s.acquire();
                Permit b = co_await s.acquire();
                CHECK(a.ok());
                CHECK(b.ok());
                CHECK(s.available() == 0);
                Permit c = s.try_acquire();
                CHECK_FALSE(c);
                CHECK(c.error() == std::errc::resource_unavailable_try_again);
            }
            CHECK(s.available() == 2);

            // Five waiters queue in order; release(5) hands the permits out in that order.
            Semaphore z(0);
            std::vector<int> log;
            for (int i = 0; i < 5; ++i) {
                spawn(acquire_and_log(z, log, i));
            }
            CHECK(z.waiting() == 5);
            z.release(5);
            co_await yield{};
            CHECK(log == std::vector<int>{0, 1, 2, 3, 4});
            CHECK(z.available() == 5); // every permit came back with its RAII owner

            // No barging: a permit released while someone waits goes to the waiter, not to a
            // newcomer's try_acquire.
            Semaphore one(0);
            std::vector<int> log2;
            spawn(acquire_and_log(one, log2, 7));
            one.release();
            CHECK_FALSE(one.try_acquire());
            co_await yield{};
            CHECK(log2 == std::vector<int>{7});
            CHECK(one.available() == 1);
        }());
    }

    TEST_CASE("Semaphore: cancellation before and during a wait, and a stop after the grant") {
        sync_wait([]() -> Task<void> {
            Semaphore s(0);
            std::stop_source early;
            early.request_stop();
            Permit p = co_await s.acquire(early.get_token());
            CHECK_FALSE(p);
            CHECK(p.error() == std::errc::operation_canceled);

            std::stop_source src;
            Permit got;
            spawn(acquire_into(s, got, src.get_token()));
            CHECK(s.waiting() == 1);
            src.request_stop(); // from the owner thread: resumed by the loop, not inline
            CHECK(s.waiting() == 0);
            co_await yield{};
            CHECK_FALSE(got);
            CHECK(got.error() == std::errc::operation_canceled);
            s.release();
            CHECK(s.available() == 1); // the cancelled waiter took nothing

            // Granted first, stop later: the permit is held.
            Semaphore t(0);
            std::stop_source late;
            Permit held;
            spawn(acquire_into(t, held, late.get_token()));
            t.release();
            late.request_stop();
            co_await yield{};
            CHECK(held.ok());
            held.release();
            CHECK(t.available() == 1);
        }());
    }

    TEST_CASE("Semaphore: a waiter destroyed while queued unlinks itself") {
        sync_wait([]() -> Task<void> {
            Semaphore s(0);
            std::vector<int> log;
            Task<void> a = acquire_and_log(s, log, 1);
            Task<void> b = acquire_and_log(s, log, 2);
            Task<void> c = acquire_and_log(s, log, 3);
            a.handle().resume(); // each suspends inside acquire()
            b.handle().resume();
            c.handle().resume();
            CHECK(s.waiting() == 3);
            b = Task<void>(); // destroy the middle frame
            CHECK(s.waiting() == 2);
            std::stop_source src; // a destroyed waiter with a stop callback registered
            Permit unused;
            Task<void> d = acquire_into(s, unused, src.get_token());
            d.handle().resume();
            CHECK(s.waiting() == 3);
            d = Task<void>();
            src.request_stop(); // its callback is gone: must not touch the freed frame
            CHECK(s.waiting() == 2);
            s.release(2);
            co_await yield{};
            CHECK(log == std::vector<int>{1, 3});
            a = Task<void>();
            c = Task<void>();
        }());
    }

    TEST_CASE(
        "Semaphore bounds the requests of spawn(Semaphore&, ...); the BioSet reserve does not") {
        sync_wait([]() -> Task<void> {
            Semaphore limit(3);
            int in_flight = 0;
            int peak = 0;
            int done = 0;
            auto request = [&](int) -> Task<void> {
                ++in_flight;
                peak = std::max(peak, in_flight);
                co_await sleep_for(200us);
                --in_flight;
                ++done;
            };
            for (int i = 0; i < 50; ++i) {
                IoResult r = co_await spawn(limit, request, i);
                CHECK(r.ok());
            }
            while (done < 50) {
                co_await sleep_for(100us);
            }
            CHECK(peak == 3);
            CHECK(limit.available() == 3);

            // A stop before a permit is granted: nothing is built.
            std::stop_source src;
            src.request_stop();
            int built = 0;
            auto build = [&]() -> Task<void> {
                ++built;
                co_return;
            };
            IoResult r = co_await spawn(limit, src.get_token(), build);
            CHECK(r.res == -ECANCELED);
            CHECK(built == 0);

            // The reserve is not a cap: on BioSet(pool_size = 1) 200 requests run at once.
            BioSet bs(1, 1024);
            Gauge g;
            for (int i = 0; i < 200; ++i) {
                co_await spawn(bs, gauged_request, &g);
            }
            while (g.finished < 200) {
                co_await sleep_for(1ms);
            }
            CHECK(g.most == 200);
        }());
    }

    TEST_CASE("Mutex: exclusion, FIFO, try_lock, cancellation") {
        sync_wait([]() -> Task<void> {
            Mutex mu;
            std::vector<int> order;
            auto worker = [&](int id) -> Task<void> {
                MutexGuard g = co_await mu.lock();
                REQUIRE(g.owns_lock());
                order.push_back(id);
                co_await yield{}; // hold the lock across a suspension
                order.push_back(id);
            };
            MutexGuard first = co_await mu.lock();
            CHECK(mu.is_locked());
            CHECK_FALSE(mu.try_lock());
            for (int i = 0; i < 4; ++i) {
                spawn(worker(i));
            }
            CHECK(mu.waiting() == 4);
            std::stop_source src;
            int cancelled = 0;
            // A named lambda: a spawned coroutine reads its captures through the lambda object.
            auto canceller = [&]() -> Task<void> {
                MutexGuard g = co_await mu.lock(src.get_token());
                cancelled = g ? 1 : (g.error() == std::errc::operation_canceled ? 2 : 3);
            };
            spawn(canceller());
            src.request_stop();
            first.unlock();
            for (int i = 0; i < 20 && order.size() < 8; ++i) {
                co_await yield{};
            }
            CHECK(cancelled == 2);
            CHECK(order == std::vector<int>{0, 0, 1, 1, 2, 2, 3, 3});
            CHECK_FALSE(mu.is_locked());
        }());
    }

    TEST_CASE("Event: manual and auto reset, cancellation, destroyed waiter") {
        sync_wait([]() -> Task<void> {
            Event manual;
            int r1 = 1;
            int r2 = 1;
            spawn(wait_into(manual, r1));
            spawn(wait_into(manual, r2));
            CHECK(manual.waiting() == 2);
            manual.set();
            co_await yield{};
            CHECK(r1 == 0);
            CHECK(r2 == 0);
            CHECK(manual.is_set());
            CHECK((co_await manual.wait()).res == 0); // set: returns at once
            manual.reset();
            CHECK_FALSE(manual.is_set());

            Event autoev(EventMode::auto_reset);
            int a = 1;
            int b = 1;
            spawn(wait_into(autoev, a));
            spawn(wait_into(autoev, b));
            autoev.set(); // wakes the oldest only
            co_await yield{};
            CHECK(a == 0);
            CHECK(b == 1);
            CHECK_FALSE(autoev.is_set());
            autoev.set();
            co_await yield{};
            CHECK(b == 0);
            autoev.set(); // nobody waits: stays set for the next wait, which consumes it
            CHECK(autoev.is_set());
            CHECK((co_await autoev.wait()).res == 0);
            CHECK_FALSE(autoev.is_set());

            std::stop_source src;
            int c = 1;
            spawn(wait_into(autoev, c, src.get_token()));
            src.request_stop();
            co_await yield{};
            CHECK(c == -ECANCELED);
            CHECK(autoev.waiting() == 0);

            int d = 1;
            Task<void> t = wait_into(autoev, d);
            t.handle().resume();
            CHECK(autoev.waiting() == 1);
            t = Task<void>();
            CHECK(autoev.waiting() == 0);
            autoev.set();
            CHECK(autoev.is_set()); // no ghost waiter took it
        }());
    }

    TEST_CASE("Channel: buffer, blocked sender FIFO, close drains, cancellation") {
        sync_wait([]() -> Task<void> {
            CHECK_THROWS_AS(Channel<int>(0), std::invalid_argument);
            Channel<std::string> ch(2);
            CHECK((co_await ch.send("a")).res == 0);
            CHECK((co_await ch.send("b")).res == 0);
            CHECK(ch.size() == 2);
            std::vector<int> sent;
            auto sender = [&](std::string v, int id) -> Task<void> {
                IoResult r = co_await ch.send(std::move(v));
                sent.push_back(r.ok() ? id : -id);
            };
            spawn(sender("c", 1)); // full: both block, in order
            spawn(sender("d", 2));
            CHECK(sent.empty());
            std::vector<std::string> got;
            for (int i = 0; i < 4; ++i) {
                std::optional<std::string> v = co_await ch.receive();
                REQUIRE(v.has_value());
                got.push_back(*v);
                co_await yield{};
            }
            CHECK(got == std::vector<std::string>{"a", "b", "c", "d"});
            CHECK(sent == std::vector<int>{1, 2});

            // A receiver blocked on an empty channel gets the next send directly.
            std::optional<std::string> direct;
            auto direct_rx = [&]() -> Task<void> { direct = co_await ch.receive(); };
            spawn(direct_rx());
            co_await ch.send("e");
            co_await yield{};
            REQUIRE(direct.has_value());
            CHECK(*direct == "e");

            // Cancellation of a blocked receiver and of a blocked sender.
            std::stop_source rs;
            std::optional<std::string> rc = std::string("unset");
            auto cancelled_rx = [&]() -> Task<void> { rc = co_await ch.receive(rs.get_token()); };
            spawn(cancelled_rx());
            rs.request_stop();
            co_await yield{};
            CHECK_FALSE(rc.has_value());
            CHECK_FALSE(ch.closed());
            co_await ch.send("f");
            co_await ch.send("g");
            std::stop_source ss;
            int sres = 1;
            auto cancelled_tx = [&]() -> Task<void> {
                sres = (co_await ch.send("h", ss.get_token())).res;
            };
            spawn(cancelled_tx());
            ss.request_stop();
            co_await yield{};
            CHECK(sres == -ECANCELED);

            // close(): blocked senders get -EPIPE, buffered items still drain, then EPIPE.
            sent.clear();
            spawn(sender("x", 3));
            ch.close();
            co_await yield{};
            CHECK(sent == std::vector<int>{-3});
            CHECK((co_await ch.send("y")).res == -EPIPE);
            CHECK(*(co_await ch.receive()) == "f");
            CHECK(*(co_await ch.receive()) == "g");
            std::optional<std::string> end = co_await ch.receive();
            CHECK_FALSE(end.has_value());
            CHECK(ch.closed());

            // Blocked receivers are released by close() too; a destroyed one unlinks itself.
            Channel<int> ci(1);
            int rr = 1;
            auto recv = [&]() -> Task<void> {
                std::optional<int> v = co_await ci.receive();
                rr = v ? 0 : (ci.closed() ? -EPIPE : -1);
            };
            Task<void> ghost = recv();
            ghost.handle().resume();
            ghost = Task<void>();
            spawn(recv());
            ci.close();
            co_await yield{};
            CHECK(rr == -EPIPE);
        }());
    }

    TEST_CASE("across reactors: a waiter woken from another reactor resumes on its own") {
        Runtime rt(threads(2));
        Event ev;
        Semaphore sem(0);
        std::atomic<int> same{0};
        rt.run_on_all([&](unsigned shard) -> Task<void> {
            if (shard == 0) {
                Reactor* me = Reactor::current();
                IoResult r = co_await ev.wait();
                same += (r.ok() && Reactor::current() == me) ? 1 : 0;
                Permit p = co_await sem.acquire();
                same += (p.ok() && Reactor::current() == me) ? 1 : 0;
            } else {
                while (ev.waiting() == 0) {
                    co_await sleep_for(100us);
                }
                ev.set();
                while (sem.waiting() == 0) {
                    co_await sleep_for(100us);
                }
                sem.release();
            }
        });
        CHECK(same == 2);
    }

    TEST_CASE("across reactors: Mutex and Semaphore under contention from every shard") {
        Runtime rt(threads(3));
        Mutex mu;
        Semaphore sem(2);
        long counter = 0; // plain: the mutex alone orders the accesses (TSan checks)
        std::atomic<int> inside{0};
        std::atomic<int> peak{0};
        std::atomic<int> bad_thread{0};
        constexpr int workers = 4;
        constexpr int rounds = 300;
        rt.run_on_all([&](unsigned shard) -> Task<void> {
            auto worker = [&](unsigned w) -> Task<void> {
                for (int i = 0; i < rounds; ++i) {
                    Reactor* me = Reactor::current();
                    {
                        MutexGuard g = co_await mu.lock();
                        bad_thread += Reactor::current() == me ? 0 : 1;
                        const long v = counter;
                        if ((i + w) % 3 == 0) {
                            co_await yield{};
                        }
                        counter = v + 1;
                    }
                    Permit p = co_await sem.acquire();
                    bad_thread += Reactor::current() == me ? 0 : 1;
                    const int now = ++inside;
                    int old = peak.load();
                    while (now > old && !peak.compare_exchange_weak(old, now)) {
                    }
                    co_await yield{};
                    --inside;
                }
            };
            std::vector<Task<void>> ts;
            for (unsigned w = 0; w < workers; ++w) {
                ts.push_back(worker(shard * workers + w));
            }
            co_await when_all(std::move(ts));
        });
        CHECK(counter == 3L * workers * rounds);
        CHECK(peak.load() <= 2);
        CHECK(peak.load() >= 1);
        CHECK(bad_thread == 0);
        CHECK_FALSE(mu.is_locked());
        CHECK(sem.available() == 2);
    }

    TEST_CASE("across reactors: Channel with producers and consumers on every shard") {
        Runtime rt(threads(2));
        Channel<long> ch(4);
        constexpr long per_producer = 2000;
        std::atomic<int> producers_left{2};
        std::atomic<long> sum{0};
        std::atomic<long> count{0};
        rt.run_on_all([&](unsigned shard) -> Task<void> {
            auto produce = [&]() -> Task<void> {
                for (long i = 1; i <= per_producer; ++i) {
                    IoResult r = co_await ch.send(i);
                    REQUIRE(r.ok());
                }
                if (--producers_left == 0) {
                    ch.close();
                }
            };
            auto consume = [&]() -> Task<void> {
                for (;;) {
                    std::optional<long> v = co_await ch.receive();
                    if (!v) {
                        CHECK(ch.closed());
                        co_return;
                    }
                    sum += *v;
                    ++count;
                }
            };
            (void)shard;
            co_await when_all(produce(), consume(), consume());
        });
        CHECK(count == 2 * per_producer);
        CHECK(sum == 2 * per_producer * (per_producer + 1) / 2);
    }

    TEST_CASE(
        "across threads: a stop requested from a non-reactor thread cancels a queued waiter") {
        Runtime rt(threads(2));
        Semaphore sem(0);
        Event ev;
        std::stop_source src;
        std::jthread stopper([&] {
            while (sem.waiting() + ev.waiting() < 2) {
                std::this_thread::sleep_for(100us);
            }
            src.request_stop();
        });
        std::vector<int> res = rt.run_on_all<int>([&](unsigned shard) -> Task<int> {
            Reactor* me = Reactor::current();
            int r;
            if (shard == 0) {
                Permit p = co_await sem.acquire(src.get_token());
                r = p ? 0 : -p.error().value();
            } else {
                r = (co_await ev.wait(src.get_token())).res;
            }
            co_return Reactor::current() == me ? r : 1;
        });
        CHECK(res == std::vector<int>{-ECANCELED, -ECANCELED});
        CHECK(sem.waiting() == 0);
        CHECK(ev.waiting() == 0);
    }

} // TEST_SUITE
