#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Protocol-level cases against a running bioring-nbd, with python3-libnbd (a real client)
# and with a raw socket where a hostile or unusual peer is the point.
#
# usage: protocol_cases.py MODE SOCKET FILE EXPORT
#   MODE plain: a read-write export of FILE (4 MiB, tmpfs, sparse: data at [0, 64K) and
#               [1M, 1M+64K), holes elsewhere); readonly: the same with --read-only;
#               crypt: a --crypt export (FILE is the ciphertext, not checked here);
#               large, large-crypt: as plain or crypt with FILE of 40 MiB, for the
#               requests of up to 32 MiB.
# Prints "ok CASE" per case; any failure raises (exit 1).
import errno
import os
import random
import socket
import struct
import sys

import nbd

MODE, SOCK, FILE, EXPORT = sys.argv[1:5]
URI = "nbd+unix:///%s?socket=%s" % (EXPORT, SOCK)
MiB = 1 << 20


def ok(name):
    print("ok", name, flush=True)


def connect(strict=True, request_block_size=True, structured=True):
    h = nbd.NBD()
    h.set_export_name(EXPORT)
    h.set_request_structured_replies(structured)
    h.set_request_block_size(request_block_size)
    if not strict:
        h.set_strict_mode(0)
    h.add_meta_context("base:allocation")
    h.connect_unix(SOCK)
    return h


def expect_errno(want, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except nbd.Error as e:
        # libnbd 1.14 does not set errno for an option the server refused; it names the
        # error in the message instead.
        if e.errno != want and "(%s)" % errno.errorcode[want] in str(e):
            return
        assert e.errno == want, "wanted %s, got %s (%s)" % (
            errno.errorcode[want], e.errno and errno.errorcode.get(e.errno), e)
        return
    raise AssertionError("wanted %s, the call succeeded" % errno.errorcode[want])


def file_bytes(off, n):
    with open(FILE, "rb") as f:
        f.seek(off)
        return f.read(n)


# ---- negotiation ---------------------------------------------------------------------

def case_negotiation():
    h = nbd.NBD()
    h.set_opt_mode(True)
    h.connect_unix(SOCK)
    names = []
    h.opt_list(lambda name, desc: names.append(name))
    assert names == [EXPORT], names
    ctxs = []
    h.set_export_name(EXPORT)
    h.opt_list_meta_context(lambda name: ctxs.append(name))
    assert ctxs == ["base:allocation"], ctxs
    h.add_meta_context("base:allocation")
    h.opt_info()
    size = h.get_size()
    h.opt_go()
    assert h.get_size() == size
    assert h.can_flush() and h.can_fua() and h.can_multi_conn() and h.can_cache()
    assert h.can_meta_context("base:allocation")
    assert h.get_structured_replies_negotiated()
    assert h.get_block_size(nbd.SIZE_MAXIMUM) == 32 * MiB
    assert h.get_block_size(nbd.SIZE_MINIMUM) in (512, 4096)
    if MODE == "plain":
        assert h.can_trim() and h.can_zero() and h.can_fast_zero()
        assert not h.is_read_only()
    elif MODE == "readonly":
        assert h.is_read_only() and not h.can_trim() and not h.can_zero()
    else:
        assert not h.can_trim() and h.can_zero() and not h.can_fast_zero()
    h.shutdown()
    # An unknown export is refused and the handshake goes on.
    g = nbd.NBD()
    g.set_opt_mode(True)
    g.connect_unix(SOCK)
    g.set_export_name("no-such-export")
    expect_errno(errno.ENOENT, g.opt_info)
    g.set_export_name("")  # the default export reaches the same device
    g.opt_go()
    assert g.get_size() == size
    g.shutdown()
    ok("negotiation: LIST, LIST_META_CONTEXT, INFO, GO, block sizes and flags")


def case_holes():
    h = connect()
    chunks = []

    def chunk(buf, offset, status, err):
        chunks.append((offset, len(buf), status))
        return 0

    buf = h.pread_structured(MiB, MiB // 2, chunk)
    assert buf == file_bytes(MiB // 2, MiB)
    holes = [c for c in chunks if c[2] == nbd.READ_HOLE]
    data = [c for c in chunks if c[2] == nbd.READ_DATA]
    assert holes and data, chunks
    assert sum(c[1] for c in chunks) == MiB
    extents = []

    def ext(ctx, offset, entries, err):
        extents.extend(zip(entries[0::2], entries[1::2]))
        return 0

    h.block_status(2 * MiB, 0, ext)
    assert extents[0] == (64 * 1024, 0), extents
    assert extents[1][1] == nbd.STATE_HOLE | nbd.STATE_ZERO, extents
    one = []
    h.block_status(2 * MiB, 0, lambda c, o, e, err: one.extend(e) or 0,
                   nbd.CMD_FLAG_REQ_ONE)
    assert len(one) == 2, one
    h.shutdown()
    ok("structured reads: holes come as OFFSET_HOLE chunks and block status shows them")


def case_unaligned():
    h = connect(strict=False, request_block_size=False)
    rng = random.Random(7)
    for _ in range(50):
        off = rng.randrange(0, 4 * MiB - 70000)
        n = rng.randrange(1, 70000)
        data = bytes(rng.getrandbits(8) for _ in range(n))
        h.pwrite(data, off)
        assert h.pread(n, off) == data
        if MODE == "plain":
            assert file_bytes(off, n) == data
    h.flush()
    h.shutdown()
    ok("unaligned reads and writes from a client that asked for no block sizes")


def case_in_flight():
    h = connect()
    rng = random.Random(3)
    blocks = rng.sample(range(0, 4 * MiB // 65536), 48)
    want = {}
    cookies = []
    for b in blocks:
        data = bytes([b % 251]) * 65536
        want[b] = data
        cookies.append(h.aio_pwrite(data, b * 65536))
    while h.aio_in_flight() > 0:
        h.poll(-1)
    for c in cookies:
        assert h.aio_command_completed(c)
    bufs = []
    for b in blocks:
        buf = nbd.Buffer(65536)
        bufs.append((b, buf, h.aio_pread(buf, b * 65536)))
    while h.aio_in_flight() > 0:
        h.poll(-1)
    for _, _, c in bufs:
        assert h.aio_command_completed(c)
    for b, buf, _ in bufs:
        assert buf.to_bytearray() == want[b]
    h.shutdown()
    ok("48 writes then 48 reads in flight at once, answered out of order")


def case_errors():
    h = connect(strict=False)
    size = h.get_size()
    expect_errno(errno.EINVAL, h.pread, 4096, size - 2048)
    expect_errno(errno.EOVERFLOW, h.pread, 32 * MiB + 1, 0)
    if MODE == "readonly":
        expect_errno(errno.EPERM, h.pwrite, b"x" * 4096, 0)
        expect_errno(errno.EPERM, h.zero, 4096, 0)
    else:
        expect_errno(errno.ENOSPC, h.pwrite, b"x" * 4096, size - 2048)
        expect_errno(errno.EOVERFLOW, h.pwrite, b"y" * (32 * MiB + 1), 0)
        h.pwrite(b"z" * 4096, 8192)  # the connection survived the refusals
        assert h.pread(4096, 8192) == b"z" * 4096
    h.cache(65536, 0)
    h.flush()
    h.shutdown()
    ok("EINVAL beyond the end, EOVERFLOW over the maximum, ENOSPC/EPERM on writes")


def case_trim_zero():
    h = connect(strict=False)
    if MODE == "plain":
        h.pwrite(b"\xaa" * (256 * 1024), 2 * MiB, nbd.CMD_FLAG_FUA)
        assert file_bytes(2 * MiB, 256 * 1024) == b"\xaa" * (256 * 1024)
        h.trim(128 * 1024, 2 * MiB)
        assert file_bytes(2 * MiB, 128 * 1024) == bytes(128 * 1024)
        h.pwrite(b"\xbb" * 65536, 3 * MiB)
        h.zero(10000, 3 * MiB + 1000)
        assert file_bytes(3 * MiB, 65536) == \
            b"\xbb" * 1000 + bytes(10000) + b"\xbb" * (65536 - 11000)
        # tmpfs has no ZERO_RANGE: a fast zero that must not punch is refused, untouched.
        h.pwrite(b"\xcc" * 65536, 3 * MiB)
        expect_errno(errno.ENOTSUP, h.zero, 65536, 3 * MiB,
                     nbd.CMD_FLAG_FAST_ZERO | nbd.CMD_FLAG_NO_HOLE)
        assert file_bytes(3 * MiB, 65536) == b"\xcc" * 65536
        h.zero(65536, 3 * MiB, nbd.CMD_FLAG_NO_HOLE | nbd.CMD_FLAG_FUA)
        assert file_bytes(3 * MiB, 65536) == bytes(65536)
    elif MODE == "crypt":
        expect_errno(errno.EINVAL, h.trim, 4096, 0)
        h.pwrite(b"\xdd" * 8192, 0)
        h.zero(5000, 1000)
        assert h.pread(8192, 0) == b"\xdd" * 1000 + bytes(5000) + b"\xdd" * 2192
        expect_errno(errno.EINVAL, h.zero, 4096, 0, nbd.CMD_FLAG_FAST_ZERO)
    h.shutdown()
    ok("trim, write zeroes with NO_HOLE, FAST_ZERO and FUA")


# ---- raw socket peers --------------------------------------------------------------------

def recv_all(s, n):
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            raise EOFError("server closed after %d of %d bytes" % (len(out), n))
        out += b
    return out


def raw_handshake(flags=3):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(SOCK)
    hello = recv_all(s, 18)
    assert hello[:16] == b"NBDMAGICIHAVEOPT" and struct.unpack(">H", hello[16:])[0] == 3
    s.sendall(struct.pack(">I", flags))
    return s


def send_opt(s, opt, data=b""):
    s.sendall(b"IHAVEOPT" + struct.pack(">II", opt, len(data)) + data)


def read_opt_reply(s):
    magic, opt, typ, n = struct.unpack(">QIII", recv_all(s, 20))
    assert magic == 0x3e889045565a9
    return opt, typ, recv_all(s, n)


def raw_go(s):
    name = EXPORT.encode()
    send_opt(s, 7, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
    while True:
        _, typ, data = read_opt_reply(s)
        if typ == 1:
            return
        assert typ == 3, typ


def closed(s):
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def case_hostile():
    # An unknown option is refused with ERR_UNSUP and the handshake goes on.
    s = raw_handshake()
    send_opt(s, 0x7777, b"whatever")
    assert read_opt_reply(s)[1] == (1 << 31) + 1
    send_opt(s, 5)  # STARTTLS: no TLS here
    assert read_opt_reply(s)[1] == (1 << 31) + 1
    raw_go(s)
    # A request with a bad magic ends the connection.
    s.sendall(struct.pack(">IHHQQI", 0x12345678, 0, 0, 1, 0, 512))
    assert closed(s)
    s.close()
    # An option longer than the server reads is refused (ERR_TOO_BIG) and the peer dropped.
    s = raw_handshake()
    s.sendall(b"IHAVEOPT" + struct.pack(">II", 7, 1 << 30))
    assert read_opt_reply(s)[1] == (1 << 31) + 9
    assert closed(s)
    s.close()
    # A client without FIXED_NEWSTYLE is not served.
    s = raw_handshake(flags=0)
    assert closed(s)
    s.close()
    # Garbage instead of IHAVEOPT.
    s = raw_handshake()
    s.sendall(b"X" * 16)
    assert closed(s)
    s.close()
    ok("hostile peers: unknown options answered, bad magic and oversized options dropped")


def case_pipelined():
    # 300 requests sent before any reply is read: the server bounds what it has in flight
    # (--max-requests) and stops reading, the client's sends wait in the socket, and every
    # request is still answered once with its own cookie. A refused write's payload is
    # consumed so the stream stays in step.
    s = raw_handshake()
    raw_go(s)
    size = os.path.getsize(FILE)
    reqs = b""
    for i in range(300):
        reqs += struct.pack(">IHHQQI", 0x25609513, 0, 0, 1000 + i, (i * 4096) % MiB, 4096)
    if MODE == "plain":
        reqs += struct.pack(">IHHQQI", 0x25609513, 0, 1, 5000, size, 4096) + b"w" * 4096
    s.sendall(reqs)
    seen = set()
    want = set(range(1000, 1300)) | ({5000} if MODE == "plain" else set())
    while seen != want:
        magic, err, cookie = struct.unpack(">IIQ", recv_all(s, 16))
        assert magic == 0x67446698 and cookie in want and cookie not in seen, (magic, cookie)
        if cookie == 5000:
            assert err == 28, err  # ENOSPC, and its payload was consumed
        else:
            assert err == 0, err
            recv_all(s, 4096)
        seen.add(cookie)
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 2, 0, 0, 0))  # DISC
    assert closed(s)
    s.close()
    ok("300 pipelined requests through the in-flight bound, each answered once")


def case_large():
    # READ and WRITE payloads beyond the server's 1 MiB buffers, up to the advertised 32 MiB:
    # each round trips (structured replies over holes, and simple replies), several in
    # flight at once; 32 MiB + 1 is refused with EOVERFLOW (a WRITE's payload consumed) and
    # the connection goes on serving.
    rng = random.Random(32)
    for structured in (True, False):
        h = connect(structured=structured)
        size = h.get_size()
        assert h.get_block_size(nbd.SIZE_MAXIMUM) == 32 * MiB
        for n, off in ((4 * MiB, 3 * MiB + 4096), (32 * MiB, 0), (32 * MiB, size - 32 * MiB)):
            data = rng.randbytes(n)
            h.pwrite(data, off, nbd.CMD_FLAG_FUA if n == 4 * MiB else 0)
            assert h.pread(n, off) == data, (n, off)
            if MODE == "large":
                assert file_bytes(off, n) == data
        # A read over the sparse tail: holes (structured) or zeroes, then data.
        if h.can_trim():
            h.trim(24 * MiB, 8 * MiB)
        got = h.pread(32 * MiB, 4 * MiB)
        if MODE == "large":
            assert got == file_bytes(4 * MiB, 32 * MiB)
        # Four 8 MiB writes, then four reads, in flight together.
        want = {}
        cookies = []
        for k in range(4):
            want[k] = rng.randbytes(8 * MiB)
            cookies.append(h.aio_pwrite(want[k], k * 8 * MiB))
        while h.aio_in_flight() > 0:
            h.poll(-1)
        bufs = []
        for k in range(4):
            buf = nbd.Buffer(8 * MiB)
            bufs.append((k, buf, h.aio_pread(buf, k * 8 * MiB)))
        while h.aio_in_flight() > 0:
            h.poll(-1)
        for c in cookies + [c for _, _, c in bufs]:
            assert h.aio_command_completed(c)
        for k, buf, _ in bufs:
            assert buf.to_bytearray() == want[k], k
        h.shutdown()
    # Beyond the maximum: libnbd checks it too, so turn its checks off to ask the server.
    h = connect(strict=False)
    expect_errno(errno.EOVERFLOW, h.pread, 32 * MiB + 1, 0)
    expect_errno(errno.EOVERFLOW, h.pwrite, b"x" * (32 * MiB + 1), 0)
    data = rng.randbytes(MiB)
    h.pwrite(data, MiB)
    assert h.pread(MiB, MiB) == data
    h.shutdown()
    ok("4 MiB and 32 MiB reads and writes round trip and 32 MiB + 1 gets EOVERFLOW")


CASES = {
    "plain": [case_negotiation, case_holes, case_unaligned, case_in_flight, case_errors,
              case_trim_zero, case_hostile, case_pipelined],
    "readonly": [case_negotiation, case_errors, case_pipelined],
    "crypt": [case_negotiation, case_unaligned, case_in_flight, case_errors, case_trim_zero],
    "large": [case_large],
    "large-crypt": [case_large],
}

for c in CASES[MODE]:
    c()
