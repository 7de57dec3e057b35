#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# lab-bench.sh MODDIR OUTDIR [ARGS]: inside the lab guest, run the benchmarks.
set -euo pipefail
mod=$1 out=$2
shift 2
scripts/lab-modprobe ccp
scripts/lab-modprobe kvm_amd
insmod "$mod/kvmig.ko"
{
	echo "# $(date -u +%FT%TZ) kernel $(uname -r), $(nproc) vCPUs, QEMU TCG with nested SVM"
	echo "# command: make bench (bench/harvest_bench $*)"
	bench/harvest_bench "$@"
} | tee "$out/bench-harvest.txt"
{
	echo "# $(date -u +%FT%TZ) kernel $(uname -r), $(nproc) vCPUs, QEMU TCG with nested SVM"
	echo "# command: make bench (bench/migrate_bench ${MIGRATE_BENCH_ARGS:-})"
	# shellcheck disable=SC2086 # words
	bench/migrate_bench ${MIGRATE_BENCH_ARGS:-}
} | tee "$out/bench-migrate.txt"
{
	echo "# $(date -u +%FT%TZ) kernel $(uname -r), $(nproc) vCPUs, QEMU TCG with nested SVM"
	echo "# command: make bench (bench/migrate_bench --ring-stall)"
	bench/migrate_bench --ring-stall
} | tee "$out/bench-stall.txt"
# QEMU's migration paths (pre-copy, multifd, multifd with zero-copy-send,
# x-kvmig) side by side, at each of KVMIG_BENCH_RATES MiB/s (the guest's
# write rate; KVMIG_BENCH_RATE alone: that one): qemu-rRATE/bench-qemu.txt,
# .csv, .svg.
rmmod kvmig
for rate in ${KVMIG_BENCH_RATES:-${KVMIG_BENCH_RATE:-8 16 32}}; do
	KVMIG_BENCH_RATE=$rate scripts/lab-bench-qemu.sh "$mod" "$out/qemu-r$rate"
done
# The throttle on a guest faster than the link: the demo VMM, each policy.
insmod "$mod/kvmig.ko"
scripts/lab-bench-throttle.sh "$out" | tee "$out/bench-throttle.txt"
# Round 0 of a sparse guest (16 GiB, 1 GiB written), with and without the
# walk that passes over never-populated memory.
scripts/lab-bench-sparse.sh "$out" | tee "$out/bench-sparse.txt"
rmmod kvmig
# The PNGs: harvest cost, kvmig's per-round timeline, time and downtime
# against the dirty rate per path.
scripts/bench-plots.py "$out"
