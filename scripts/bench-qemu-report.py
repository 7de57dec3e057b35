#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""bench-qemu-report.py RAWDIR OUTDIR: the tables and the plot of
scripts/lab-bench-qemu.sh, from its raw data (runs.tsv, skips.tsv, info.txt
and the serial timestamps NAME.ts of serial-ts.py). Writes
OUTDIR/bench-qemu.txt, bench-qemu.csv and bench-qemu.svg (python3 stdlib
only: no plotting package needed)."""
import csv
import json
import os
import statistics
import sys

PATHS = ["precopy", "multifd", "multifd-zc", "kvmig"]
GIB = float(1 << 30)
MIB = float(1 << 20)


def read_ts(path, nbytes=False):
    """Arrival times of a serial log's reads; with nbytes, (time, bytes)."""
    try:
        with open(path) as f:
            pts = [line.split() for line in f if line.strip()]
    except FileNotFoundError:
        return []
    if nbytes:
        return [(float(t), int(b)) for t, b in pts]
    return [float(t) for t, _ in pts]


def guest_rates(raw, p, n, t_mig, t_end):
    """The count guest's write rate in MiB/s (one serial byte per MiB) on
    the source: in the 5 s before the migrate command, and from it to the
    source's last byte (its pre-copy, the guest slowed by dirty logging)."""
    src = read_ts(os.path.join(raw, "s-%s-%s.ts" % (p, n)), True)

    def rate(a, b):
        got = sum(c for t, c in src if a < t <= b)
        return got / (b - a) if b > a and got else None
    before = rate(t_mig - 5, t_mig)
    last = max([t for t, _ in src if t <= t_end] or [t_mig])
    return before, rate(t_mig, last)


def guest_gaps(raw, p, n, t_mig):
    """(longest gap, switchover gap) in ms of the guest's serial progress
    from the migrate command to the destination's first byte."""
    src = [t for t in read_ts(os.path.join(raw, "s-%s-%s.ts" % (p, n)))
           if t >= t_mig]
    dst = read_ts(os.path.join(raw, "d-%s-%s.ts" % (p, n)))
    if not dst:
        return None, None
    pts = [t_mig] + src + [dst[0]]
    longest = max(b - a for a, b in zip(pts, pts[1:]))
    last_src = src[-1] if src else t_mig
    return longest * 1e3, (dst[0] - last_src) * 1e3


def eta_errors(raw, n):
    """kvmigctl watch's ETA against the actual end, at 25, 50 and 75 % of
    pre-copy (first precopy sample to the done sample, 0.2 s apart): for
    each, (predicted end - actual end in s, the same relative to the time
    that was left, the estimate was a lower bound), or None when no
    estimate was shown yet."""
    try:
        with open(os.path.join(raw, "watch-kvmig-%s.jsonl" % n)) as f:
            rows = [json.loads(line) for line in f if line.startswith("{")]
    except (FileNotFoundError, ValueError):
        return None
    pre = [r for r in rows if r.get("state") == "precopy"]
    done = [r["t"] for r in rows if r.get("state") == "done"]
    if not pre or not done:
        return None
    t0, t1 = pre[0]["t"], done[0]
    res = []
    for frac in (0.25, 0.5, 0.75):
        tf = t0 + frac * (t1 - t0)
        est = [r for r in pre if r["t"] <= tf and r.get("eta_s") is not None]
        if not est:
            res.append(None)
            continue
        r = est[-1]
        err = r["t"] + r["eta_s"] - t1
        res.append((err, err / (t1 - r["t"]) if t1 > r["t"] else None,
                    bool(r.get("eta_is_min"))))
    return res


def main(raw, out):
    rows = []
    with open(os.path.join(raw, "runs.tsv")) as f:
        head = f.readline().lstrip("# ").rstrip("\n").split("\t")
        for line in f:
            r = dict(zip(head, line.rstrip("\n").split("\t")))
            rows.append(r)
    skips = []
    if os.path.exists(os.path.join(raw, "skips.tsv")):
        with open(os.path.join(raw, "skips.tsv")) as f:
            skips = [line.rstrip("\n").split("\t", 1) for line in f
                     if line.strip()]
    info = open(os.path.join(raw, "info.txt")).read().splitlines()

    res = []
    seq = {}
    for r in rows:
        p = r["path"]
        seq[p] = seq.get(p, 0) + 1
        hz = float(r["hz"])
        tx = int(r["wire_tx"])
        gib = tx / GIB if tx else float("nan")
        gap, sw = guest_gaps(raw, p, r["run"], float(r["t_migrate"]))
        g_before, g_during = guest_rates(raw, p, r["run"],
                                         float(r["t_migrate"]),
                                         float(r["t_completed"]))
        busy = int(r["sys_busy"]) / hz
        guest = int(r["sys_guest"]) / hz
        src = (int(r["src_cpu"]) - int(r["src_guest"])) / hz
        dst = (int(r["dst_cpu"]) - int(r["dst_guest"])) / hz
        kw = int(r["kvmig_worker"]) / hz
        eta = eta_errors(raw, r["run"]) if p == "kvmig" else None
        eta = eta or [None] * 3
        res.append({
            "path": p, "run": seq[p],
            "eta_err_25_s": eta[0] and eta[0][0],
            "eta_err_50_s": eta[1] and eta[1][0],
            "eta_err_75_s": eta[2] and eta[2][0],
            "eta_rel_25": eta[0] and eta[0][1],
            "eta_rel_50": eta[1] and eta[1][1],
            "eta_rel_75": eta[2] and eta[2][1],
            "total_s": int(r["total_ms"]) / 1e3,
            "qemu_downtime_ms": int(r["downtime_ms"]),
            "guest_gap_ms": gap, "guest_switch_gap_ms": sw,
            "guest_mibs_before": g_before, "guest_mibs_precopy": g_during,
            "window_s": float(r["t_dst_running"]) - float(r["t_migrate"]),
            "wire_tx_mib": tx / MIB, "wire_rx_mib": int(r["wire_rx"]) / MIB,
            "qemu_transferred_mib": int(r["qemu_transferred"] or 0) / MIB,
            "dirty_syncs": r["dirty_syncs"],
            "sys_cpu_s": busy, "sys_guest_s": guest,
            "sys_softirq_s": int(r["sys_softirq"]) / hz,
            "sys_s_per_gib": busy / gib,
            "host_s_per_gib": (busy - guest) / gib,
            "src_qemu_s": src, "dst_qemu_s": dst, "kvmig_worker_s": kw,
            "src_qemu_s_per_gib": src / gib, "dst_qemu_s_per_gib": dst / gib,
            "kvmig_worker_s_per_gib": kw / gib,
            # query-migrate's ram.dirty-sync-missed-zero-copy: syncs at
            # which the kernel had copied zero-copy sends after all
            "zc_missed": r.get("zc_missed", ""),
        })

    with open(os.path.join(out, "bench-qemu.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(res[0].keys()) if res else ["path"])
        w.writeheader()
        for x in res:
            w.writerow({k: ("%.4g" % v if isinstance(v, float) else
                            ("" if v is None else v)) for k, v in x.items()})

    def fmt(v, spec):
        return "-" if v is None else spec % v

    lines = ["# " + s for s in info]
    lines.append("# command: make bench (scripts/lab-bench-qemu.sh)")
    lines.append("# both QEMUs run on the one lab kernel: system CPU is both"
                 " ends' together; host = system minus guest mode;")
    lines.append("# per-process CPU excludes guest mode; all per GiB of source"
                 " veth tx bytes; window: migrate command to destination"
                 " running")
    hdr = ("%-10s %3s %7s %8s %8s %8s %8s %8s %8s %8s %7s %7s %7s %7s"
           % ("path", "run", "total s", "qemu dt", "guest gap", "switch",
              "wire MiB", "sys s", "sys/GiB", "host/GiB", "softirq",
              "src s", "dst s", "kvmig s"))
    lines.append(hdr)
    for x in res:
        lines.append(
            "%-10s %3d %7.2f %6d ms %6s ms %6s ms %8.1f %8.2f %8.2f %8.2f %7.2f %7.2f %7.2f %7.2f"
            % (x["path"], x["run"], x["total_s"], x["qemu_downtime_ms"],
               fmt(x["guest_gap_ms"], "%.0f"),
               fmt(x["guest_switch_gap_ms"], "%.0f"), x["wire_tx_mib"],
               x["sys_cpu_s"], x["sys_s_per_gib"], x["host_s_per_gib"],
               x["sys_softirq_s"], x["src_qemu_s"], x["dst_qemu_s"],
               x["kvmig_worker_s"]))
    metrics = [("total_s", "total s", "%.2f"),
               ("qemu_downtime_ms", "QEMU downtime ms", "%.0f"),
               ("guest_gap_ms", "guest-seen gap ms", "%.0f"),
               ("guest_mibs_before", "guest MiB/s before", "%.1f"),
               ("guest_mibs_precopy", "guest MiB/s precopy", "%.1f"),
               ("wire_tx_mib", "wire MiB (src tx)", "%.1f"),
               ("sys_s_per_gib", "system CPU s/GiB", "%.2f"),
               ("host_s_per_gib", "host CPU s/GiB", "%.2f"),
               ("src_qemu_s_per_gib", "src QEMU s/GiB", "%.2f"),
               ("dst_qemu_s_per_gib", "dst QEMU s/GiB", "%.2f"),
               ("kvmig_worker_s_per_gib", "kvmig worker s/GiB", "%.2f")]
    summary = {}
    lines.append("")
    lines.append("min / median / max per path")
    lines.append("%-20s" % "" + "".join("%-24s" % p for p in PATHS))
    for key, label, spec in metrics:
        cells = []
        for p in PATHS:
            v = [x[key] for x in res if x["path"] == p and x[key] is not None]
            if v:
                s = (min(v), statistics.median(v), max(v))
                summary[(p, key)] = s
                cells.append("%-24s" % " / ".join(spec % a for a in s))
            else:
                cells.append("%-24s" % "-")
        lines.append("%-20s" % label + "".join(cells))
    lines.append("")
    rates = {p: summary[(p, "guest_mibs_precopy")][1] for p in PATHS
             if (p, "guest_mibs_precopy") in summary}
    if len(rates) > 1:
        lo, hi = min(rates.values()), max(rates.values())
        lines.append("guest write rate during pre-copy (median MiB/s): %s; "
                     "%s" % (", ".join("%s %.1f" % kv for kv in rates.items()),
                             "within 10% of each other" if hi <= lo * 1.1
                             else "NOT comparable at one dirty rate "
                             "(%.2fx apart)" % (hi / lo)))
    kv = [x for x in res if x["path"] == "kvmig"]
    if kv:
        lines.append("kvmigctl watch's ETA at 25 / 50 / 75 % of pre-copy: "
                     "predicted end - actual end, s (relative to the time "
                     "then left), per run:")
        for x in kv:
            cells = []
            for q in ("25", "50", "75"):
                e, rel = x["eta_err_%s_s" % q], x["eta_rel_%s" % q]
                cells.append("-" if e is None else "%+.2f s (%+.0f%%)"
                             % (e, 100 * rel if rel is not None else 0))
            lines.append("  kvmig run %d: %s" % (x["run"], " / ".join(cells)))
    for p in PATHS:
        n = sum(1 for x in res if x["path"] == p)
        lines.append("%-10s %d runs completed" % (p, n))
    zc = [x["zc_missed"] for x in res if x["path"] == "multifd-zc"]
    if zc:
        lines.append("multifd-zc dirty-sync-missed-zero-copy per run: %s"
                     % " ".join(str(v) or "-" for v in zc))
    for p, why in skips:
        lines.append("%-10s %s" % (p, why))
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "bench-qemu.txt"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    svg(os.path.join(out, "bench-qemu.svg"), summary, info)


def svg(path, summary, info):
    """Five panels of bars (median) with min-max whiskers, one bar a path."""
    panels = [("total_s", "total time (s)"),
              ("qemu_downtime_ms", "QEMU downtime (ms)"),
              ("guest_gap_ms", "guest-seen gap (ms)"),
              ("host_s_per_gib", "host CPU s/GiB"),
              ("wire_tx_mib", "wire MiB (src tx)")]
    colors = {"precopy": "#4e79a7", "multifd": "#f28e2b",
              "multifd-zc": "#59a14f", "kvmig": "#e15759"}
    pw, ph, top, left = 200, 240, 60, 40
    width = left + len(panels) * (pw + 30)
    height = top + ph + 90
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
         'font-family="sans-serif" font-size="11">' % (width, height),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%d" y="18" font-size="13">QEMU migration paths, '
         'median with min-max over runs</text>' % left,
         '<text x="%d" y="36" fill="#555">%s</text>'
         % (left, (info[2] if len(info) > 2 else "").replace("&", "&amp;"))]
    for i, (key, title) in enumerate(panels):
        x0 = left + i * (pw + 30)
        vals = [summary.get((p, key)) for p in PATHS]
        vmax = max([v[2] for v in vals if v] or [1]) or 1
        o.append('<text x="%d" y="%d" font-weight="bold">%s</text>'
                 % (x0, top - 6, title))
        o.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>'
                 % (x0, top + ph, x0 + pw, top + ph))
        bw = pw / len(PATHS)
        for j, p in enumerate(PATHS):
            bx = x0 + j * bw + 6
            v = vals[j]
            o.append('<text x="%.1f" y="%d" transform="rotate(40 %.1f %d)">%s'
                     '</text>' % (bx, top + ph + 14, bx, top + ph + 14, p))
            if not v:
                o.append('<text x="%.1f" y="%d" fill="#999">n/a</text>'
                         % (bx, top + ph - 4))
                continue
            def y(a):
                return top + ph - a / vmax * (ph - 20)
            o.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" '
                     'fill="%s"/>' % (bx, y(v[1]), bw - 12, top + ph - y(v[1]),
                                      colors[p]))
            cx = bx + (bw - 12) / 2
            o.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" '
                     'stroke="black"/>' % (cx, y(v[0]), cx, y(v[2])))
            for a in (v[0], v[2]):
                o.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" '
                         'stroke="black"/>' % (cx - 4, y(a), cx + 4, y(a)))
            o.append('<text x="%.1f" y="%.1f" text-anchor="middle" '
                     'font-size="9">%.3g</text>' % (cx, y(v[2]) - 3, v[1]))
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        sys.exit(2)
    main(sys.argv[1], sys.argv[2])
