#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench [KERNEL=stock|stock61], bench.sh [stock|stock61]: build for one
# of Debian's kernels (what hypervisors run; the debug kernel's KASAN and
# lockdep would swamp the figures): stock, the 6.12 (default), or stock61,
# Debian 12's own 6.1; boot it in the lab and run the benchmarks there, kvmig
# and the baseline in one run. Results: build/results/bench-*.txt and .png,
# qemu-r*/bench-qemu.txt, .csv and .svg, whichever kernel ran them (each
# .txt names it in its first line: a run on the other kernel replaces them).
# 4 GiB: the sparse guest's 1 GiB is populated on both ends.
# BENCH_ARGS: harvest_bench's slot MiB and repetitions; MIGRATE_BENCH_ARGS:
# migrate_bench's (guest MiB); KVMIG_BENCH_*: scripts/lab-bench-qemu.sh's
# settings, and KVMIG_BENCH_ONLY: lab-bench.sh's sections to run. The lab passes no environment: these go in with the command.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
kernel=${1:-stock}
case $kernel in
stock | stock61) ;;
*)
	echo "bench: KERNEL must be stock (6.12) or stock61 (6.1), not '$kernel'" >&2
	exit 2
	;;
esac
scripts/deps.sh bench
scripts/kernel.sh "$kernel" >/dev/null
scripts/build.sh "$kernel"
mkdir -p build/results build/lab
# The kvmig QEMU for bench-qemu (scripts/lab-bench-qemu.sh), built or
# reused by scripts/qemu.sh: the lab passes no environment, so it goes in
# with the command; absent, that path is skipped with the reason.
scripts/qemu.sh >/dev/null
kq=${KVMIG_QEMU_KVMIG:-$top/build/qemu/qemu-system-x86_64}
fwd=(KVMIG_QEMU_KVMIG="$kq" MIGRATE_BENCH_ARGS="${MIGRATE_BENCH_ARGS:-}")
for v in ${!KVMIG_BENCH_@}; do fwd+=("$v=${!v}"); done
# shellcheck disable=SC2086 # BENCH_ARGS: words
scripts/lab-run.sh -q -k "$kernel" -c 2 -m 4G -l build/lab/bench.log -t 3000 -- \
	env "${fwd[@]}" \
	scripts/lab-bench.sh "build/$kernel/module" build/results ${BENCH_ARGS:-}
