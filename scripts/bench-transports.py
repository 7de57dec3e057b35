#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""bench-transports.py RESULTS: one table of kvmig's transports from
make bench's files in RESULTS (bench-streams.txt, bench-ktls.txt,
bench-rdma.txt, bench-ceiling.txt): per rate cap and transport, the
medians of total time, wire throughput (MiB sent / total time), CPU
s/GiB at each end and system-wide, and that throughput as a fraction of
the link's ceiling measured in the same run (iperf3 for TCP, ib_write_bw
for RDMA). A transport whose file is missing or has no row is left out,
with the reason."""
import os
import re
import sys

ROW = re.compile(r"^(\d+)\s+(\S+)\s+\d+\s+(\d+)/(\d+)\s+\S+\s+"
                 r"[\d.]+/([\d.]+)/[\d.]+\s+\S+\s+([\d.]+)\s+([\d.]+)\s+"
                 r"([\d.]+)\s+[\d.]+/([\d.]+)/[\d.]+")


def rows(path):
    """{(rate, path): (conv, runs, total_s, mib, src, dst, system)}"""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                m = ROW.match(line)
                if m:
                    g = m.groups()
                    out[(int(g[0]), g[1])] = (int(g[2]), int(g[3])) + \
                        tuple(float(x) for x in g[4:])
    except OSError:
        pass
    return out


def gbits(path, pattern):
    try:
        with open(path) as f:
            for line in f:
                m = re.search(pattern, line)
                if m:
                    return float(m.group(1))
    except OSError:
        pass
    return None


def main():
    res = sys.argv[1]
    p = lambda n: os.path.join(res, n)
    tcp1 = gbits(p("bench-ceiling.txt"), r"^iperf3 1 connection\(s\): ([\d.]+) Gbit/s")
    tcp4 = gbits(p("bench-ceiling.txt"), r"^iperf3 4 connection\(s\): ([\d.]+) Gbit/s")
    # The best ib_write_bw of the sizes run; one that moved nothing (rxe
    # can fail a size under TCG) is named below the table, not used.
    ib, ib_name, ib_failed = None, "ib_write_bw", []
    try:
        with open(p("bench-rdma.txt")) as f:
            for line in f:
                m = re.match(r"^ib_write_bw (\d+)-byte RDMA WRITEs.*: ([\d.]+) Gbit/s",
                             line)
                if not m:
                    continue
                size, g = int(m.group(1)), float(m.group(2))
                if not g:
                    ib_failed.append(size)
                elif ib is None or g > ib:
                    ib, ib_name = g, "ib_write_bw %dK" % (size // 1024)
    except OSError:
        pass
    tcp_rdma = gbits(p("bench-rdma.txt"), r"^iperf3 1 connection\(s\): ([\d.]+) Gbit/s")
    # transport, file, path, ceiling name, ceiling Gbit/s
    plan = [
        ("TCP x1", "bench-streams.txt", "kvmig", "iperf3 -P 1", tcp1),
        ("TCP x4", "bench-streams.txt", "kvmig-4", "iperf3 -P 4", tcp4),
        ("TCP x1", "bench-ktls.txt", "kvmig", "iperf3 -P 1", tcp1),
        ("kTLS x1", "bench-ktls.txt", "kvmig-ktls", "iperf3 -P 1", tcp1),
        ("TCP x1 (dummy)", "bench-rdma.txt", "kvmig", "iperf3 -P 1", tcp_rdma),
        ("RDMA", "bench-rdma.txt", "kvmig-rdma", ib_name, ib),
    ]
    print("%-8s %-15s %-17s %6s %8s %8s %8s %8s %8s %9s  %s" %
          ("rate cap", "transport", "file", "conv", "total s", "MB/s",
           "src s/GiB", "dst s/GiB", "sys s/GiB", "of ceiling", "ceiling"))
    missing = []
    table = []
    for name, fname, path, cname, ceil in plan:
        r = rows(p(fname))
        found = [(k[0], v) for k, v in r.items() if k[1] == path]
        if not found:
            missing.append("%s: no %s row in %s" % (name, path, fname))
        for rate, v in found:
            table.append((rate, name, fname, v, cname, ceil))
    table.sort(key=lambda t: (t[0] == 0, t[0]))
    for rate, name, fname, v, cname, ceil in table:
        conv, runs, total, mib, src, dst, system = v
        mbs = mib * 1.048576 / total if total else 0.0
        frac = "%8.0f %%" % (100 * mbs * 8 / 1000 / ceil) if ceil else "%9s" % "-"
        cdesc = "%s %.2f Gbit/s" % (cname, ceil) if ceil else "%s: none" % cname
        print("%-8s %-15s %-17s %3d/%-2d %8.2f %8.1f %8.2f %8.2f %8.1f %s  %s" %
              (rate if rate else "unpaced", name, fname, conv, runs, total,
               mbs, src, dst, system, frac, cdesc))
    for m in missing:
        print("# " + m)
    for size in ib_failed:
        print("# ib_write_bw with %d-byte WRITEs moved nothing: not a ceiling" % size)
    print("# above 100 %: the ceiling tool is slower than kvmig; iperf3 copies "
          "through userspace, kvmig sends guest pages from the kernel")


if __name__ == "__main__":
    main()
