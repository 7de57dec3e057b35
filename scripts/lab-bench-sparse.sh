#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# lab-bench-sparse.sh OUTDIR [MiB] [TOUCHED-MiB] [SAMPLES]: inside the lab
# guest (kvmig.ko loaded), a sparse guest: the demo VMM with MiB of RAM
# (default 16384) of which its guest writes only the first TOUCHED-MiB
# (default 1024), migrated over loopback with round 0 walking the page
# tables (kvmig.holes=1, the default) and without (holes=0: every page
# pinned and read, as before the walk), alternately, SAMPLES times each
# (default 2). Per run: round 0's time, the total, system-wide CPU seconds
# (every CPU's /proc/stat busy time, softirq included) and what each end
# has populated at the end; the demos' reports go to OUTDIR/sparse-*.txt.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$(cd "$1" && pwd) mem=${2:-16384} touch=${3:-1024} samples=${4:-2}
demo=$top/userspace/kvmig-demo param=/sys/module/kvmig/parameters/holes
port=7400

busy() { # CPU seconds all CPUs were busy (not idle or iowait)
	awk '$1 == "cpu" { print ($2 + $3 + $4 + $7 + $8) / 100 }' /proc/stat
}

run() { # run NAME HOLES
	local name=$1 c0 c1 s
	echo "$2" >"$param" || { echo "lab-bench-sparse: no $param" >&2; return 1; }
	port=$((port + 1))
	"$demo" dest --listen 127.0.0.1:$port --mem "$mem" \
		>"$out/sparse-$name-dest.txt" 2>&1 &
	sleep 0.5
	c0=$(busy)
	"$demo" source --connect 127.0.0.1:$port --mem "$mem" --touch "$touch" \
		--rate 1000 >"$out/sparse-$name.txt" 2>&1
	s=$?
	wait $!
	c1=$(busy)
	printf 'sparse %-8s exit %d  round 0 %7.2f s  total %7.2f s  cpu %7.2f s  source %s  dest %s\n' \
		"$name" "$s" \
		"$(awk '/^  round 0 /{print $3}' "$out/sparse-$name.txt")" \
		"$(awk '/^  total time /{print $3}' "$out/sparse-$name.txt")" \
		"$(echo "$c1 $c0" | awk '{print $1 - $2}')" \
		"$(sed -n 's/^source: guest memory populated: \([0-9]*\) of [0-9]* pages, page tables \([0-9]*\) kB/\1 pages, PT \2 kB/p' "$out/sparse-$name.txt")" \
		"$(sed -n 's/^dest: guest memory populated: \([0-9]*\) of [0-9]* pages, page tables \([0-9]*\) kB/\1 pages, PT \2 kB/p' "$out/sparse-$name-dest.txt")"
}

echo "# $(date -u +%FT%TZ) kernel $(uname -r), $(nproc) vCPUs, QEMU TCG with nested SVM"
echo "# command: scripts/lab-bench-sparse.sh OUT $mem $touch $samples: $mem MiB guest, $touch MiB written, loopback"
for i in $(seq "$samples"); do
	run walk-$i 1
	run nowalk-$i 0
done
echo 1 >"$param"
