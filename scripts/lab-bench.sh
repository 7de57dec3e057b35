#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# lab-bench.sh MODDIR OUTDIR [ARGS]: inside the lab guest, run the benchmarks.
set -euo pipefail
mod=$1 out=$2
shift 2
scripts/lab-modprobe ccp
scripts/lab-modprobe kvm_amd
# kTLS, for bench-ktls.txt: a module on the stock kernels. Built into the
# debug kernel, where it has no /sys/module/tls for lab-modprobe to find (no
# parameters): the kernel's list of TCP upper layer protocols names it.
# gcm(aes)'s pieces go in first: the kernel's own modprobe would not find
# the lab's modules.
if ! grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp; then
	for m in tls gcm ctr ghash_generic; do scripts/lab-modprobe $m; done
fi
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
# kvmig over one TCP connection and over four (KVMIG_XFER_SETUP_STREAMS),
# in turn, on bench-migrate.txt's guest (MIGRATE_BENCH_ARGS) at two of its
# rates, paced and as fast as the guest can, without the user migrator:
# 2 rates x 2 paths x 3 runs by default, against bench-migrate.txt's 30.
streams_args="${MIGRATE_BENCH_ARGS:+$MIGRATE_BENCH_ARGS }--kvmig-only -s 1,4 -r 20000,0"
{
	echo "# $(date -u +%FT%TZ) kernel $(uname -r), $(nproc) vCPUs, QEMU TCG with nested SVM"
	echo "# command: make bench (bench/migrate_bench $streams_args)"
	# shellcheck disable=SC2086 # words
	bench/migrate_bench $streams_args
} | tee "$out/bench-streams.txt"
# kvmig over plain TCP and over kTLS (random keys at both ends, no
# handshake), side by side, on the same guest at the same two rates: what
# encrypting and decrypting every page costs.
ktls_args="${MIGRATE_BENCH_ARGS:+$MIGRATE_BENCH_ARGS }--kvmig-only --ktls -r 20000,0"
{
	echo "# $(date -u +%FT%TZ) kernel $(uname -r), $(nproc) vCPUs, QEMU TCG with nested SVM"
	echo "# command: make bench (bench/migrate_bench $ktls_args)"
	# shellcheck disable=SC2086 # words
	bench/migrate_bench $ktls_args
} | tee "$out/bench-ktls.txt"
# The link's own ceiling, that every kvmig path above is a fraction of:
# iperf3 over the same loopback, plain TCP, one connection and four, 5 s
# each, with the CPU share iperf3 itself reports at both ends.
{
	echo "# $(date -u +%FT%TZ) kernel $(uname -r), $(nproc) vCPUs, QEMU TCG with nested SVM"
	echo "# command: make bench (iperf3 -c 127.0.0.1 -t 5 -P 1, then -P 4)"
	for p in 1 4; do
		iperf3 -s -1 -D -p 5299 -B 127.0.0.1
		sleep 0.5
		iperf3 -c 127.0.0.1 -p 5299 -t 5 -P $p -J | python3 -c '
import json, sys
p = sys.argv[1]
e = json.load(sys.stdin)["end"]
cpu = e["cpu_utilization_percent"]
print("iperf3 %s connection(s): %.2f Gbit/s received, CPU %.0f %% sender, %.0f %% receiver"
      % (p, e["sum_received"]["bits_per_second"] / 1e9, cpu["host_total"],
         cpu["remote_total"]))' $p
	done
} | tee "$out/bench-ceiling.txt"
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
