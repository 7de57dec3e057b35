#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run each test program and print one TAP stream, nesting each program's own
# TAP output as kselftest's runner does. Loads ../module/kvmig.ko first if
# /dev/kvmig is missing and the module has been built (and unloads it after).
#
# As kselftest's runner does, each program gets the timeout that ./settings
# gives (timeout=SECONDS; KVMIG_TEST_TIMEOUT overrides it, 0 means none): a
# program that hangs is killed with its children and fails, and the programs
# after it still run.
# Each program's wall time is printed after it, for the slow debug kernel.
# KVMIG_SKIP_TESTS="prog ..." reports those programs as skipped, with why
# (KVMIG_SKIP_WHY), without running them.
cd "$(dirname "$0")" || exit 1

limit=$(sed -n 's/^timeout=\([0-9]*\)$/\1/p' settings 2>/dev/null)
limit=${KVMIG_TEST_TIMEOUT:-${limit:-45}}

loaded=
# kvmig.ko needs the RDMA CM where the kernel has it as modules.
[ -e /dev/kvmig ] || modprobe -q rdma_cm 2>/dev/null
if [ ! -e /dev/kvmig ] && [ -f ../module/kvmig.ko ] &&
	insmod ../module/kvmig.ko 2>/dev/null; then
	loaded=1
fi

echo "TAP version 13"
echo "1..$#"
n=0
fail=0
for t in "$@"; do
	n=$((n + 1))
	echo "# selftests: kvmig: $t"
	case " ${KVMIG_SKIP_TESTS:-} " in
	*" $t "*)
		echo "ok $n selftests: kvmig: $t # SKIP ${KVMIG_SKIP_WHY:-in KVMIG_SKIP_TESTS}"
		continue ;;
	esac
	t0=$(date +%s)
	# Unbuffered: what a program printed is in the log even if the lab
	# run is cut short while it runs.
	timeout -k 10 "$limit" ./"$t" 2>&1 | sed -u 's/^/# /'
	rc=${PIPESTATUS[0]}
	echo "# selftests: kvmig: $t: $(($(date +%s) - t0)) s"
	case $rc in
	0) echo "ok $n selftests: kvmig: $t" ;;
	4) echo "ok $n selftests: kvmig: $t # SKIP" ;;
	124 | 137)
		echo "not ok $n selftests: kvmig: $t # TIMEOUT $limit seconds"
		fail=1 ;;
	*) echo "not ok $n selftests: kvmig: $t # exit=$rc"; fail=1 ;;
	esac
done

[ -n "$loaded" ] && rmmod kvmig
exit $fail
