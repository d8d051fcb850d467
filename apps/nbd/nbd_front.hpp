// SPDX-License-Identifier: MIT
// NbdFront: the top layer of bioring-nbd, the NBD protocol on a connected socket over the
// block device below.
//
// One connection = one reader coroutine (its frame and the Connection state are per
// connection) and one coroutine per request, whose frame comes from this layer's BioSet
// (one allocation per request; the payload is BufferPool buffers, which the file layer
// hands to the ring as registered buffers). The reader takes a permit of the
// connection's Semaphore (--max-requests) before it reads each header and the request
// returns it with its reply: with the bound in flight the reader stops reading
// (backpressure: the client's sends wait in the socket, the server's memory stays
// bounded). Payloads up to max_payload (32 MiB, NBD's customary maximum) are held in
// pieces of at most BufferPool::max_buffer (1 MiB, the largest buffer), and the layers
// below are called once per piece. A READ or WRITE takes one permit per started MiB of
// payload (at most --max-requests of them), so a connection's payload memory is at most
// max(--max-requests, 32) MiB whatever the mix of sizes. A large WRITE is atomic per
// piece only: an overlapping WRITE in flight at the same time may win some pieces and
// lose others (the protocol leaves the order of overlapping requests in flight open).
// Requests complete in any order; each reply (header + payload, or all chunks of a
// structured read) joins the connection's ReplyQueue: a reply ready while no send is in
// flight is sent at once, the replies ready while one is in flight go out together in the
// next sendmsg (reply_queue.hpp), so replies never interleave and a burst of completions
// costs one send. A connection lives on one reactor.
// Stop (the server's stop_token): the reader stops at the next header it waits for, the
// requests already read finish and are answered, then the socket is closed.
// TLS (FrontOptions::tls_mode): the connection's bytes go through a Transport, the socket
// itself until NBD_OPT_STARTTLS, a TlsStream over it from then on (the rest of the
// negotiation and the whole transmission); the TLS handshake counts against the
// handshake timeout. A plain connection costs what it did before (no allocation per
// request); over TLS each request's record work also runs on the connection's reactor.
#pragma once

#include "apps/nbd/block_device.hpp"
#include "apps/nbd/protocol.hpp"
#include "apps/nbd/tls_context.hpp"
#include "apps/nbd/transport.hpp"

#include <bioring/alloc/buffer_pool.hpp>
#include <bioring/io/socket.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stop_token>
#include <string>

namespace bioring::apps::nbd {

/// The largest READ/WRITE payload served (bytes): 32 MiB, NBD's customary maximum.
inline constexpr std::uint32_t max_payload = 32u << 20;

struct FrontOptions {
    std::string export_name; ///< the export's name (the empty name also reaches it)
    std::string description; ///< NBD_INFO_DESCRIPTION
    bool read_only = false;
    unsigned max_requests = 64;            ///< requests in flight per connection
    std::uint32_t max_block = max_payload; ///< largest READ/WRITE payload (INFO_BLOCK_SIZE)
    bool verbose = false;                  ///< log connections on stderr
    /// READ replies by Socket::sendmsg_all_zc (no copy of the payload into the socket on
    /// TCP; the reply then completes when the kernel gives the buffer back).
    bool zero_copy = false;
    /// Receive request headers (and small WRITE payloads) into buffers of the reactor's
    /// BufferRing, picked by the kernel when bytes arrive (io_uring provided buffers: 256
    /// of 16 KiB per reactor), instead of a 64 KiB read-ahead per connection; a waiting
    /// connection then holds only a small buffer for a header cut in two. Clear text only.
    bool provided_buffers = false;
    /// The whole handshake (greeting to OPT_GO) must finish within this, however the
    /// client paces its bytes; a client that trickles or says nothing is closed.
    std::chrono::milliseconds handshake_timeout{10000};
    /// off: no TLS; on: STARTTLS offered, clear clients served too; require: only STARTTLS
    /// and ABORT before TLS. Anything but off needs @tls.
    TlsMode tls_mode = TlsMode::off;
    const TlsContext* tls = nullptr; ///< the server's TLS settings (must outlive the front)
};

class NbdFront final : public Layer {
public:
    /// Serve @dev (which must outlive this) as one export.
    /// Context: any thread; allocates. Returns: throws std::invalid_argument for a bad
    /// option (max_requests 0, max_block 0 or over max_payload, a TLS mode without a
    /// TlsContext).
    NbdFront(BlockDevice& dev, FrontOptions o);
    ~NbdFront() override;

    /// Count a connection about to be served (call before handing it to serve(), so that
    /// wait_idle() cannot miss one in transit between reactors). Context: any thread.
    void begin_connection() noexcept;
    /// Serve one accepted connection (counted by begin_connection()) until the client
    /// disconnects, a protocol error, or @stop; returns after every request it read has
    /// been answered and the socket is closed. Context: a coroutine on the reactor the
    /// connection belongs to.
    Task<void> serve(Socket s, std::stop_token stop);

    /// What the handshake advertises.
    const ExportInfo& export_info() const noexcept { return info_; }
    /// Connections being served now (any reactor).
    unsigned connections() const noexcept;
    /// Block until no connection is being served. Context: a non-reactor thread.
    void wait_idle();
    /// Replies handed to the socket, and the sends that carried them (all connections so
    /// far; a send that failed counts). Context: any thread.
    std::uint64_t replies_sent() const noexcept {
        return replies_sent_.load(std::memory_order_relaxed);
    }
    std::uint64_t reply_sends() const noexcept {
        return reply_sends_.load(std::memory_order_relaxed);
    }

private:
    struct Connection;
    class Payload;
    Task<bool> handshake(Connection& c, std::stop_token stop);
    Task<void> transmission(Connection& c, std::stop_token stop);
    /// One request holding @slots permits; @payload holds WRITE data and is moved into the
    /// request when it starts (the caller spawns it at once; a request whose frame could not
    /// be allocated leaves it with the caller); @error != 0: reply with it, do nothing else.
    Task<void> do_request(BioSet& bs, Connection& c, Request r, Payload& payload, unsigned slots,
                          std::uint32_t error);
    void connection_done() noexcept;
    /// Report a failed TLS handshake on stderr (at most one line a second, so a flood of
    /// hostile clients cannot flood the log; all of them with verbose).
    void report_tls_failure(Connection& c, int res);

    BlockDevice& dev_;
    FrontOptions opts_;
    ExportInfo info_;
    mutable std::mutex mu_;
    std::condition_variable idle_;
    unsigned connections_ = 0;
    std::atomic<std::int64_t> last_tls_report_{0}; ///< steady_clock ns of the last report
    std::atomic<std::uint64_t> replies_sent_{0};
    std::atomic<std::uint64_t> reply_sends_{0};
};

} // namespace bioring::apps::nbd
