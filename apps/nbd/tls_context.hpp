// SPDX-License-Identifier: MIT
// TlsContext: the server's TLS configuration for bioring-nbd (an OpenSSL SSL_CTX), loaded
// from a certificate directory laid out as nbdkit and qemu lay theirs out:
//   server-cert.pem  the server's certificate (its chain may follow it in the file)
//   server-key.pem   its private key (unencrypted: a pass phrase is never prompted for)
//   ca-cert.pem      the CA that client certificates must chain to (--tls-verify-peer)
// TLS 1.2 is the oldest version accepted; renegotiation, session tickets and the session
// cache are off (a connection is one long session; nothing is resumed). One context serves
// every connection on every reactor (OpenSSL's SSL_CTX is thread-safe for SSL_new).
#pragma once

#include <openssl/ssl.h>

#include <string>

namespace bioring::apps::nbd {

class TlsContext {
public:
    /// Load the server's certificate and key from @dir (and, with @verify_peer, ca-cert.pem
    /// as the only CA client certificates may chain to; a client without one is refused).
    /// Context: any thread; allocates. Returns: throws std::runtime_error naming the file
    /// at fault: missing or unreadable, not PEM, a key that does not match the certificate.
    TlsContext(const std::string& dir, bool verify_peer);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    /// The OpenSSL context (owned by this object).
    SSL_CTX* native() const noexcept { return ctx_; }
    /// Whether clients must present a certificate signed by ca-cert.pem.
    bool verify_peer() const noexcept { return verify_peer_; }

private:
    SSL_CTX* ctx_ = nullptr;
    bool verify_peer_ = false;
};

/// OpenSSL's queued errors on this thread as one line ("" when none), the queue emptied.
/// Context: any thread; allocates.
std::string tls_error_text();

} // namespace bioring::apps::nbd
