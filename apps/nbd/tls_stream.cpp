// SPDX-License-Identifier: MIT
// TlsStream (tls_stream.hpp): SSL calls driven over a BIO pair, ciphertext moved by the
// reactor's socket requests.
#include "apps/nbd/tls_stream.hpp"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <new>

namespace bioring::apps::nbd {

TlsStream::Deadline::Deadline(const IoOptions& o) : stop(o.stop) {
    if (o.timeout.count() > 0) {
        none = false;
        end = std::chrono::steady_clock::now() +
              std::chrono::duration_cast<std::chrono::steady_clock::duration>(o.timeout);
    }
}

IoOptions TlsStream::Deadline::next() const {
    IoOptions o;
    o.stop = stop;
    if (!none) {
        // A deadline already past still submits with the shortest timeout: the request
        // then completes with -ECANCELED as any expired one does.
        o.timeout = std::max(std::chrono::nanoseconds{1},
                             std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 end - std::chrono::steady_clock::now()));
    }
    return o;
}

TlsStream::TlsStream(const TlsContext& ctx, Socket& sock) : sock_(sock) {
    ssl_ = SSL_new(ctx.native());
    if (ssl_ == nullptr) {
        ERR_clear_error();
        throw std::bad_alloc();
    }
    BIO* inner = nullptr;
    if (BIO_new_bio_pair(&inner, out_buffer, &net_, in_buffer) != 1) {
        SSL_free(ssl_);
        ERR_clear_error();
        throw std::bad_alloc();
    }
    SSL_set_bio(ssl_, inner, inner); // the SSL object owns the inner end from here
    SSL_set_accept_state(ssl_);
}

TlsStream::~TlsStream() {
    SSL_free(ssl_);
    BIO_free(net_);
}

std::string TlsStream::description() const {
    std::string d = SSL_get_version(ssl_);
    if (const char* c = SSL_get_cipher_name(ssl_)) {
        d += ' ';
        d += c;
    }
    return d;
}

IoResult TlsStream::failed(int ret, const char* what) {
    const int e = SSL_get_error(ssl_, ret);
    std::string why = tls_error_text();
    const long v = SSL_get_verify_result(ssl_);
    if (v != X509_V_OK) {
        why += std::string(why.empty() ? "" : "; ") +
               "certificate: " + X509_verify_cert_error_string(v);
    }
    if (why.empty()) {
        why = e == SSL_ERROR_SYSCALL ? "the peer closed the connection"
                                     : "error " + std::to_string(e);
    }
    error_ = std::string(what) + ": " + why;
    return IoResult{-EPROTO};
}

Task<IoResult> TlsStream::flush(const Deadline& d) {
    MutexGuard lock = co_await out_mu_.lock(d.stop);
    if (!lock) {
        co_return IoResult{-ECANCELED}; // stop while another request was sending
    }
    while (!broken_ && BIO_ctrl_pending(net_) > 0) {
        char* p = nullptr;
        const int n = BIO_nread0(net_, &p); // contiguous bytes at p; consumed once sent
        if (n <= 0) {
            break;
        }
        IoOptions o = d.next();
        IoResult r = co_await sock_.send_all(p, static_cast<std::size_t>(n), std::move(o));
        if (r.res != n) {
            broken_ = true;
            co_return r.res < 0 ? r : IoResult{-EPIPE};
        }
        BIO_nread(net_, &p, n);
    }
    co_return IoResult{broken_ ? -EPIPE : 0};
}

Task<IoResult> TlsStream::fill(const Deadline& d) {
    char* p = nullptr;
    const int room = BIO_nwrite0(net_, &p);
    if (room <= 0) { // SSL asked for input while a whole buffer of it is unread: a bug
        error_ = "TLS input buffer full";
        co_return IoResult{-EPROTO};
    }
    IoOptions o = d.next();
    IoResult r = co_await sock_.recv(p, static_cast<std::size_t>(room), std::move(o));
    if (r.res > 0) {
        BIO_nwrite(net_, &p, r.res);
    }
    co_return r;
}

Task<IoResult> TlsStream::handshake(IoOptions o) {
    const Deadline d(o);
    for (;;) {
        ERR_clear_error();
        const int r = SSL_do_handshake(ssl_);
        if (r == 1) {
            co_return co_await flush(d); // the server's last flight
        }
        const int e = SSL_get_error(ssl_, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            IoResult f = co_await flush(d);
            if (!f) {
                co_return f;
            }
            if (e == SSL_ERROR_WANT_READ) {
                IoResult got = co_await fill(d);
                if (got.res == 0) {
                    error_ = "the client closed the connection during the TLS handshake";
                    co_return IoResult{-ECONNRESET};
                }
                if (!got) {
                    co_return got;
                }
            }
            continue;
        }
        IoResult bad = failed(r, "TLS handshake");
        co_await flush(d); // the alert that tells the client why (best effort)
        co_return bad;
    }
}

Task<IoResult> TlsStream::recv_exact(void* buf, std::size_t len, IoOptions o) {
    const Deadline d(o);
    auto* out = static_cast<std::byte*>(buf);
    std::size_t done = 0;
    while (done < len) {
        if (broken_) {
            co_return IoResult{-EPIPE};
        }
        ERR_clear_error();
        const int n = SSL_read(ssl_, out + done,
                               static_cast<int>(std::min<std::size_t>(len - done, INT_MAX)));
        if (n > 0) {
            done += static_cast<std::size_t>(n);
            continue;
        }
        const int e = SSL_get_error(ssl_, n);
        if (e == SSL_ERROR_ZERO_RETURN) {
            break; // close_notify: EOF
        }
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            co_return failed(n, "TLS read");
        }
        if (BIO_ctrl_pending(net_) > 0) { // SSL_read wrote something (a KeyUpdate answer)
            IoResult f = co_await flush(d);
            if (!f) {
                co_return f;
            }
        }
        if (e == SSL_ERROR_WANT_READ) {
            IoResult got = co_await fill(d);
            if (got.res == 0) {
                break; // EOF without close_notify: what arrived is all there is
            }
            if (!got) {
                co_return got;
            }
        }
    }
    co_return IoResult{static_cast<int>(done)};
}

Task<IoResult> TlsStream::write_raw(const std::byte* p, std::size_t n, const Deadline& d) {
    while (n > 0) {
        if (broken_) {
            co_return IoResult{-EPIPE};
        }
        ERR_clear_error();
        const int w = SSL_write(ssl_, p, static_cast<int>(std::min<std::size_t>(n, INT_MAX)));
        if (w > 0) { // partial writes are on: whole records as the pair took them
            p += w;
            n -= static_cast<std::size_t>(w);
            continue;
        }
        if (SSL_get_error(ssl_, w) != SSL_ERROR_WANT_WRITE) {
            co_return failed(w, "TLS write");
        }
        IoResult f = co_await flush(d);
        if (!f) {
            co_return f;
        }
    }
    co_return IoResult{0};
}

Task<IoResult> TlsStream::sendmsg_all(const iovec* iov, int iovcnt, IoOptions o) {
    const Deadline d(o);
    std::size_t total = 0;
    // Pack: bytes go through stage_ until it holds a whole record; a segment that starts
    // on an empty stage with at least a record left is written from where it lies.
    for (int i = 0; i < iovcnt; ++i) {
        const auto* p = static_cast<const std::byte*>(iov[i].iov_base);
        std::size_t n = iov[i].iov_len;
        total += n;
        while (n > 0) {
            if (staged_ == 0 && n >= record_size) {
                const std::size_t direct = n - n % record_size;
                IoResult r = co_await write_raw(p, direct, d);
                if (!r) {
                    co_return r;
                }
                p += direct;
                n -= direct;
                continue;
            }
            const std::size_t k = std::min(n, record_size - staged_);
            std::memcpy(stage_.data() + staged_, p, k);
            staged_ += k;
            p += k;
            n -= k;
            if (staged_ == record_size) {
                IoResult r = co_await write_raw(stage_.data(), staged_, d);
                staged_ = 0;
                if (!r) {
                    co_return r;
                }
            }
        }
    }
    if (staged_ > 0) {
        IoResult r = co_await write_raw(stage_.data(), staged_, d);
        staged_ = 0;
        if (!r) {
            co_return r;
        }
    }
    IoResult f = co_await flush(d);
    if (!f) {
        co_return f;
    }
    co_return IoResult{static_cast<int>(std::min<std::size_t>(total, INT_MAX))};
}

Task<IoResult> TlsStream::send_all(const void* buf, std::size_t len, IoOptions o) {
    const iovec one{const_cast<void*>(buf), len};
    co_return co_await sendmsg_all(&one, 1, std::move(o));
}

Task<IoResult> TlsStream::shutdown(IoOptions o) {
    const Deadline d(o);
    if (broken_) {
        co_return IoResult{-EPIPE};
    }
    ERR_clear_error();
    SSL_shutdown(ssl_); // queues close_notify; the peer's is not waited for
    ERR_clear_error();
    co_return co_await flush(d);
}

} // namespace bioring::apps::nbd
