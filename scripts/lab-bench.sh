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
# AES-NI and PCLMULQDQ (TCG emulates both) go first where the CPU has
# them, as a host's kernel would load them: without them gcm(aes) is the
# kernel's generic C code, which no host with AES-NI uses.
if [ -n "${KVMIG_MODROOT:-}" ] && grep -qw aes /proc/cpuinfo &&
	grep -qw pclmulqdq /proc/cpuinfo; then
	for m in aesni_intel ghash_clmulni_intel; do
		scripts/lab-modprobe $m || echo "lab-bench: no $m" >&2
	done
fi
if ! grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp; then
	for m in tls gcm ctr ghash_generic; do scripts/lab-modprobe $m; done
fi
# The RDMA CM, which kvmig.ko needs, and soft-RoCE: modules on the stock
# kernels, built into the debug one. For bench-rdma.txt also the dummy
# device rxe goes on, and ib_write_bw's way in (ib_uverbs, rdma_ucm):
# without them that file says what is missing, and the rest runs.
if [ -n "${KVMIG_MODROOT:-}" ]; then
	for m in rdma_cm crc32_generic rdma_rxe; do scripts/lab-modprobe $m; done
	for m in dummy ib_uverbs rdma_ucm; do
		scripts/lab-modprobe $m || echo "lab-bench: no $m" >&2
	done
fi
insmod "$mod/kvmig.ko"
# KVMIG_BENCH_ONLY="SECTION...": only these of harvest migrate stall
# streams ktls ceiling rdma qemu throttle sparse (default: all); the
# transports' table and the plots are made of whatever ran.
want() { [ -z "${KVMIG_BENCH_ONLY:-}" ] || [[ " $KVMIG_BENCH_ONLY " == *" $1 "* ]]; }
if want harvest; then
{
	echo "# $(date -u +%FT%TZ) kernel $(uname -r), $(nproc) vCPUs, QEMU TCG with nested SVM"
	echo "# command: make bench (bench/harvest_bench $*)"
	bench/harvest_bench "$@"
} | tee "$out/bench-harvest.txt"
fi
if want migrate; then
{
	echo "# $(date -u +%FT%TZ) kernel $(uname -r), $(nproc) vCPUs, QEMU TCG with nested SVM"
	echo "# command: make bench (bench/migrate_bench ${MIGRATE_BENCH_ARGS:-})"
	# shellcheck disable=SC2086 # words
	bench/migrate_bench ${MIGRATE_BENCH_ARGS:-}
} | tee "$out/bench-migrate.txt"
fi
if want stall; then
{
	echo "# $(date -u +%FT%TZ) kernel $(uname -r), $(nproc) vCPUs, QEMU TCG with nested SVM"
	echo "# command: make bench (bench/migrate_bench --ring-stall)"
	bench/migrate_bench --ring-stall
} | tee "$out/bench-stall.txt"
fi
# kvmig over one TCP connection and over four (KVMIG_XFER_SETUP_STREAMS),
# in turn, on bench-migrate.txt's guest (MIGRATE_BENCH_ARGS) at two of its
# rates, paced and as fast as the guest can, without the user migrator:
# 2 rates x 2 paths x 3 runs by default, against bench-migrate.txt's 30.
streams_args="${MIGRATE_BENCH_ARGS:+$MIGRATE_BENCH_ARGS }--kvmig-only -s 1,4 -r 20000,0"
if want streams; then
{
	echo "# $(date -u +%FT%TZ) kernel $(uname -r), $(nproc) vCPUs, QEMU TCG with nested SVM"
	echo "# command: make bench (bench/migrate_bench $streams_args)"
	# shellcheck disable=SC2086 # words
	bench/migrate_bench $streams_args
} | tee "$out/bench-streams.txt"
fi
# kvmig over plain TCP and over kTLS (random keys at both ends, no
# handshake), side by side, at the same two rates: what encrypting and
# decrypting every page costs. On a 32 MiB guest, 2 runs a point: under
# TCG, software AES-GCM on bench-streams.txt's 128 MiB guest gave no row
# within 1400 s (3 runs).
ktls_args="--kvmig-only --ktls -n 2 -r 20000,0 32"
if want ktls; then
{
	echo "# $(date -u +%FT%TZ) kernel $(uname -r), $(nproc) vCPUs, QEMU TCG with nested SVM"
	echo "# command: make bench (bench/migrate_bench $ktls_args)"
	# shellcheck disable=SC2086 # words
	bench/migrate_bench $ktls_args
	# Which AES-GCM kTLS used: the gcm(aes) drivers, by priority.
	awk '/^name/ { n = $3 } /^driver/ { d = $3 } /^priority/ {
		if (n == "gcm(aes)") print "# gcm(aes) driver " d ", priority " $3 }' \
		/proc/crypto
} | tee "$out/bench-ktls.txt"
fi
# iperf3 ADDR P: plain TCP at ADDR over P connections for 5 s, one line,
# with the CPU share iperf3 itself reports at both ends.
iperf3_at() {
	iperf3 -s -1 -D -p 5299 -B "$1"
	sleep 0.5
	iperf3 -c "$1" -p 5299 -t 5 -P "$2" -J | python3 -c '
import json, sys
p = sys.argv[1]
e = json.load(sys.stdin)["end"]
cpu = e["cpu_utilization_percent"]
print("iperf3 %s connection(s): %.2f Gbit/s received, CPU %.0f %% sender, %.0f %% receiver"
      % (p, e["sum_received"]["bits_per_second"] / 1e9, cpu["host_total"],
         cpu["remote_total"]))' "$2"
}
# The link's own ceiling, that every kvmig path above is a fraction of:
# iperf3 over the same loopback, plain TCP, one connection and four, 5 s
# each, with the CPU share iperf3 itself reports at both ends.
if want ceiling; then
{
	echo "# $(date -u +%FT%TZ) kernel $(uname -r), $(nproc) vCPUs, QEMU TCG with nested SVM"
	echo "# command: make bench (iperf3 -c 127.0.0.1 -t 5 -P 1, then -P 4)"
	for p in 1 4; do
		iperf3_at 127.0.0.1 $p
	done
} | tee "$out/bench-ceiling.txt"
fi
# kvmig over one TCP connection and over RDMA (KVMIG_XFER_SETUP_RDMA), in
# turn, at one address on soft-RoCE, as kvmig_rdma_test.sh sets it up: a
# dummy device (MTU 9000, so that rxe's RDMA MTU is 4096: a page a packet)
# with an rxe device on it, in the initial network namespace, where alone
# rxe works before Linux 7.1; both ends connect at that address and the
# RDMA connection loops through the one rxe device. The same guest and
# rates as bench-streams.txt. Then that address's ceilings: RDMA WRITE
# (perftest's ib_write_bw through the RDMA CM, one queue pair, 5 s, a page
# and a 64-page run a message, KVMIG_WIRE_MAX_RUN) and TCP (iperf3, one
# connection).
if want rdma; then
rdma_if=kvmigbd0 rdma_dev=kvmigbrxe0 rdma_addr=10.97.1.1
rdma_down() {
	rdma link delete $rdma_dev 2>/dev/null || true
	ip link del $rdma_if 2>/dev/null || true
}
trap rdma_down EXIT
rdma_up=
if ip link add $rdma_if mtu 9000 type dummy &&
	ip addr add $rdma_addr/24 dev $rdma_if && ip link set $rdma_if up &&
	rdma link add $rdma_dev type rxe netdev $rdma_if; then
	rdma_up=1
fi
# ib_write_bw SIZE: the client's BW average in Gbit/s, or its output.
ib_write_at() {
	local args=(-d "$rdma_dev" -R -F --report_gbits -s "$1" -D 5 -p 18515)
	local srv res bw line
	timeout 60 ib_write_bw "${args[@]}" >/dev/null 2>&1 &
	srv=$!
	sleep 2
	res=$(timeout 60 ib_write_bw "${args[@]}" "$rdma_addr" 2>&1) || true
	wait $srv || true
	# The row of results: message size, iterations, peak, average, rate.
	if bw=$(awk '$1 ~ /^[0-9]+$/ && NF >= 4 { print $4; f = 1; exit }
		     END { exit !f }' <<<"$res"); then
		echo "ib_write_bw $1-byte RDMA WRITEs, 1 queue pair: $bw Gbit/s average"
	else
		echo "ib_write_bw $1-byte RDMA WRITEs failed:"
		while IFS= read -r line; do echo "#   $line"; done <<<"$res"
	fi
}
rdma_args="${MIGRATE_BENCH_ARGS:+$MIGRATE_BENCH_ARGS }--kvmig-only --rdma --addr $rdma_addr -r 20000,0"
{
	echo "# $(date -u +%FT%TZ) kernel $(uname -r), $(nproc) vCPUs, QEMU TCG with nested SVM"
	if [ -z "$rdma_up" ]; then
		echo "no soft-RoCE device (dummy $rdma_if with rxe $rdma_dev at $rdma_addr could not be made): no RDMA bench"
	else
		rdma link show | grep -w "$rdma_if" | sed 's/^/# /'
		echo "# command: make bench (bench/migrate_bench $rdma_args)"
		# shellcheck disable=SC2086 # words
		bench/migrate_bench $rdma_args
		echo "# ceilings at $rdma_addr: ib_write_bw -d $rdma_dev -R -F --report_gbits -s SIZE -D 5 $rdma_addr; iperf3 -c $rdma_addr -t 5 -P 1"
		if command -v ib_write_bw >/dev/null; then
			for size in 4096 262144; do
				ib_write_at $size
			done
		else
			echo "ib_write_bw not found (perftest, scripts/deps.sh bench): no RDMA ceiling"
		fi
		iperf3_at $rdma_addr 1
	fi
} | tee "$out/bench-rdma.txt"
rdma_down
trap - EXIT
fi
# The transports in one table, from the files above, each against its
# ceiling.
scripts/bench-transports.py "$out" | tee "$out/bench-transports.txt"
# QEMU's migration paths (pre-copy, multifd, multifd with zero-copy-send,
# x-kvmig) side by side, at each of KVMIG_BENCH_RATES MiB/s (the guest's
# write rate; KVMIG_BENCH_RATE alone: that one): qemu-rRATE/bench-qemu.txt,
# .csv, .svg.
rmmod kvmig
if want qemu; then
	for rate in ${KVMIG_BENCH_RATES:-${KVMIG_BENCH_RATE:-8 16 32}}; do
		KVMIG_BENCH_RATE=$rate scripts/lab-bench-qemu.sh "$mod" "$out/qemu-r$rate"
	done
fi
# The throttle on a guest faster than the link: the demo VMM, each policy.
insmod "$mod/kvmig.ko"
if want throttle; then
	scripts/lab-bench-throttle.sh "$out" | tee "$out/bench-throttle.txt"
fi
# Round 0 of a sparse guest (16 GiB, 1 GiB written), with and without the
# walk that passes over never-populated memory.
if want sparse; then
	scripts/lab-bench-sparse.sh "$out" | tee "$out/bench-sparse.txt"
fi
rmmod kvmig
# The PNGs: harvest cost, kvmig's per-round timeline, time and downtime
# against the dirty rate per path.
scripts/bench-plots.py "$out"
