#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench: build for Debian's stock kernel (what hypervisors run; the
# debug kernel's KASAN and lockdep would swamp the figures), boot it in the
# lab and run the benchmarks there, kvmig and the baseline in one run.
# Results: build/results/bench-*.txt. BENCH_ARGS: slot MiB, repetitions.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh
scripts/kernel.sh stock >/dev/null
scripts/build.sh stock
mkdir -p build/results build/lab
scripts/lab-run.sh -q -k stock -c 2 -m 3G -l build/lab/bench.log -t 3000 -- \
	scripts/lab-bench.sh build/stock/module build/results ${BENCH_ARGS:-}
