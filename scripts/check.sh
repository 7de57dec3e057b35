#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make check: install what is missing, build or fetch the lab kernels
# (cached), build kvmig for each with warnings as errors, then run in the lab
#   - on the debug kernel (KASAN, lockdep, kmemleak): KUnit and the selftests,
#   - on Debian's stock kernel (6.12): the selftests,
#   - on Debian 12's own 6.1 (stock61): the selftests,
# and fail on any failed test or kernel splat. Last line: "N passed, N failed".
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
res=$top/build/results
rm -rf "$res"
mkdir -p "$res" build/lab
t0=$(date +%s)

n=0
exec 3>"$res/host.tap"
echo "TAP version 13" >&3
result() { # result NAME STATUS
	n=$((n + 1))
	if [ "$2" -eq 0 ]; then echo "ok $n $1" >&3; else echo "not ok $n $1" >&3; fi
	echo "check: $([ "$2" -eq 0 ] && echo ok || echo FAILED): $1"
}
finish() {
	echo "1..$n" >&3
	exec 3>&-
	echo
	local counts rc
	counts=$(scripts/tap-count.py "$res"/*.tap "$res"/*/*.tap \
		"$res"/*/*.ktap 2>&1 >/dev/null | tail -1)
	scripts/tap-count.py "$res"/*.tap "$res"/*/*.tap "$res"/*/*.ktap 2>/dev/null
	rc=$?
	read -r p f s <<<"$counts"
	echo "check: wall time $(($(date +%s) - t0)) s"
	echo "${p:-0} passed, ${f:-1} failed, ${s:-0} skipped"
	[ "$rc" -eq 0 ] && [ "${f:-1}" -eq 0 ]
	exit $?
}

scripts/deps.sh || { result "install dependencies" 1; finish; }

scripts/tools-test.sh >"$res/tools.tap" 2>&1
result "splat-check.sh and tap-count.py pass and fail hand-made logs and TAP as they should" $?

scripts/kernel.sh debug >/dev/null
result "debug kernel built or cached" $?
scripts/kernel.sh stock >/dev/null
result "stock kernel fetched or cached" $?
scripts/kernel.sh stock61 >/dev/null
result "stock61 kernel (Debian 12's 6.1) fetched or cached" $?

scripts/build.sh debug
result "build kvmig, selftests, userspace for the debug kernel (-Werror)" $?
scripts/build.sh stock
result "build kvmig, selftests, userspace for the stock kernel (-Werror)" $?
scripts/build.sh stock61
result "build kvmig, selftests, userspace for the stock61 kernel (-Werror)" $?

scripts/qemu.sh >/dev/null
result "Debian's QEMU with userspace/qemu/patches (x-kvmig) built or cached" $?

scripts/checkpatch.sh
result "checkpatch: module/ and uapi/ clean" $?

scripts/sparse.sh
result "sparse (C=2, debug kernel): module/ clean" $?

make -s -C fuzz run FUZZ_SECONDS="${KVMIG_FUZZ_SECONDS:-30}" >"$res/fuzz.txt" 2>&1
rc=$?
sed 's/^/  /' "$res/fuzz.txt"
result "libFuzzer on the wire decoder: $(sed -n 's/^Done \([0-9]*\) runs.*/\1 executions/p' "$res/fuzz.txt"), no crash" $rc

lab() { # lab NAME LIMIT: boot that kernel, run lab-tests.sh, check the console
	local log=$top/build/lab/$1.log t0=$(date +%s)
	echo "check: booting the $1 kernel in the lab (console: $log)"
	scripts/lab-run.sh -q -k "$1" -l "$log" -t "$2" -- \
		scripts/lab-tests.sh "$res/$1" "$top/build/$1/module" |
		grep -E '^(lab-tests: (ok|FAILED)|(not )?ok |# selftests: kvmig: [^ ]+: [0-9]+ s$)' | sed 's/^/  /'
	local rc=${PIPESTATUS[0]}
	echo "check: the $1 lab ran $(($(date +%s) - t0)) s (limit $2 s)"
	result "lab run on the $1 kernel completed" $rc
	scripts/splat-check.sh "$log"
	result "no kernel splat in the $1 kernel's console" $?
}
# Limits for a hung guest, not for speed: each selftest program has its own
# (selftests/settings), and under TCG the KASAN+lockdep kernel runs the same
# tests about twice as slowly as the stock one. The 6.1 run is the stock
# run on the other LTS kernel: the same tests, the same limit.
lab debug 2700
lab stock 1800
lab stock61 1800
finish
