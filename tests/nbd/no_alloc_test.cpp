// SPDX-License-Identifier: MIT
// The stacked layers allocate nothing per request in steady state: after warm-up, requests
// through the crypt and file layers (aligned and unaligned, reads, writes, zeroes) make
// zero calls into the C heap, and each takes its frames from its layers' own BioSets (one
// per layer for an aligned request; the unaligned ones show their extra lower requests).
// The count comes from malloc-family hooks in this binary; sanitizer builds own malloc, so
// there the test reports a skip.
#include "apps/nbd/crypt_layer.hpp"
#include "apps/nbd/file_layer.hpp"
#include "tests/io/heap_hooks.hpp" // defines malloc: included by this file only
#include "tests/io/tmp_file.hpp"
#include "tests/nbd/nbd_support.hpp"

#include <bioring/alloc/buffer_pool.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sync_wait.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>

using namespace bioring;
using namespace bioring::apps::nbd;

namespace {

Task<int> mixed(BlockDevice& d, std::byte* buf, int i) {
    int bad = 0;
    const std::uint64_t off = (i % 64) * 16384u;
    bad += (co_await d.write(buf, 16384, off, false)).res != 0;
    bad += (co_await d.read(buf, 16384, off)).res != 0;
    bad += (co_await d.write(buf + 1, 1000, off + 77, false)).res != 0; // read-modify-write
    bad += (co_await d.read(buf + 3, 5000, off + 333)).res != 0;
    bad += (co_await d.zero(off + 100, 3000, false, false)).res != 0;
    co_return bad;
}

} // namespace

TEST_SUITE("nbd") {

    TEST_CASE("the file and crypt layers make no heap call per request in steady state") {
#if defined(BIORING_SANITIZED)
        MESSAGE(
            "BIORING-SKIP: sanitizer builds replace malloc; the heap-call count runs in Release");
        return;
#else
        const std::uint64_t probe0 = heap_calls.load();
        void* volatile probe = std::malloc(16);
        std::free(probe);
        REQUIRE(heap_calls.load() - probe0 >= 1);

        Reactor reactor;
        bioring::test::TempPath p(bioring::test::test_dir(), "nbd");
        nbd_test::write_whole(p.str(), std::vector<std::byte>(2 << 20));
        OpenOptions oo;
        oo.write = true;
        FileLayer file(DirectFile::open(p.str(), oo), false);
        apps::SectorFormat fmt;
        CryptLayer crypt(file, nbd_test::test_key(), fmt, 0);
        Buffer b = BufferPool::global().alloc(BufferPool::max_buffer);
        REQUIRE(b);
        for (BlockDevice* d :
             {static_cast<BlockDevice*>(&file), static_cast<BlockDevice*>(&crypt)}) {
            CAPTURE(d->name());
            int bad = 0;
            for (int i = 0; i < 200; ++i) {
                bad += sync_wait(mixed(*d, b.data, i));
            }
            const std::uint64_t heap0 = heap_calls.load();
            const std::uint64_t file0 = file.stats().frames.load();
            const std::uint64_t crypt0 = crypt.stats().frames.load();
            constexpr int n = 2000;
            for (int i = 0; i < n; ++i) {
                bad += sync_wait(mixed(*d, b.data, i));
            }
            const std::uint64_t heap = heap_calls.load() - heap0;
            CHECK(bad == 0);
            MESSAGE(d->name(), ": heap calls over ", n * 5, " requests: ", heap);
            // sync_wait's driver frame comes from the reactor's set; only the layers' frames
            // are counted here.
            CHECK(heap == 0);
            if (d == &file) {
                CHECK(file.stats().frames.load() - file0 == n * 5u);
            } else {
                CHECK(crypt.stats().frames.load() - crypt0 == n * 5u);
                CHECK(file.stats().frames.load() - file0 >= n * 5u);
            }
            CHECK(file.stats().foreign.load() == 0);
            CHECK(crypt.stats().foreign.load() == 0);
            CHECK(file.bioset().stats().oversized == 0);
            CHECK(crypt.bioset().stats().oversized == 0);
        }
        BufferPool::global().free(b);
#endif
    }

} // TEST_SUITE
