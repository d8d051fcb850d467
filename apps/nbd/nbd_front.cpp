// SPDX-License-Identifier: MIT
// NbdFront (nbd_front.hpp): negotiation, the request reader, and the request coroutines.
#include "apps/nbd/nbd_front.hpp"
#include "apps/nbd/reply_queue.hpp"

#include <bioring/alloc/buffer_pool.hpp>

#include <bioring/io/error_message.hpp>
#include <bioring/runtime/semaphore.hpp>
#include <bioring/runtime/spawn.hpp>
#include <bioring/runtime/this_bio.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <new>
#include <stdexcept>

namespace bioring::apps::nbd {

namespace {

/// Most extents a READ is split into (holes as OFFSET_HOLE chunks); the rest is data.
constexpr std::size_t read_extents = 8;
/// Most extents in one BLOCK_STATUS reply.
constexpr std::size_t status_extents = 32;
/// The request stream's read-ahead (Connection::rx): room for a burst of headers and
/// small WRITE payloads.
constexpr std::size_t rx_capacity = 64 * 1024;
/// FrontOptions::provided_buffers: each reactor's ring, shared by its connections.
constexpr unsigned ring_buffers = 256;
constexpr std::uint32_t ring_buffer_size = 16 * 1024;

/// The options of one socket request. Requests always take a named IoOptions moved in: GCC
/// 12 destroys a braced IoOptions temporary written inside a co_await operand twice, and
/// its std::stop_token's reference count then underflows (seen under ASan).
IoOptions request_options(const std::stop_token& stop,
                          std::chrono::nanoseconds timeout = std::chrono::nanoseconds{0}) {
    IoOptions o;
    o.timeout = timeout;
    o.stop = stop;
    return o;
}

} // namespace

// Per-connection state; everything here is touched by the connection's reactor only.
struct NbdFront::Connection {
    Connection(NbdFront& f, Socket s, unsigned max_requests) noexcept
        : front(f), io(std::move(s)), neg(f.info_, f.opts_.tls_mode), slots(max_requests) {}

    NbdFront& front;
    Transport io; // the socket, or TLS over it after STARTTLS
    Negotiator neg;

    // Request slots (--max-requests): the reader takes a permit before it reads a header;
    // the request gives it back when its reply is sent.
    Semaphore slots;
    // The replies, in the order they are ready, batched into as few sends as possible.
    ReplyQueue replies;

    // Read-ahead of the request stream: one recv takes every header (and small WRITE
    // payload) the client has queued, so a burst of QD requests costs one receive and one
    // loop turn, not one each. Bytes [rx_begin, rx_end) are read but not yet parsed.
    // With FrontOptions::provided_buffers the bytes are in a buffer of the reactor's
    // BufferRing (rx_id >= 0) picked by the kernel when they arrived, and rx only keeps
    // the part of a header cut by a receive's end (or, when the ring ran dry, a
    // read-ahead of its own).
    OwnedBuffer rx;
    std::byte* rx_base = nullptr; ///< rx.data() or the ring buffer rx_id
    int rx_id = -1;
    BufferRing* ring = nullptr;
    std::size_t rx_begin = 0;
    std::size_t rx_end = 0;
    std::size_t buffered() const noexcept { return rx_end - rx_begin; }
    /// Take up to @n buffered bytes into @dst (nullptr: drop them). Returns: how many.
    std::size_t take(std::byte* dst, std::size_t n) noexcept {
        n = std::min(n, buffered());
        if (dst != nullptr && n > 0) {
            std::memcpy(dst, rx_base + rx_begin, n);
        }
        rx_begin += n;
        return n;
    }
    /// Move what is buffered to the front of rx (a ring buffer goes back to the ring).
    void compact() noexcept {
        const std::size_t n = buffered();
        if (rx_id >= 0) {
            std::memcpy(rx.data(), rx_base + rx_begin, n); // n < request_size <= rx's size
            ring->give_back(static_cast<unsigned>(std::exchange(rx_id, -1)));
        } else {
            std::memmove(rx.data(), rx_base + rx_begin, n);
        }
        rx_base = rx.data();
        rx_begin = 0;
        rx_end = n;
    }

    // Requests in flight, and the reader waiting for them to finish before it closes.
    unsigned inflight = 0;
    std::coroutine_handle<> drainer{};
    struct DrainAwaiter {
        Connection& c;
        bool await_ready() const noexcept { return c.inflight == 0; }
        void await_suspend(std::coroutine_handle<> h) noexcept { c.drainer = h; }
        void await_resume() const noexcept {}
    };
    void request_done(unsigned n) noexcept {
        slots.release(n);
        if (--inflight == 0 && drainer) {
            resume_later(std::exchange(drainer, {}));
        }
    }

    /// A failed send leaves the stream unusable: stop the reader too.
    void broken() noexcept {
        if (!dead) {
            dead = true;
            ::shutdown(io.socket().fd(), SHUT_RDWR);
        }
    }
    bool dead = false;
};

// A request's payload: up to max_payload bytes in BufferPool buffers of at most
// BufferPool::max_buffer bytes (piece i holds bytes [i * max_buffer, ...)). Move-only; the
// buffers go back to the pool on reset() or destruction.
class NbdFront::Payload {
public:
    static constexpr std::size_t piece_bytes = BufferPool::max_buffer;
    static constexpr std::size_t max_pieces = max_payload / piece_bytes;

    Payload() noexcept = default;
    Payload(Payload&& o) noexcept : b_(o.b_), len_(std::exchange(o.len_, 0)) { o.b_ = {}; }
    Payload& operator=(Payload&&) = delete;
    ~Payload() { reset(); }

    /// Allocate @len bytes (1..max_payload). Returns: false, holding nothing, when the pool
    /// has no memory.
    bool alloc(std::uint32_t len) noexcept {
        reset();
        const std::size_t n = (len + piece_bytes - 1) / piece_bytes;
        for (std::size_t i = 0; i < n; ++i) {
            b_[i] = BufferPool::global().alloc(
                std::min<std::size_t>(piece_bytes, len - i * piece_bytes));
            if (!b_[i]) {
                reset();
                return false;
            }
        }
        len_ = len;
        return true;
    }
    void reset() noexcept {
        for (Buffer& b : b_) {
            BufferPool::global().free(std::exchange(b, Buffer{}));
        }
        len_ = 0;
    }
    std::size_t pieces() const noexcept { return (len_ + piece_bytes - 1) / piece_bytes; }
    std::byte* piece(std::size_t i) const noexcept { return b_[i].data; }
    std::uint32_t piece_length(std::size_t i) const noexcept {
        return static_cast<std::uint32_t>(
            std::min<std::size_t>(piece_bytes, len_ - i * piece_bytes));
    }
    /// Write the segments of bytes [pos, pos + len) into @iov (room for max_pieces + 1).
    /// Returns: the number written.
    int segments(std::uint64_t pos, std::uint64_t len, iovec* iov) const noexcept {
        int n = 0;
        while (len > 0) {
            const std::size_t i = pos / piece_bytes, at = pos % piece_bytes;
            const std::size_t k = std::min<std::uint64_t>(len, piece_length(i) - at);
            iov[n++] = iovec{b_[i].data + at, k};
            pos += k;
            len -= k;
        }
        return n;
    }

private:
    std::array<Buffer, max_pieces> b_{};
    std::uint32_t len_ = 0;
};

NbdFront::NbdFront(BlockDevice& dev, FrontOptions o)
    : Layer("nbd"), dev_(dev), opts_(std::move(o)) {
    if (opts_.max_requests == 0) {
        throw std::invalid_argument("max_requests must be at least 1");
    }
    if (opts_.max_block == 0 || opts_.max_block > max_payload) {
        throw std::invalid_argument("max_block must be 1.." + std::to_string(max_payload));
    }
    if (opts_.tls_mode != TlsMode::off && opts_.tls == nullptr) {
        throw std::invalid_argument("a TLS mode other than off needs a TlsContext");
    }
    info_.name = opts_.export_name;
    info_.description = opts_.description;
    info_.size = dev_.size();
    std::uint16_t f = tflag_has_flags | tflag_send_flush | tflag_send_fua | tflag_send_cache |
                      tflag_can_multi_conn;
    if (opts_.read_only) {
        f |= tflag_read_only;
    } else {
        f |= tflag_send_write_zeroes;
        if (dev_.can_trim()) {
            f |= tflag_send_trim;
        }
        if (dev_.can_fast_zero()) {
            f |= tflag_send_fast_zero;
        }
    }
    info_.flags = f;
    info_.min_block = dev_.alignment();
    info_.preferred_block = std::max<std::uint32_t>(4096, dev_.alignment());
    info_.max_block = opts_.max_block;

    Connection probe(*this, Socket{}, 1);
    Payload none;
    init_bioset(frame_pad(do_request(probe_set(), probe, Request{}, none, 1, 0)),
                opts_.max_requests);
}

NbdFront::~NbdFront() = default;

unsigned NbdFront::connections() const noexcept {
    std::lock_guard g(mu_);
    return connections_;
}

void NbdFront::wait_idle() {
    std::unique_lock g(mu_);
    idle_.wait(g, [&] { return connections_ == 0; });
}

void NbdFront::connection_done() noexcept {
    std::lock_guard g(mu_);
    if (--connections_ == 0) {
        idle_.notify_all();
    }
}

void NbdFront::report_tls_failure(Connection& c, int res) {
    const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now().time_since_epoch())
                                 .count();
    std::int64_t last = last_tls_report_.load(std::memory_order_relaxed);
    if (!opts_.verbose &&
        (now - last < 1'000'000'000 ||
         !last_tls_report_.compare_exchange_strong(last, now, std::memory_order_relaxed))) {
        return;
    }
    const std::string why =
        !c.io.tls_error().empty() ? c.io.tls_error()
        : res == -ECANCELED ? "not done within the handshake timeout (or the server is stopping)"
                            : std::strerror(-res);
    std::fprintf(stderr, "bioring-nbd: %s: TLS handshake failed, connection closed: %s\n",
                 c.io.socket().name().c_str(), why.c_str());
}

void NbdFront::begin_connection() noexcept {
    std::lock_guard g(mu_);
    ++connections_;
}

Task<void> NbdFront::serve(Socket s, std::stop_token stop) {
    auto c = std::make_unique<Connection>(*this, std::move(s), opts_.max_requests);
    if (opts_.verbose) {
        std::fprintf(stderr, "bioring-nbd: connection from %s\n", c->io.socket().name().c_str());
    }
    bool go = false;
    try {
        go = co_await handshake(*c, stop);
    } catch (...) {
        go = false;
    }
    if (go) {
        try {
            co_await transmission(*c, stop);
        } catch (const std::bad_alloc&) {
            // No memory for the reader's frame: this connection closes, the server goes on
            // (and connection_done() below still runs, so wait_idle() cannot hang).
        }
    }
    if (c->io.tls() && !c->dead) {
        // close_notify, so the client reads a clean end of the session; a client that
        // does not read gets a second, not a hung server.
        IoOptions bye = request_options({}, std::chrono::seconds(1));
        co_await c->io.close_notify(std::move(bye));
    }
    co_await c->io.socket().close();
    if (opts_.verbose) {
        std::fprintf(stderr, "bioring-nbd: %s disconnected\n", c->io.socket().name().c_str());
    }
    c.reset();
    connection_done();
}

Task<bool> NbdFront::handshake(Connection& c, std::stop_token stop) {
    // One deadline for the whole handshake: a per-step timeout would let a client that
    // sends a byte now and then hold the connection forever.
    const auto deadline = std::chrono::steady_clock::now() + opts_.handshake_timeout;
    auto handshake_timeout = [&] {
        return std::max(std::chrono::nanoseconds{1}, deadline - std::chrono::steady_clock::now());
    };
    std::array<std::byte, handshake_size> hello;
    build_handshake(hello);
    IoOptions io = request_options(stop, handshake_timeout());
    if ((co_await c.io.send_all(hello.data(), hello.size(), std::move(io))).res !=
        static_cast<int>(hello.size())) {
        co_return false;
    }
    std::array<std::byte, 4> cf;
    std::uint32_t flags = 0;
    io = request_options(stop, handshake_timeout());
    if ((co_await c.io.recv_exact(cf.data(), cf.size(), std::move(io))).res != 4 ||
        !parse_client_flags(cf, flags)) {
        co_return false;
    }
    c.neg.set_client_flags(flags);
    OwnedBuffer data = OwnedBuffer::alloc(max_option_length);
    if (!data) {
        co_return false;
    }
    for (;;) {
        std::array<std::byte, option_header_size> hb;
        OptionHeader h;
        io = request_options(stop, handshake_timeout());
        if ((co_await c.io.recv_exact(hb.data(), hb.size(), std::move(io))).res !=
                static_cast<int>(hb.size()) ||
            !parse_option_header(hb, h)) {
            co_return false;
        }
        Negotiator::Step step;
        if (h.length > max_option_length) {
            step = c.neg.too_long(h);
        } else {
            io = request_options(stop, handshake_timeout());
            if (h.length > 0 &&
                (co_await c.io.recv_exact(data.data(), h.length, std::move(io))).res !=
                    static_cast<int>(h.length)) {
                co_return false;
            }
            step = c.neg.handle(h, std::span<const std::byte>(data.data(), h.length));
        }
        const auto out = c.neg.out();
        io = request_options(stop, handshake_timeout());
        if (!out.empty() && (co_await c.io.send_all(out.data(), out.size(), std::move(io))).res !=
                                static_cast<int>(out.size())) {
            co_return false;
        }
        if (step == Negotiator::Step::go) {
            co_return true;
        }
        if (step == Negotiator::Step::starttls) {
            io = request_options(stop, handshake_timeout());
            const IoResult tls = co_await c.io.start_tls(*opts_.tls, std::move(io));
            if (!tls) {
                report_tls_failure(c, tls.res);
                c.dead = true; // no close_notify on a session that never started
                co_return false;
            }
            if (opts_.verbose) {
                std::fprintf(stderr, "bioring-nbd: %s: %s\n", c.io.socket().name().c_str(),
                             c.io.tls_description().c_str());
            }
            c.neg.tls_started();
            continue;
        }
        if (step == Negotiator::Step::close) {
            co_return false;
        }
    }
}

Task<void> NbdFront::transmission(Connection& c, std::stop_token stop) {
    const bool structured = c.neg.structured();
    const bool meta = c.neg.base_allocation_selected();
    OwnedBuffer discard;
    if (opts_.provided_buffers && !c.io.tls()) {
        try {
            c.ring = &Reactor::current()->buffer_ring(ring_buffers, ring_buffer_size);
        } catch (const std::bad_alloc&) {
            c.ring = nullptr; // no memory for the ring: a read-ahead of its own, as without
        }
    }
    c.rx = OwnedBuffer::alloc(c.ring != nullptr ? request_size : rx_capacity);
    if (!c.rx) {
        co_return; // no memory for this connection's read-ahead: close it
    }
    c.rx_base = c.rx.data();
    for (;;) {
        Permit slot = co_await c.slots.acquire(stop);
        if (!slot || stop.stop_requested()) {
            break; // stop was requested (while every slot was busy, or with headers buffered)
        }
        bool more = true;
        while (more && c.buffered() < request_size) {
            // Keep the partial header, then read whatever the client has sent.
            c.compact();
            IoOptions o = request_options(stop);
            if (c.ring != nullptr && c.rx_end == 0) {
                // Provided buffers: the kernel picks one when the bytes arrive.
                const SelectedRecv sel = co_await c.io.socket().recv_select(*c.ring, std::move(o));
                if (sel.result.res != -ENOBUFS) {
                    more = sel.result.res > 0;
                    if (more) {
                        c.rx_base = sel.data;
                        c.rx_id = sel.id;
                        c.rx_end = static_cast<std::size_t>(sel.result.res);
                    }
                    continue;
                }
                // Every ring buffer is held: from now on this connection reads ahead into
                // a buffer of its own, as without provided buffers.
                OwnedBuffer own = OwnedBuffer::alloc(rx_capacity);
                if (!own) {
                    break;
                }
                c.rx = std::move(own);
                c.rx_base = c.rx.data();
                c.ring = nullptr;
                o = request_options(stop);
            }
            // In clear text, whatever the client has sent (with provided buffers and part
            // of a header kept: into the one-page stash after it); over TLS (no
            // partial-record read in Transport) exactly the missing part of the header.
            const IoResult got =
                c.io.tls() ? co_await c.io.recv_exact(c.rx.data() + c.rx_end,
                                                      request_size - c.rx_end, std::move(o))
                           : co_await c.io.socket().recv(c.rx.data() + c.rx_end,
                                                         c.rx.capacity() - c.rx_end, std::move(o));
            more = got.res > 0;
            c.rx_end += more ? static_cast<std::size_t>(got.res) : 0;
        }
        std::array<std::byte, request_size> hb;
        Request r;
        if (c.take(hb.data(), hb.size()) != hb.size() || !parse_request(hb, r) ||
            r.type == cmd_disc) {
            break; // EOF, error, stop, garbage, or the client's goodbye
        }
        IoResult got{0};
        std::uint32_t err = check_request(r, info_, structured, meta);
        // One permit per started MiB of payload (the memory bound in nbd_front.hpp).
        unsigned held = 1;
        if (err == 0 && (r.type == cmd_read || r.type == cmd_write)) {
            const auto want = static_cast<unsigned>(std::min<std::uint64_t>(
                opts_.max_requests, (r.length + Payload::piece_bytes - 1) / Payload::piece_bytes));
            while (held < want) {
                Permit more = co_await c.slots.acquire(stop);
                if (!more) {
                    break;
                }
                more.detach();
                ++held;
            }
            if (held < want) { // stopped
                c.slots.release(held - 1);
                break;
            }
        }
        Payload payload;
        if (r.type == cmd_write) {
            if (err == 0 && !payload.alloc(r.length)) {
                err = err_nomem;
            }
            if (err == 0) {
                // What the read-ahead holds, then the rest straight into each piece; a
                // client stalled mid-payload must not hold up a stop.
                bool whole = true;
                for (std::size_t i = 0; i < payload.pieces() && whole; ++i) {
                    const std::uint32_t n = payload.piece_length(i);
                    const std::size_t have = c.take(payload.piece(i), n);
                    IoOptions po = request_options(stop);
                    got =
                        co_await c.io.recv_exact(payload.piece(i) + have, n - have, std::move(po));
                    whole = got.res == static_cast<int>(n - have);
                }
                if (!whole) {
                    c.slots.release(held - 1);
                    break;
                }
            } else { // the payload of a refused write still has to leave the stream
                if (!discard) {
                    discard = OwnedBuffer::alloc(BufferPool::max_buffer);
                }
                std::uint64_t left = r.length - c.take(nullptr, r.length);
                while (left > 0 && discard) {
                    const std::size_t n = std::min<std::uint64_t>(left, discard.capacity());
                    IoOptions po = request_options(stop);
                    if ((co_await c.io.recv_exact(discard.data(), n, std::move(po))).res !=
                        static_cast<int>(n)) {
                        break;
                    }
                    left -= n;
                }
                if (left > 0) {
                    c.slots.release(held - 1);
                    break;
                }
            }
        }
        Task<void> t = do_request(*bioset_, c, r, payload, held, err);
        while (!t) { // the set and the allocator are both dry: wait for a request to end
            co_await detail::PoolWaiter(*bioset_);
            t = do_request(*bioset_, c, r, payload, held, err);
        }
        slot.detach(); // the request gives it back (request_done)
        ++c.inflight;
        spawn(std::move(t));
        if (c.dead) {
            break;
        }
    }
    if (c.rx_id >= 0) {
        c.ring->give_back(static_cast<unsigned>(c.rx_id));
        c.rx_id = -1;
    }
    co_await Connection::DrainAwaiter{c};
}

Task<void> NbdFront::do_request(BioSet& bs, Connection& c, Request r, Payload& payload_in,
                                unsigned slots, std::uint32_t error) {
    LayerRequest lr(stats_, co_await this_bio, bs);
    Payload payload(std::move(payload_in)); // before the first suspension (see the header)
    const bool structured = c.neg.structured();
    // Reply headers: one per chunk (a READ has at most read_extents + 1 chunks); each data
    // chunk's payload is one segment per piece it touches.
    std::array<std::byte, (read_extents + 1) * 32> hdr;
    std::array<iovec, 2 * (read_extents + 1) + Payload::max_pieces> iov;
    int niov = 0;
    Extent ex[status_extents];

    IoResult res{0};
    if (error == 0) {
        const bool fua = (r.flags & cmd_flag_fua) != 0;
        switch (r.type) {
        case cmd_read: {
            if (!payload.alloc(r.length)) {
                res = IoResult{-ENOMEM};
                break;
            }
            int n = 0;
            if (structured && dev_.may_have_holes()) {
                IoResult s = co_await call_lower(dev_, [&] {
                    return dev_.block_status(r.offset, r.length,
                                             std::span<Extent>(ex, read_extents));
                });
                n = s.ok() ? s.res : 0;
            }
            for (std::size_t i = 0; i < payload.pieces() && res; ++i) {
                res = co_await call_lower(dev_, [&] {
                    return dev_.read(payload.piece(i), payload.piece_length(i),
                                     r.offset + i * Payload::piece_bytes);
                });
            }
            if (!res || !structured) {
                break;
            }
            // Chunks: holes as OFFSET_HOLE, data as OFFSET_DATA, DONE on the last one.
            std::uint64_t covered = 0;
            for (int i = 0; i < n; ++i) {
                covered += ex[i].length;
            }
            if (n == 0 || covered < r.length) {
                ex[n++] = Extent{static_cast<std::uint32_t>(r.length - covered), 0};
            }
            std::uint64_t pos = 0;
            std::byte* h = hdr.data();
            for (int i = 0; i < n; ++i) {
                const std::uint16_t flags = i + 1 == n ? reply_flag_done : 0;
                const std::uint32_t len = ex[i].length;
                if ((ex[i].flags & state_hole) != 0) {
                    const std::size_t k = build_offset_hole(std::span<std::byte>(h, 32), flags,
                                                            r.cookie, r.offset + pos, len);
                    iov[niov++] = iovec{h, k};
                    h += k;
                } else {
                    const std::size_t k = build_offset_data(std::span<std::byte>(h, 32), flags,
                                                            r.cookie, r.offset + pos, len);
                    iov[niov++] = iovec{h, k};
                    niov += payload.segments(pos, len, &iov[niov]);
                    h += k;
                }
                pos += len;
            }
            break;
        }
        case cmd_write:
            for (std::size_t i = 0; i < payload.pieces() && res; ++i) {
                res = co_await call_lower(dev_, [&] {
                    return dev_.write(payload.piece(i), payload.piece_length(i),
                                      r.offset + i * Payload::piece_bytes, fua);
                });
            }
            break;
        case cmd_flush:
            res = co_await call_lower(dev_, [&] { return dev_.flush(); });
            break;
        case cmd_trim:
            res = co_await call_lower(dev_, [&] { return dev_.trim(r.offset, r.length); });
            if (res && fua) {
                res = co_await call_lower(dev_, [&] { return dev_.flush(); });
            }
            break;
        case cmd_write_zeroes:
            res = co_await call_lower(dev_, [&] {
                return dev_.zero(r.offset, r.length, (r.flags & cmd_flag_no_hole) == 0,
                                 (r.flags & cmd_flag_fast_zero) != 0);
            });
            if (res && fua) {
                res = co_await call_lower(dev_, [&] { return dev_.flush(); });
            }
            break;
        case cmd_cache:
            // The server keeps no cache (O_DIRECT): there is nothing to populate, and the
            // protocol lets a server without one acknowledge CACHE once it is validated.
            break;
        case cmd_block_status: {
            const std::size_t want = (r.flags & cmd_flag_req_one) != 0 ? 1 : status_extents;
            res = co_await call_lower(dev_, [&] {
                return dev_.block_status(r.offset, r.length, std::span<Extent>(ex, want));
            });
            if (res) {
                const std::size_t k = build_block_status(
                    hdr, r.cookie, base_allocation_id,
                    std::span<const Extent>(ex, static_cast<std::size_t>(res.res)));
                if (k == 0) {
                    res = IoResult{-EIO};
                } else {
                    iov[niov++] = iovec{hdr.data(), k};
                }
            }
            break;
        }
        default:
            res = IoResult{-EINVAL};
            break;
        }
        if (!res) {
            error = error_from_errno(res.res);
            niov = 0;
        }
    }
    if (niov == 0) { // a simple reply (or an error chunk where one is required)
        if (structured && (r.type == cmd_read || r.type == cmd_block_status) && error != 0) {
            const std::size_t k =
                build_error_chunk(hdr, r.cookie, error, std::strerror(static_cast<int>(error)));
            iov[niov++] = iovec{hdr.data(), k};
        } else {
            const std::size_t k = build_simple_reply(hdr, r.cookie, error);
            iov[niov++] = iovec{hdr.data(), k};
            if (error == 0 && r.type == cmd_read) {
                niov += payload.segments(0, r.length, &iov[niov]);
            }
        }
    }
    // Zero copy in clear text only: over TLS the payload is encrypted into records.
    ReplyQueue::Entry reply{iov.data(), niov,
                            opts_.zero_copy && r.type == cmd_read && error == 0 && !c.io.tls()};
    if (co_await c.replies.join(reply)) { // this request sends the replies queued so far
        const ReplyQueue::Batch b = c.replies.take();
        IoResult s{-EPIPE};
        if (!c.dead) {
            // HACK(gcc-12): not `s = zc ? co_await a : co_await b`: GCC 12 compiles that
            // assignment so that the batch goes out twice. Remove with GCC 12.
            if (b.zero_copy) {
                s = co_await c.io.socket().sendmsg_all_zc(b.iov, b.niov);
            } else {
                s = co_await c.io.sendmsg_all(b.iov, b.niov);
            }
            if (!s) {
                c.broken();
            }
            reply_sends_.fetch_add(1, std::memory_order_relaxed);
            replies_sent_.fetch_add(b.replies, std::memory_order_relaxed);
        }
        c.replies.finish(b);
    }
    payload.reset();
    c.request_done(slots);
}

} // namespace bioring::apps::nbd
