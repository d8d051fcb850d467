// SPDX-License-Identifier: MIT
// The NBD front end's reply queue (apps/nbd/reply_queue.hpp) over a real socket pair:
// replies that become ready while a send is in flight leave together in the next sendmsg,
// each whole and exactly once; a lone request's reply is sent at once; a client that
// vanishes with replies queued ends the connection with nothing left behind.
#include "apps/nbd/file_layer.hpp"
#include "apps/nbd/nbd_front.hpp"
#include "apps/nbd/reply_queue.hpp"
#include "tests/io/tmp_file.hpp"
#include "tests/nbd/nbd_support.hpp"
#include "tests/nbd/raw_client.hpp"

#include <bioring/alloc/buffer_pool.hpp>
#include <bioring/io/socket.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sleep.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/when_all.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <set>
#include <vector>

using namespace bioring;
using namespace bioring::apps::nbd;
using namespace std::chrono_literals;

namespace {

struct Burst {
    int count;             ///< READs pipelined at once
    std::uint32_t len;     ///< bytes each
    bool vanish = false;   ///< close instead of reading the replies
};

struct Outcome {
    int failures = 0;
    int replies = 0;
    std::uint64_t sends_before = 0; // reply sends before the pipelined burst
};

// Send @b.count READs of @b.len (cookie i reads block i) in one write; with @b.vanish close
// at once, else wait (the server's sends stall on the full socket while every other reply
// becomes ready) and then read and check every reply.
Task<void> client(Socket& s, NbdFront& front, const std::vector<std::byte>& model, Burst b,
                  Outcome& out) {
    const int pipelined = b.count;
    const std::uint32_t read_len = b.len;
    if (!co_await nbd_test::go_default_export(s)) {
        ++out.failures;
        co_return;
    }
    std::array<std::byte, request_size> rq;
    // One lone request first: its reply leaves at once, in a send of its own.
    build_request(rq, Request{0, cmd_read, 1000, 0, 512});
    std::vector<std::byte> data(std::max<std::uint32_t>(read_len, 512));
    std::array<std::byte, simple_reply_size> rh;
    co_await s.send_all(rq.data(), rq.size());
    iovec one[2] = {{rh.data(), rh.size()}, {data.data(), 512}};
    if ((co_await s.recvmsg_exact(one, 2)).res != int(simple_reply_size + 512) ||
        get64(rh.data() + 8) != 1000 || std::memcmp(data.data(), model.data(), 512) != 0) {
        ++out.failures;
    }
    out.sends_before = front.reply_sends();
    std::vector<std::byte> burst(pipelined * request_size);
    for (int i = 0; i < pipelined; ++i) {
        std::array<std::byte, request_size> h;
        build_request(h, Request{0, cmd_read, std::uint64_t(i), std::uint64_t(i) * read_len,
                                 read_len});
        std::memcpy(burst.data() + i * request_size, h.data(), request_size);
    }
    co_await s.send_all(burst.data(), burst.size());
    if (b.vanish) {
        co_await s.close();
        co_return;
    }
    co_await sleep_for(200ms);
    std::set<std::uint64_t> seen;
    for (int i = 0; i < pipelined; ++i) {
        iovec iov[2] = {{rh.data(), rh.size()}, {data.data(), read_len}};
        if ((co_await s.recvmsg_exact(iov, 2)).res != int(simple_reply_size + read_len)) {
            ++out.failures;
            break;
        }
        const std::uint64_t cookie = get64(rh.data() + 8);
        if (get32(rh.data()) != simple_reply_magic || get32(rh.data() + 4) != 0 ||
            cookie >= std::uint64_t(pipelined) || !seen.insert(cookie).second ||
            std::memcmp(data.data(), model.data() + cookie * read_len, read_len) != 0) {
            ++out.failures;
        }
        ++out.replies;
    }
    build_request(rq, Request{0, cmd_disc, 0, 0, 0});
    co_await s.send_all(rq.data(), rq.size());
}

void run(Burst b) {
    Reactor reactor;
    bioring::test::TempPath p(bioring::test::test_dir(), "nbd");
    const auto model = nbd_test::random_bytes(std::max<std::size_t>(std::size_t(b.count) * b.len, 4096), 7);
    nbd_test::write_whole(p.str(), model);
    OpenOptions oo;
    oo.write = true;
    FileLayer file(DirectFile::open(p.str(), oo), false);
    FrontOptions fo;
    fo.max_requests = 1024; // the whole burst in flight at once
    NbdFront front(file, fo);
    auto pair = Socket::pair();
    REQUIRE(pair);
    Outcome out;
    std::stop_source stop;
    front.begin_connection();
    std::vector<Task<void>> ts;
    ts.push_back(front.serve(std::move(pair->first), stop.get_token()));
    ts.push_back(client(pair->second, front, model, b, out));
    sync_wait(when_all(std::move(ts)));
    CHECK(out.failures == 0);
    CHECK(out.sends_before == 1); // the lone reply: one send of its own
    CHECK(front.connections() == 0);
    CHECK(front.stats().in_use.load() == 0);
    if (!b.vanish) {
        CHECK(out.replies == b.count);
        CHECK(front.replies_sent() == 1 + std::uint64_t(b.count));
        const std::uint64_t sends = front.reply_sends() - out.sends_before;
        MESSAGE(b.count, " replies ready while the socket was full went out in ", sends,
                " sends");
        // The first few fill the socket; the rest wait behind the stalled send together
        // (a batch carries at most ReplyQueue::max_segments segments, 2 per reply here).
        CHECK(sends <= 8);
        CHECK(sends >= (2 * std::uint64_t(b.count) + ReplyQueue::max_segments - 1) /
                           ReplyQueue::max_segments);
    }
}

} // namespace

TEST_SUITE("nbd") {

    TEST_CASE("replies: those ready during a send leave together, whole and once each") {
        run(Burst{64, 65536});
    }

    TEST_CASE("replies: 600 small ones ready at once leave in batches of whole replies, "
              "1024 segments at most") {
        run(Burst{600, 4096});
    }

    TEST_CASE("replies: a client vanishing with 64 replies queued ends the connection cleanly") {
        run(Burst{64, 65536, true});
    }

} // TEST_SUITE
