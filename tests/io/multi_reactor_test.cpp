// SPDX-License-Identifier: MIT
// One DirectFile used from every reactor of a Runtime: requests run on the thread that
// awaits them, and a fixed-file registration belongs to the reactor that made it (the
// other reactors keep using the plain descriptor).
#include <bioring/io/direct_file.hpp>

#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/runtime.hpp>
#include <bioring/runtime/task.hpp>
#include "tests/io/io_support.hpp"
#include "tests/io/tmp_file.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <vector>

using namespace bioring;
using namespace bioring::test;

TEST_SUITE("io") {

    TEST_CASE("one file serves requests from every reactor and a fixed registration stays on its "
              "reactor") {
        TempPath p;
        auto f = open_or_skip(p.str(), rw_create());
        if (!f) {
            return;
        }
        RuntimeOptions ro;
        ro.threads = 3;
        Runtime rt(ro);
        REQUIRE(rt.size() == 3);

        // Phase 1 (no requests in flight): shard 0 registers the file.
        std::atomic<bool> registered{false};
        std::atomic<bool> uring{false};
        rt.run_on_all([&](unsigned shard) -> Task<void> {
            if (shard == 0) {
                registered = f->register_fixed();
                uring = Reactor::current()->backend() == Backend::uring;
            }
            co_return;
        });
        if (uring) {
            REQUIRE(registered);
        }

        // Phase 2: every shard writes and reads back its own 1 MiB region.
        constexpr std::size_t region = 1 << 20;
        constexpr std::size_t block = 65536;
        std::vector<int> fixed_seen(rt.size(), -1), plain_seen(rt.size(), -1);
        std::vector<int> errors(rt.size(), 0);
        rt.run_on_all([&](unsigned shard) -> Task<void> {
            AlignedBuffer w(block), r(block);
            CompletionTap tap;
            for (std::size_t off = shard * region; off < (shard + 1) * region; off += block) {
                fill_pattern(w.data, block, off, 50 + shard);
                const IoResult wr = co_await f->write(w.data, block, off);
                const IoResult rd = co_await f->read(r.data, block, off);
                if (wr.res != static_cast<int>(block) || rd.res != static_cast<int>(block) ||
                    first_mismatch(r.data, block, off, 50 + shard) != -1) {
                    ++errors[shard];
                }
            }
            int fixed = 0, plain = 0;
            for (const auto& s : tap.seen()) {
                (s.fixed_file ? fixed : plain)++;
            }
            fixed_seen[shard] = fixed;
            plain_seen[shard] = plain;
            CHECK(f->is_fixed() == (shard == 0 && registered));
        });

        // Phase 3: shard 0 drops the registration on its own thread.
        rt.run_on_all([&](unsigned shard) -> Task<void> {
            if (shard == 0) {
                f->unregister_fixed();
                CHECK_FALSE(f->is_fixed());
            }
            co_return;
        });

        const int per_shard = 2 * static_cast<int>(region / block);
        for (unsigned s = 0; s < rt.size(); ++s) {
            CAPTURE(s);
            CHECK(errors[s] == 0);
            CHECK(fixed_seen[s] + plain_seen[s] == per_shard);
            if (s == 0 && registered) {
                CHECK(fixed_seen[s] == per_shard);
            } else {
                CHECK(plain_seen[s] == per_shard);
            }
        }
        CHECK(f->size() == 3 * region);
    }

} // TEST_SUITE
