// SPDX-License-Identifier: MIT
// The stacked block layers without the network: the file layer serves unaligned requests
// by read-modify-write without losing concurrent overlapping writes (one reactor and
// several), trims and zeroes with fallocate and reports holes; the crypt layer stores what
// bioring-crypt would store and reads it back; each request takes one frame per layer
// from that layer's own BioSet.
#include "apps/nbd/crypt_layer.hpp"
#include "apps/nbd/file_layer.hpp"
#include "tests/io/tmp_file.hpp"
#include "tests/nbd/nbd_support.hpp"

#include <bioring/alloc/buffer_pool.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/runtime.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/when_all.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <csignal>
#include <sys/resource.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <cstring>
#include <random>

using namespace bioring;
using namespace bioring::apps::nbd;
using bioring::test::TempPath;

namespace {

constexpr std::size_t file_bytes = 1 << 20;

FileLayer open_layer(const std::string& path, bool ro = false, bool direct = true) {
    OpenOptions o;
    o.write = !ro;
    o.direct = direct;
    return FileLayer(DirectFile::open(path, o), ro);
}

// A random mix of unaligned writes through the layer, checked against a model, then read
// back through the layer at random unaligned ranges.
void random_rw(BlockDevice& dev, std::vector<std::byte>& model, unsigned seed) {
    std::mt19937 rng(seed);
    Buffer io = BufferPool::global().alloc(BufferPool::max_buffer);
    REQUIRE(io);
    for (int i = 0; i < 200; ++i) {
        const std::uint32_t len = 1 + rng() % 20000;
        const std::uint64_t off = rng() % (dev.size() - len);
        const bool write = rng() % 2 == 0;
        // Misalign the buffer too, sometimes.
        std::byte* buf = io.data + (rng() % 3 == 0 ? rng() % 100 : 0);
        if (write) {
            for (std::uint32_t j = 0; j < len; ++j) {
                buf[j] = std::byte(rng());
            }
            IoResult r = sync_wait(dev.write(buf, len, off, i % 17 == 0));
            REQUIRE(r.res == 0);
            std::memcpy(model.data() + off, buf, len);
        } else {
            IoResult r = sync_wait(dev.read(buf, len, off));
            REQUIRE(r.res == 0);
            REQUIRE(std::memcmp(buf, model.data() + off, len) == 0);
        }
    }
    BufferPool::global().free(io);
}

} // namespace

TEST_SUITE("nbd") {

    TEST_CASE("file layer: unaligned reads and writes match a model on tmpfs and ext4") {
        for (const std::string& dir :
             {bioring::test::test_dir(), bioring::test::build_tree_dir()}) {
            CAPTURE(dir);
            TempPath p(dir, "nbd");
            auto model = nbd_test::random_bytes(file_bytes, 1);
            nbd_test::write_whole(p.str(), model);
            {
                FileLayer f = open_layer(p.str());
                CHECK(f.size() == file_bytes);
                random_rw(f, model, 2);
                CHECK(sync_wait(f.flush()).res == 0);
                // Out of range and read-only refusals.
                std::byte b[8];
                CHECK(sync_wait(f.read(b, 8, file_bytes - 4)).res == -EINVAL);
                CHECK(sync_wait(f.write(b, 8, file_bytes - 4, false)).res == -ENOSPC);
                CHECK(f.stats().foreign.load() == 0);
                CHECK(f.bioset().stats().oversized == 0);
                CHECK(f.stats().frames.load() == f.stats().requests.load());
            }
            CHECK(nbd_test::read_whole(p.str()) == model);
            FileLayer ro = open_layer(p.str(), true);
            std::byte b[8] = {};
            CHECK(sync_wait(ro.write(b, 8, 0, false)).res == -EPERM);
            CHECK(sync_wait(ro.zero(0, 8, true, false)).res == -EPERM);
        }
    }

    TEST_CASE("file layer: inline I/O on tmpfs matches a model and puts no read or write on "
              "the ring") {
        TempPath p(bioring::test::test_dir(), "nbd");
        auto model = nbd_test::random_bytes(file_bytes, 3);
        nbd_test::write_whole(p.str(), model);
        TempPath q(bioring::test::build_tree_dir(), "nbd");
        nbd_test::write_whole(q.str(), model);
        CHECK_FALSE(FileLayer::memory_file(open_layer(q.str()).file())); // ext4
        CHECK_FALSE(FileLayer::memory_file(open_layer(q.str(), false, false).file()));
        struct statfs fs {};
        REQUIRE(::statfs(bioring::test::test_dir().c_str(), &fs) == 0);
        if (fs.f_type != TMPFS_MAGIC) {
            MESSAGE("BIORING-SKIP: the test folder ", bioring::test::test_dir(),
                    " is not on tmpfs");
            return;
        }
        {
            FileLayer f = open_layer(p.str());
            CHECK(FileLayer::memory_file(f.file()));
            CHECK(FileLayer::memory_file(open_layer(p.str(), false, false).file()));
            CHECK_FALSE(f.inline_io());
            f.set_inline_io(true);
            Reactor reactor;
            REQUIRE(sync_wait(f.flush()).res == 0); // the ring's own first SQEs out of the count
            const std::uint64_t sqes0 = reactor.counters().sqes_submitted;
            const std::uint64_t syncs0 = f.syncs();
            random_rw(f, model, 4); // unaligned, bounced, read-modify-write, some FUA
            // Only the FUA writes' fdatasyncs went to the ring.
            CHECK(f.syncs() > syncs0);
            CHECK(reactor.counters().sqes_submitted - sqes0 == f.syncs() - syncs0);
            std::byte b[8];
            CHECK(sync_wait(f.read(b, 8, file_bytes - 4)).res == -EINVAL);
            CHECK(f.stats().frames.load() == f.stats().requests.load());
            // A write cut short (RLIMIT_FSIZE ends it after 4096 of 8192 bytes, then EFBIG) is
            // that error, not a success.
            Buffer w = BufferPool::global().alloc(8192);
            REQUIRE(w);
            std::memcpy(w.data, model.data() + 4096, 8192);
            rlimit old{};
            REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
            const auto old_sig = std::signal(SIGXFSZ, SIG_IGN);
            rlimit lim = old;
            lim.rlim_cur = 8192;
            REQUIRE(::setrlimit(RLIMIT_FSIZE, &lim) == 0);
            const int res = sync_wait(f.write(w.data, 8192, 4096, false)).res;
            ::setrlimit(RLIMIT_FSIZE, &old);
            std::signal(SIGXFSZ, old_sig);
            BufferPool::global().free(w);
            CHECK(res == -EFBIG);
        }
        CHECK(nbd_test::read_whole(p.str()) == model);
    }

    TEST_CASE("file layer: a FUA write in dsync mode is an RWF_DSYNC write, no fdatasync") {
        for (const std::string& dir :
             {bioring::test::test_dir(), bioring::test::build_tree_dir()}) {
            CAPTURE(dir);
            TempPath p(dir, "nbd");
            auto model = nbd_test::random_bytes(file_bytes, 5);
            nbd_test::write_whole(p.str(), model);
            FileLayer f = open_layer(p.str());
            f.set_fua_mode(FuaMode::dsync);
            std::vector<std::byte> data = nbd_test::random_bytes(3 * 4096, 6);
            // Aligned (straight to the file) and unaligned (read-modify-write pieces).
            CHECK(sync_wait(f.write(data.data(), 8192, 4096, true)).res == 0);
            CHECK(sync_wait(f.write(data.data(), 5000, 20000, true)).res == 0);
            CHECK(f.dsync_writes() == 2);
            CHECK(f.syncs() == 0);
            std::memcpy(model.data() + 4096, data.data(), 8192);
            std::memcpy(model.data() + 20000, data.data(), 5000);
            CHECK(sync_wait(f.write(data.data(), 4096, 0, false)).res == 0);
            std::memcpy(model.data(), data.data(), 4096);
            CHECK(f.dsync_writes() == 2);
            CHECK(sync_wait(f.flush()).res == 0); // FLUSH is still the whole file's fdatasync
            CHECK(f.syncs() == 1);
            CHECK(nbd_test::read_whole(p.str()) == model);
        }
    }

    TEST_CASE("file layer: a buffered file (--cache writeback) has no alignment rules") {
        for (const std::string& dir :
             {bioring::test::test_dir(), bioring::test::build_tree_dir()}) {
            CAPTURE(dir);
            TempPath p(dir, "nbd");
            const std::size_t odd_size = file_bytes - 1000; // not a multiple of any block
            auto model = nbd_test::random_bytes(odd_size, 9);
            nbd_test::write_whole(p.str(), model);
            {
                FileLayer f = open_layer(p.str(), false, false);
                CHECK(f.alignment() == 1);
                CHECK(f.size() == odd_size); // exported whole: nothing dropped
                CHECK(f.dropped_tail() == 0);
                random_rw(f, model, 10);
                // Zeroes and a trim at odd offsets: exact bytes, no widening.
                CHECK(sync_wait(f.zero(4097, 3001, false, false)).res == 0);
                std::fill(model.begin() + 4097, model.begin() + 4097 + 3001, std::byte{0});
                CHECK(sync_wait(f.zero(20001, 999, true, false)).res == 0);
                std::fill(model.begin() + 20001, model.begin() + 21000, std::byte{0});
                CHECK(sync_wait(f.flush()).res == 0);
                CHECK(f.stats().frames.load() == f.stats().requests.load());
            }
            CHECK(nbd_test::read_whole(p.str()) == model);
        }
    }

    TEST_CASE("file layer: a FUA write in flush mode (the default) is followed by fdatasync") {
        TempPath p(bioring::test::build_tree_dir(), "nbd");
        auto model = nbd_test::random_bytes(file_bytes, 7);
        nbd_test::write_whole(p.str(), model);
        FileLayer f = open_layer(p.str());
        std::vector<std::byte> data = nbd_test::random_bytes(2 * 4096, 8);
        CHECK(sync_wait(f.write(data.data(), 8192, 4096, true)).res == 0);
        CHECK(sync_wait(f.write(data.data(), 5000, 20000, true)).res == 0); // unaligned
        CHECK(f.syncs() == 2);
        CHECK(f.dsync_writes() == 0);
        CHECK(sync_wait(f.write(data.data(), 4096, 0, false)).res == 0);
        CHECK(f.syncs() == 2); // no FUA: no sync
        std::memcpy(model.data() + 4096, data.data(), 8192);
        std::memcpy(model.data() + 20000, data.data(), 5000);
        std::memcpy(model.data(), data.data(), 4096);
        CHECK(nbd_test::read_whole(p.str()) == model);
    }

    TEST_CASE("file layer: a size off the O_DIRECT block is exported rounded down") {
        TempPath p(bioring::test::test_dir(), "nbd");
        nbd_test::write_whole(p.str(), nbd_test::random_bytes(10000, 3));
        FileLayer f = open_layer(p.str());
        CHECK(f.size() == 8192);
        CHECK(f.dropped_tail() == 10000 - 8192);
        std::byte b[100] = {};
        CHECK(sync_wait(f.write(b, 100, 8100, false)).res == -ENOSPC);
        CHECK(sync_wait(f.write(b, 92, 8100, false)).res == 0);
        CHECK(std::filesystem::file_size(p.str()) == 10000);
    }

    // Many writes to disjoint bytes of the same few blocks, all in flight at once: each one
    // widens to whole blocks, so without the range lock a read-modify-write would put back
    // bytes another write had just changed.
    Task<void> write_bytes(FileLayer & f, std::uint64_t off, std::uint32_t len, std::byte v) {
        std::vector<std::byte> data(len, v);
        IoResult r = co_await f.write(data.data(), len, off, false);
        REQUIRE(r.res == 0);
    }

    TEST_CASE("file layer: concurrent overlapping read-modify-writes lose nothing") {
        for (const std::string& dir :
             {bioring::test::test_dir(), bioring::test::build_tree_dir()}) {
            CAPTURE(dir);
            TempPath p(dir, "nbd");
            nbd_test::write_whole(p.str(), std::vector<std::byte>(64 * 1024));
            FileLayer f = open_layer(p.str());
            std::vector<std::byte> expect(64 * 1024);
            std::vector<Task<void>> ts;
            for (unsigned i = 0; i < 200; ++i) {
                const std::uint64_t off = 4000 + i * 37; // 37-byte pieces across 3 blocks
                const std::byte v = std::byte(i + 1);
                ts.push_back(write_bytes(f, off, 37, v));
                std::memset(expect.data() + off, int(i + 1), 37);
            }
            sync_wait(when_all(std::move(ts)));
            CHECK(nbd_test::read_whole(p.str()) == expect);
            CHECK(f.range_lock().waits() > 0); // they did collide
        }
    }

    TEST_CASE("file layer: overlapping writes from several reactors at once lose nothing") {
        TempPath p(bioring::test::test_dir(), "nbd");
        nbd_test::write_whole(p.str(), std::vector<std::byte>(64 * 1024));
        FileLayer f = open_layer(p.str());
        std::vector<std::byte> expect(64 * 1024);
        for (unsigned i = 0; i < 4 * 100; ++i) {
            std::memset(expect.data() + 1000 + i * 29, int(i % 251 + 1), 29);
        }
        RuntimeOptions ro;
        ro.threads = 4;
        Runtime rt(ro);
        rt.run_on_all([&](unsigned shard) -> Task<void> {
            std::vector<Task<void>> ts;
            for (unsigned k = 0; k < 100; ++k) {
                const unsigned i = k * 4 + shard; // shards interleave within each block
                ts.push_back(write_bytes(f, 1000 + i * 29, 29, std::byte(i % 251 + 1)));
            }
            return when_all(std::move(ts));
        });
        CHECK(nbd_test::read_whole(p.str()) == expect);
    }

    TEST_CASE("file layer: trim punches holes and zero honours NO_HOLE and FAST_ZERO") {
        for (const std::string& dir :
             {bioring::test::test_dir(), bioring::test::build_tree_dir()}) {
            CAPTURE(dir);
            const bool tmpfs = dir == bioring::test::test_dir();
            TempPath p(dir, "nbd");
            auto model = nbd_test::random_bytes(file_bytes, 5);
            nbd_test::write_whole(p.str(), model);
            FileLayer f = open_layer(p.str());
            Extent ex[16];
            IoResult r = sync_wait(f.block_status(0, file_bytes, ex));
            REQUIRE(r.res == 1);
            CHECK(ex[0].length == file_bytes);
            CHECK(ex[0].flags == 0);

            // Trim of [100000, 300000): whole blocks inside punched, the edges kept.
            REQUIRE(sync_wait(f.trim(100000, 200000)).res == 0);
            const std::uint64_t a = f.alignment();
            const std::uint64_t hb = (100000 + a - 1) / a * a, he = 300000 / a * a;
            std::memset(model.data() + hb, 0, he - hb);
            CHECK(nbd_test::read_whole(p.str()) == model);
            r = sync_wait(f.block_status(0, file_bytes, ex));
            REQUIRE(r.res >= 3);
            CHECK(ex[0].flags == 0);
            CHECK(ex[1].flags == (state_hole | state_zero));
            std::uint64_t sum = 0;
            for (int i = 0; i < r.res; ++i) {
                sum += ex[i].length;
            }
            CHECK(sum == file_bytes);

            // Zero, holes allowed, unaligned: exact bytes zeroed.
            REQUIRE(sync_wait(f.zero(500001, 70000, true, false)).res == 0);
            std::memset(model.data() + 500001, 0, 70000);
            // Zero with NO_HOLE: ZERO_RANGE on ext4, written zeroes on tmpfs.
            REQUIRE(sync_wait(f.zero(700003, 50000, false, false)).res == 0);
            std::memset(model.data() + 700003, 0, 50000);
            CHECK(nbd_test::read_whole(p.str()) == model);
            // FAST_ZERO with NO_HOLE: ext4 can, tmpfs cannot (and then nothing changes).
            r = sync_wait(f.zero(800000, 100000, false, true));
            if (tmpfs) {
                CHECK(r.res == -EOPNOTSUPP);
            } else {
                CHECK(r.res == 0);
                std::memset(model.data() + 800000, 0, 100000);
            }
            CHECK(nbd_test::read_whole(p.str()) == model);
            std::vector<std::byte> back(file_bytes);
            REQUIRE(sync_wait(f.read(back.data(), file_bytes, 0)).res == 0);
            CHECK(back == model);
        }
    }

    TEST_CASE(
        "crypt layer: the backing file holds what bioring-crypt stores at both sector sizes") {
        for (std::uint32_t ss : {512u, 4096u}) {
            for (std::uint64_t offset : {std::uint64_t{0}, std::uint64_t{8192}}) {
                CAPTURE(ss);
                CAPTURE(offset);
                apps::SectorFormat fmt;
                fmt.sector_size = ss;
                fmt.skip = 8;
                fmt.iv_large_sectors = ss == 4096;
                TempPath p(bioring::test::test_dir(), "nbd");
                auto header = nbd_test::random_bytes(offset, 9);
                std::vector<std::byte> backing = header;
                backing.resize(offset + file_bytes);
                nbd_test::write_whole(p.str(), backing);
                FileLayer f = open_layer(p.str());
                CryptLayer c(f, nbd_test::test_key(), fmt, offset);
                REQUIRE(c.size() == file_bytes);
                std::vector<std::byte> plain(file_bytes); // the device starts as decrypted zeroes
                {
                    auto enc0 = nbd_test::encrypt_ref(std::vector<std::byte>(file_bytes), fmt);
                    std::memcpy(backing.data() + offset, enc0.data(), file_bytes);
                    nbd_test::write_whole(p.str(), backing);
                }
                random_rw(c, plain, 11);
                REQUIRE(sync_wait(c.zero(3333, 9000, true, false)).res == 0);
                std::memset(plain.data() + 3333, 0, 9000);
                CHECK(sync_wait(c.zero(0, 4096, true, true)).res == -EOPNOTSUPP);
                CHECK(sync_wait(c.trim(0, 4096)).res == -EOPNOTSUPP);
                REQUIRE(sync_wait(c.flush()).res == 0);
                auto disk = nbd_test::read_whole(p.str());
                REQUIRE(disk.size() == offset + file_bytes);
                CHECK(std::equal(header.begin(), header.end(), disk.begin())); // untouched
                auto expect = nbd_test::encrypt_ref(plain, fmt);
                CHECK(std::equal(expect.begin(), expect.end(), disk.begin() + offset));
                Extent ex[4];
                CHECK(sync_wait(c.block_status(0, 4096, ex)).res == 1);
                // One crypt frame and at least one file frame per data request.
                CHECK(c.stats().foreign.load() == 0);
                CHECK(f.stats().foreign.load() == 0);
                CHECK(c.bioset().stats().oversized == 0);
                CHECK(f.bioset().stats().oversized == 0);
                Layer* layers[] = {&c, &f};
                const std::string table = stats_table(layers);
                CHECK(table.find("crypt") != std::string::npos);
                CHECK(table.find("file") != std::string::npos);
            }
        }
    }

    TEST_CASE("crypt layer: a bad key or offset is refused at construction") {
        TempPath p(bioring::test::test_dir(), "nbd");
        nbd_test::write_whole(p.str(), std::vector<std::byte>(65536));
        FileLayer f = open_layer(p.str());
        apps::SectorFormat fmt;
        std::vector<std::byte> same(64, std::byte{1}); // XTS halves equal
        CHECK_THROWS_AS(CryptLayer(f, same, fmt, 0), std::invalid_argument);
        CHECK_THROWS_AS(CryptLayer(f, nbd_test::test_key(), fmt, 100), std::invalid_argument);
        CHECK_THROWS_AS(CryptLayer(f, nbd_test::test_key(), fmt, 65536), std::invalid_argument);
        fmt.sector_size = 1024;
        CHECK_THROWS_AS(CryptLayer(f, nbd_test::test_key(), fmt, 0), std::invalid_argument);
    }

} // TEST_SUITE
