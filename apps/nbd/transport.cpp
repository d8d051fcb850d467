// SPDX-License-Identifier: MIT
// Transport (transport.hpp): each request goes to the socket, or to the TLS session once
// STARTTLS has switched it on.
#include "apps/nbd/transport.hpp"

#include <cerrno>
#include <new>

namespace bioring::apps::nbd {

namespace {
const std::string no_error;
}

IoResult Transport::Op::await_resume() noexcept {
    if (plain_) {
        return plain_->await_resume();
    }
    if (!tls_) {
        return IoResult{-ENOMEM};
    }
    try {
        return tls_.operator co_await().await_resume();
    } catch (const std::bad_alloc&) {
        return IoResult{-ENOMEM}; // a nested frame could not be allocated
    } catch (...) {
        return IoResult{-EIO};
    }
}

Transport::~Transport() = default;

Transport::Op Transport::recv_exact(void* buf, std::size_t len, IoOptions o) {
    if (tls_) {
        return Op(tls_->recv_exact(buf, len, std::move(o)));
    }
    return Op(sock_.recv_exact(buf, len, std::move(o)));
}

Transport::Op Transport::send_all(const void* buf, std::size_t len, IoOptions o) {
    if (tls_) {
        return Op(tls_->send_all(buf, len, std::move(o)));
    }
    return Op(sock_.send_all(buf, len, std::move(o)));
}

Transport::Op Transport::sendmsg_all(const iovec* iov, int iovcnt, IoOptions o) {
    if (tls_) {
        return Op(tls_->sendmsg_all(iov, iovcnt, std::move(o)));
    }
    return Op(sock_.sendmsg_all(iov, iovcnt, std::move(o)));
}

Transport::Op Transport::close_notify(IoOptions o) {
    return Op(tls_ ? tls_->shutdown(std::move(o)) : Task<IoResult>());
}

Task<IoResult> Transport::start_tls(const TlsContext& ctx, IoOptions o) {
    try {
        tls_ = std::make_unique<TlsStream>(ctx, sock_);
    } catch (const std::bad_alloc&) {
        co_return IoResult{-ENOMEM};
    }
    co_return co_await tls_->handshake(std::move(o));
}

const std::string& Transport::tls_error() const noexcept {
    return tls_ ? tls_->error() : no_error;
}

std::string Transport::tls_description() const {
    return tls_ ? tls_->description() : std::string();
}

} // namespace bioring::apps::nbd
