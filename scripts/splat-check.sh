#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# splat-check.sh CONSOLE_LOG: print every kernel splat in the log (KASAN,
# UBSAN, lockdep, BUG, WARN, kmemleak, oops, hung task, soft lockup, RCU
# stall) and exit 1 if there is one.
#
# The console interleaves the kernel's messages with the tests' own output,
# and a test may well print "WARNING:" or "Call Trace:" itself. Only kernel
# lines count: all lab kernels print the printk timestamp ("[   12.345678] ",
# CONFIG_PRINTK_TIME), optionally followed by the caller ("[    T42] ",
# CONFIG_PRINTK_CALLER), and every pattern is anchored on it. A kernel line
# glued to the end of a test's unfinished line escapes the anchor, but every
# splat prints further timestamped lines ("Call Trace:" at the least) that
# do not.
ts='^\[ *[0-9]+\.[0-9]+\](\[ *[CT][0-9]+\])? .*'
pat='BUG:|WARNING:|KASAN:|UBSAN:|Oops|general protection fault|Kernel panic'
pat+='|possible circular locking|possible recursive locking'
pat+='|inconsistent lock state|suspicious RCU usage|DEBUG_LOCKS_WARN_ON'
pat+='|turning off the locking correctness validator|unreferenced object'
pat+='|suspected memory leak|blocked for more than|soft lockup|hard LOCKUP'
pat+='|stalls? on CPU|Call Trace:'
if [ ! -s "$1" ]; then
	echo "splat-check: no console log at $1" >&2
	exit 1
fi
if grep -naE "$ts($pat)" "$1"; then
	echo "splat-check: kernel splat in $1" >&2
	exit 1
fi
exit 0
