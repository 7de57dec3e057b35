#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Operating a migration: one migration between two network namespaces
# (userspace/kvmig-demo on both ends) watched with everything an operator
# has, and checked against what the VMMs report:
#   - kvmigctl list --json while it runs, kvmigctl watch (text and JSON),
#   - the eBPF monitor on the source's veth (kvmigctl monitor),
#   - the module's tracepoints through tracefs, perf and bpftrace (that
#     case is skipped, with the reason, when bpftrace cannot run a trivial
#     program on a kvmig tracepoint here: without BTF it wants the
#     kernel's headers, which a vng or lab root may not have),
#   - the gratuitous RARP that kvmigctl announce --wait-done sends on the
#     destination when its session completes, captured on the source side,
# then kvmigctl's error paths.
# TAP output; exit 4 (skip) when something needed is missing, unless
# KVMIG_REQUIRE is set.
cd "$(dirname "$0")" || exit 1
. ./lib.sh
top=$(pwd)/..
demo=$top/userspace/kvmig-demo
ctl=$top/userspace/kvmigctl
[ "$(id -u)" = 0 ] || skip "needs root"
for t in ip nsenter tcpdump python3 bpftool perf; do
	command -v $t >/dev/null || skip "needs $t"
done
[ -c /dev/kvm ] || skip "/dev/kvm not present"
[ -c /dev/kvmig ] || skip "/dev/kvmig not present"
[ -x "$demo" ] && [ -x "$ctl" ] || skip "build userspace/ first"
tr=/sys/kernel/tracing
[ -d $tr/events ] || mount -t tracefs nodev $tr 2>/dev/null
[ -d $tr/events/kvmig ] || skip "no kvmig tracepoints in $tr"

ns_s=kvmigc-src-$$ ns_d=kvmigc-dst-$$ tmp=$(mktemp -d) port=7011
mac=52:54:00:6b:76:01
in_s() { in_ns $ns_s "$@"; }
in_d() { in_ns $ns_d "$@"; }
cleanup() {
	echo 0 >$tr/events/kvmig/enable
	jobs -p | xargs -r kill 2>/dev/null
	[ -e /run/netns/$ns_s ] &&
		in_s "$ctl" monitor detach veth-s >/dev/null 2>&1
	[ -e /run/netns/$ns_d ] &&
		in_d "$ctl" monitor detach veth-d >/dev/null 2>&1
	cleanup_ns
	rm -rf "$tmp"
}
trap cleanup EXIT
veth_ns $ns_s veth-s $ns_d veth-d 10.97.0.1/24 10.97.0.2/24 ||
	skip "cannot make network namespaces and veth"

# bpftrace is one observer among several: if it cannot run here, its case
# is skipped with the reason and the others still run. A trivial program on
# a kvmig tracepoint that reads a field is what the real one needs (without
# BTF, bpftrace 0.17 compiles tracepoint arguments against the kernel's
# headers under /lib/modules/$(uname -r), which vng's or the lab's root may
# lack). On the KASAN kernel under TCG bpftrace takes minutes to start (it
# reads all of the kernel's BTF and symbols): KVMIG_NO_BPFTRACE=1 leaves it
# out there, since it reads the same tracepoints perf and tracefs check.
bt_skip=
if [ -n "${KVMIG_NO_BPFTRACE:-}" ]; then
	bt_skip="KVMIG_NO_BPFTRACE is set"
elif ! command -v bpftrace >/dev/null; then
	bt_skip="bpftrace not installed"
else
	timeout 300 bpftrace -e 'tracepoint:kvmig:kvmig_done { printf("%llu\n", args->id); } BEGIN { exit(); }' \
		>"$tmp/bt-probe" 2>&1
	rc=$?
	# The reason: bpftrace's last error, not its RLIMIT_MEMLOCK notice.
	why=$(grep -iE 'error|not found|no such' "$tmp/bt-probe" |
		grep -v RLIMIT_MEMLOCK | tail -1)
	case $rc in
	0) ;;
	124) bt_skip="bpftrace did not start within 300 s" ;;
	*) bt_skip="bpftrace cannot run a program on kvmig_done (exit $rc): ${why:-$(tail -1 "$tmp/bt-probe")}" ;;
	esac
fi

echo "TAP version 13"
echo "1..24"
fail=0
n=0
check() { # check NAME COMMAND...: one TAP line
	local name=$1
	shift
	n=$((n + 1))
	if "$@"; then echo "ok $n $name"; else echo "not ok $n $name"; fail=1; fi
}
show() { sed 's/^/# /' "$@"; }

show "$tmp/bt-probe" 2>/dev/null
# Observers first: tracepoints, perf, bpftrace, the monitor, the capture
# and the announcer waiting for the destination's completion.
echo 0 >$tr/tracing_on
echo >$tr/trace
echo 1 >$tr/events/kvmig/enable
echo 1 >$tr/tracing_on
in_s "$ctl" monitor attach veth-s --port $port >"$tmp/mon" 2>&1
check "kvmigctl monitor attach on the source's veth" test $? = 0
show "$tmp/mon"
# And on the destination's, which sees what arrived.
in_d "$ctl" monitor attach veth-d --port $port >"$tmp/mon-d" 2>&1
check "kvmigctl monitor attach on the destination's veth" test $? = 0
btpid=
if [ -z "$bt_skip" ]; then
	bpftrace -e 'tracepoint:kvmig:kvmig_round_end { printf("round_end session=%llu round=%llu pages=%llu bytes=%llu\n", args->id, args->round, args->pages, args->bytes); }
	tracepoint:kvmig:kvmig_done { printf("done session=%llu role=%u pages=%llu bytes=%llu\n", args->id, args->role, args->pages, args->bytes); }' \
		>"$tmp/bt" 2>&1 &
	btpid=$!
fi
perf stat -a -x, -o "$tmp/perf" -e 'kvmig:kvmig_attach,kvmig:kvmig_round_start,kvmig:kvmig_round_end,kvmig:kvmig_switchover_start,kvmig:kvmig_switchover_end,kvmig:kvmig_done,kvmig:kvmig_failed' \
	-- sh -c "while [ ! -e $tmp/stop ]; do sleep 0.2; done" >/dev/null 2>&1 &
perfpid=$!
# Not through in_s: $! must be tcpdump itself (nsenter execs it).
nsenter --net=/run/netns/$ns_s tcpdump -i veth-s -n -U -w "$tmp/rarp.pcap" \
	'ether proto 0x8035' >"$tmp/tcpdump" 2>&1 &
tdpid=$!
in_d "$ctl" announce veth-d --mac $mac --wait-done --timeout 600000 \
	>"$tmp/announce" 2>&1 &
anpid=$!
has() { [[ -e $1 && $(<"$1") == *"$2"* ]]; }
# wait_until SECONDS COMMAND...: until COMMAND succeeds, for so many seconds
# at most (a deadline, not a count: a loaded debug kernel makes each try slow)
wait_until() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.2
	done
}
# bpftrace that died instead (its case then fails) is ready too.
observers_ready() {
	{ [ -z "$btpid" ] || has "$tmp/bt" Attaching ||
		! kill -0 "$btpid" 2>/dev/null; } &&
		has "$tmp/tcpdump" listening
}
wait_until 300 observers_ready
sleep 1
# The announcer waits on a raw tracepoint link of its own, which bpftool sees.
bpftool link show >"$tmp/links" 2>&1
bpftool prog show >"$tmp/progs" 2>&1

in_d "$demo" dest --listen 10.97.0.2:$port --mem 64 >"$tmp/d" 2>&1 &
dpid=$!
# The announcer, started before any destination, ties itself to the first
# one. Then a second destination VM, idle: an announcer without --session
# must refuse to guess, and one bound to the idle session must not fire
# when the first migration ends (its frames would be in the capture).
wait_until 300 has "$tmp/announce" 'announcing after destination session'
main_id=$(sed -n 's/.*announcing after destination session \([0-9]*\).*/\1/p' "$tmp/announce")
in_d "$demo" dest --listen 10.97.0.2:$((port + 1)) --mem 16 >"$tmp/decoy" 2>&1 &
decoypid=$!
wait_until 300 has "$tmp/decoy" listening
decoy_id=$("$ctl" list --json | python3 -c '
import json, sys
print(" ".join(str(s["id"]) for s in json.load(sys.stdin)
               if s["role"] == "dest" and str(s["id"]) != sys.argv[1]))' "$main_id")
in_d "$ctl" announce veth-d --mac 52:54:00:6b:76:02 --wait-done \
	--timeout 30s >"$tmp/an2" 2>&1
an2rc=$?
in_d "$ctl" announce veth-d --mac 52:54:00:6b:76:02 --wait-done \
	--session "${decoy_id:-0}" >"$tmp/an3" 2>&1 &
an3pid=$!
sleep 0.5
in_s "$demo" source --connect 10.97.0.2:$port --mem 64 --rate 8000 \
	--bandwidth 40 >"$tmp/s" 2>&1 &
spid=$!
"$ctl" watch --role source --wait 300000 --interval 200 >"$tmp/watch" 2>&1 &
wpid=$!
# In the source's namespace, where the monitor on veth-s is: it adds the
# wire rate (interface names, and the monitor's pins, are per namespace).
in_s "$ctl" --json watch --role source --wait 300000 --interval 200 \
	--iface veth-s >"$tmp/watch.json" 2>&1 &
wjpid=$!
wait_until 300 has "$tmp/s" 'layout accepted'
"$ctl" list >"$tmp/list.txt" 2>&1
"$ctl" list --json >"$tmp/list.json" 2>&1
# The pre-check's findings of both live sessions, from another process.
"$ctl" check >"$tmp/check.txt" 2>&1
checkrc=$?
"$ctl" check --json >"$tmp/check.json" 2>&1
# reap SECONDS NAME PID: wait for the background job PID, SECONDS at most:
# its exit status, or 124 once killed. A job that hangs fails this test
# with what it was waiting on, rather than holding the whole lab run
# until its time limit.
reap() {
	local end=$((SECONDS + $1)) name=$2 pid=$3
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$SECONDS" -ge "$end" ]; then
			echo "# $name (pid $pid) still running after $1 s: killed"
			ps -o pid,stat,wchan:32,args -p "$pid" --ppid "$pid" 2>&1 |
				sed 's/^/#   /'
			sed 's/^/#   stack: /' "/proc/$pid/stack" 2>/dev/null
			pkill -9 -P "$pid" 2>/dev/null
			kill -9 "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			return 124
		fi
		sleep 0.2
	done
	wait "$pid"
}
reap 300 "the source demo" $spid
src=$?
reap 300 "the destination demo" $dpid
dst=$?
reap 300 "kvmigctl watch" $wpid
wrc=$?
reap 300 "kvmigctl --json watch" $wjpid
reap 620 "kvmigctl announce" $anpid
anrc=$?
sleep 0.5
touch "$tmp/stop"
[ -n "$btpid" ] && kill -INT $btpid 2>/dev/null
[ -n "$btpid" ] && reap 60 bpftrace $btpid
reap 60 "perf stat" $perfpid
# tcpdump may still be writing the last frame: 24 bytes of header and
# 16 + 60 per frame make 404 bytes for five (up to 5 s).
pcap_full() { [ "$(stat -c %s "$tmp/rarp.pcap" 2>/dev/null || echo 0)" -ge 404 ]; }
wait_until 5 pcap_full
kill $tdpid
reap 30 tcpdump $tdpid
echo 0 >$tr/events/kvmig/enable
in_s "$ctl" --json monitor show veth-s >"$tmp/mon.json" 2>&1
in_d "$ctl" --json monitor show veth-d >"$tmp/mon-d.json" 2>&1
in_s bpftool map dump pinned "/sys/fs/bpf/kvmig/$(in_s stat -L -c %i /proc/self/ns/net)/veth-s/totals" >"$tmp/dump" 2>&1
grep -h 'kvmig_' $tr/trace >"$tmp/trace"
show "$tmp/s" "$tmp/d"

bytes=$(sed -n 's/^  bytes sent *\([0-9]*\) .*/\1/p' "$tmp/s")
ps=$(sed -n 's/.*checksum at pause  *\([0-9a-f]*\)/\1/p' "$tmp/s")
rs=$(sed -n 's/.*checksum at resume *\([0-9a-f]*\)/\1/p' "$tmp/d")
check "the migration itself: both ends succeed, checksums equal" \
	test "$src$dst" = 00 -a -n "$ps" -a "$ps" = "$rs"

echo "# kvmigctl list, while it ran:"
show "$tmp/list.txt"
check "kvmigctl list --json: valid, both sessions with their fields" \
	python3 - "$tmp/list.json" "$decoy_id" <<'EOF'
import json, sys
l = [s for s in json.load(open(sys.argv[1])) if str(s["id"]) != sys.argv[2]]
roles = {s["role"]: s for s in l}
assert set(roles) == {"source", "dest"}, roles
assert roles["source"]["state"] in ("tracking", "precopy"), roles
assert roles["dest"]["state"] == "receiving", roles
for s in l:
    assert not s["self"]
    for k in ("id", "pid", "round", "bytes_sent", "pages_pending",
              "pages_received", "dirty_rate", "throughput", "remaining"):
        assert isinstance(s[k], int) and s[k] >= 0, k
EOF

echo "# kvmigctl watch --role source, captured:"
show "$tmp/watch"
check "kvmigctl watch: progress lines, ends with done and exit 0" \
	test "$wrc" = 0 -a "$(grep -c 'round' "$tmp/watch")" -ge 2 -a \
	"$(grep -c 'done: downtime' "$tmp/watch")" = 1
check "kvmigctl watch: off a terminal, no line repeats the one before" \
	test "$(uniq "$tmp/watch" | wc -l)" = "$(wc -l <"$tmp/watch")"
check "kvmigctl --json watch --iface: valid JSON, bytes grow, wire rate, an honest ETA" \
	python3 - "$tmp/watch.json" "$bytes" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) >= 2, rows
assert rows[-1]["state"] == "done", rows[-1]
assert rows[-1]["bytes"] == int(sys.argv[2]), (rows[-1], sys.argv[2])
assert rows[-1]["eta_s"] == 0, rows[-1]
b = [r["bytes"] for r in rows]
assert b == sorted(b), b
pre = [r for r in rows if r["state"] == "precopy"]
assert pre, rows
# No estimate before the send rate spans a second of pre-copy samples,
# nor outside pre-copy; never 0 while pages remain; a lower bound
# exactly in round 0, which has no dirty rate yet.
for r in rows:
    if r["state"] != "precopy" and r["state"] != "done":
        assert r["eta_s"] is None, r
for r in pre:
    if r["t"] - pre[0]["t"] < 0.99:
        assert r["eta_s"] is None, (r, pre[0])
    if r["eta_s"] is not None:
        assert r["eta_s"] > 0 or r["remaining_pages"] == 0, r
        assert r["eta_is_min"] == (r["round"] == 0), r
assert any("wire_Bps" in r for r in rows), "no wire rate from --iface veth-s"
est = [r for r in pre if r["eta_s"] is not None]
assert est, "pre-copy ended before any estimate: %d samples" % len(pre)
print("# %d samples, %d in pre-copy; ETA (s) at t: %s" % (len(rows), len(pre),
      " ".join("%.1f@%.1f%s" % (r["eta_s"], r["t"], ">" if r["eta_is_min"] else "")
               for r in est[::max(1, len(est) // 40)])))
EOF

echo "# kvmigctl monitor show veth-s and veth-d --json; bpftool map dump:"
show "$tmp/mon.json" "$tmp/mon-d.json" "$tmp/dump"
# What TCP itself counted (TCP_INFO, as the demos report it): the source
# TCP's bytes sent count each transmission (under TCG a slow receiver
# makes it send some twice: retransmitted, or refused by veth's full
# backlog and sent again as new data), and egress sees each; its bytes
# acked count each byte once, and the SYN.
tcp_s=$(sed -n 's/^  tcp (TCP_INFO) *sent \([0-9]*\) bytes .*/\1/p' "$tmp/s")
tcp_a=$(sed -n 's/^  tcp (TCP_INFO) .* \([0-9]*\) acked, .*/\1/p' "$tmp/s")
tcp_d=$(sed -n 's/^dest: tcp (TCP_INFO): .*received \([0-9]*\)$/\1/p' "$tmp/d")
check "eBPF monitor: source egress TCP payload = what TCP sent; destination ingress within" \
	python3 - "$tmp/mon.json" "$tmp/mon-d.json" $port "$tcp_s" "$tcp_d" <<'EOF'
import json, sys
port, tcp_s, tcp_d = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def flow(path, dirn):
	m = json.load(open(path))
	out = [f for f in m["flows"] if f["dir"] == dirn and f["dport"] == port]
	assert len(out) == 1, m["flows"]
	f = out[0]
	print("# %s: payload %d, L2 bytes %d in %d packets"
	      % (dirn, f["payload_bytes"], f["bytes"], f["packets"]))
	# each skb adds at most 14+40+60 header bytes
	assert f["payload_bytes"] < f["bytes"] <= f["payload_bytes"] + 114 * f["packets"]
	assert m["totals"][dirn]["payload_bytes"] == f["payload_bytes"]
	return f["payload_bytes"]
eg, ing = flow(sys.argv[1], "egress"), flow(sys.argv[2], "ingress")
print("# TCP: source sent %d, destination received %d in order (and the FIN)" % (tcp_s, tcp_d))
assert eg == tcp_s, (eg, tcp_s)
assert tcp_d - 1 <= ing <= eg, (tcp_d, ing, eg)
EOF
echo "# kvmig bytes_sent $bytes; source TCP acked $tcp_a (and the SYN)"
check "kvmig's bytes sent (handshake included) = what the source's TCP got acked" \
	test -n "$bytes" -a "$((bytes + 1))" = "$tcp_a"
check "bpftool map dump shows the maps with BTF field names" \
	grep -q '"payload_bytes"' "$tmp/dump"

echo "# tracepoints (tracefs):"
show "$tmp/trace"
check "tracepoints: attach x2, paired rounds, switchover, done on both ends" \
	python3 - "$tmp/trace" "$bytes" "$decoy_id" <<'EOF'
import re, sys
ev = []
for line in open(sys.argv[1]):
    m = re.search(r"(kvmig_\w+): (.*)", line)
    if m:
        ev.append((m.group(1), dict(kv.split("=") for kv in m.group(2).split())))
# the idle destination's attach is not this migration's
ev = [e for e in ev if e[1].get("session") != sys.argv[3]]
names = [e[0] for e in ev]
assert names.count("kvmig_attach") == 2, names
assert "kvmig_failed" not in names, names
src = [e for e in ev if e[0] == "kvmig_attach" and e[1]["role"] == "1"][0][1]["session"]
rounds = [e for e in ev if e[1].get("session") == src and e[0].startswith("kvmig_round")]
assert len(rounds) >= 4 and len(rounds) % 2 == 0, rounds
for i in range(0, len(rounds), 2):
    a, b = rounds[i], rounds[i + 1]
    assert (a[0], b[0]) == ("kvmig_round_start", "kvmig_round_end"), (a, b)
    assert a[1]["round"] == b[1]["round"] == str(i // 2), (a, b)
    assert int(b[1]["pages"]) <= int(a[1]["pending"]) or i == 0, (a, b)
ends = [int(r[1]["bytes"]) for r in rounds[1::2]]
assert ends == sorted(ends), ends
s = [e[1] for e in ev if e[0] == "kvmig_switchover_end"]
assert len(s) == 1 and s[0]["err"] == "0" and int(s[0]["downtime_ns"]) > 0, s
done = {e[1]["role"]: e[1] for e in ev if e[0] == "kvmig_done"}
assert set(done) == {"1", "2"}, done
assert int(done["1"]["bytes"]) == int(sys.argv[2]), (done, sys.argv[2])
assert done["1"]["downtime_ns"] == s[0]["downtime_ns"], (done, s)
EOF
echo "# perf stat -e 'kvmig:*':"
show "$tmp/perf"
tre=$(grep -c kvmig_round_end "$tmp/trace")
echo "# bpftool link show / prog show, while the announcer waited:"
grep -A1 -E 'raw_tracepoint|kvmig' "$tmp/links" "$tmp/progs" | sed 's/^/# /'
check "bpftool shows the announcer's kvmig_done raw tracepoint link" \
	grep -q "kvmig_done" "$tmp/links"
check "perf saw the same events as tracefs" \
	test "$(awk -F, '$3 == "kvmig:kvmig_round_end" {print $1}' "$tmp/perf")" = "$tre" -a \
	"$(awk -F, '$3 == "kvmig:kvmig_done" {print $1}' "$tmp/perf")" = 2
if [ -n "$bt_skip" ]; then
	n=$((n + 1))
	echo "ok $n bpftrace saw the same events as tracefs # SKIP $bt_skip"
else
	echo "# bpftrace:"
	show "$tmp/bt"
	check "bpftrace saw the same events as tracefs" \
		test "$(grep -c '^round_end' "$tmp/bt")" = "$tre" -a \
		"$(grep -c "^done .*role=1 .*bytes=$bytes\$" "$tmp/bt")" = 1
fi

echo "# kvmigctl announce --wait-done on the destination:"
show "$tmp/announce"
echo "# with two destination sessions (ids $main_id and $decoy_id), and bound to the idle one:"
show "$tmp/decoy" "$tmp/an2" "$tmp/an3"
an3_waits=0
kill -0 $an3pid 2>/dev/null && an3_waits=1
kill $an3pid $decoypid 2>/dev/null
wait $an3pid $decoypid 2>/dev/null
check "announce waits for its own session: the only one, bound at start; two: refused; another's end: ignored" \
	test -n "$main_id" -a -n "$decoy_id" -a "$main_id" != "$decoy_id" -a \
	"$an2rc" = 1 -a "$an3_waits" = 1 -a \
	"$(grep -c '2 destination sessions: name the one' "$tmp/an2")" = 1 -a \
	"$(grep -c "kvmig_done: session $main_id role destination" "$tmp/announce")" = 1
tcpdump -r "$tmp/rarp.pcap" -tt -n -e -xx 2>/dev/null >"$tmp/rarp.txt"
show "$tmp/rarp.txt"
check "RARP on the source side after the destination's completion" \
	python3 - "$tmp/rarp.pcap" "$mac" "$anrc" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
mac = bytes(int(x, 16) for x in sys.argv[2].split(":"))
assert sys.argv[3] == "0", "announce exit status " + sys.argv[3]
off, frames = 24, []
while off < len(data):
    sec, usec, incl, orig = struct.unpack_from("<IIII", data, off)
    frames.append((sec + usec / 1e6, data[off + 16:off + 16 + incl]))
    off += 16 + incl
want = (b"\xff" * 6 + mac + b"\x80\x35" + b"\x00\x01\x08\x00\x06\x04\x00\x03"
        + mac + b"\0" * 4 + mac + b"\0" * 4).ljust(60, b"\0")
assert len(frames) == 5, len(frames)
for t, f in frames:
    assert f == want, f.hex()
gaps = [round((b[0] - a[0]) * 1000) for a, b in zip(frames, frames[1:])]
print("# gaps between frames (ms):", gaps, "(QEMU schedule: 50 150 250 350)")
# Capture times on the peer: a frame delivered late shortens the gap
# after it (seen: 92 then 119 ms for 50 and 150 under TCG), so no gap has
# a lower bound but order. Each of the sender's sleeps counts from its
# previous send, so the sends span 800 ms at least; only the first
# frame's late delivery shortens that, and 200 ms is far more than seen.
# Late is the emulator's load, not kvmigctl's doing (seen on a busy host:
# 478 ms for 250): the upper bounds only catch a wrong unit or a lost
# timer, as does the span's lower one.
for g, w in zip(gaps, (50, 150, 250, 350)):
    assert 0 <= g <= 2 * w + 500, gaps
assert 600 <= sum(gaps) <= 2 * 800 + 500, gaps
EOF

# Error paths, each with its exit code.
"$ctl" --device /nonexistent/kvmig list >"$tmp/e1" 2>&1
e1=$?
"$ctl" watch 999999999 >"$tmp/e2" 2>&1
e2=$?
"$ctl" monitor attach nosuchif0 >"$tmp/e3" 2>&1
e3=$?
"$ctl" frobnicate >"$tmp/e4" 2>&1
e4=$?
"$ctl" --help >"$tmp/help" 2>&1
e5=$?
show "$tmp/e1" "$tmp/e2" "$tmp/e3" "$tmp/e4"
check "errors: no module 3, no session 4, bad interface 5, bad usage 2" \
	test "$e1 $e2 $e3 $e4 $e5" = "3 4 5 2 0" -a \
	"$(grep -c 'is kvmig.ko loaded' "$tmp/e1")" = 1 -a \
	"$(grep -c 'no session 999999999' "$tmp/e2")" = 1 -a \
	"$(grep -c "no interface 'nosuchif0'" "$tmp/e3")" = 1
# The pre-check of the migration above, as kvmigctl check read it: the
# demo's destination VM logs dirty pages by bitmap, its source by ring,
# which both ends report as warnings; nothing refused it.
prechecked() {
	python3 - "$tmp/check.json" "$main_id" <<'PY' || { show "$tmp/check.txt"; return 1; }
import json, sys
doc = json.load(open(sys.argv[1]))
dest = [s for s in doc if str(s["id"]) == sys.argv[2]]
src = [s for s in doc if s["role"] == "source"]
assert len(dest) == 1 and len(src) == 1, doc
for s in dest + src:
    assert s["status"] == "passed with warnings", s
    names = [f["name"] for f in s["findings"]]
    assert names == ["dirty-ring", "manual-protect"], names
    assert all(f["severity"] == "warning" for f in s["findings"]), s
    ring = s["findings"][0]
    assert (ring["source"], ring["dest"]) == (65536, 0), ring
assert dest[0]["findings"] == src[0]["findings"]
print("# pre-check: both sessions passed with warnings:", names)
PY
	test "$checkrc" = 0
}
check "kvmigctl check: both live sessions' findings, the same, warnings only" \
	prechecked
# A dry run: the pre-check alone, no page sent. Another VM (a different
# identity) is refused at both ends; the same one may go ahead.
dry_run() { # dry_run WANT_RC DEST_UUID: both demos exit WANT_RC
	local want=$1 rc_s rc_d
	in_d "$demo" dest --listen 10.97.0.2:$((port + 2)) --mem 16 \
		--uuid "$2" >"$tmp/dry-d" 2>&1 &
	local pid=$!
	wait_until 300 has "$tmp/dry-d" listening
	in_s "$demo" source --connect 10.97.0.2:$((port + 2)) --mem 16 \
		--uuid 6b766d69-6700-4000-8000-000000000001 --dry-run \
		>"$tmp/dry-s" 2>&1
	rc_s=$?
	reap 120 "the dry run's destination" $pid
	rc_d=$?
	show "$tmp/dry-s" "$tmp/dry-d"
	[ "$rc_s" = "$want" ] && [ "$rc_d" = "$want" ] &&
		! grep -q 'round ' "$tmp/dry-s" &&
		grep -q 'dry run over, no page moved' "$tmp/dry-s"
}
check "kvmig-demo --dry-run: another VM's identity refused at both ends" \
	eval 'dry_run 1 6b766d69-6700-4000-8000-000000000002 &&
	      grep -q "error   uuid" "$tmp/dry-s" &&
	      grep -q "error   uuid" "$tmp/dry-d"'
check "kvmig-demo --dry-run: the same identity may go ahead" \
	eval 'dry_run 0 6b766d69-6700-4000-8000-000000000001 &&
	      grep -q "may go ahead" "$tmp/dry-d"'
"$ctl" check 999999999 >"$tmp/e4" 2>&1
check "kvmigctl check: an unknown session is exit 4" \
	test $? = 4 -a "$(grep -c 'no session 999999999' "$tmp/e4")" = 1
check "kvmigctl --help names every command" \
	test "$(grep -cE '^  (version|list|check|watch|monitor|announce)' "$tmp/help")" -ge 6

# Durations take units (a bare number is ms); a short option means one
# thing in every command (-I, -r and -w are watch's, not announce's). Each
# accepted case must get past parsing to the next error: no session 4, or
# announce's "--timeout goes with --wait-done" usage message.
dur() { # dur WANT_RC GREP ARGS...: kvmigctl ARGS exits WANT_RC, says GREP
	local want=$1 g=$2 rc
	shift 2
	"$ctl" "$@" >"$tmp/dur" 2>&1
	rc=$?
	[ "$rc" = "$want" ] && grep -q -- "$g" "$tmp/dur" && return 0
	echo "# kvmigctl $*: exit $rc, wanted $want and '$g':"
	sed 's/^/#   /' "$tmp/dur"
	return 1
}
durations() {
	dur 4 'no session 999999999' watch --interval 250ms --wait 0.2s 999999999 &&
	dur 4 'no session 999999999' watch --interval 1m --wait 300 999999999 &&
	dur 2 "bad --interval '5x'" watch --interval 5x 999999999 &&
	dur 2 "bad --wait '1.5ms'" watch --wait 1.5ms 999999999 &&
	dur 2 "bad --interval '1e3'" watch --interval 1e3 999999999 &&
	dur 2 "bad --interval '-1'" watch --interval -1 999999999 &&
	dur 2 'go with --wait-done' announce lo --mac $mac --initial 1.5s \
		--max 2s --step 100ms --timeout 1s &&
	dur 2 "bad --timeout '2h'" announce lo --mac $mac --timeout 2h --wait-done
}
short_options() {
	dur 2 'invalid option' announce lo --mac $mac -I 50 &&
	dur 2 'invalid option' announce lo --mac $mac -r 5 &&
	dur 2 'invalid option' announce lo --mac $mac -w
}
check "kvmigctl durations: 250ms, 0.2s, 1m, 300 (ms) taken; 5x, 1.5ms, 1e3, -1, 2h refused" \
	durations
check "kvmigctl announce: no -I, -r or -w (watch's --iface, --role, --wait)" \
	short_options
exit $fail
