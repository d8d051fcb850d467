// SPDX-License-Identifier: MIT
// Per-thread magazines: cap + slack hysteresis, producer/consumer frees across threads with
// every count balancing, the drain at thread exit, and a cache destroyed while another
// live thread's magazine still holds its objects.
#include <bioring/alloc/detail/thread_cache.hpp>

#include <bioring/alloc/bioset.hpp>
#include <bioring/alloc/detail/slab_cache.hpp>
#include <bioring/alloc/slab_registry.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

using namespace bioring;

namespace {

// A bounded single-producer single-consumer ring of pointers.
template <std::size_t N>
class SpscRing {
public:
    bool push(void* p) noexcept {
        const std::size_t t = tail_.load(std::memory_order_relaxed);
        if (t - head_.load(std::memory_order_acquire) == N) { // pairs with pop's release
            return false;
        }
        slots_[t % N] = p;
        tail_.store(t + 1, std::memory_order_release); // publishes slots_[t], pairs with pop
        return true;
    }
    void* pop() noexcept {
        const std::size_t h = head_.load(std::memory_order_relaxed);
        if (tail_.load(std::memory_order_acquire) == h) { // pairs with push's release
            return nullptr;
        }
        void* p = slots_[h % N];
        head_.store(h + 1, std::memory_order_release); // frees the slot, pairs with push
        return p;
    }

private:
    alignas(64) std::atomic<std::size_t> head_{0};
    alignas(64) std::atomic<std::size_t> tail_{0};
    alignas(64) void* slots_[N]{};
};

// A simple one-shot gate between two threads.
struct Gate {
    std::mutex m;
    std::condition_variable cv;
    bool open = false;
    void release() {
        std::lock_guard<std::mutex> g(m);
        open = true;
        cv.notify_all();
    }
    void wait() {
        std::unique_lock<std::mutex> g(m);
        cv.wait(g, [&] { return open; });
    }
};

} // namespace

TEST_SUITE("alloc") {

    TEST_CASE("slab thread cache refills and flushes in batches with cap plus slack hysteresis") {
        SlabRegistry& reg = SlabRegistry::global();
        SlabCache* c = reg.find_or_create(900); // stride 960: 512 KiB / 960 caps it at 512
        const std::uint32_t cap = c->magazine_cap();
        const std::uint32_t slack = c->magazine_slack();
        const std::uint32_t batch = c->refill_batch();
        REQUIRE(cap == 512);
        REQUIRE(slack == 128);
        REQUIRE(batch == 256);

        // A fresh thread starts with an empty magazine.
        std::thread t([&] {
            std::vector<void*> held;
            held.push_back(c->alloc());
            CHECK(c->this_thread_stats().refills == 1);
            CHECK(c->this_thread_stats().cached == batch - 1);
            for (std::uint32_t i = 1; i < batch; ++i) {
                held.push_back(c->alloc());
            }
            CHECK(c->this_thread_stats().refills == 1); // one trip to the depot for `batch` objects
            CHECK(c->this_thread_stats().cached == 0);
            held.push_back(c->alloc());
            CHECK(c->this_thread_stats().refills == 2);
            // Hold 4 * cap objects, then free them all and predict every flush.
            while (held.size() < 4 * cap) {
                held.push_back(c->alloc());
            }
            const ThreadCacheStats s0 = c->this_thread_stats();
            CHECK(s0.refills == (4 * cap + batch - 1) / batch);
            std::uint32_t n = s0.cached;
            std::uint64_t flushes = 0;
            for (void* p : held) {
                if (n >= cap + slack) {
                    n -= slack; // prune back to cap
                    ++flushes;
                }
                ++n;
                c->free(p);
            }
            held.clear();
            ThreadCacheStats s1 = c->this_thread_stats();
            CHECK(s1.flushes == flushes);
            CHECK(s1.cached == n);
            CHECK(s1.cached <= cap + slack);
            CHECK(s1.cached > cap);
            // Hysteresis: bouncing around the limit costs no depot trips.
            for (int i = 0; i < 1000; ++i) {
                void* a = c->alloc();
                void* b = c->alloc();
                c->free(a);
                c->free(b);
            }
            const ThreadCacheStats s2 = c->this_thread_stats();
            CHECK(s2.flushes == s1.flushes);
            CHECK(s2.refills == s1.refills);
            CHECK(s2.allocations == s1.allocations + 2000);
            CHECK(s2.frees == s1.frees + 2000);
        });
        t.join();
        const SlabCacheStats s = c->stats();
        CHECK(s.in_thread_caches == 0); // the thread's exit drained it
        CHECK(s.in_use == 0);
        CHECK(s.allocations == s.frees);
        reg.put(c);
    }

    TEST_CASE("bioset producer and consumer threads free across threads with every count balancing "
              "to zero") {
        SlabRegistry& reg = SlabRegistry::global();
        constexpr std::size_t total = 200000;
        BioSet bs(16, 3 * 64);
        SlabCache* c = bs.cache();
        const SlabCacheStats before = c->stats();
        auto ring = std::make_unique<SpscRing<1024>>();
        std::atomic<std::size_t> consumed{0};
        std::atomic<std::uint64_t> remote_seen{0};

        std::thread producer([&] {
            for (std::size_t i = 0; i < total; ++i) {
                Bio* b = bs.alloc();
                CHECK(b != nullptr);
                if (b == nullptr) {
                    std::abort(); // REQUIRE cannot throw out of a thread
                }
                b->private_data = reinterpret_cast<void*>(i);
                while (!ring->push(b)) {
                    std::this_thread::yield();
                }
            }
        });
        std::thread consumer([&] {
            std::size_t expect = 0;
            while (expect < total) {
                auto* b = static_cast<Bio*>(ring->pop());
                if (b == nullptr) {
                    std::this_thread::yield();
                    continue;
                }
                CHECK(b->private_data == reinterpret_cast<void*>(expect));
                ++expect;
                bs.free(b);
            }
            consumed.store(expect);
            remote_seen.store(c->this_thread_stats().remote_frees);
        });
        producer.join();
        consumer.join();
        CHECK(consumed.load() == total);
        CHECK(remote_seen.load() == total); // every free happened on the other thread

        const SlabCacheStats after = c->stats();
        CHECK(after.allocations - before.allocations == total);
        CHECK(after.frees - before.frees == total);
        CHECK(after.remote_frees - before.remote_frees == total);
        CHECK(after.in_use == 16);          // only the reserve
        CHECK(after.in_thread_caches == 0); // both threads drained at exit
        CHECK(after.free_in_depot == after.slabs * after.objects_per_slab - after.in_use);
        CHECK(after.refills > before.refills);
        CHECK(after.flushes > before.flushes);
        CHECK(bs.stats().reserve_nr == 16);
        CHECK(reg.refs(c) == 1);
    }

    TEST_CASE("slab thread cache drains to the depot when its thread exits") {
        SlabRegistry& reg = SlabRegistry::global();
        SlabCache* c = reg.find_or_create(2222);
        Gate filled;
        Gate done;
        std::thread t([&] {
            std::vector<void*> objs;
            for (int i = 0; i < 100; ++i) {
                objs.push_back(c->alloc());
            }
            for (void* p : objs) {
                c->free(p);
            }
            filled.release();
            done.wait();
        });
        filled.wait();
        SlabCacheStats s = c->stats();
        CHECK(s.in_thread_caches >= 100);
        CHECK(s.magazines == 1);
        CHECK(s.in_use == 0);
        done.release();
        t.join();
        s = c->stats();
        CHECK(s.in_thread_caches == 0);
        CHECK(s.magazines == 0);
        CHECK(s.free_in_depot == s.slabs * s.objects_per_slab);
        CHECK(s.allocations == 100);
        CHECK(s.frees == 100);
        reg.put(c);
    }

    TEST_CASE("slab cache destroyed while another thread's magazine holds its objects stays safe") {
        SlabRegistry& reg = SlabRegistry::global();
        const std::size_t live0 = reg.cache_count();
        Gate cached;
        Gate destroyed;
        Gate reused;
        std::atomic<BioSet*> second{nullptr};
        auto first = std::make_unique<BioSet>(0, 41 * 64);
        std::thread t([&] {
            for (int i = 0; i < 10; ++i) {
                first->free(first->alloc());
            }
            CHECK(first->cache()->this_thread_stats().cached > 0);
            cached.release();
            destroyed.wait();
            // The old cache is gone; its id may now belong to another cache. Using that one
            // from this thread must rebind the stale magazine, not reuse it.
            BioSet* bs = second.load();
            for (int i = 0; i < 1000; ++i) {
                Bio* b = bs->alloc();
                CHECK(b != nullptr);
                bs->free(b);
            }
            reused.release();
        });
        cached.wait();
        const std::uint32_t old_id = first->cache()->id();
        first.reset(); // last user: the cache drains t's magazine and frees its slabs
        CHECK(reg.cache_count() == live0);
        auto bs2 = std::make_unique<BioSet>(0, 43 * 64);
        // Run alone (as ctest does) the new cache takes the freed id, so t's stale magazine is
        // rebound; in a whole-file run a lower free entry may come first.
        CHECK(bs2->cache()->id() <= old_id);
        second.store(bs2.get());
        destroyed.release();
        reused.wait();
        t.join();
        const SlabCacheStats s = bs2->cache()->stats();
        CHECK(s.in_use == 0);
        CHECK(s.in_thread_caches == 0);
        CHECK(s.allocations == 1000);
        bs2.reset();
        CHECK(reg.cache_count() == live0);
    }

} // TEST_SUITE
