#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Hostile NBD clients against a real bioring-nbd on a Unix socket, with raw sockets.
#
# usage: hostile_clients.py SERVER_EXE SCRATCH_DIR CASE
# Each case starts its own server (on SCRATCH_DIR/nbd.sock over a file there), attacks it,
# then checks that the server still serves a well-behaved client (python3-libnbd: write,
# read back, flush), that every layer's in-use frame count (SIGUSR1's table) is back to
# zero, and at the end that SIGTERM stops it with exit 0 and no sanitizer report on its
# stderr. Prints "ok ..." lines; exits 1 with a message on the first failed check.
import os
import re
import resource
import signal
import socket
import struct
import subprocess
import sys
import time

import nbd

EXE, DIR, CASE = sys.argv[1], sys.argv[2], sys.argv[3]
SOCK = os.path.join(DIR, "nbd.sock")
DISK = os.path.join(DIR, "disk.img")
DISK_SIZE = 16 << 20
MAX_BLOCK = 32 << 20

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
OPT_REPLY_MAGIC = 0x0003E889045565A9
REQ_MAGIC = 0x25609513
SIMPLE_REPLY = 0x67446698
OPT_EXPORT_NAME, OPT_ABORT, OPT_GO = 1, 2, 7
REP_ACK = 1
REP_ERR_INVALID = (1 << 31) + 3
REP_ERR_TOO_BIG = (1 << 31) + 9
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM = 0, 1, 2, 3, 4
EPERM, EINVAL, ENOSPC, EOVERFLOW = 1, 22, 28, 75


def fail(msg):
    print(f"FAIL {CASE}: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


class Server:
    """bioring-nbd on SOCK over DISK, stdout/stderr to files in DIR."""

    def __init__(self, *extra, env=None):
        self.err_path = os.path.join(DIR, f"server.err.{CASE}")
        out = open(os.path.join(DIR, f"server.out.{CASE}"), "wb")
        self.err = open(self.err_path, "wb")
        if os.path.exists(SOCK):
            os.unlink(SOCK)
        self.proc = subprocess.Popen([EXE, "--socket", SOCK, "--threads", "2", *extra, DISK],
                                     stdout=out, stderr=self.err,
                                     env=dict(os.environ, **(env or {})))
        deadline = time.time() + 20
        while not os.path.exists(SOCK) or not self._serving():
            check(self.proc.poll() is None, "server exited at start: " + self.stderr())
            check(time.time() < deadline, "server did not start")
            time.sleep(0.01)

    def _serving(self):
        with open(os.path.join(DIR, f"server.out.{CASE}"), "rb") as f:
            return b"serving" in f.read()

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        fail("no VmRSS")

    def in_use(self):
        """Per-layer in-use frame counts from the SIGUSR1 table."""
        before = len(self.stderr())
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.time() + 10
        while True:
            text = self.stderr()[before:]
            rows = re.findall(r"^(\w+)\s+\d+\s+(-?\d+)\s", text, re.M)
            rows = [r for r in rows if r[0] != "layer"]
            if rows and text.rstrip().count("\n") + 1 >= len(rows) + 1:
                return {name: int(n) for name, n in rows}
            check(time.time() < deadline, "no stats table after SIGUSR1")
            time.sleep(0.02)

    def expect_idle(self):
        """Every layer's frames come back (connections close asynchronously: poll)."""
        deadline = time.time() + 15
        while True:
            use = self.in_use()
            if use and all(v == 0 for v in use.values()):
                return
            check(time.time() < deadline, f"frames still in use when idle: {use}")
            time.sleep(0.2)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("SIGTERM did not stop the server: " + self.stderr()[-2000:])
        err = self.stderr()
        check(rc == 0, f"server exit {rc}: {err[-2000:]}")
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            check(bad not in err, "sanitizer report: " + err[-4000:])


def healthy(srv, what):
    """A well-behaved client is served after @what; the server's frames are all back."""
    check(srv.proc.poll() is None, f"server died after {what}: " + srv.stderr()[-3000:])
    h = nbd.NBD()
    h.connect_unix(SOCK)
    data = os.urandom(65536)
    off = (int.from_bytes(os.urandom(2), "big") % (DISK_SIZE // 65536)) * 65536
    h.pwrite(data, off)
    h.flush()
    check(h.pread(len(data), off) == data, f"read-back differs after {what}")
    h.shutdown()
    srv.expect_idle()
    print(f"ok served and idle after {what}")


# ---- raw protocol helpers -------------------------------------------------------------------

def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(SOCK)
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        try:
            got = s.recv(n - len(buf))
        except ConnectionResetError:
            # A Unix socket closed with requests still unread in the server's queue (a stop,
            # a refusal): the replies sent before it were delivered; this is the end.
            return None
        if not got:
            return None
        buf += got
    return buf


def expect_eof(s, what, timeout=10):
    """The server closes @s (after any bytes it still sends)."""
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        fail(f"{what}: the server kept the connection open")
    s.close()


def greet(s):
    hello = recv_exact(s, 18)
    check(hello is not None and struct.unpack(">QQH", hello)[:2] == (NBDMAGIC, IHAVEOPT),
          "bad server greeting")


def option(s, opt, payload=b"", length=None):
    s.sendall(struct.pack(">QII", IHAVEOPT, opt, len(payload) if length is None else length)
              + payload)


def option_reply(s):
    hdr = recv_exact(s, 20)
    check(hdr is not None, "no option reply")
    magic, opt, typ, ln = struct.unpack(">QIII", hdr)
    check(magic == OPT_REPLY_MAGIC, "bad option reply magic")
    return opt, typ, recv_exact(s, ln) if ln else b""


def go(s):
    """Finish the handshake with OPT_GO on the default export (simple replies)."""
    greet(s)
    s.sendall(struct.pack(">I", 3))
    option(s, OPT_GO, struct.pack(">IH", 0, 0))
    while True:
        _, typ, _ = option_reply(s)
        check(typ < (1 << 31), f"OPT_GO refused ({typ:#x})")
        if typ == REP_ACK:
            return


def request(s, typ, off, ln, flags=0, cookie=0, payload=b""):
    s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, flags, typ, cookie, off, ln) + payload)


def reply(s, expect_cookie, data_len=0):
    hdr = recv_exact(s, 16)
    check(hdr is not None, f"no reply to request {expect_cookie}")
    magic, err, cookie = struct.unpack(">IIQ", hdr)
    check(magic == SIMPLE_REPLY and cookie == expect_cookie, "bad simple reply")
    if err == 0 and data_len:
        check(recv_exact(s, data_len) is not None, "short read reply")
    return err


# ---- cases ------------------------------------------------------------------------------------

def case_magic():
    srv = Server()
    # Client flags without FIXED_NEWSTYLE, unknown client flags.
    for flags in (0, 0x80000001):
        s = connect()
        greet(s)
        s.sendall(struct.pack(">I", flags))
        expect_eof(s, f"client flags {flags:#x}")
    # An option header with a wrong magic.
    s = connect()
    greet(s)
    s.sendall(struct.pack(">I", 3) + struct.pack(">QII", 0x1122334455667788, OPT_GO, 0))
    expect_eof(s, "option magic")
    # A request with a wrong magic after the handshake.
    s = connect()
    go(s)
    s.sendall(struct.pack(">IHHQQI", 0xDEADBEEF, 0, CMD_READ, 1, 0, 512))
    expect_eof(s, "request magic")
    # Garbage at once, before the greeting is even read.
    s = connect()
    s.sendall(os.urandom(4096))
    expect_eof(s, "random bytes")
    healthy(srv, "wrong magics")
    srv.stop()


def case_options():
    srv = Server()
    # An option claiming 4 GiB of data: refused with ERR_TOO_BIG and closed, never read.
    s = connect()
    greet(s)
    s.sendall(struct.pack(">I", 3))
    option(s, OPT_GO, length=0xFFFFFFFF)
    _, typ, _ = option_reply(s)
    check(typ == REP_ERR_TOO_BIG, f"4 GiB option: reply {typ:#x}")
    expect_eof(s, "4 GiB option")
    # Just over the 64 KiB limit, with the data actually sent.
    s = connect()
    greet(s)
    s.sendall(struct.pack(">I", 3))
    try:
        option(s, 99, b"\0" * (64 * 1024 + 1))
    except (BrokenPipeError, ConnectionResetError):
        pass
    _, typ, _ = option_reply(s)
    check(typ == REP_ERR_TOO_BIG, f"64 KiB + 1 option: reply {typ:#x}")
    expect_eof(s, "64 KiB + 1 option")
    # Export names over 4 KiB: OPT_GO answers ERR_INVALID and negotiation goes on.
    s = connect()
    greet(s)
    s.sendall(struct.pack(">I", 3))
    name = b"n" * 5000
    option(s, OPT_GO, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
    _, typ, _ = option_reply(s)
    check(typ == REP_ERR_INVALID, f"5000-byte name in OPT_GO: reply {typ:#x}")
    # Inconsistent lengths inside the option (name length past the payload).
    option(s, OPT_GO, struct.pack(">I", 60000) + b"x" * 10)
    _, typ, _ = option_reply(s)
    check(typ == REP_ERR_INVALID, f"name length past the payload: reply {typ:#x}")
    option(s, OPT_ABORT)
    _, typ, _ = option_reply(s)
    check(typ == REP_ACK, "ABORT not acknowledged")
    expect_eof(s, "ABORT")
    # NBD_OPT_EXPORT_NAME with a 5000-byte name: the protocol's only answer is to close.
    s = connect()
    greet(s)
    s.sendall(struct.pack(">I", 3))
    option(s, OPT_EXPORT_NAME, name)
    expect_eof(s, "5000-byte EXPORT_NAME")
    # A client that hangs up in the middle of an option's data.
    s = connect()
    greet(s)
    s.sendall(struct.pack(">I", 3))
    option(s, OPT_GO, b"x" * 100, length=1000)
    s.close()
    healthy(srv, "hostile options")
    srv.stop()


def case_requests():
    srv = Server()
    s = connect()
    go(s)
    cases = [
        ("READ past the end", CMD_READ, DISK_SIZE - 512, 4096, 0, EINVAL),
        ("READ at 2^64-512", CMD_READ, (1 << 64) - 512, 4096, 0, EINVAL),
        ("READ of length 0", CMD_READ, 0, 0, 0, EINVAL),
        ("READ over max_block", CMD_READ, 0, MAX_BLOCK + 1, 0, EOVERFLOW),
        ("READ of 4 GiB - 1", CMD_READ, 0, 0xFFFFFFFF, 0, EOVERFLOW),
        ("unknown command 99", 99, 0, 512, 0, EINVAL),
        ("unknown command 0xffff", 0xFFFF, 0, 512, 0, EINVAL),
        ("READ with unknown flag", CMD_READ, 0, 512, 0x8000, EINVAL),
        ("TRIM of length 0", CMD_TRIM, 0, 0, 0, EINVAL),
        ("TRIM past the end", CMD_TRIM, DISK_SIZE, 4096, 0, ENOSPC),
    ]
    for i, (what, typ, off, ln, flags, want) in enumerate(cases):
        request(s, typ, off, ln, flags, cookie=i)
        err = reply(s, i)
        check(err == want, f"{what}: error {err}, expected {want}")
        print(f"ok {what}: error {err}")
    # Refused WRITEs: their payload is consumed and the stream stays in step.
    for i, (what, off, ln, want) in enumerate([
            ("WRITE past the end", DISK_SIZE - 512, 4096, ENOSPC),
            ("WRITE over max_block", 0, 2 * MAX_BLOCK, EOVERFLOW),
            ("WRITE with unknown flag", 0, 512, EINVAL)]):
        flags = 0x4000 if "flag" in what else 0
        request(s, CMD_WRITE, off, ln, flags, cookie=100 + i, payload=b"w" * ln)
        err = reply(s, 100 + i)
        check(err == want, f"{what}: error {err}, expected {want}")
        print(f"ok {what}: error {err}, payload consumed")
    request(s, CMD_READ, 0, 4096, cookie=200)
    check(reply(s, 200, 4096) == 0, "READ after the refused requests")
    request(s, CMD_DISC, 0, 0)
    expect_eof(s, "DISC")
    healthy(srv, "bad requests")
    srv.stop()


def case_short_write():
    srv = Server()
    for claimed, sent in ((65536, 1000), (MAX_BLOCK, 0), (512, 511)):
        s = connect()
        go(s)
        request(s, CMD_WRITE, 0, claimed, cookie=1, payload=b"z" * sent)
        s.close()
    healthy(srv, "WRITEs with short payloads then a disconnect")
    srv.stop()


def case_pipeline():
    srv = Server()
    healthy(srv, "start")  # warms the pools before the baseline
    before = srv.rss_kib()
    s = connect()
    go(s)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    n, length = 10000, 256 * 1024
    msg = b"".join(struct.pack(">IHHQQI", REQ_MAGIC, 0, CMD_READ, i,
                               (i * length) % DISK_SIZE, length) for i in range(n))
    # The server stops reading once its --max-requests replies are stuck behind a client
    # that reads nothing: the send stalls (that is the backpressure).
    s.settimeout(3)
    sent = 0
    try:
        while sent < len(msg):
            sent += s.send(msg[sent:sent + 65536])
    except socket.timeout:
        pass
    time.sleep(1)
    after = srv.rss_kib()
    grown = (after - before) // 1024
    print(f"ok {sent // 28} of {n} requests of {length // 1024} KiB sent before the server "
          f"stopped reading; RSS {before // 1024} -> {after // 1024} MiB")
    check(sent < len(msg), "the server read all 10,000 requests with no reply read")
    # Unbounded, the replies would need 10,000 x 256 KiB = 2.5 GiB.
    check(grown < 64, f"server RSS grew by {grown} MiB")
    # A second client is served while the first one is stuck.
    h = nbd.NBD()
    h.connect_unix(SOCK)
    check(len(h.pread(4096, 0)) == 4096, "second client not served")
    h.shutdown()
    s.close()  # disconnect with requests in flight and replies unsent
    healthy(srv, "10,000 pipelined requests never read, then a disconnect")
    srv.stop()


def case_burst(*extra):
    """Requests sent back to back in one buffer, the server reads them ahead in 64 KiB
    pieces (16 KiB provided buffers with --provided-buffers): WRITE payloads of many sizes
    and headers straddle those pieces (and a refused WRITE's payload must still be
    skipped), then READs of the same blocks pipelined the same way; replies come in any
    order, matched by cookie."""
    srv = Server(*extra)
    s = connect()
    go(s)
    sizes = [512, 4096, 100000 // 512 * 512, 1024, 65536, 3584, 4096 * 3, 512 * 129, 200704,
             4096] * 3
    rnd = os.urandom
    blocks, off = [], 0
    for ln in sizes:
        blocks.append((off, ln, rnd(ln)))
        off += ln + 4096
    check(off < DISK_SIZE, "burst: blocks past the disk")

    def replies(expect):  # expect: cookie -> (error, data length)
        got = {}
        while len(got) < len(expect):
            hdr = recv_exact(s, 16)
            check(hdr is not None, f"burst: connection closed after {len(got)} replies")
            magic, err, cookie = struct.unpack(">IIQ", hdr)
            check(magic == SIMPLE_REPLY and cookie in expect and cookie not in got,
                  f"burst: bad reply (cookie {cookie})")
            want_err, data_len = expect[cookie]
            check(err == want_err, f"burst: request {cookie} error {err}, expected {want_err}")
            got[cookie] = recv_exact(s, data_len) if err == 0 and data_len else b""
        return got

    msg, expect = b"", {}
    for i, (o, ln, data) in enumerate(blocks):
        msg += struct.pack(">IHHQQI", REQ_MAGIC, 0, CMD_WRITE, i, o, ln) + data
        expect[i] = (0, 0)
        if i == 7:  # a refused WRITE in the middle: its payload leaves the stream unread
            msg += struct.pack(">IHHQQI", REQ_MAGIC, 0, CMD_WRITE, 999, DISK_SIZE - 512, 70000)
            msg += b"x" * 70000
            expect[999] = (ENOSPC, 0)
    s.sendall(msg)
    replies(expect)
    msg, expect = b"", {}
    for i, (o, ln, _) in enumerate(blocks):
        msg += struct.pack(">IHHQQI", REQ_MAGIC, 0, CMD_READ, 1000 + i, o, ln)
        expect[1000 + i] = (0, ln)
    s.sendall(msg)
    got = replies(expect)
    for i, (_, ln, data) in enumerate(blocks):
        check(got[1000 + i] == data, f"burst: READ {i} ({ln} bytes) differs from its WRITE")
    print(f"ok {len(blocks)} WRITEs and a refused one, then {len(blocks)} READs, each burst "
          f"sent at once; every reply matches")
    request(s, CMD_DISC, 0, 0)
    expect_eof(s, "DISC")
    healthy(srv, "request bursts")
    srv.stop()


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        if hard != resource.RLIM_INFINITY and hard < n:
            print(f"BIORING-SKIP: RLIMIT_NOFILE hard limit {hard} < {n}")
            sys.exit(0)
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))


def case_idle():
    raise_nofile(4096)  # the server inherits it
    srv = Server()
    conns = []
    for _ in range(1000):
        s = connect()
        go(s)
        conns.append(s)
    print("ok 1000 connections past the handshake, idle")
    healthy(srv, "1000 idle connections (a well-behaved client alongside)")
    # Half of them go away abruptly, the rest say goodbye.
    for i, s in enumerate(conns):
        if i % 2 == 0:
            request(s, CMD_DISC, 0, 0)
        s.close()
    healthy(srv, "1000 connections closed")
    srv.stop()
    # Beyond --max-connections: a clear refusal (closed at once, said on stderr), and
    # room again once one leaves.
    srv = Server("--max-connections", "4")
    conns = []
    for _ in range(4):
        s = connect()
        go(s)
        conns.append(s)
    s = connect()
    expect_eof(s, "fifth connection over --max-connections 4")
    check("--max-connections" in srv.stderr(), "no refusal message: " + srv.stderr())
    conns.pop().close()
    deadline = time.time() + 10
    while True:  # the closed connection is counted out asynchronously
        try:
            h = nbd.NBD()
            h.connect_unix(SOCK)
            break
        except nbd.Error:
            check(time.time() < deadline, "no room after a connection left")
            time.sleep(0.1)
    check(len(h.pread(4096, 0)) == 4096, "read on the readmitted connection")
    h.shutdown()
    for s in conns:
        s.close()
    print("ok refusal beyond --max-connections 4, room again after one left")
    srv.expect_idle()
    srv.stop()


def case_slow():
    srv = Server("--handshake-timeout", "2")
    t0 = time.time()
    s = connect()
    greet(s)
    s.settimeout(0.05)
    trickle = struct.pack(">I", 3) + struct.pack(">QII", IHAVEOPT, OPT_GO, 6) + b"\0" * 6
    closed = False
    for b in trickle:  # one byte per second
        try:
            s.send(bytes([b]))
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        end = time.time() + 1
        while time.time() < end:
            try:
                if s.recv(4096) == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:  # closed with our last byte unread: a reset
                closed = True
                break
        if closed:
            break
    waited = time.time() - t0
    check(closed, "a one-byte-per-second handshake was never closed")
    check(waited < 5, f"closed only after {waited:.1f}s (timeout 2s)")
    print(f"ok one byte per second: closed after {waited:.1f}s")
    # Silent after connecting.
    t0 = time.time()
    s = connect()
    expect_eof(s, "silent client")
    check(time.time() - t0 < 5, "silent client held too long")
    print(f"ok silent client closed after {time.time() - t0:.1f}s")
    healthy(srv, "slow handshakes")
    srv.stop()


def case_inflight():
    srv = Server()
    for round_ in range(20):
        s = connect()
        go(s)
        for i in range(64):
            if i % 3 == 0:
                request(s, CMD_WRITE, i * 65536, 65536, cookie=i, payload=os.urandom(65536))
            elif i % 3 == 1:
                request(s, CMD_READ, i * 65536, 65536, cookie=i)
            else:
                request(s, CMD_FLUSH, 0, 0, cookie=i)
        if round_ % 2:
            s.shutdown(socket.SHUT_WR)  # half-close: the server still owes replies
            time.sleep(0.01)
        s.close()
    healthy(srv, "20 disconnects with 64 requests in flight")
    srv.stop()


def case_faults():
    # Faults on the backing file's completions (BIORING_FAULT names file operations only,
    # never the socket's): the 2nd write fails with EIO, the 4th with ENOSPC (the ENOSPC
    # rule counts successful completions only, so the EIO'd one is not its 2nd), the 3rd
    # read with EIO, the 2nd fsync with EIO. Each becomes the NBD error of that request alone.
    spec = "op=write,err=EIO,nth=2;op=write,err=ENOSPC,nth=3;op=read,err=EIO,nth=3;" \
           "op=fsync,err=EIO,nth=2"
    # Injection sees ring completions only: tmpfs I/O goes through the ring for this.
    srv = Server("--tmpfs-io", "ring", env={"BIORING_FAULT": spec})
    s = connect()
    go(s)
    EIO = 5
    got = []
    for i in range(6):  # one at a time, so the n-th completion is the n-th request
        request(s, CMD_WRITE, i * 4096, 4096, cookie=i, payload=bytes([i + 1]) * 4096)
        got.append(reply(s, i))
    check(got == [0, EIO, 0, ENOSPC, 0, 0], f"WRITE errors {got}")
    print(f"ok WRITE errors in order: {got}")
    got = []
    for i in range(5):
        request(s, CMD_READ, i * 4096, 4096, cookie=10 + i)
        got.append(reply(s, 10 + i, 4096))
    check(got == [0, 0, EIO, 0, 0], f"READ errors {got}")
    print(f"ok READ errors in order: {got}")
    got = []
    for i in range(3):
        request(s, CMD_FLUSH, 0, 0, cookie=20 + i)
        got.append(reply(s, 20 + i))
    check(got == [0, EIO, 0], f"FLUSH errors {got}")
    print(f"ok FLUSH errors in order: {got}")
    # The connection still serves: the writes that succeeded read back.
    for i in (0, 2, 4, 5):
        request(s, CMD_READ, i * 4096, 4096, cookie=30 + i)
        hdr = recv_exact(s, 16)
        check(struct.unpack(">IIQ", hdr)[1] == 0, "READ after the faults")
        check(recv_exact(s, 4096) == bytes([i + 1]) * 4096, f"block {i} differs")
    request(s, CMD_DISC, 0, 0)
    expect_eof(s, "DISC")
    healthy(srv, "EIO and ENOSPC on the backing file")
    srv.stop()
    check("injected 4 faults" in srv.stderr(), "fault summary: " + srv.stderr()[-500:])


def case_read_only():
    srv = Server("--read-only")
    s = connect()
    go(s)
    CMD_WRITE_ZEROES = 6
    for i, (what, typ, payload) in enumerate([("WRITE", CMD_WRITE, b"w" * 4096),
                                              ("WRITE_ZEROES", CMD_WRITE_ZEROES, b""),
                                              ("TRIM", CMD_TRIM, b""),
                                              ("WRITE with FUA", CMD_WRITE, b"f" * 4096)]):
        request(s, typ, 0, 4096, flags=1 if "FUA" in what else 0, cookie=i, payload=payload)
        err = reply(s, i)
        check(err == EPERM, f"{what} on a read-only export: error {err}")
        print(f"ok {what} on a read-only export: EPERM")
    request(s, CMD_FLUSH, 0, 0, cookie=10)
    check(reply(s, 10) == 0, "FLUSH on a read-only export")
    request(s, CMD_READ, 0, 4096, cookie=11)
    hdr = recv_exact(s, 16)
    check(struct.unpack(">IIQ", hdr)[1] == 0, "READ on a read-only export")
    check(recv_exact(s, 4096) == b"\0" * 4096, "the refused writes changed the data")
    print("ok FLUSH and READ on a read-only export; the data is unchanged")
    request(s, CMD_DISC, 0, 0)
    expect_eof(s, "DISC")
    srv.expect_idle()
    srv.stop()


def case_sigterm():
    """SIGTERM with requests in flight: each gets its reply, the data is flushed, exit 0."""
    srv = Server()
    s = connect()
    go(s)
    n = 48
    blocks = [os.urandom(65536) for _ in range(n)]
    msg = b"".join(struct.pack(">IHHQQI", REQ_MAGIC, 0, CMD_WRITE, i, i * 65536, 65536)
                   + blocks[i] for i in range(n))
    s.sendall(msg + struct.pack(">IHHQQI", REQ_MAGIC, 0, CMD_FLUSH, n, 0, 0))
    # A second client stalls in the middle of a WRITE's payload: it must not hold up the
    # stop (its partial write is never acknowledged).
    stalled = connect()
    go(stalled)
    request(stalled, CMD_WRITE, 0, 65536, cookie=1, payload=b"s" * 100)
    time.sleep(0.2)
    srv.proc.send_signal(signal.SIGTERM)
    seen = set()
    for _ in range(n + 1):
        hdr = recv_exact(s, 16)
        if hdr is None:
            break
        magic, err, cookie = struct.unpack(">IIQ", hdr)
        check(magic == SIMPLE_REPLY and err == 0, f"reply {cookie}: error {err}")
        seen.add(cookie)
    expect_eof(s, "after SIGTERM")
    try:
        rc = srv.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        srv.proc.kill()
        fail("SIGTERM did not stop the server within 15 s (a stalled client held it)")
    check(rc == 0, f"exit {rc} after SIGTERM")
    expect_eof(stalled, "the stalled client after SIGTERM")
    check("data flushed" in srv.stderr(), "no flush at exit: " + srv.stderr())
    # The requests read before the stop were answered; the rest were never read (a client
    # sees EOF for them). Every answered write is on disk.
    with open(DISK, "rb") as f:
        data = f.read()
    for c in seen:
        if c < n:
            check(data[c * 65536:(c + 1) * 65536] == blocks[c], f"answered write {c} lost")
    print(f"ok SIGTERM: {len(seen)} of {n + 1} requests answered, all answered writes on "
          "disk, a client stalled mid-payload did not hold the stop, exit 0")


def case_kill9():
    """kill -9 and a restart: every write acknowledged with FUA, or acknowledged before an
    acknowledged FLUSH, reads back (20 randomized runs, alternating --fua flush and --fua
    dsync; DIR should be an O_DIRECT-capable file system such as ext4, not tmpfs)."""
    import random
    seed = int.from_bytes(os.urandom(4), "big")
    rnd = random.Random(seed)
    print(f"kill9 seed {seed}")
    nblocks = DISK_SIZE // 4096
    durable = {}  # block -> bytes that must read back
    checked = 0
    for run in range(20):
        srv = Server("--fua", "dsync" if run % 2 else "flush")
        s = connect()
        go(s)
        # This run's blocks are fresh (never written before), so no later write can
        # legitimately replace what must survive.
        free = [b for b in range(nblocks) if b not in durable]
        blocks = rnd.sample(free, 96)
        sent = {}
        cookie = 0
        pending_since_flush = []
        for phase in range(3):
            for b in blocks[phase * 32:(phase + 1) * 32]:
                data = rnd.randbytes(4096)
                fua = rnd.random() < 0.3
                request(s, CMD_WRITE, b * 4096, 4096, flags=1 if fua else 0, cookie=cookie,
                        payload=data)
                sent[cookie] = (b, data, fua)
                cookie += 1
            if phase < 2 and rnd.random() < 0.7:
                request(s, CMD_FLUSH, 0, 0, cookie=cookie)
                sent[cookie] = (None, None, False)
                cookie += 1
            # Read some replies now (out of order is allowed), leave the rest in flight.
            want = rnd.randint(0, len(sent)) if phase == 2 else len(sent)
            acked = []
            while len(acked) < want:
                hdr = recv_exact(s, 16)
                check(hdr is not None, "server closed during the run")
                _, err, c = struct.unpack(">IIQ", hdr)
                check(err == 0, f"request {c}: error {err}")
                acked.append(c)
            for c in acked:
                b, data, fua = sent.pop(c)
                if b is None:  # an acknowledged FLUSH: everything acked before it is durable
                    for pb, pdata in pending_since_flush:
                        durable[pb] = pdata
                    pending_since_flush.clear()
                elif fua:
                    durable[b] = data
                else:
                    pending_since_flush.append((b, data))
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        s.close()
        # Restart and read every block that must have survived (from all runs so far).
        srv = Server()
        h = nbd.NBD()
        h.connect_unix(SOCK)
        for b, data in durable.items():
            check(h.pread(4096, b * 4096) == data,
                  f"run {run}: block {b} acknowledged durable but lost (seed {seed})")
        checked += len(durable)
        h.shutdown()
        srv.expect_idle()
        srv.stop()
    print(f"ok kill -9 x20: {len(durable)} durable blocks, {checked} block checks, all read back")


def case_chaos():
    """For the soak (tests/nbd/soak_nbd.sh): against a server already running on SOCK, for
    CHAOS_SECONDS, mix READ/WRITE/FLUSH/TRIM/WRITE_ZEROES over raw connections in the
    region [CHAOS_OFFSET, CHAOS_OFFSET + CHAOS_BYTES), dropping connections with requests in
    flight now and then; every reply read must be a success or, where BIORING_FAULT injects
    real errors, EIO/ENOSPC. The last data written and acknowledged in each block, with a
    FLUSH acknowledged after it, must read back at the end."""
    import random
    secs = float(os.environ.get("CHAOS_SECONDS", "10"))
    base = int(os.environ.get("CHAOS_OFFSET", "0"))
    size = int(os.environ.get("CHAOS_BYTES", str(4 << 20)))
    rnd = random.Random(int(os.environ.get("CHAOS_SEED", "1")))
    CMD_WRITE_ZEROES = 6
    EIO = 5
    end = time.time() + secs
    known = {}  # block -> content after acknowledged writes (None: unknown, dropped in flight)
    ops = drops = 0
    while time.time() < end:
        s = connect()
        go(s)
        for _ in range(rnd.randint(1, 200)):
            blk = rnd.randrange(size // 4096)
            off = base + blk * 4096
            kind = rnd.random()
            if kind < 0.4:
                data = rnd.randbytes(4096)
                request(s, CMD_WRITE, off, 4096, flags=rnd.choice((0, 1)), cookie=1,
                        payload=data)
                err = reply(s, 1)
                known[blk] = data if err == 0 else None
            elif kind < 0.7:
                request(s, CMD_READ, off, 4096, cookie=2)
                hdr = recv_exact(s, 16)
                check(hdr is not None, "server closed a chaos connection")
                err = struct.unpack(">IIQ", hdr)[1]
                if err == 0:
                    got = recv_exact(s, 4096)
                    want = known.get(blk, b"\0" * 4096 if blk not in known else None)
                    check(want is None or got == want, f"block {blk} differs")
            elif kind < 0.8:
                request(s, CMD_FLUSH, 0, 0, cookie=3)
                err = reply(s, 3)
            elif kind < 0.9:
                request(s, CMD_TRIM, off, 4096, cookie=4)
                err = reply(s, 4)
                known[blk] = None  # a trimmed block reads zeros or the old data
            else:
                request(s, CMD_WRITE_ZEROES, off, 4096, cookie=5)
                err = reply(s, 5)
                known[blk] = b"\0" * 4096 if err == 0 else None
            check(err in (0, EIO, ENOSPC), f"unexpected error {err}")
            ops += 1
        if rnd.random() < 0.3:  # drop the connection with requests in flight
            for i in range(rnd.randint(1, 32)):
                blk = rnd.randrange(size // 4096)
                request(s, CMD_WRITE, base + blk * 4096, 4096, cookie=100 + i,
                        payload=rnd.randbytes(4096))
                known[blk] = None
            drops += 1
        else:
            request(s, CMD_DISC, 0, 0)
        s.close()
    print(f"ok chaos: {ops} requests, {drops} connections dropped with requests in flight")


def case_burst_provided():
    case_burst("--provided-buffers")


CASES = {"burst_provided": case_burst_provided, "chaos": case_chaos, "kill9": case_kill9, "faults": case_faults, "read_only": case_read_only, "sigterm": case_sigterm, "magic": case_magic, "options": case_options, "requests": case_requests,
         "short_write": case_short_write, "pipeline": case_pipeline, "burst": case_burst,
         "idle": case_idle,
         "slow": case_slow, "inflight": case_inflight}

if __name__ == "__main__":
    if CASE != "chaos":  # chaos runs against the soak's own server and file
        with open(DISK, "wb") as f:
            f.truncate(DISK_SIZE)
        if os.path.exists(SOCK):
            os.unlink(SOCK)
    CASES[CASE]()
    print(f"ok {CASE}")
