#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench: build for Debian's stock kernel (what hypervisors run; the
# debug kernel's KASAN and lockdep would swamp the figures), boot it in the
# lab and run the benchmarks there, kvmig and the baseline in one run.
# Results: build/results/bench-*.txt and .png, qemu-r*/bench-qemu.txt,
# .csv and .svg. 4 GiB: the sparse guest's 1 GiB is populated on both ends.
# BENCH_ARGS: harvest_bench's slot MiB and repetitions; MIGRATE_BENCH_ARGS:
# migrate_bench's (guest MiB); KVMIG_BENCH_*: scripts/lab-bench-qemu.sh's
# settings. The lab passes no environment: these go in with the command.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh bench
scripts/kernel.sh stock >/dev/null
scripts/build.sh stock
mkdir -p build/results build/lab
# The kvmig QEMU for bench-qemu (scripts/lab-bench-qemu.sh), built or
# reused by scripts/qemu.sh: the lab passes no environment, so it goes in
# with the command; absent, that path is skipped with the reason.
scripts/qemu.sh >/dev/null
kq=${KVMIG_QEMU_KVMIG:-$top/build/qemu/qemu-system-x86_64}
fwd=(KVMIG_QEMU_KVMIG="$kq" MIGRATE_BENCH_ARGS="${MIGRATE_BENCH_ARGS:-}")
for v in ${!KVMIG_BENCH_@}; do fwd+=("$v=${!v}"); done
# shellcheck disable=SC2086 # BENCH_ARGS: words
scripts/lab-run.sh -q -k stock -c 2 -m 4G -l build/lab/bench.log -t 3000 -- \
	env "${fwd[@]}" \
	scripts/lab-bench.sh build/stock/module build/results ${BENCH_ARGS:-}
