// SPDX-License-Identifier: MIT
// TlsContext (tls_context.hpp): the SSL_CTX built from a certificate directory.
#include "apps/nbd/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <sys/stat.h>

namespace bioring::apps::nbd {

namespace {

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error("--tls-certificates: " + what);
}

/// The file must exist, be a regular file and be readable by this process.
void check_readable(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        fail("'" + path + "': " + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        fail("'" + path + "': not a regular file");
    }
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) {
        fail("'" + path + "': " + std::strerror(errno));
    }
    std::fclose(f);
}

std::string detail() {
    const std::string e = tls_error_text();
    return e.empty() ? "" : " (" + e + ")";
}

/// A key protected by a pass phrase is refused rather than prompted for on the terminal.
int no_pass_phrase(char*, int, int, void*) {
    return 0;
}

} // namespace

std::string tls_error_text() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) {
            out += "; ";
        }
        out += buf;
    }
    return out;
}

TlsContext::TlsContext(const std::string& dir, bool verify_peer) : verify_peer_(verify_peer) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) {
        fail("'" + dir + "': " + std::strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        fail("'" + dir + "': not a directory");
    }
    const std::string cert = dir + "/server-cert.pem";
    const std::string key = dir + "/server-key.pem";
    const std::string ca = dir + "/ca-cert.pem";
    check_readable(cert);
    check_readable(key);
    if (verify_peer) {
        check_readable(ca);
    }

    ERR_clear_error();
    ctx_ = SSL_CTX_new(TLS_server_method());
    if (ctx_ == nullptr) {
        throw std::runtime_error("cannot create a TLS context" + detail());
    }
    // From here a throw must free the context: the destructor does not run for a
    // constructor that throws.
    std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> guard(ctx_, SSL_CTX_free);
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx_, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                  SSL_OP_CIPHER_SERVER_PREFERENCE);
    // TlsStream writes whole records as its BIO pair takes them and may retry a write
    // from a buffer that moved (its staging buffer versus the caller's payload).
    SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_num_tickets(ctx_, 0);
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_default_passwd_cb(ctx_, no_pass_phrase);

    if (SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str()) != 1) {
        fail("'" + cert + "': not a PEM certificate" + detail());
    }
    {
        std::unique_ptr<BIO, int (*)(BIO*)> in(BIO_new_file(key.c_str(), "r"), BIO_free);
        EVP_PKEY* pkey =
            in ? PEM_read_bio_PrivateKey(in.get(), nullptr, no_pass_phrase, nullptr) : nullptr;
        if (pkey == nullptr) {
            fail("'" + key + "': not an unencrypted PEM private key" + detail());
        }
        const int used = SSL_CTX_use_PrivateKey(ctx_, pkey);
        EVP_PKEY_free(pkey);
        if (used != 1 || SSL_CTX_check_private_key(ctx_) != 1) {
            fail("'" + key + "' does not match the certificate '" + cert + "'" + detail());
        }
    }
    if (verify_peer) {
        if (SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr) != 1) {
            fail("'" + ca + "': not a PEM CA certificate" + detail());
        }
        // The CA names go in the CertificateRequest so a client can pick its certificate.
        if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca.c_str())) {
            SSL_CTX_set_client_CA_list(ctx_, names);
        }
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    ERR_clear_error();
    guard.release();
}

TlsContext::~TlsContext() {
    SSL_CTX_free(ctx_);
}

} // namespace bioring::apps::nbd
