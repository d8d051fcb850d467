// SPDX-License-Identifier: MIT
// Issue 16: the NBD server under allocation failure. Every BioSet allocation beyond the
// reserves fails (FailureInjector::fail_always() with each layer's slab cache drained) while a
// raw client pipelines 512 mixed READ/WRITE requests on a connection allowed 512 in flight,
// over layers whose reserves are much smaller than that: every request must be answered
// correctly (requests wait for a lower layer's free, they neither fail nor hang), the
// connection keeps serving afterwards, and every layer's objects come back (reserves full,
// nothing in use).
#include "apps/nbd/crypt_layer.hpp"
#include "apps/nbd/file_layer.hpp"
#include "apps/nbd/nbd_front.hpp"
#include "tests/io/tmp_file.hpp"
#include "tests/nbd/nbd_support.hpp"
#include "tests/nbd/raw_client.hpp"

#include <bioring/alloc/buffer_pool.hpp>
#include <bioring/alloc/failure_injector.hpp>
#include <bioring/io/socket.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/when_all.hpp>

#include <doctest/doctest.h>

#include <array>
#include <cstring>
#include <memory>
#include <vector>

using namespace bioring;
using namespace bioring::apps::nbd;
using bioring::apps::SectorFormat;

namespace {

constexpr int pipelined = 512;
constexpr std::uint32_t block = 4096;
constexpr std::uint64_t read_base = 4u << 20; // READs look at [4 MiB, 8 MiB): never written

/// Request @i: even ones WRITE block i/2 (some unaligned, through the bounce buffers), odd
/// ones READ a block of the untouched half.
Request request_of(int i) {
    const auto n = static_cast<std::uint64_t>(i);
    if (i % 2 == 0) {
        const bool unaligned = i % 6 == 0;
        return Request{0, cmd_write, n, (n / 2) * block + (unaligned ? 100 : 0),
                       unaligned ? block - 200 : block};
    }
    return Request{0, cmd_read, n, read_base + (n / 2) * block, block};
}

std::byte pattern(int i, std::size_t k) {
    return std::byte((i * 131 + k * 7 + 1) & 0xff);
}

/// Take every free object of @set's slab cache (fail_always() stops it from growing), so
/// that the next allocation beyond them comes from the reserve or fails. The objects are
/// kept in @held and freed by the caller.
void drain(BioSet& set, std::vector<std::pair<BioSet*, Bio*>>& held) {
    for (;;) {
        Bio* b = set.alloc();
        if (b == nullptr) {
            return;
        }
        if ((b->alloc_flags & BioSet::flag_reserve) != 0) {
            set.free(b); // back into the reserve: the cache is empty now
            return;
        }
        held.emplace_back(&set, b);
    }
}

struct Outcome {
    int bad_replies = 0;
    int replies = 0;
    bool served_after = false;
};

Task<void> sender(Socket& s) {
    std::vector<std::byte> msg(request_size + block);
    for (int i = 0; i < pipelined; ++i) {
        const Request r = request_of(i);
        build_request(std::span<std::byte, request_size>(msg.data(), request_size), r);
        std::size_t n = request_size;
        if (r.type == cmd_write) {
            for (std::size_t k = 0; k < r.length; ++k) {
                msg[request_size + k] = pattern(i, k);
            }
            n += r.length;
        }
        co_await s.send_all(msg.data(), n);
    }
}

Task<void> receiver(Socket& s, const std::vector<std::byte>& initial, Outcome& out) {
    std::vector<std::byte> buf(block);
    std::array<std::byte, simple_reply_size> h{};
    for (int k = 0; k < pipelined; ++k) {
        if ((co_await s.recv_exact(h.data(), h.size())).res != int(h.size())) {
            ++out.bad_replies;
            co_return;
        }
        const int i = static_cast<int>(get64(h.data() + 8));
        const Request r = request_of(i);
        ++out.replies;
        if (get32(h.data()) != simple_reply_magic || get32(h.data() + 4) != 0) {
            ++out.bad_replies;
            continue;
        }
        if (r.type == cmd_read) {
            if ((co_await s.recv_exact(buf.data(), r.length)).res != int(r.length)) {
                ++out.bad_replies;
                co_return;
            }
            if (std::memcmp(buf.data(), initial.data() + r.offset, r.length) != 0) {
                ++out.bad_replies;
            }
        }
    }
}

/// After the storm: one more write and read on the same connection, then DISC.
Task<void> afterwards(Socket& s, Outcome& out) {
    std::array<std::byte, request_size + block> b{};
    build_request(std::span<std::byte, request_size>(b.data(), request_size),
                  Request{0, cmd_write, 9999, 6u << 20, block});
    std::memset(b.data() + request_size, 0x5a, block);
    co_await s.send_all(b.data(), b.size());
    std::array<std::byte, simple_reply_size> h{};
    bool ok = (co_await s.recv_exact(h.data(), h.size())).res == int(h.size()) &&
              get32(h.data() + 4) == 0;
    build_request(std::span<std::byte, request_size>(b.data(), request_size),
                  Request{0, cmd_read, 10000, 6u << 20, block});
    co_await s.send_all(b.data(), request_size);
    ok = ok && (co_await s.recv_exact(h.data(), h.size())).res == int(h.size()) &&
         get32(h.data() + 4) == 0 && (co_await s.recv_exact(b.data(), block)).res == int(block) &&
         b[0] == std::byte{0x5a} && b[block - 1] == std::byte{0x5a};
    out.served_after = ok;
    build_request(std::span<std::byte, request_size>(b.data(), request_size),
                  Request{0, cmd_disc, 0, 0, 0});
    co_await s.send_all(b.data(), request_size);
}

Task<void> client(Socket& s, const std::vector<std::byte>& initial, Outcome& out) {
    if (!co_await nbd_test::go_default_export(s)) {
        ++out.bad_replies;
        co_return;
    }
    std::vector<Task<void>> ts;
    ts.push_back(sender(s));
    ts.push_back(receiver(s, initial, out));
    co_await when_all(std::move(ts));
    co_await afterwards(s, out);
}

void storm(bool with_crypt) {
    // The connection's own coroutines (serve, the reader, this test's client) take their
    // frames from the reactor's default bioset: pad it for them so that they come from its
    // reserve too instead of an oversized cache, which has none.
    ReactorOptions ro;
    ro.default_front_pad = 16384;
    Reactor reactor(ro);
    bioring::test::TempPath p(bioring::test::test_dir(), "nbd-oom");
    const std::vector<std::byte> initial = nbd_test::random_bytes(8u << 20, 16);
    // The crypt layer reads what it decrypts: lay the file down as its ciphertext so that the
    // untouched half reads back as `initial` through either stack.
    nbd_test::write_whole(p.str(),
                          with_crypt ? nbd_test::encrypt_ref(initial, SectorFormat{}) : initial);
    OpenOptions oo;
    oo.write = true;
    // Reserves far below the 512 requests in flight: the lower layers must make requests
    // wait for a free, not fail them.
    FileLayer file(DirectFile::open(p.str(), oo), false, 4);
    const std::vector<std::byte> key = nbd_test::test_key();
    std::unique_ptr<CryptLayer> crypt;
    if (with_crypt) {
        crypt = std::make_unique<CryptLayer>(file, key, SectorFormat{}, 0, 4);
    }
    BlockDevice& top = with_crypt ? static_cast<BlockDevice&>(*crypt) : file;
    FrontOptions fo;
    fo.max_requests = pipelined;
    NbdFront front(top, fo);
    auto pair = Socket::pair();
    REQUIRE(pair);

    // Buffers are not what this test starves: let the pool map its first arena now.
    Buffer warm = BufferPool::global().alloc(BufferPool::max_buffer);
    REQUIRE(warm);
    BufferPool::global().free(warm);

    std::vector<std::pair<BioSet*, Bio*>> held;
    FailureInjector::fail_always();
    drain(front.bioset(), held);
    drain(file.bioset(), held);
    if (crypt) {
        drain(crypt->bioset(), held);
    }
    Outcome out;
    std::stop_source stop;
    front.begin_connection();
    std::vector<Task<void>> ts;
    ts.push_back(front.serve(std::move(pair->first), stop.get_token()));
    ts.push_back(client(pair->second, initial, out));
    sync_wait(when_all(std::move(ts)));
    FailureInjector::off();
    for (auto [set, bio] : held) {
        set->free(bio);
    }

    CHECK(out.replies == pipelined);
    CHECK(out.bad_replies == 0);
    CHECK(out.served_after);
    CHECK(front.connections() == 0);
    std::vector<Layer*> layers{&front, &file};
    if (crypt) {
        layers.push_back(crypt.get());
    }
    for (Layer* l : layers) {
        const BioSetStats st = l->bioset().stats();
        INFO("layer ", l->name());
        CHECK(l->stats().in_use.load() == 0);
        CHECK(st.reserve_nr == st.pool_size);
        CHECK(st.reserve_hits > 0); // the reserve was needed, so the failure was real
    }
    MESSAGE(stats_table(layers));

    // The writes landed where they were sent.
    std::vector<std::byte> expect = initial;
    for (int i = 0; i < pipelined; i += 2) {
        const Request r = request_of(i);
        for (std::size_t k = 0; k < r.length; ++k) {
            expect[r.offset + k] = pattern(i, k);
        }
    }
    std::memset(expect.data() + (6u << 20), 0x5a, block);
    std::vector<std::byte> got = nbd_test::read_whole(p.str());
    if (with_crypt) {
        const std::vector<std::byte> k = nbd_test::test_key();
        bioring::apps::XtsCipher c(k, bioring::apps::XtsCipher::Direction::decrypt);
        REQUIRE(c.crypt_sectors(got.data(), got.data(), got.size(), SectorFormat{}, 0));
    }
    CHECK(got == expect);
}

} // namespace

TEST_SUITE("nbd") {

    TEST_CASE("allocation failure: 512 pipelined requests over small reserves all complete") {
        storm(false);
    }

    TEST_CASE("allocation failure: the same through the crypt layer") {
        storm(true);
    }

} // TEST_SUITE
