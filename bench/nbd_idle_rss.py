#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# nbd_idle_rss.py SOCKET PID N: open N connections to the NBD server listening on the Unix
# SOCKET (process PID), finish each handshake (fixed newstyle, OPT_GO on the default
# export) and leave it waiting for a request; print the server's VmRSS before and after,
# and the growth per connection. Needs RLIMIT_NOFILE above N (raised here up to 4096) and a
# server started with --max-connections above N.
import resource
import socket
import struct
import sys
import time

if len(sys.argv) != 4:
    print("usage: bench/nbd_idle_rss.py SOCKET PID N", file=sys.stderr)
    sys.exit(2)
path, pid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 64, 4096)), hard))

OPT_GO, REP_ACK, IHAVEOPT = 7, 1, 0x49484156454F5054


def recv_exact(s, k):
    b = b""
    while len(b) < k:
        c = s.recv(k - len(b))
        if not c:
            sys.exit(f"nbd_idle_rss.py: the server closed a connection after {len(b)} bytes")
        b += c
    return b


def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    sys.exit(f"nbd_idle_rss.py: no VmRSS for process {pid}")


before = rss_kib()
conns = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    recv_exact(s, 18)  # NBDMAGIC, IHAVEOPT, handshake flags
    s.sendall(struct.pack(">I", 3))  # FIXED_NEWSTYLE | NO_ZEROES
    s.sendall(struct.pack(">QII", IHAVEOPT, OPT_GO, 6) + struct.pack(">IH", 0, 0))
    while True:
        _, _, typ, ln = struct.unpack(">QIII", recv_exact(s, 20))
        if ln:
            recv_exact(s, ln)
        if typ == REP_ACK:
            break
    conns.append(s)
time.sleep(0.5)
after = rss_kib()
print(f"{n} idle connections: server RSS {before} -> {after} KiB "
      f"({(after - before) / n:.1f} KiB each)")
