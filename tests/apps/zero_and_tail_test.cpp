// SPDX-License-Identifier: MIT
// Two data rules of the pipeline that a plain copy test does not see: all-zero blocks are
// written when the destination is a block device (only a fresh, pre-sized file reads zeros
// in its holes), and verification compares the unaligned tail too, not only the part
// written with O_DIRECT.
#include "apps/common/pipeline.hpp"
#include <bioring/io/direct_file.hpp>
#include "tests/apps/app_support.hpp"
#include "tests/support/loop_device.hpp"

#include <fcntl.h>
#include <unistd.h>

using namespace apps_test;
using bioring::DirectFile;
using bioring::apps::PipelineConfig;
using bioring::apps::run_verify;

TEST_SUITE("apps") {

    TEST_CASE("copy to a block device writes the all-zero blocks over what the device held") {
        Scratch d("ext4");
        const std::string image = (d / "image").string();
        write_file(image, std::string(8 << 20, '\xab'));
        bioring::test::LoopDevice loop(image);
        if (!loop.ok()) {
            BIORING_SKIP("cannot attach a loop device (needs root and losetup)");
        }
        // Random, a zero block run of 1 MiB, random, an unaligned tail.
        std::string data = random_string(1 << 20, 81) + std::string(1 << 20, '\0') +
                           random_string((1 << 20) + 77, 82);
        write_file(d / "src", data);
        Result r =
            run({BIORING_COPY_EXE, "--bs", "64K", (d / "src").string(), loop.path()}, d.path);
        CAPTURE(r.err);
        REQUIRE(r.status == 0);
        const std::string back = slurp(loop.path());
        REQUIRE(back.size() == 8u << 20);
        CHECK(back.substr(0, data.size()) == data);
        CHECK(back.substr(data.size()) == std::string((8 << 20) - data.size(), '\xab'));
    }

    TEST_CASE("verify finds a difference in the unaligned tail past the last O_DIRECT unit") {
        Scratch d("shm");
        for (std::size_t size :
             {std::size_t{100}, std::size_t{3 * 4096 + 100}, std::size_t{(1 << 20) + 4095}}) {
            CAPTURE(size);
            std::string data = random_string(size, 83);
            write_file(d / "a", data);
            const std::size_t at = size - 1 - (size % 4096) / 2; // inside the tail
            data[at] ^= 0x10;
            write_file(d / "b", data);
            DirectFile a = DirectFile::open((d / "a").string());
            DirectFile b = DirectFile::open((d / "b").string());
            PipelineConfig cfg;
            cfg.size = size;
            cfg.block_size = 64 << 10;
            cfg.queue_depth = 4;
            cfg.dst_name = (d / "b").string();
            auto r = run_verify(a, b, cfg);
            CHECK_FALSE(r.ok);
            CAPTURE(r.error);
            CHECK(contains(r.error, "MISMATCH"));
            CHECK(contains(r.error, "offset " + std::to_string(at)));
            CHECK(run_verify(a, a, cfg).ok);
        }
    }

    TEST_CASE("a source that ends before the size the run was given fails the copy") {
        Scratch d("shm");
        const std::string data = random_string((256 << 10) + 100, 84);
        write_file(d / "src", data);
        write_file(d / "dst", std::string());
        DirectFile src = DirectFile::open((d / "src").string());
        bioring::OpenOptions o;
        o.write = true;
        DirectFile dst = DirectFile::open((d / "dst").string(), o);
        const int tail_fd = ::open((d / "dst").c_str(), O_RDWR | O_CLOEXEC);
        REQUIRE(tail_fd >= 0);
        PipelineConfig cfg;
        cfg.size = data.size() + (128 << 10); // as if the source shrank after it was sized
        cfg.block_size = 64 << 10;
        cfg.queue_depth = 4;
        cfg.tail_fd = tail_fd;
        cfg.dst_name = (d / "dst").string();
        auto r = bioring::apps::run_copy(src, dst, cfg);
        ::close(tail_fd);
        CHECK_FALSE(r.ok);
        CAPTURE(r.error);
        CHECK(contains(r.error, "ended at offset"));
    }

} // TEST_SUITE
