#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench: build for Debian's stock kernel (what hypervisors run; the
# debug kernel's KASAN and lockdep would swamp the figures), boot it in the
# lab and run the benchmarks there, kvmig and the baseline in one run.
# Results: build/results/bench-*.txt (bench-qemu also .csv and .svg). BENCH_ARGS: slot MiB, repetitions.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh
scripts/kernel.sh stock >/dev/null
scripts/build.sh stock
mkdir -p build/results build/lab
# The kvmig QEMU for bench-qemu (scripts/lab-bench-qemu.sh), built or
# reused by scripts/qemu.sh: the lab passes no environment, so it goes in
# with the command; absent, that path is skipped with the reason.
scripts/qemu.sh >/dev/null
kq=${KVMIG_QEMU_KVMIG:-$top/build/qemu/qemu-system-x86_64}
scripts/lab-run.sh -q -k stock -c 2 -m 3G -l build/lab/bench.log -t 3000 -- \
	env KVMIG_QEMU_KVMIG="$kq" \
	scripts/lab-bench.sh build/stock/module build/results ${BENCH_ARGS:-}
