// SPDX-License-Identifier: MIT
// Transport: the byte stream of one NBD connection, the socket in clear or a TLS session
// over it after NBD_OPT_STARTTLS, behind one set of requests, so the negotiation and the
// transmission code are written once.
//
// A request returns a Transport::Op, an awaiter that holds either the socket's own
// awaiter (the plain path: exactly what a direct Socket request costs, no allocation) or
// the TlsStream request's Task (the TLS path). Both yield an IoResult; a TLS request whose
// frame cannot be allocated yields -ENOMEM instead of throwing, so a reply's sender never
// leaves its coroutine by an exception.
// Threading and lifetime as Socket: one receive and one send in flight at once; the
// Transport, the buffers and the iovec arrays stay put while a request is awaited.
#pragma once

#include "apps/nbd/tls_context.hpp"
#include "apps/nbd/tls_stream.hpp"

#include <bioring/io/io_options.hpp>
#include <bioring/io/socket.hpp>
#include <bioring/runtime/result.hpp>
#include <bioring/runtime/task.hpp>

#include <sys/uio.h>

#include <coroutine>
#include <cstddef>
#include <memory>
#include <optional>

namespace bioring::apps::nbd {

class Transport {
public:
    /// co_await yields IoResult, as the Socket request of the same name.
    class [[nodiscard]] Op {
    public:
        explicit Op(detail::SocketTransferOp&& plain) noexcept : plain_(std::move(plain)) {}
        explicit Op(Task<IoResult>&& tls) noexcept : tls_(std::move(tls)) {}

        bool await_ready() noexcept {
            return plain_ ? plain_->await_ready() : !tls_; // no frame: -ENOMEM at once
        }
        bool await_suspend(std::coroutine_handle<> h) noexcept {
            return plain_ ? plain_->await_suspend(h) : tls_.operator co_await().await_suspend(h);
        }
        IoResult await_resume() noexcept;

    private:
        std::optional<detail::SocketTransferOp> plain_;
        Task<IoResult> tls_;
    };

    explicit Transport(Socket s) noexcept : sock_(std::move(s)) {}
    ~Transport();
    Transport(const Transport&) = delete;
    Transport& operator=(const Transport&) = delete;

    /// As Socket::recv_exact: @len, fewer at EOF, or -errno (-EPROTO: TLS failed).
    /// Context: a coroutine on the connection's reactor; allocates nothing in clear.
    Op recv_exact(void* buf, std::size_t len, IoOptions o = {});
    /// As Socket::send_all. Context: as recv_exact().
    Op send_all(const void* buf, std::size_t len, IoOptions o = {});
    /// As Socket::sendmsg_all (over TLS the segments are packed into full records).
    /// Context: as recv_exact().
    Op sendmsg_all(const iovec* iov, int iovcnt, IoOptions o = {});

    /// Switch to TLS (the NBD_OPT_STARTTLS ACK has been sent): run the server handshake
    /// with @ctx within @o's timeout; every request after a success goes over TLS.
    /// Context: as recv_exact(); allocates the session.
    /// Returns (co_await): 0, or -errno as TlsStream::handshake (the reason in
    /// tls_error()); -ENOMEM when the session cannot be created.
    Task<IoResult> start_tls(const TlsContext& ctx, IoOptions o);
    /// Whether TLS is on (start_tls() was called).
    bool tls() const noexcept { return tls_ != nullptr; }
    /// After start_tls: why TLS failed, else "". The negotiated protocol and cipher.
    const std::string& tls_error() const noexcept;
    std::string tls_description() const;

    /// Over TLS: send close_notify, so the peer reads a clean end of the session, within
    /// @o's timeout (only when tls()). The socket is closed by its own close().
    /// Context: as recv_exact(). Returns (co_await): 0 or -errno.
    Op close_notify(IoOptions o);

    /// The socket below (for its name, and shutdown(2) on a broken stream).
    Socket& socket() noexcept { return sock_; }

private:
    Socket sock_;
    std::unique_ptr<TlsStream> tls_;
};

} // namespace bioring::apps::nbd
