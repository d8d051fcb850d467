// SPDX-License-Identifier: MIT
// The NBD front end over a real socket pair: a raw client negotiates, then writes and
// reads through the whole stack (front end, file layer); after warm-up no request makes a
// heap call, and each takes exactly one frame from the front end's BioSet. The count comes
// from malloc-family hooks in this binary; sanitizer builds own malloc (a skip there).
#include "apps/nbd/file_layer.hpp"
#include "apps/nbd/nbd_front.hpp"
#include "tests/io/heap_hooks.hpp" // defines malloc: included by this file only
#include "tests/io/tmp_file.hpp"
#include "tests/nbd/raw_client.hpp"
#include "tests/nbd/nbd_support.hpp"

#include <bioring/alloc/buffer_pool.hpp>
#include <bioring/io/socket.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/when_all.hpp>

#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

using namespace bioring;
using namespace bioring::apps::nbd;

namespace {

struct Outcome {
    int failures = 0;
    std::uint64_t heap = 0;
    std::uint64_t frames = 0;
    int requests = 0;
};

// A raw NBD client on @s: GO on the default export, then @warm + @n rounds of a 64 KiB
// WRITE and a READ of it, each awaited before the next; then DISC.
Task<void> client(Socket& s, NbdFront& front, Buffer buf, int warm, int n, Outcome& out) {
    std::array<std::byte, 512> b{};
    auto fail = [&] { ++out.failures; };
    if (!co_await nbd_test::go_default_export(s)) {
        fail();
        co_return;
    }
    for (int i = 0; i < warm + n; ++i) {
        if (i == warm) {
            out.heap = heap_calls.load();
            out.frames = front.stats().frames.load();
        }
        const std::uint64_t off = (i % 32) * 65536u;
        std::memset(buf.data, i & 0xff, 65536);
        iovec iov[2] = {{b.data(), request_size}, {buf.data, 65536}};
        build_request(b, Request{0, cmd_write, std::uint64_t(i), off, 65536});
        co_await s.sendmsg_all(iov, 2);
        if ((co_await s.recv_exact(b.data(), simple_reply_size)).res != 16 ||
            get32(b.data() + 4) != 0) {
            fail();
        }
        build_request(b, Request{0, cmd_read, std::uint64_t(i), off, 65536});
        co_await s.send_all(b.data(), request_size);
        std::memset(buf.data, 0, 65536);
        iov[0].iov_len = simple_reply_size;
        if ((co_await s.recvmsg_exact(iov, 2)).res != 16 + 65536 || get32(b.data() + 4) != 0 ||
            buf.data[65535] != std::byte(i & 0xff)) {
            fail();
        }
    }
    out.heap = heap_calls.load() - out.heap;
    out.frames = front.stats().frames.load() - out.frames;
    out.requests = 2 * n;
    build_request(b, Request{0, cmd_disc, 0, 0, 0});
    co_await s.send_all(b.data(), request_size);
}

} // namespace

TEST_SUITE("nbd") {

    TEST_CASE("the NBD front end makes no heap call per request and one frame each") {
#if defined(BIORING_SANITIZED)
        MESSAGE(
            "BIORING-SKIP: sanitizer builds replace malloc; the heap-call count runs in Release");
        return;
#else
        Reactor reactor;
        bioring::test::TempPath p(bioring::test::test_dir(), "nbd");
        nbd_test::write_whole(p.str(), std::vector<std::byte>(4 << 20));
        OpenOptions oo;
        oo.write = true;
        FileLayer file(DirectFile::open(p.str(), oo), false);
        NbdFront front(file, FrontOptions{});
        auto pair = Socket::pair();
        REQUIRE(pair);
        Buffer buf = BufferPool::global().alloc(65536);
        REQUIRE(buf);
        Outcome out;
        std::stop_source stop;
        front.begin_connection();
        std::vector<Task<void>> ts;
        ts.push_back(front.serve(std::move(pair->first), stop.get_token()));
        ts.push_back(client(pair->second, front, buf, 200, 2000, out));
        sync_wait(when_all(std::move(ts)));
        BufferPool::global().free(buf);
        CHECK(out.failures == 0);
        MESSAGE("heap calls over ", out.requests, " requests: ", out.heap,
                "; front frames: ", out.frames);
        CHECK(out.heap == 0);
        CHECK(out.frames == std::uint64_t(out.requests));
        CHECK(front.connections() == 0);
        CHECK(front.bioset().stats().oversized == 0);
        CHECK(file.bioset().stats().oversized == 0);
#endif
    }

} // TEST_SUITE
