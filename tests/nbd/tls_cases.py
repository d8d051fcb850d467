#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# TLS cases against a running bioring-nbd: python3-libnbd clients (set_tls, with the
# certificate directories of make_certs.sh) and raw clients whose TLS is Python's ssl
# module, for the protocol-level checks libnbd hides (the option replies before TLS, what
# runs inside TLS, garbage instead of a ClientHello).
#
# usage: tls_cases.py CASE SOCKET CERTS DISK [SERVER_PID]
#   CASE   require | on | off | verify | hostile | sigterm (the server's --tls mode the case
#          expects; verify: --tls require --tls-verify-peer; hostile: --tls require with a
#          short --handshake-timeout; sigterm: --tls require, SERVER_PID given)
#   CERTS  the directory make_certs.sh filled (server/ client/ nocert/ foreign/)
#   DISK   the served file (its bytes are compared with what the clients read and wrote)
# Prints "ok ..." lines; exits 1 with a message on the first failed check.
import os
import signal
import socket
import ssl
import struct
import sys
import time

import nbd

CASE, SOCK, CERTS, DISK = sys.argv[1:5]

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
OPT_REPLY_MAGIC = 0x0003E889045565A9
REQ_MAGIC = 0x25609513
SIMPLE_REPLY = 0x67446698
STRUCTURED_REPLY = 0x668E33EF
OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS, OPT_INFO, OPT_GO = 1, 2, 3, 5, 6, 7
OPT_STRUCTURED_REPLY, OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT = 8, 9, 10
REP_ACK, REP_SERVER, REP_INFO = 1, 2, 3
REP_ERR_UNSUP = (1 << 31) + 1
REP_ERR_INVALID = (1 << 31) + 3
REP_ERR_TLS_REQD = (1 << 31) + 5
CMD_READ, CMD_WRITE, CMD_DISC = 0, 1, 2


def fail(msg):
    print(f"FAIL {CASE}: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def ok(msg):
    print("ok", msg, flush=True)


def disk(off, n):
    with open(DISK, "rb") as f:
        f.seek(off)
        return f.read(n)


# ---- raw clients -----------------------------------------------------------------------

def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(SOCK)
    return s


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            fail(f"EOF after {len(b)} of {n} bytes")
        b += c
    return b


def expect_eof(s, what, timeout=10):
    """The server closes @s within @timeout seconds (bytes before the close are ignored)."""
    s.settimeout(timeout)
    start = time.time()
    try:
        while s.recv(65536):
            check(time.time() - start < timeout, f"{what}: still open")
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError) as e:
        if isinstance(e, socket.timeout):
            fail(f"{what}: not closed within {timeout} s")
    return time.time() - start


def greet(s):
    hello = recv_exact(s, 18)
    magic, opt, flags = struct.unpack(">QQH", hello)
    check(magic == NBDMAGIC and opt == IHAVEOPT and flags & 1, "bad greeting")
    s.sendall(struct.pack(">I", 3))  # FIXED_NEWSTYLE | NO_ZEROES


def option(s, opt, payload=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, opt, len(payload)) + payload)


def option_reply(s):
    magic, opt, typ, ln = struct.unpack(">QIII", recv_exact(s, 20))
    check(magic == OPT_REPLY_MAGIC, f"bad option reply magic {magic:#x}")
    return opt, typ, recv_exact(s, ln) if ln else b""


def ask(s, opt, payload=b""):
    """Send one option; return the reply types up to and including the final one."""
    option(s, opt, payload)
    types = []
    while True:
        o, typ, _ = option_reply(s)
        check(o == opt, f"reply for option {o}, sent {opt}")
        types.append(typ)
        if typ not in (REP_SERVER, REP_INFO, 4):
            return types


def go_payload(name=b""):
    return struct.pack(">I", len(name)) + name + struct.pack(">H", 0)


def starttls(s, certdir="client", cert=True):
    """STARTTLS (ACK expected) and the TLS handshake as a client of the test CA."""
    check(ask(s, OPT_STARTTLS) == [REP_ACK], "STARTTLS not acknowledged")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(CERTS, certdir, "ca-cert.pem"))
    if cert:
        ctx.load_cert_chain(os.path.join(CERTS, certdir, "client-cert.pem"),
                            os.path.join(CERTS, certdir, "client-key.pem"))
    t = ctx.wrap_socket(s, server_hostname="localhost")
    t.settimeout(10)
    return t


def read_request(s, off, ln, cookie=7):
    s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, 0, CMD_READ, cookie, off, ln))
    magic, = struct.unpack(">I", recv_exact(s, 4))
    return magic


# ---- libnbd clients --------------------------------------------------------------------

def libnbd(tls, certdir="client"):
    h = nbd.NBD()
    h.set_tls(tls)
    if tls != nbd.TLS_DISABLE:
        h.set_tls_certificates(os.path.join(CERTS, certdir))
    h.connect_unix(SOCK)
    return h


def libnbd_refused(tls, certdir, what):
    try:
        h = libnbd(tls, certdir)
    except nbd.Error as e:
        return str(e)
    h.shutdown()
    fail(f"{what}: libnbd connected")


def libnbd_round_trip(tls, what, off):
    h = libnbd(tls)
    check(h.get_tls_negotiated() == (tls != nbd.TLS_DISABLE), f"{what}: tls_negotiated")
    data = os.urandom(256 * 1024)  # spans many TLS records
    h.pwrite(data, off)
    h.flush()
    check(h.pread(len(data), off) == data, f"{what}: read back differs")
    h.shutdown()
    check(disk(off, len(data)) == data, f"{what}: the file does not hold the written bytes")


# ---- cases -------------------------------------------------------------------------------

def case_require():
    # Before TLS every option but STARTTLS and ABORT gets TLS_REQD.
    s = connect()
    greet(s)
    for opt, payload in ((OPT_LIST, b""), (OPT_INFO, go_payload()), (OPT_GO, go_payload()),
                         (OPT_STRUCTURED_REPLY, b""),
                         (OPT_LIST_META_CONTEXT, struct.pack(">II", 0, 0)),
                         (OPT_SET_META_CONTEXT, struct.pack(">II", 0, 0)), (0x1234, b"")):
        check(ask(s, opt, payload) == [REP_ERR_TLS_REQD], f"option {opt}: no TLS_REQD")
    check(ask(s, OPT_STARTTLS, b"x") == [REP_ERR_INVALID], "STARTTLS with a payload")
    check(ask(s, OPT_ABORT) == [REP_ACK], "ABORT before TLS")
    expect_eof(s, "after ABORT")
    ok("require: options before TLS get TLS_REQD, ABORT is answered")

    s = connect()
    greet(s)
    option(s, OPT_EXPORT_NAME, b"")
    expect_eof(s, "EXPORT_NAME before TLS")
    ok("require: EXPORT_NAME before TLS closes the connection")

    # Inside TLS: the rest of the negotiation and the transmission.
    s = connect()
    greet(s)
    t = starttls(s)
    check(ask(t, OPT_STARTTLS) == [REP_ERR_INVALID], "STARTTLS inside TLS")
    check(ask(t, OPT_LIST) == [REP_SERVER, REP_ACK], "LIST inside TLS")
    check(ask(t, OPT_GO, go_payload())[-1] == REP_ACK, "GO inside TLS")
    want = disk(8192, 65536)
    check(read_request(t, 8192, 65536) == SIMPLE_REPLY, "READ reply magic")
    err, cookie = struct.unpack(">IQ", recv_exact(t, 12))
    check(err == 0 and cookie == 7, f"READ error {err}")
    check(recv_exact(t, 65536) == want, "READ over TLS differs from the file")
    t.sendall(struct.pack(">IHHQQI", REQ_MAGIC, 0, CMD_DISC, 0, 0, 0))
    expect_eof(t, "after DISC")
    ok(f"require: inside TLS ({t.version()}) STARTTLS is invalid, LIST and GO and READ work")

    # libnbd: a clear client is refused, a TLS one is served.
    libnbd_refused(nbd.TLS_DISABLE, None, "clear client against --tls require")
    ok("require: a libnbd client without TLS is refused")
    libnbd_round_trip(nbd.TLS_REQUIRE, "libnbd TLS client", 1 << 20)
    ok("require: libnbd with TLS writes, flushes and reads back")


def case_on():
    libnbd_round_trip(nbd.TLS_DISABLE, "clear client against --tls on", 0)
    ok("on: a libnbd client without TLS is served")
    libnbd_round_trip(nbd.TLS_REQUIRE, "TLS client against --tls on", 2 << 20)
    ok("on: a libnbd client with TLS is served")
    s = connect()
    greet(s)
    check(ask(s, OPT_LIST) == [REP_SERVER, REP_ACK], "LIST in clear")
    # What was negotiated in clear is forgotten by STARTTLS: structured replies included.
    check(ask(s, OPT_STRUCTURED_REPLY) == [REP_ACK], "STRUCTURED_REPLY in clear")
    t = starttls(s)
    check(ask(t, OPT_GO, go_payload())[-1] == REP_ACK, "GO inside TLS")
    check(read_request(t, 0, 4096) == SIMPLE_REPLY,
          "structured replies negotiated before STARTTLS survived it")
    recv_exact(t, 12 + 4096)
    t.close()
    ok("on: options in clear are served, and STARTTLS forgets them")


def case_off():
    s = connect()
    greet(s)
    check(ask(s, OPT_STARTTLS) == [REP_ERR_UNSUP], "STARTTLS without --tls")
    s.close()
    libnbd_refused(nbd.TLS_REQUIRE, "client", "TLS client against --tls off")
    ok("off: STARTTLS is unsupported and a client requiring TLS gives up")


def case_verify():
    libnbd_round_trip(nbd.TLS_REQUIRE, "client certificate of the CA", 3 << 20)
    ok("verify: a client with a certificate of ca-cert.pem is served")
    libnbd_refused(nbd.TLS_REQUIRE, "nocert", "client without a certificate")
    ok("verify: a libnbd client without a certificate is refused")
    libnbd_refused(nbd.TLS_REQUIRE, "foreign", "client certificate of another CA")
    ok("verify: a libnbd client with another CA's certificate is refused")
    for certdir, cert in (("nocert", False), ("foreign", True)):
        s = connect()
        greet(s)
        try:
            t = starttls(s, certdir, cert)
            # TLS 1.3: the client's handshake ends before the server has checked the
            # certificate; the refusal arrives as an alert on the first read.
            t.recv(1)
            fail(f"{certdir}: the server answered")
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
            msg = str(e)
        # The server says why: TLS 1.3's certificate_required, or (a certificate it cannot
        # verify) unknown_ca.
        check("alert" in msg.lower(), f"{certdir}: no alert from the server: {msg}")
        ok(f"verify: a raw TLS client ({certdir}) is refused: {msg}")
    libnbd_round_trip(nbd.TLS_REQUIRE, "good client after the refusals", 4 << 20)
    ok("verify: a good client is still served")


def case_hostile():
    # Garbage instead of a ClientHello.
    s = connect()
    greet(s)
    check(ask(s, OPT_STARTTLS) == [REP_ACK], "STARTTLS")
    s.sendall(b"GET / HTTP/1.0\r\n\r\n" + os.urandom(4096))
    expect_eof(s, "garbage after STARTTLS", 5)
    ok("hostile: garbage after STARTTLS is dropped")
    # A ClientHello cut short, then silence: the handshake timeout closes it.
    s = connect()
    greet(s)
    check(ask(s, OPT_STARTTLS) == [REP_ACK], "STARTTLS")
    s.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC]))
    took = expect_eof(s, "half a ClientHello", 15)
    ok(f"hostile: half a ClientHello is closed by the handshake timeout after {took:.1f} s")
    # STARTTLS and then nothing at all.
    s = connect()
    greet(s)
    check(ask(s, OPT_STARTTLS) == [REP_ACK], "STARTTLS")
    expect_eof(s, "silence after STARTTLS", 15)
    ok("hostile: silence after STARTTLS is closed by the handshake timeout")
    # A TLS record with a forged MAC inside the session.
    s = connect()
    greet(s)
    t = starttls(s)
    check(ask(t, OPT_GO, go_payload())[-1] == REP_ACK, "GO inside TLS")
    # The ssl module cannot forge a record: write one on a duplicate of the descriptor.
    forger = socket.socket(fileno=os.dup(t.fileno()))
    forger.sendall(bytes([0x17, 0x03, 0x03, 0x00, 0x20]) + os.urandom(32))
    expect_eof(forger, "forged record", 5)
    forger.close()
    t.close()
    ok("hostile: an application-data record that fails authentication closes the connection")
    # A WRITE whose payload is cut off by a disconnect, inside TLS.
    s = connect()
    greet(s)
    t = starttls(s)
    check(ask(t, OPT_GO, go_payload())[-1] == REP_ACK, "GO inside TLS")
    t.sendall(struct.pack(">IHHQQI", REQ_MAGIC, 0, CMD_WRITE, 1, 0, 65536) + b"x" * 1000)
    t.close()
    ok("hostile: a disconnect in the middle of a WRITE payload inside TLS")
    # Many clients that STARTTLS and vanish at once.
    for _ in range(50):
        s = connect()
        greet(s)
        option(s, OPT_STARTTLS)
        s.close()
    ok("hostile: 50 clients that vanish right after STARTTLS")
    libnbd_round_trip(nbd.TLS_REQUIRE, "good client after the attacks", 5 << 20)
    ok("hostile: a good TLS client is still served")


def case_sigterm():
    # A TLS client in the middle of its session when the server is told to stop: what the
    # server had read is answered, and every write answered is in the file; then the
    # session ends and the server exits (its status is checked by the caller).
    pid = int(sys.argv[5])
    h = libnbd(nbd.TLS_REQUIRE)
    blocks = [os.urandom(1 << 20) for _ in range(8)]
    h.pwrite(blocks[0], 0)
    cookies = [h.aio_pwrite(blocks[i], i << 20) for i in range(1, 8)]
    end = time.time() + 0.3
    while time.time() < end:  # let libnbd send them
        h.poll(50)
    os.kill(pid, signal.SIGTERM)
    answered = {0}
    deadline = time.time() + 20
    pending = dict(zip(cookies, range(1, 8)))
    while pending and time.time() < deadline:
        try:
            h.poll(200)
        except nbd.Error:
            pass
        for c in list(pending):
            try:
                if h.aio_command_completed(c):
                    answered.add(pending.pop(c))
            except nbd.Error:  # never answered: the server had not read it
                pending.pop(c)
    check(not pending, f"{len(pending)} writes neither answered nor failed after 20 s")
    try:
        h.pread(4096, 0)
        fail("the session went on after SIGTERM")
    except nbd.Error:
        pass
    for i in answered:
        check(disk(i << 20, 1 << 20) == blocks[i], f"answered write {i} is not in the file")
    ok(f"sigterm: {len(answered)} of 8 writes answered over TLS and in the file, "
       "then the session ended")


CASES = {"sigterm": case_sigterm, "require": case_require, "on": case_on, "off": case_off, "verify": case_verify,
         "hostile": case_hostile}
if CASE not in CASES:
    fail(f"unknown case {CASE}")
CASES[CASE]()
ok(CASE)
