#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Latency of durable 4 KiB writes through a running NBD server, from one python3-libnbd
# client at queue depth 1: N WRITEs with the FUA flag, then N WRITE + FLUSH pairs (what a
# server that implements FUA as write + fdatasync does, plus one round trip), over the
# first 16 MiB of the export; ROUNDS rounds of both, median per operation printed.
#
# usage: nbd_fua_latency.py SOCKET [N [ROUNDS]]   (N default 1000, ROUNDS default 3)
# Example: bioring-nbd --socket /tmp/s.sock --threads 1 disk.img &
#          bench/nbd_fua_latency.py /tmp/s.sock 1000 3
import statistics
import sys
import time

import nbd


def main():
    sock = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    h = nbd.NBD()
    h.connect_unix(sock)
    if h.get_size() < 16 << 20:
        sys.exit("nbd_fua_latency.py: the export must be at least 16 MiB")
    buf = b"f" * 4096

    def fua():
        t = time.perf_counter()
        for i in range(n):
            h.pwrite(buf, (i % 4096) * 4096, nbd.CMD_FLAG_FUA)
        return (time.perf_counter() - t) / n * 1e6

    def write_flush():
        t = time.perf_counter()
        for i in range(n):
            h.pwrite(buf, (i % 4096) * 4096)
            h.flush()
        return (time.perf_counter() - t) / n * 1e6

    a, b = [], []
    for _ in range(rounds):
        a.append(fua())
        b.append(write_flush())
    h.shutdown()
    print("WRITE+FUA:   %8.1f us/op (median of %d rounds of %d)" % (statistics.median(a), rounds, n))
    print("WRITE+FLUSH: %8.1f us/op" % statistics.median(b))


if __name__ == "__main__":
    main()
