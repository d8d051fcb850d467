// SPDX-License-Identifier: MIT
// alloc_bench: ns per alloc+free pair of 256 B and 1 KiB objects for
//   bioset   — bioring::BioSet (front_pad = size - sizeof(Bio), so the object is `size` bytes)
//   glibc    — malloc/free (mimalloc is dlopen'ed RTLD_LOCAL, so malloc stays glibc's)
//   mimalloc — mi_malloc/mi_free, through the same dlopen (one indirect call each)
//   asio     — asio::recycling_allocator, run inside an io_context handler so that it has
//              the thread_info cache it is built for (outside one it is plain new/delete)
// in three shapes:
//   pair     — same thread, alloc then free at once (LIFO best case)
//   burst64  — same thread, 64 allocs then 64 frees
//   cross    — the benchmark thread allocates and passes each object through a lock-free
//              SPSC ring (1024 slots) to a consumer thread that frees it (producer/consumer);
//              a side that finds the ring full/empty yields its CPU
// Every object is written once (one byte per cache line of its first 256 bytes, or of its
// front region for a bioset, whose last line is the Bio that alloc() itself initialises) so
// that no allocator is measured on memory nobody touches. Run with --benchmark_repetitions=5 (the
// default below when no repetition flag is given); main prints the ratio tables
// BioSet ÷ mimalloc at the end (medians, and minima: a shared machine's noise only adds
// time), then a slabinfo report of two live sets after a producer/consumer pass.
#include <bioring/alloc/bioset.hpp>
#include <bioring/alloc/slab_registry.hpp>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/recycling_allocator.hpp>
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <dlfcn.h>

namespace {

// ---- the allocators under test ------------------------------------------------------------

struct Mimalloc {
    void* (*malloc)(std::size_t) = nullptr;
    void (*free)(void*) = nullptr;
    Mimalloc() {
        void* lib = ::dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
        if (lib != nullptr) {
            malloc = reinterpret_cast<void* (*)(std::size_t)>(::dlsym(lib, "mi_malloc"));
            free = reinterpret_cast<void (*)(void*)>(::dlsym(lib, "mi_free"));
        }
    }
};
const Mimalloc& mimalloc() {
    static Mimalloc m;
    return m;
}

enum class Kind { bioset, glibc, mimalloc, asio };

// One allocator, as a pair of functions on void*. BioSet objects travel as their Bio*.
struct Alloc {
    Kind kind;
    std::size_t size;
    std::size_t usable; ///< bytes the user may write: a bioset object ends with its Bio
    std::unique_ptr<bioring::BioSet> set;

    Alloc(Kind k, std::size_t s)
        : kind(k), size(s), usable(k == Kind::bioset ? s - sizeof(bioring::Bio) : s) {
        if (k == Kind::bioset) {
            set = std::make_unique<bioring::BioSet>(64, s - sizeof(bioring::Bio));
        }
    }
    void* alloc() noexcept {
        switch (kind) {
        case Kind::bioset: {
            bioring::Bio* b = set->alloc();
            return b != nullptr ? b->front() : nullptr;
        }
        case Kind::glibc:
            return std::malloc(size);
        case Kind::mimalloc:
            return mimalloc().malloc(size);
        case Kind::asio:
            return asio::recycling_allocator<std::byte>().allocate(size);
        }
        return nullptr;
    }
    void free(void* p) noexcept {
        switch (kind) {
        case Kind::bioset:
            set->free(bioring::Bio::from_front(p, size - sizeof(bioring::Bio)));
            return;
        case Kind::glibc:
            std::free(p);
            return;
        case Kind::mimalloc:
            mimalloc().free(p);
            return;
        case Kind::asio:
            asio::recycling_allocator<std::byte>().deallocate(static_cast<std::byte*>(p), size);
            return;
        }
    }
};

inline void touch(void* p, std::size_t size) noexcept {
    auto* c = static_cast<volatile char*>(p);
    const std::size_t n = size < 256 ? size : 256;
    for (std::size_t i = 0; i < n; i += 64) {
        c[i] = 1;
    }
}

// Runs fn() where Asio's recycling allocator finds its per-thread cache: inside a handler.
template <class F>
void in_asio_handler(Kind k, F&& fn) {
    if (k != Kind::asio) {
        fn();
        return;
    }
    asio::io_context ctx;
    asio::post(ctx, [&] { fn(); });
    ctx.run();
}

// ---- shapes ------------------------------------------------------------------------------

void pair(benchmark::State& state, Kind k) {
    Alloc a(k, static_cast<std::size_t>(state.range(0)));
    in_asio_handler(k, [&] {
        for (auto _ : state) {
            void* p = a.alloc();
            if (p == nullptr) {
                state.SkipWithError("allocation failed");
                break;
            }
            touch(p, a.usable);
            benchmark::DoNotOptimize(p);
            a.free(p);
        }
    });
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void burst64(benchmark::State& state, Kind k) {
    Alloc a(k, static_cast<std::size_t>(state.range(0)));
    void* objs[64];
    in_asio_handler(k, [&] {
        for (auto _ : state) {
            for (void*& p : objs) {
                p = a.alloc();
                touch(p, a.usable);
            }
            benchmark::DoNotOptimize(objs);
            for (void* p : objs) {
                a.free(p);
            }
        }
    });
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 64);
}

class SpscRing {
public:
    static constexpr std::size_t size = 1024;
    bool push(void* p) noexcept {
        const std::size_t t = tail_.load(std::memory_order_relaxed);
        if (t - head_cache_ == size) {
            head_cache_ = head_.load(std::memory_order_acquire); // pairs with pop's release
            if (t - head_cache_ == size) {
                return false;
            }
        }
        slots_[t % size] = p;
        tail_.store(t + 1, std::memory_order_release); // publishes the slot, pairs with pop
        return true;
    }
    void* pop() noexcept {
        const std::size_t h = head_.load(std::memory_order_relaxed);
        if (h == tail_cache_) {
            tail_cache_ = tail_.load(std::memory_order_acquire); // pairs with push's release
            if (h == tail_cache_) {
                return nullptr;
            }
        }
        void* p = slots_[h % size];
        head_.store(h + 1, std::memory_order_release); // frees the slot, pairs with push
        return p;
    }

private:
    alignas(64) std::atomic<std::size_t> head_{0};
    std::size_t tail_cache_ = 0; // consumer's view
    alignas(64) std::atomic<std::size_t> tail_{0};
    std::size_t head_cache_ = 0; // producer's view
    alignas(64) void* slots_[size]{};
};

void cross(benchmark::State& state, Kind k) {
    Alloc a(k, static_cast<std::size_t>(state.range(0)));
    auto ring = std::make_unique<SpscRing>();
    std::atomic<bool> done{false};
    std::atomic<std::uint64_t> freed{0};
    std::thread consumer([&] {
        in_asio_handler(k, [&] {
            std::uint64_t n = 0;
            for (;;) {
                void* p = ring->pop();
                if (p != nullptr) {
                    a.free(p);
                    ++n;
                } else if (!done.load(std::memory_order_acquire)) {
                    // Yield rather than spin: on a loaded machine a spinning side would
                    // burn the other side's time slice, and measure the scheduler.
                    std::this_thread::yield();
                } else {
                    // done is set after the last push: one more pop settles it.
                    while ((p = ring->pop()) != nullptr) {
                        a.free(p);
                        ++n;
                    }
                    break;
                }
            }
            freed.store(n, std::memory_order_relaxed);
        });
    });
    std::uint64_t pushed = 0;
    in_asio_handler(k, [&] {
        for (auto _ : state) {
            void* p = a.alloc();
            touch(p, a.usable);
            while (!ring->push(p)) {
                std::this_thread::yield();
            }
            ++pushed;
        }
    });
    done.store(true, std::memory_order_release); // pairs with the consumer's acquire
    consumer.join();
    if (freed.load() != pushed) {
        state.SkipWithError("consumer lost objects");
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

const char* kind_name(Kind k) {
    switch (k) {
    case Kind::bioset:
        return "bioset";
    case Kind::glibc:
        return "glibc";
    case Kind::mimalloc:
        return "mimalloc";
    case Kind::asio:
        return "asio";
    }
    return "?";
}

// ---- medians and the ratio table ----------------------------------------------------------

// Console output as usual, and the medians remembered for the table.
class Reporter : public benchmark::ConsoleReporter {
public:
    // "median" or "min" -> "shape/kind/size" -> ns per pair
    std::map<std::string, std::map<std::string, double>> ns;

    void ReportRuns(const std::vector<Run>& runs) override {
        for (const Run& r : runs) {
            if (r.run_type == Run::RT_Aggregate && !r.error_occurred &&
                (r.aggregate_name == "median" || r.aggregate_name == "min")) {
                const std::string name = r.run_name.function_name + "/" + r.run_name.args;
                // Same-thread shapes: CPU time of the thread (less noise from other processes
                // on a shared machine); cross: wall time, since two threads do the work.
                const bool cross = name.rfind("cross", 0) == 0;
                const double per_iter_ns =
                    cross ? r.GetAdjustedRealTime() : r.GetAdjustedCPUTime(); // unit: ns
                const double pairs = name.rfind("burst64", 0) == 0 ? 64.0 : 1.0;
                ns[r.aggregate_name][name] = per_iter_ns / pairs;
            }
        }
        ConsoleReporter::ReportRuns(runs);
    }
};

} // namespace

int main(int argc, char** argv) {
    if (mimalloc().malloc == nullptr) {
        std::fprintf(stderr,
                     "alloc_bench: libmimalloc.so.2 not found (apt-get install libmimalloc2.0)\n");
        return 1;
    }
    const std::pair<const char*, void (*)(benchmark::State&, Kind)> shapes[] = {
        {"pair", pair}, {"burst64", burst64}, {"cross", cross}};
    const Kind kinds[] = {Kind::bioset, Kind::glibc, Kind::mimalloc, Kind::asio};
    for (const auto& [shape, fn] : shapes) {
        for (Kind k : kinds) {
            const std::string name = std::string(shape) + "/" + kind_name(k);
            auto* b = benchmark::RegisterBenchmark(name.c_str(), fn, k);
            b->Arg(256)->Arg(1024)->Unit(benchmark::kNanosecond);
            // The minimum next to the median: on a shared machine the median still carries
            // other processes' noise; the minimum shows what the code costs undisturbed.
            b->ComputeStatistics("min", [](const std::vector<double>& v) {
                return *std::min_element(v.begin(), v.end());
            });
            if (std::string(shape) == "cross") {
                b->UseRealTime();
            }
        }
    }
    // Five repetitions and medians unless the command line says otherwise.
    std::vector<char*> args(argv, argv + argc);
    bool reps = false;
    for (int i = 1; i < argc; ++i) {
        reps = reps || std::strncmp(argv[i], "--benchmark_repetitions", 23) == 0;
    }
    std::string rep_flag = "--benchmark_repetitions=5";
    std::string agg_flag = "--benchmark_report_aggregates_only=true";
    if (!reps) {
        args.push_back(rep_flag.data());
        args.push_back(agg_flag.data());
    }
    int n = static_cast<int>(args.size());
    benchmark::Initialize(&n, args.data());
    if (benchmark::ReportUnrecognizedArguments(n, args.data())) {
        return 1;
    }
    Reporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();

    for (const char* stat : {"median", "min"}) {
        std::printf("\nns per alloc+free pair (%s of repetitions; CPU time for pair/burst64, "
                    "wall time for cross); ratio = bioset / mimalloc\n",
                    stat);
        std::printf("%-8s %6s %9s %9s %9s %9s %8s\n", "shape", "bytes", "bioset", "glibc",
                    "mimalloc", "asio", "ratio");
        const auto& table = reporter.ns[stat];
        for (const auto& [shape, fn] : shapes) {
            for (int size : {256, 1024}) {
                auto get = [&](Kind k) {
                    const std::string key =
                        std::string(shape) + "/" + kind_name(k) + "/" + std::to_string(size);
                    auto it = table.find(key);
                    return it == table.end() ? -1.0 : it->second;
                };
                const double bs = get(Kind::bioset), mi = get(Kind::mimalloc);
                if (bs < 0 && mi < 0) {
                    continue; // filtered out
                }
                std::printf("%-8s %6d %9.2f %9.2f %9.2f %9.2f %8.2f\n", shape, size, bs,
                            get(Kind::glibc), mi, get(Kind::asio),
                            mi > 0 && bs > 0 ? bs / mi : 0.0);
            }
        }
    }

    // A slabinfo report with live caches: two sets, a producer/consumer pass through each.
    {
        bioring::BioSet small(64, 256 - sizeof(bioring::Bio));
        bioring::BioSet large(64, 1024 - sizeof(bioring::Bio));
        for (bioring::BioSet* bs : {&small, &large}) {
            auto ring = std::make_unique<SpscRing>();
            constexpr int n = 100000;
            std::thread consumer([&] {
                for (int got = 0; got < n;) {
                    if (void* p = ring->pop()) {
                        bs->free(static_cast<bioring::Bio*>(p));
                        ++got;
                    } else {
                        std::this_thread::yield();
                    }
                }
            });
            for (int i = 0; i < n; ++i) {
                bioring::Bio* b = bs->alloc();
                while (!ring->push(b)) {
                    std::this_thread::yield();
                }
            }
            consumer.join();
        }
        bioring::Bio* held = small.alloc(); // one object in use, for the report
        std::printf("\n%s", bioring::SlabRegistry::global().slabinfo().c_str());
        small.free(held);
    }
    return 0;
}
