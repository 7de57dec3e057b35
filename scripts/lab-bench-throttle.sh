#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# lab-bench-throttle.sh OUTDIR [MiB]: inside the lab guest (kvmig.ko
# loaded), the demo VMM's guest writing as fast as it can, several times
# what the link carries (--bandwidth 20 MB/s; a MiB-MiB guest, default 32;
# up to 30 rounds, room for QEMU's auto-converge steps of two rounds each)
# migrated through veth with each throttle: off, auto (QEMU's auto-converge
# defaults) and rate=2000 pages/s, in ring mode, and auto in bitmap mode
# (the demo applies the share). For each, kvmigctl watch --json into
# OUTDIR/watch-throttle-NAME.jsonl (scripts/bench-plots.py draws them) and
# the demo's own report into OUTDIR/throttle-NAME.txt; a summary line per
# run on stdout.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$(cd "$1" && pwd) mem=${2:-32}
cd "$top/selftests" || exit 1
. ./lib.sh
demo=$top/userspace/kvmig-demo ctl=$top/userspace/kvmigctl
ns_s=kvmigt-src-$$ ns_d=kvmigt-dst-$$ port=7301
trap cleanup_ns EXIT
[ -d /sys/module/veth ] || "$top/scripts/lab-modprobe" veth
veth_ns $ns_s veth-ts $ns_d veth-td 10.99.0.1/24 10.99.0.2/24 ||
	{ echo "lab-bench-throttle: cannot make the namespaces and veth" >&2; exit 1; }

run() { # run NAME DEMO-ARGS...
	local name=$1 w d s
	shift
	port=$((port + 1))
	in_ns $ns_d "$demo" dest --listen 10.99.0.2:$port --mem "$mem" \
		>"$out/throttle-$name-dest.txt" 2>&1 &
	d=$!
	sleep 0.5
	"$ctl" --json watch --role source --interval 200ms --wait 60s \
		>"$out/watch-throttle-$name.jsonl" 2>&1 &
	w=$!
	in_ns $ns_s "$demo" source --connect 10.99.0.2:$port --mem "$mem" \
		--rate 0 --bandwidth 20 --max-rounds 30 "$@" \
		>"$out/throttle-$name.txt" 2>&1
	s=$?
	wait $d
	wait $w
	echo "throttle $name ($*): source exit $s; $(grep -E 'downtime|rounds|slept' "$out/throttle-$name.txt" | tr '\n' ';' | tr -s ' ')"
}

run off --throttle off
run auto --throttle auto
run rate --throttle rate=2000
run bitmap-auto --dirty bitmap --throttle auto
