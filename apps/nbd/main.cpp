// SPDX-License-Identifier: MIT
// bioring-nbd [options] FILE|DEVICE: serve a file or block device over the NBD protocol.
//
// The stack, top to bottom: the NBD front end (nbd_front.hpp), optionally the dm-crypt
// plain aes-xts-plain64 layer (crypt_layer.hpp, --crypt), and the O_DIRECT file layer
// (file_layer.hpp), each with its own BioSet. Reactor 0 accepts; connections are handed to
// the reactors in turn. The process runs in the foreground: SIGINT/SIGTERM stop accepting,
// let every request already read finish and be answered, flush, and exit 0; SIGUSR1
// prints the per-layer allocation table (as --stats does at exit).
// TLS (--tls on|require, tls_context.hpp): NBD_OPT_STARTTLS upgrades a connection to TLS
// with the certificates of --tls-certificates DIR; --tls-verify-peer admits only clients
// whose certificate chains to DIR/ca-cert.pem.
// Exit status: 0 stopped by a signal, 1 setup or runtime failure, 2 usage error.
#include "apps/common/args.hpp"
#include "apps/common/driver.hpp"
#include "apps/common/safe_output.hpp"
#include "apps/crypt/key_file.hpp"
#include "apps/nbd/crypt_layer.hpp"
#include "apps/nbd/file_layer.hpp"
#include "apps/nbd/nbd_front.hpp"
#include "apps/nbd/tls_context.hpp"

#include <bioring/io/listener.hpp>
#include <bioring/runtime/runtime.hpp>
#include <bioring/runtime/sleep.hpp>
#include <bioring/runtime/spawn.hpp>

#include <openssl/crypto.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <memory>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/resource.h>
#include <stop_token>
#include <string>
#include <thread>
#include <unistd.h>

using namespace bioring;
using namespace bioring::apps;
using namespace bioring::apps::nbd;

namespace {

constexpr const char* prog = "bioring-nbd";

constexpr const char* usage_text =
    "usage: bioring-nbd [options] (--socket PATH | --listen HOST:PORT) FILE|DEVICE\n"
    "Serve FILE or DEVICE over the NBD protocol (fixed newstyle) until SIGINT or SIGTERM.\n"
    "\n"
    "options:\n"
    "  --socket PATH         listen on a Unix socket created with mode 0600\n"
    "  --listen HOST:PORT    listen on TCP (\"[::1]:10809\" for IPv6); a non-loopback\n"
    "                        address needs --tls require or --insecure\n"
    "  --insecure            allow --listen on a non-loopback address without --tls require\n"
    "  --tls MODE            off (default): no TLS; on: NBD_OPT_STARTTLS is offered and\n"
    "                        clients in clear are served too; require: only STARTTLS and\n"
    "                        ABORT are answered before TLS\n"
    "  --tls-certificates DIR  server-cert.pem, server-key.pem (and ca-cert.pem for\n"
    "                        --tls-verify-peer), as nbdkit and qemu lay them out\n"
    "  --tls-verify-peer     refuse clients without a certificate signed by ca-cert.pem\n"
    "  --export NAME         the export's name (default: empty; the empty name always works)\n"
    "  --read-only           refuse writes (EPERM); the file is opened read-only\n"
    "  --threads N           reactor threads, 1..256 (default: one per core)\n"
    "  --max-requests N      requests in flight per connection, 1..4096 (default 64); a\n"
    "                        READ/WRITE counts one per started MiB (at most 32 MiB each),\n"
    "                        so a connection holds at most max(N, 32) MiB of payload\n"
    "  --max-connections N   connections served at once, 1..65536 (default 1024); more are\n"
    "                        closed at once, with a message on stderr\n"
    "  --handshake-timeout S seconds a client has for the whole handshake, 1..3600\n"
    "                        (default 10); a slower or silent one is closed\n"
    "  --cache MODE          none (default): O_DIRECT, the page cache is bypassed;\n"
    "                        writeback: buffered I/O through the page cache (FLUSH and\n"
    "                        FUA still fdatasync), as qemu-nbd --cache=writeback\n"
    "  --tmpfs-io MODE       reads and writes of a file on tmpfs or ramfs: inline\n"
    "                        (default: pread/pwrite on the serving thread; io_uring could\n"
    "                        only hand each to a worker thread, as tmpfs has no\n"
    "                        non-blocking I/O) or ring (through io_uring like any file)\n"
    "  --fua MODE            how a WRITE with FUA is made durable: flush (default: the\n"
    "                        write, then fdatasync of the file) or dsync (RWF_DSYNC on\n"
    "                        the write: its own blocks only)\n"
    "  --stats               print the per-layer allocation table at exit (SIGUSR1: now)\n"
    "  --provided-buffers    receive requests into io_uring provided buffers shared by a\n"
    "                        thread's connections, not a 64 KiB buffer per connection;\n"
    "                        off by default\n"
    "  --zero-copy           send READ replies with io_uring SEND_ZC (TCP only; a Unix\n"
    "                        socket gets plain sends); off by default\n"
    "  --crypt SPEC          encrypt as dm-crypt plain mode; SPEC is aes-xts-plain64\n"
    "  --key-file FILE       raw key bytes (never hashed); required with --crypt\n"
    "  --key-size BITS       512 (AES-256-XTS, default) or 256 (AES-128-XTS)\n"
    "  --keyfile-offset N    skip N bytes at the start of the key file (default 0)\n"
    "  --sector-size N       512 (default) or 4096 bytes per XTS data unit\n"
    "  --skip N              IV offset in 512-byte sectors, as cryptsetup --skip (default 0)\n"
    "  --iv-large-sectors    count IVs in sector-size units\n"
    "  --offset BYTES        the encrypted data starts BYTES into FILE (a multiple of the\n"
    "                        sector size; default 0)\n"
    "  -h, --help            this text\n"
    "\n"
    "The crypt options match bioring-crypt's and cryptsetup open --type plain's.\n"
    "exit status: 0 stopped by SIGINT/SIGTERM, 1 failure, 2 usage or key error\n";

struct Options {
    std::string socket_path, listen, export_name, file;
    bool read_only = false;
    bool stats = false;
    bool zero_copy = false;
    bool provided_buffers = false;
    bool insecure = false;
    FuaMode fua = FuaMode::flush;
    bool writeback = false; ///< --cache writeback: buffered file
    bool tmpfs_inline = true; ///< --tmpfs-io inline
    TlsMode tls = TlsMode::off;
    std::string tls_dir;
    bool tls_verify_peer = false;
    unsigned threads = 0;
    unsigned max_requests = 64;
    unsigned max_connections = 1024;
    unsigned handshake_timeout_s = 10;
    bool crypt = false;
    std::string key_file;
    unsigned key_bits = 512;
    std::uint64_t keyfile_offset = 0;
    SectorFormat fmt;
    std::uint64_t offset = 0;
    bool crypt_option = false; ///< a crypt-only option was given
};

Options parse(int argc, char** argv, bool* help) {
    Options o;
    ArgParser p;
    auto nonempty = [](std::string_view v, const char* what) {
        if (v.empty()) {
            throw UsageError(std::string(what) + ": empty value");
        }
        return std::string(v);
    };
    p.value("socket", [&](std::string_view v) { o.socket_path = nonempty(v, "--socket"); });
    p.value("listen", [&](std::string_view v) { o.listen = nonempty(v, "--listen"); });
    p.value("export", [&](std::string_view v) {
        if (v.size() > max_string) {
            throw UsageError("--export: a name of at most " + std::to_string(max_string) +
                             " bytes");
        }
        o.export_name = v;
    });
    p.flag("read-only", &o.read_only);
    p.flag("insecure", &o.insecure);
    bool tls_given = false;
    p.value("tls", [&](std::string_view v) {
        if (v == "off") {
            o.tls = TlsMode::off;
        } else if (v == "on") {
            o.tls = TlsMode::on;
        } else if (v == "require") {
            o.tls = TlsMode::require;
        } else {
            throw UsageError("--tls must be off, on or require, not '" + std::string(v) + "'");
        }
        tls_given = true;
    });
    p.value("tls-certificates",
            [&](std::string_view v) { o.tls_dir = nonempty(v, "--tls-certificates"); });
    p.flag("tls-verify-peer", &o.tls_verify_peer);
    p.flag("stats", &o.stats);
    // @v as one of two words: false for @first, true for @second.
    auto either = [](std::string_view v, const char* flag, const char* first, const char* second) {
        if (v != first && v != second) {
            throw UsageError(std::string(flag) + " '" + std::string(v) + "': " + first + " or " +
                             second);
        }
        return v == second;
    };
    p.value("cache",
            [&](std::string_view v) { o.writeback = either(v, "--cache", "none", "writeback"); });
    p.value("tmpfs-io", [&](std::string_view v) {
        o.tmpfs_inline = !either(v, "--tmpfs-io", "inline", "ring");
    });
    p.value("fua", [&](std::string_view v) {
        o.fua = either(v, "--fua", "flush", "dsync") ? FuaMode::dsync : FuaMode::flush;
    });
    p.flag("zero-copy", &o.zero_copy);
    p.flag("provided-buffers", &o.provided_buffers);
    p.value("threads", [&](std::string_view v) {
        o.threads = static_cast<unsigned>(parse_uint(v, "--threads", 1, 256));
    });
    p.value("max-requests", [&](std::string_view v) {
        o.max_requests = static_cast<unsigned>(parse_uint(v, "--max-requests", 1, 4096));
    });
    p.value("max-connections", [&](std::string_view v) {
        o.max_connections = static_cast<unsigned>(parse_uint(v, "--max-connections", 1, 65536));
    });
    p.value("handshake-timeout", [&](std::string_view v) {
        o.handshake_timeout_s =
            static_cast<unsigned>(parse_uint(v, "--handshake-timeout", 1, 3600));
    });
    p.value("crypt", [&](std::string_view v) {
        if (v != "aes-xts-plain64") {
            throw UsageError("--crypt '" + std::string(v) +
                             "' is not supported (only aes-xts-plain64)");
        }
        o.crypt = true;
    });
    p.value("key-file", [&](std::string_view v) {
        o.key_file = nonempty(v, "--key-file");
        o.crypt_option = true;
    });
    p.value("key-size", [&](std::string_view v) {
        o.key_bits = static_cast<unsigned>(parse_uint(v, "--key-size", 0, 1u << 20));
        if (o.key_bits != 512 && o.key_bits != 256) {
            throw UsageError("--key-size must be 512 (AES-256-XTS) or 256 (AES-128-XTS), not " +
                             std::string(v));
        }
        o.crypt_option = true;
    });
    p.value("keyfile-offset", [&](std::string_view v) {
        o.keyfile_offset = parse_size(v, "--keyfile-offset");
        o.crypt_option = true;
    });
    p.value("sector-size", [&](std::string_view v) {
        o.fmt.sector_size = static_cast<std::uint32_t>(parse_uint(v, "--sector-size", 0, 1u << 20));
        if (o.fmt.sector_size != 512 && o.fmt.sector_size != 4096) {
            throw UsageError("--sector-size must be 512 or 4096, not " + std::string(v));
        }
        o.crypt_option = true;
    });
    p.value("skip", [&](std::string_view v) {
        o.fmt.skip = parse_uint(v, "--skip", 0, UINT64_MAX);
        o.crypt_option = true;
    });
    bool iv_large = false;
    p.flag("iv-large-sectors", &iv_large);
    p.value("offset", [&](std::string_view v) {
        o.offset = parse_size(v, "--offset");
        o.crypt_option = true;
    });
    auto pos = p.parse(argc, argv, help);
    if (*help) {
        return o;
    }
    o.fmt.iv_large_sectors = iv_large;
    if (iv_large) {
        o.crypt_option = true;
    }
    if (pos.empty()) {
        throw UsageError("missing FILE or DEVICE");
    }
    if (pos.size() > 1) {
        throw UsageError("too many arguments (one FILE or DEVICE)");
    }
    o.file = pos[0];
    if (o.file.empty()) {
        throw UsageError("empty file name");
    }
    if (o.socket_path.empty() == o.listen.empty()) {
        throw UsageError("give exactly one of --socket PATH and --listen HOST:PORT");
    }
    if (o.tls != TlsMode::off && o.tls_dir.empty()) {
        throw UsageError("--tls " + std::string(o.tls == TlsMode::on ? "on" : "require") +
                         " needs --tls-certificates DIR");
    }
    if (o.tls == TlsMode::off && (!o.tls_dir.empty() || o.tls_verify_peer)) {
        throw UsageError(std::string(tls_given ? "--tls off" : "no --tls") + " with " +
                         (o.tls_verify_peer ? "--tls-verify-peer" : "--tls-certificates") +
                         ": give --tls on or --tls require");
    }
    if (o.crypt_option && !o.crypt) {
        throw UsageError("--key-file, --key-size, --keyfile-offset, --sector-size, --skip, "
                         "--iv-large-sectors and --offset need --crypt aes-xts-plain64");
    }
    if (o.crypt) {
        if (o.key_file.empty()) {
            throw UsageError("--crypt needs --key-file");
        }
        if (std::string why = validate(o.fmt); !why.empty()) {
            throw UsageError(why);
        }
        if (o.offset % o.fmt.sector_size != 0) {
            throw UsageError("--offset " + std::to_string(o.offset) +
                             " is not a multiple of the sector size " +
                             std::to_string(o.fmt.sector_size));
        }
    }
    if (o.threads == 0) {
        o.threads = std::max(1u, std::thread::hardware_concurrency());
    }
    return o;
}

Task<void> nothing() {
    co_return;
}

Task<void> connection(NbdFront& front, Runtime& rt, Socket s, unsigned shard,
                      std::stop_token stop) {
    co_await rt.switch_to(shard);
    co_await front.serve(std::move(s), stop);
}

// Reactor 0: accept until stop, handing connections to the reactors in turn. A transient
// accept failure (out of descriptors or memory) is reported and retried after a pause.
// Past @max_connections a new connection is closed at once (the client sees EOF before
// the greeting) and stderr says why, at most once a second.
Task<void> accept_loop(Listener& l, NbdFront& front, Runtime& rt, unsigned max_connections,
                       std::stop_token stop) {
    unsigned next = 0;
    std::chrono::steady_clock::time_point last_refusal{};
    while (!stop.stop_requested()) {
        IoOptions o; // named and moved in: see request_options() in nbd_front.cpp
        o.stop = stop;
        Result<Socket> s = co_await l.accept(std::move(o));
        if (!s) {
            if (stop.stop_requested() || s.error() == std::errc::operation_canceled) {
                break;
            }
            std::fprintf(stderr, "%s: accept on %s: %s (retrying)\n", prog,
                         l.address().to_string().c_str(), s.error().message().c_str());
            co_await sleep_for(std::chrono::milliseconds(100));
            continue;
        }
        if (front.connections() >= max_connections) {
            const auto now = std::chrono::steady_clock::now();
            if (now - last_refusal >= std::chrono::seconds(1)) {
                last_refusal = now;
                std::fprintf(stderr,
                             "%s: refusing a connection: %u connections open "
                             "(--max-connections %u)\n",
                             prog, front.connections(), max_connections);
            }
            co_await s->close();
            continue;
        }
        front.begin_connection();
        spawn(connection(front, rt, std::move(*s), next++ % rt.size(), stop));
    }
}

// 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104: addresses no other machine can reach.
bool is_loopback(const SocketAddress& a) {
    if (a.family() == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(a.data());
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (a.family() == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a.data());
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) {
            return true;
        }
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
    }
    return a.family() == AF_UNIX;
}

// Each connection is a descriptor: raise the soft RLIMIT_NOFILE to the hard limit, and
// warn when even that cannot hold --max-connections (accept then fails with EMFILE and
// retries, which the accept loop reports).
void raise_fd_limit(unsigned max_connections) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
        ::getrlimit(RLIMIT_NOFILE, &rl);
    }
    const rlim_t needed = rlim_t{max_connections} + 64; // rings, files, listener, stdio
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < needed) {
        std::fprintf(stderr,
                     "%s: warning: the descriptor limit (%llu) is below --max-connections "
                     "%u plus 64; raise ulimit -n\n",
                     prog, static_cast<unsigned long long>(rl.rlim_cur), max_connections);
    }
}

std::string describe(const Options& o, const BlockDevice& top) {
    std::string d = "'" + o.file + "' (" + std::to_string(top.size()) + " bytes";
    if (o.crypt) {
        d += ", aes-xts-plain64, " + std::to_string(o.fmt.sector_size) + "-byte sectors";
        if (o.offset != 0) {
            d += ", data at offset " + std::to_string(o.offset);
        }
    }
    if (o.read_only) {
        d += ", read-only";
    }
    return d + ")";
}

int run(int argc, char** argv) {
    bool help = false;
    Options o = parse(argc, argv, &help);
    if (help) {
        std::fputs(usage_text, stdout);
        return 0;
    }
    KeyBytes key;
    if (o.crypt) {
        warn_if_key_exposed(prog, o.key_file);
        read_key_file(o.key_file, o.key_bits, o.keyfile_offset, key);
    }
    SocketAddress addr;
    {
        Result<SocketAddress> a = o.listen.empty() ? SocketAddress::unix_path(o.socket_path)
                                                   : SocketAddress::parse(o.listen);
        if (!a) {
            throw UsageError(std::string(last_error_message()));
        }
        addr = *a;
    }
    const bool remote = !o.listen.empty() && !is_loopback(addr);
    if (remote && o.tls != TlsMode::require && !o.insecure) {
        throw UsageError("--listen " + o.listen +
                         " is not a loopback address: without --tls require a client could "
                         "send every block across the network in clear text and anyone who "
                         "can reach the port could read and write the export; give --tls "
                         "require (with --tls-certificates DIR) or --insecure to serve it "
                         "anyway");
    }
    if (remote && o.tls == TlsMode::require && !o.tls_verify_peer) {
        std::fprintf(stderr,
                     "%s: warning: --listen %s without --tls-verify-peer: the traffic is "
                     "encrypted, but any client that can reach the port can read and write "
                     "the export\n",
                     prog, o.listen.c_str());
    }
    std::unique_ptr<TlsContext> tls;
    if (o.tls != TlsMode::off) {
        tls = std::make_unique<TlsContext>(o.tls_dir, o.tls_verify_peer);
    }

    check_source(o.file);
    OpenOptions oo;
    oo.write = !o.read_only;
    oo.direct = !o.writeback;
    // Every layer's reserve is --max-requests deep (the forward-progress rule and why this
    // depth: block_device.hpp).
    FileLayer file(open_file(prog, o.file, oo), o.read_only, o.max_requests);
    file.set_fua_mode(o.fua);
    file.set_inline_io(o.tmpfs_inline && FileLayer::memory_file(file.file()));
    if (file.dropped_tail() != 0) {
        std::fprintf(stderr,
                     "%s: warning: '%s' is not a multiple of its %u-byte O_DIRECT block: its "
                     "last %llu bytes are not exported\n",
                     prog, o.file.c_str(), file.alignment(),
                     static_cast<unsigned long long>(file.dropped_tail()));
    }
    if (file.size() == 0) {
        throw std::runtime_error("'" + o.file + "' has nothing to export (" +
                                 std::to_string(file.size()) + " usable bytes)");
    }
    std::unique_ptr<CryptLayer> crypt;
    if (o.crypt) {
        try {
            crypt = std::make_unique<CryptLayer>(file, key.bytes, o.fmt, o.offset, o.max_requests);
        } catch (const std::invalid_argument& e) {
            throw UsageError(std::string("--crypt: ") + e.what());
        }
    }
    // The crypt layer keeps its own copy (wiped in its destructor): wipe this one now
    // rather than at exit.
    OPENSSL_cleanse(key.bytes.data(), key.bytes.size());
    key.bytes.clear();
    BlockDevice& top = crypt ? static_cast<BlockDevice&>(*crypt) : file;
    FrontOptions fo;
    fo.export_name = o.export_name;
    fo.read_only = o.read_only;
    fo.zero_copy = o.zero_copy;
    fo.provided_buffers = o.provided_buffers;
    fo.max_requests = o.max_requests;
    fo.handshake_timeout = std::chrono::seconds(o.handshake_timeout_s);
    fo.tls_mode = o.tls;
    fo.tls = tls.get();
    NbdFront front(top, fo);

    raise_fd_limit(o.max_connections);
    ListenOptions lo;
    lo.unix_mode = 0600;
    Listener listener = Listener::listen(addr, lo);

    // Signals are taken by sigwait() here; every reactor thread inherits the mask.
    sigset_t sigs;
    sigemptyset(&sigs);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1}) {
        sigaddset(&sigs, s);
    }
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

    RuntimeOptions ro;
    ro.threads = o.threads;
    Runtime rt(ro);
    std::printf("%s: serving %s as export '%s' on %s (%u threads, %u requests per "
                "connection%s%s)\n",
                prog, describe(o, top).c_str(), o.export_name.c_str(),
                listener.address().to_string().c_str(), rt.size(), o.max_requests,
                file.inline_io() ? ", tmpfs I/O inline" : "",
                o.tls == TlsMode::off  ? ", no TLS"
                : o.tls == TlsMode::on ? (o.tls_verify_peer ? ", TLS offered, client "
                                                              "certificates required"
                                                            : ", TLS offered")
                : o.tls_verify_peer    ? ", TLS required, client certificates required"
                                       : ", TLS required");
    std::fflush(stdout);

    Layer* layers_all[] = {&front, crypt.get(), &file};
    std::vector<Layer*> layers;
    for (Layer* l : layers_all) {
        if (l != nullptr) {
            layers.push_back(l);
        }
    }
    std::stop_source stop;
    std::exception_ptr accept_error;
    std::thread acceptor([&] {
        try {
            rt.run_on_all([&](unsigned shard) -> Task<void> {
                return shard == 0
                           ? accept_loop(listener, front, rt, o.max_connections, stop.get_token())
                           : nothing();
            });
        } catch (...) {
            accept_error = std::current_exception();
            ::kill(::getpid(), SIGTERM); // wake the sigwait below
        }
    });
    int sig = 0;
    for (;;) {
        if (sigwait(&sigs, &sig) != 0) {
            continue;
        }
        if (sig == SIGUSR1) {
            std::fprintf(stderr, "%s", stats_table(layers).c_str());
            continue;
        }
        break;
    }
    stop.request_stop();
    acceptor.join();
    front.wait_idle(); // every request read has been answered
    IoResult flushed{0};
    rt.run_on_all([&](unsigned shard) -> Task<void> {
        if (shard != 0) {
            return nothing();
        }
        return [](BlockDevice& d, IoResult& out) -> Task<void> {
            out = co_await d.flush();
        }(top, flushed);
    });
    rt.shutdown();
    listener.close();
    if (o.stats) {
        std::fprintf(stderr, "%s", stats_table(layers).c_str());
    }
    if (accept_error) {
        std::rethrow_exception(accept_error);
    }
    if (!flushed) {
        throw std::system_error(-flushed.res, std::system_category(),
                                "flush of '" + o.file + "' at exit failed");
    }
    std::fprintf(stderr, "%s: stopped by signal %d; data flushed\n", prog, sig);
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    return driver_main(prog, run, argc, argv);
}
