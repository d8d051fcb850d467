// SPDX-License-Identifier: MIT
// The request pipeline used by both apps, driven directly: verification finds the first
// differing byte and a short destination, a failing transform stops the run with its offset,
// and striping over several reactors covers every block exactly once.
#include "apps/common/pipeline.hpp"
#include <bioring/io/direct_file.hpp>
#include "tests/apps/app_support.hpp"

#include <atomic>
#include <mutex>
#include <set>

using namespace apps_test;
using bioring::DirectFile;
using bioring::OpenOptions;
using bioring::apps::PipelineConfig;
using bioring::apps::run_copy;
using bioring::apps::run_verify;

namespace {

DirectFile open_rw(const fs::path& p) {
    OpenOptions o;
    o.write = true;
    return DirectFile::open(p.string(), o);
}

} // namespace

TEST_SUITE("apps") {

    TEST_CASE("verify reports the first differing byte and a short destination") {
        Scratch d("shm");
        std::string data = random_string((3 << 20) + 100, 90);
        write_file(d / "a", data);
        data[(2 << 20) + 12345] ^= 0x01;
        write_file(d / "b", data);
        DirectFile a = DirectFile::open((d / "a").string());
        DirectFile b = DirectFile::open((d / "b").string());
        PipelineConfig cfg;
        cfg.size = data.size();
        cfg.block_size = 256 << 10;
        cfg.queue_depth = 4;
        cfg.threads = 2;
        cfg.dst_name = (d / "b").string();
        auto r = run_verify(a, b, cfg);
        CHECK_FALSE(r.ok);
        CAPTURE(r.error);
        CHECK(contains(r.error, "MISMATCH"));
        CHECK(contains(r.error, std::to_string((2 << 20) + 12345)));
        CHECK(contains(r.error, (d / "b").string()));

        write_file(d / "c", data.substr(0, 1 << 20));
        DirectFile c = DirectFile::open((d / "c").string());
        auto s = run_verify(a, c, cfg);
        CHECK_FALSE(s.ok);
        CHECK(contains(s.error, "shorter"));

        auto same = run_verify(a, a, cfg);
        CHECK(same.ok);
        CHECK(same.bytes == data.size());
    }

    TEST_CASE("a failing transform stops the run and names the offset") {
        Scratch d("shm");
        write_file(d / "src", random_string(8 << 20, 91));
        write_file(d / "dst", "");
        DirectFile src = DirectFile::open((d / "src").string());
        DirectFile dst = open_rw(d / "dst");
        PipelineConfig cfg;
        cfg.size = 8 << 20;
        cfg.block_size = 64 << 10;
        cfg.queue_depth = 2;
        cfg.threads = 1;
        cfg.dst_name = "dst";
        std::atomic<int> calls{0};
        cfg.transform = [&](unsigned, std::byte*, std::size_t, std::uint64_t off) {
            calls.fetch_add(1);
            return off != (1 << 20);
        };
        auto r = run_copy(src, dst, cfg);
        CHECK_FALSE(r.ok);
        CHECK(contains(r.error, "offset 1048576"));
        // Requests stop being issued after the failure: far fewer than the 128 blocks ran.
        CHECK(calls.load() < 40);
    }

    TEST_CASE("stripes over several reactors transform every block exactly once") {
        Scratch d("shm");
        const std::size_t size = (5 << 20) + 4096 * 3;
        write_file(d / "src", random_string(size, 92));
        write_file(d / "dst", "");
        DirectFile src = DirectFile::open((d / "src").string());
        DirectFile dst = open_rw(d / "dst");
        REQUIRE(::ftruncate(dst.fd(), static_cast<off_t>(size)) == 0);
        PipelineConfig cfg;
        cfg.size = size;
        cfg.block_size = 128 << 10;
        cfg.queue_depth = 3;
        cfg.threads = 3;
        cfg.dst_name = "dst";
        int tail_fd = ::open((d / "dst").c_str(), O_RDWR);
        REQUIRE(tail_fd >= 0);
        cfg.tail_fd = tail_fd;
        std::mutex mu;
        std::multiset<std::uint64_t> seen;
        std::set<unsigned> shards;
        cfg.transform = [&](unsigned shard, std::byte* buf, std::size_t len, std::uint64_t off) {
            for (std::size_t i = 0; i < len; ++i) {
                buf[i] = ~buf[i];
            }
            std::lock_guard lock(mu);
            seen.insert(off);
            shards.insert(shard);
            CHECK(off / cfg.block_size % 3 == shard);
            return true;
        };
        auto r = run_copy(src, dst, cfg);
        ::close(tail_fd);
        REQUIRE(r.ok);
        CHECK(r.threads == 3);
        CHECK(r.requests == (size + cfg.block_size - 1) / cfg.block_size);
        CHECK(seen.size() == r.requests);
        CHECK(std::set<std::uint64_t>(seen.begin(), seen.end()).size() == seen.size());
        CHECK(shards.size() == 3);
        std::string want = slurp(d / "src");
        for (auto& ch : want) {
            ch = static_cast<char>(~ch);
        }
        CHECK(slurp(d / "dst") == want);
    }

} // TEST_SUITE
