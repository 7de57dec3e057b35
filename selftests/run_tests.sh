#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run each test program and print one TAP stream, nesting each program's own
# TAP output as kselftest's runner does. Loads ../module/kvmig.ko first if
# /dev/kvmig is missing and the module has been built (and unloads it after).
cd "$(dirname "$0")" || exit 1

loaded=
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
	./"$t" 2>&1 | sed 's/^/# /'
	rc=${PIPESTATUS[0]}
	case $rc in
	0) echo "ok $n selftests: kvmig: $t" ;;
	4) echo "ok $n selftests: kvmig: $t # SKIP" ;;
	*) echo "not ok $n selftests: kvmig: $t # exit=$rc"; fail=1 ;;
	esac
done

[ -n "$loaded" ] && rmmod kvmig
exit $fail
