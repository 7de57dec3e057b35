#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# splat-check.sh CONSOLE_LOG: print every kernel splat in the log (KASAN,
# lockdep, BUG, WARN, kmemleak, oops, hung task) and exit 1 if there is one.
pat='BUG:|WARNING:|KASAN:|UBSAN:|Oops|general protection fault|Kernel panic'
pat+='|possible circular locking|possible recursive locking'
pat+='|inconsistent lock state|suspicious RCU usage|DEBUG_LOCKS_WARN_ON'
pat+='|turning off the locking correctness validator|unreferenced object'
pat+='|suspected memory leak|blocked for more than|Call Trace:'
if [ ! -s "$1" ]; then
	echo "splat-check: no console log at $1" >&2
	exit 1
fi
if grep -nE "$pat" "$1"; then
	echo "splat-check: kernel splat in $1" >&2
	exit 1
fi
exit 0
