// SPDX-License-Identifier: MIT
// TlsStream: the server side of a TLS session over a bioring Socket, as coroutines.
//
// OpenSSL never touches the descriptor: the SSL object reads and writes one end of a BIO
// pair (fixed buffers allocated with the stream), and the stream moves ciphertext between
// the other end and the socket with the reactor's own requests. An SSL call that wants
// input (WANT_READ) makes the stream co_await one socket recv into the pair's free space;
// output the pair holds (records, alerts, close_notify) goes out with co_await send_all
// straight from the pair's buffer, under a lock, so the reader (whose SSL_read may have
// produced output, a TLS 1.3 KeyUpdate answer) and a writer never send at the same time.
// All cipher work runs on the calling reactor thread.
// Concurrency: like a Socket, one receive and one send may be in flight at once (the NBD
// reader and one reply); two receives or two sends at once are not allowed. The SSL calls
// themselves never overlap: each runs to completion between two suspensions.
// Errors: -errno as Socket's requests; -EPROTO when TLS fails (a bad record, a failed
// handshake, a certificate refused), with the reason in error(). A failed send leaves the
// session unusable: later requests fail with -EPIPE.
// Memory: each request is a Task whose frame comes from the thread's default bioset (the
// reactor's), so the stream itself makes no heap call per request; libssl's record layer
// does make some of its own in SSL_read/SSL_write (OpenSSL 3.0), which this cannot avoid.
// The pair's buffers are allocated at STARTTLS, before the client has proven anything:
// their size is what each handshake in progress holds, so they are kept small.
#pragma once

#include "apps/nbd/tls_context.hpp"

#include <bioring/io/io_options.hpp>
#include <bioring/io/socket.hpp>
#include <bioring/runtime/mutex.hpp>
#include <bioring/runtime/result.hpp>
#include <bioring/runtime/task.hpp>

#include <openssl/ssl.h>

#include <sys/uio.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <stop_token>
#include <string>

namespace bioring::apps::nbd {

class TlsStream {
public:
    /// Ciphertext the pair buffers towards the socket (four full records).
    static constexpr std::size_t out_buffer = 64 * 1024;
    /// Ciphertext received and not yet decrypted (two full records).
    static constexpr std::size_t in_buffer = 32 * 1024;
    /// Most plaintext in one TLS record: replies are packed into records of this size.
    static constexpr std::size_t record_size = 16 * 1024;

    /// A server session over @sock (which must outlive it) with @ctx's settings.
    /// Context: any thread; allocates. Returns: throws std::bad_alloc when OpenSSL cannot
    /// create the SSL object or the BIO pair.
    TlsStream(const TlsContext& ctx, Socket& sock);
    /// Frees the SSL object and the BIO pair (never sends anything).
    ~TlsStream();
    TlsStream(const TlsStream&) = delete;
    TlsStream& operator=(const TlsStream&) = delete;

    /// Run the TLS handshake as the server (the client speaks first), within @o's timeout.
    /// Context: a coroutine on a reactor thread. Returns (co_await): 0, or -EPROTO (reason
    /// in error(); the alert that says why is sent to the client), -ECONNRESET (the client
    /// closed during it), -ECANCELED (timeout or stop), other -errno from the socket.
    Task<IoResult> handshake(IoOptions o);
    /// Receive exactly @len plaintext bytes. Returns (co_await): @len; fewer when the peer
    /// closed first (EOF or close_notify); or -errno as above. Context: as handshake().
    Task<IoResult> recv_exact(void* buf, std::size_t len, IoOptions o);
    /// Send @len bytes and push them to the socket. Returns: @len or -errno.
    Task<IoResult> send_all(const void* buf, std::size_t len, IoOptions o);
    /// Send every segment, packed into full records, and push them to the socket.
    /// Returns: the bytes sent or -errno.
    Task<IoResult> sendmsg_all(const iovec* iov, int iovcnt, IoOptions o);
    /// Send close_notify (best effort, within @o's timeout); the peer then reads a clean
    /// EOF. Returns: 0 or -errno.
    Task<IoResult> shutdown(IoOptions o);

    /// Why the last request failed with -EPROTO ("" otherwise).
    const std::string& error() const noexcept { return error_; }
    /// The protocol and cipher negotiated ("TLSv1.3 TLS_AES_256_GCM_SHA384").
    std::string description() const;

private:
    /// One deadline for a request made of several socket requests.
    struct Deadline {
        std::chrono::steady_clock::time_point end{};
        bool none = true;
        std::stop_token stop;
        explicit Deadline(const IoOptions& o);
        IoOptions next() const;
    };
    /// Send what the pair holds for the socket. Returns: 0 or -errno.
    Task<IoResult> flush(const Deadline& d);
    /// One socket recv into the pair. Returns: bytes, 0 at EOF, or -errno.
    Task<IoResult> fill(const Deadline& d);
    /// SSL_write all of [@p, @p + @n), flushing whenever the pair is full.
    Task<IoResult> write_raw(const std::byte* p, std::size_t n, const Deadline& d);
    /// The failure of an SSL call that returned @ret: -EPROTO with error_ set.
    IoResult failed(int ret, const char* what);

    Socket& sock_;
    SSL* ssl_ = nullptr;
    BIO* net_ = nullptr; ///< the socket's end of the pair (the SSL object owns the other)
    Mutex out_mu_;       ///< one flush at a time
    bool broken_ = false;
    std::string error_;
    std::size_t staged_ = 0;
    std::array<std::byte, record_size> stage_; ///< small segments gathered into one record
};

} // namespace bioring::apps::nbd
