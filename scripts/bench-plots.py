#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""bench-plots.py OUTDIR: the PNGs of make bench, next to its text results
in OUTDIR (python3-matplotlib):

  bench-harvest.png   harvest ns per dirty page against the dirty fraction,
                      per method, kvmig and userspace (bench-harvest.txt)
  bench-timeline.png  per-round timeline of kvmig migrations as kvmigctl
                      watch --json saw them: remaining pages, throughput,
                      dirty rate and throttle (qemu-r*/bench-qemu-raw/
                      watch-kvmig-1.jsonl, and watch-throttle-*.jsonl)
  bench-rates.png     total time and downtime against the guest's dirty
                      rate, per path: median, whiskers min to max
                      (qemu-r*/bench-qemu.csv)

A plot whose input is missing is skipped, and said so."""
import csv
import glob
import json
import os
import re
import statistics
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PATHS = ["precopy", "multifd", "multifd-zc", "kvmig"]


def harvest(out):
    path = os.path.join(out, "bench-harvest.txt")
    if not os.path.exists(path):
        return "no bench-harvest.txt"
    pts = {}
    row = re.compile(r"^\s*([\d.]+)%\s+(\d+) \| (\S+)\s+([\d.]+)\s+(\S+)"
                     r"\s+[\d.]+\s+[\d.]+ \|\s+([\d.]+)")
    title = ""
    for line in open(path):
        if line.startswith("harvest cost"):
            title = line.strip()
        m = row.match(line)
        if not m or m.group(5) == "-":
            continue
        frac, pages, meth = float(m.group(1)), int(m.group(2)), m.group(3)
        kv, us = float(m.group(5)), float(m.group(6)) * 1e3 / pages
        pts.setdefault(meth, []).append((frac, kv, us))
    if not pts:
        return "no rows in bench-harvest.txt"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for meth, v in sorted(pts.items()):
        v.sort()
        x = [a for a, _, _ in v]
        m = meth.replace("kvmig-", "")
        ax.plot(x, [b for _, b, _ in v], "o-", label="kvmig, %s" % m)
        ax.plot(x, [c for _, _, c in v], "s--", label="userspace, %s" % m)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("dirty pages, % of the guest")
    ax.set_ylabel("harvest ns per dirty page")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "bench-harvest.png"), dpi=110)
    plt.close(fig)
    return None


def load_jsonl(path):
    rows = []
    for line in open(path):
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
    return rows


def timeline(out):
    runs = []
    for d in sorted(glob.glob(os.path.join(out, "qemu-r*")),
                    key=lambda p: int(re.sub(r"\D", "", p) or 0)):
        f = os.path.join(d, "bench-qemu-raw", "watch-kvmig-1.jsonl")
        if os.path.exists(f):
            runs.append(("QEMU x-kvmig, guest at %s MiB/s"
                         % re.sub(r"\D", "", os.path.basename(d)), f))
    for f in sorted(glob.glob(os.path.join(out, "watch-throttle-*.jsonl"))):
        name = os.path.basename(f)[len("watch-throttle-"):-len(".jsonl")]
        runs.append(("demo VMM, throttle %s" % name, f))
    runs = [(n, load_jsonl(f)) for n, f in runs]
    runs = [(n, r) for n, r in runs if r]
    if not runs:
        return "no kvmigctl watch --json records"
    fig, axes = plt.subplots(4, len(runs),
                             figsize=(max(4.6 * len(runs), 6.5), 8.5),
                             sharex="col", squeeze=False)
    for col, (name, rows) in enumerate(runs):
        t = [r["t"] for r in rows]
        series = [
            ("remaining pages", [r.get("remaining_pages", 0) for r in rows]),
            ("send rate MB/s", [r.get("rate_Bps", 0) / 1e6 for r in rows]),
            ("dirty rate, pages/s",
             [r.get("dirty_rate_pps", 0) for r in rows]),
            ("throttle %", [r.get("throttle_pct", 0) for r in rows]),
        ]
        for i, (label, y) in enumerate(series):
            ax = axes[i][col]
            ax.plot(t, y, "-", lw=1.2)
            ax.grid(True, alpha=0.3)
            if i == 3:
                ax.set_ylim(0, 100)
            if col == 0:
                ax.set_ylabel(label, fontsize=8)
            # round boundaries
            for a, b in zip(rows, rows[1:]):
                if b.get("round") != a.get("round"):
                    ax.axvline(b["t"], color="grey", lw=0.5, alpha=0.5)
        axes[0][col].set_title(name, fontsize=9)
        axes[-1][col].set_xlabel("s since kvmigctl watch started")
    fig.suptitle("kvmigctl watch --json; grey lines: a new round",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "bench-timeline.png"), dpi=110)
    plt.close(fig)
    return None


def rates(out):
    data = {}
    for d in glob.glob(os.path.join(out, "qemu-r*")):
        rate = int(re.sub(r"\D", "", os.path.basename(d)) or 0)
        f = os.path.join(d, "bench-qemu.csv")
        if not os.path.exists(f):
            continue
        for r in csv.DictReader(open(f)):
            data.setdefault((r["path"], rate), []).append(r)
    if not data:
        return "no qemu-r*/bench-qemu.csv"
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for key, label, ax in (("total_s", "total time, s", axes[0]),
                           ("qemu_downtime_ms", "QEMU downtime, ms",
                            axes[1])):
        for i, p in enumerate(PATHS):
            xs, med, lo, hi = [], [], [], []
            for (q, rate), rows in sorted(data.items()):
                v = [float(r[key]) for r in rows if q == p and r[key]]
                if q != p or not v:
                    continue
                m = statistics.median(v)
                # a small offset per path, so that whiskers do not overlap
                xs.append(rate * (1 + 0.03 * (i - 1.5)))
                med.append(m)
                lo.append(m - min(v))
                hi.append(max(v) - m)
            if xs:
                ax.errorbar(xs, med, yerr=[lo, hi], fmt="o-", capsize=3,
                            label=p)
        ax.set_xlabel("guest's write rate, MiB/s (paced)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("QEMU's paths side by side at each rate: "
                 "median, min to max", fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "bench-rates.png"), dpi=110)
    plt.close(fig)
    return None


def main(out):
    for name, fn in (("bench-harvest.png", harvest),
                     ("bench-timeline.png", timeline),
                     ("bench-rates.png", rates)):
        why = fn(out)
        print("%s: %s" % (name, "skipped, " + why if why else "written"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: bench-plots.py OUTDIR")
    main(sys.argv[1])
