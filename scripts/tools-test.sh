#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# tools-test.sh: the test tools tested on hand-made input, host-side (make
# check runs it first). splat-check.sh must pass a clean console and a test
# that prints "WARNING:" itself, and fail each kind of kernel splat;
# tap-count.py must pass complete streams and fail short or planless ones,
# naming them; the count guest must follow its pace knob; QEMU's copy of
# uapi/kvmig.h must not drift. TAP output; exit 1 if any case fails.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

n=0 fail=0
# expect NAME WANT_RC GREP_FOR CMD...: CMD exits WANT_RC and its output
# (stdout and stderr) contains GREP_FOR (empty: anything).
expect() {
	local name=$1 want=$2 grep_for=$3 rc
	shift 3
	n=$((n + 1))
	"$@" >"$tmp/out" 2>&1
	rc=$?
	if [ "$rc" = "$want" ] && { [ -z "$grep_for" ] ||
		grep -qF -- "$grep_for" "$tmp/out"; }; then
		echo "ok $n $name"
	else
		echo "not ok $n $name"
		echo "# exit $rc, wanted $want and \"$grep_for\"; output:"
		sed 's/^/#   /' "$tmp/out"
		fail=1
	fi
}
splat() { "$top/scripts/splat-check.sh" "$@"; }
tapc() { "$top/scripts/tap-count.py" "$@"; }

echo "TAP version 13"

# A console log: the kernel's boot lines, the tests' own output (which
# prints "WARNING:" and "Call Trace:"), the kernel's lines again.
cat >"$tmp/clean.log" <<'EOF'
[    0.000000] Linux version 6.12.0 (root@lab) #1 SMP PREEMPT_DYNAMIC
[    0.412345] kvmig: loaded, API version 2
lab-tests: + make -s -C selftests run_tests
# # WARNING: bpftrace left out, the test says so itself
# # Call Trace: is a line a test may print too
WARNING: a test's own line, no timestamp
BUG: not from the kernel either
[   12.345678] kvm_amd: Nested Paging enabled
[   13.000001] reboot: Restarting system
EOF
expect "splat-check: a clean console passes" 0 "" splat "$tmp/clean.log"

splat_case() { # splat_case NAME LINE: the clean log plus LINE fails
	{ cat "$tmp/clean.log"; printf '%s\n' "$2"; } >"$tmp/splat.log"
	expect "splat-check: $1 fails" 1 "$2" splat "$tmp/splat.log"
}
splat_case "a KASAN report" \
	"[   12.345678] BUG: KASAN: slab-use-after-free in kvmig_xfer_round+0x1c/0x2a0 [kvmig]"
splat_case "a hung task" \
	"[  123.456789] INFO: task x:12 blocked for more than 60 seconds."
splat_case "UBSAN" \
	"[    5.000001] UBSAN: shift-out-of-bounds in module/dirty/ring.c:12:3"
splat_case "a soft lockup" \
	"[   50.123456] watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [kworker/1:1:42]"
splat_case "a WARN_ON" \
	"[    7.100000] WARNING: CPU: 1 PID: 42 at module/session.c:120 kvmig_put+0x1/0x2 [kvmig]"
splat_case "lockdep" \
	"[    8.000000] WARNING: possible circular locking dependency detected"
splat_case "an RCU stall" \
	"[  400.000000] rcu: INFO: rcu_preempt self-detected stall on CPU"
splat_case "a kmemleak report" \
	"[  900.000000] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)"
splat_case "a bare Call Trace" "[   12.000000] Call Trace:"
splat_case "a line with the caller id (PRINTK_CALLER)" \
	"[   12.345678][    T42] BUG: kernel NULL pointer dereference, address: 0000000000000008"
: >"$tmp/empty.log"
expect "splat-check: an empty console fails" 1 "no console log" \
	splat "$tmp/empty.log"

# TAP as kselftest's runner nests it (run_tests.sh), complete.
cat >"$tmp/good.tap" <<'EOF'
TAP version 13
1..3
# selftests: kvmig: kvmig_api_test
# TAP version 13
# 1..2
# # Starting 2 tests from 1 test cases.
# ok 1 api.version
# ok 2 api.features
# # Totals: pass:2 fail:0 xfail:0 xpass:0 skip:0 error:0
ok 1 selftests: kvmig: kvmig_api_test
# selftests: kvmig: kvmig_netns_test.sh
# 1..0 # SKIP needs root
ok 2 selftests: kvmig: kvmig_netns_test.sh # SKIP
# selftests: kvmig: kvmig_bpf_test.sh
ok 3 selftests: kvmig: kvmig_bpf_test.sh # SKIP does not use kvmig.ko
EOF
expect "tap-count: complete nested streams pass (2 passed, 2 skipped)" 0 \
	": 2 passed, 0 failed, 2 skipped" tapc "$tmp/good.tap"

# The same, cut off in the second program (a hung lab killed by timeout).
head -12 "$tmp/good.tap" >"$tmp/cut.tap"
expect "tap-count: a truncated file fails, named" 1 \
	"the whole file: stream ended after 1 of 3 planned results" \
	tapc "$tmp/cut.tap"

# A program that planned 4 cases and printed 2, yet exited 0.
cat >"$tmp/short.tap" <<'EOF'
TAP version 13
1..1
# selftests: kvmig: kvmig_xfer_test
# TAP version 13
# 1..4
# ok 1 xfer.one
# ok 2 xfer.two
ok 1 selftests: kvmig: kvmig_xfer_test
EOF
expect "tap-count: a short program under an ok parent fails, named" 1 \
	"selftests: kvmig: kvmig_xfer_test: stream ended after 2 of 4" \
	tapc "$tmp/short.tap"
expect "tap-count: ... and counts as one failure, not a pass" 1 \
	": 2 passed, 1 failed, 0 skipped" tapc "$tmp/short.tap"

# A program that crashed after its plan: one failure, not two.
cat >"$tmp/crash.tap" <<'EOF'
TAP version 13
1..1
# selftests: kvmig: kvmig_dirty_test
# TAP version 13
# 1..3
# ok 1 dirty.ring
not ok 1 selftests: kvmig: kvmig_dirty_test # exit=139
EOF
expect "tap-count: a crashed program is one failure" 1 \
	": 1 passed, 1 failed, 0 skipped" tapc "$tmp/crash.tap"

# No plan anywhere, and a nested program without one.
printf 'TAP version 13\nok 1 a\nok 2 b\n' >"$tmp/noplan.tap"
expect "tap-count: a file without a plan fails" 1 \
	"the whole file: no plan (1..N), 2 results" tapc "$tmp/noplan.tap"
cat >"$tmp/noplan2.tap" <<'EOF'
TAP version 13
1..1
# TAP version 13
# ok 1 only
ok 1 selftests: kvmig: planless
EOF
expect "tap-count: a nested program without a plan fails" 1 \
	"selftests: kvmig: planless: no plan (1..N), 1 results" \
	tapc "$tmp/noplan2.tap"
printf 'TAP version 13\n1..3\nok 1 a\nok 2 b\nok 3 c\nok 4 d\n' >"$tmp/more.tap"
expect "tap-count: more results than planned fails" 1 \
	"4 results, 3 planned" tapc "$tmp/more.tap"

# KUnit: a trailing plan is fine, parameterised cases have no plan.
cat >"$tmp/kunit.ktap" <<'EOF'
KTAP version 1
1..1
    KTAP version 1
    # Subtest: kvmig_wire
    # module: kvmig_test
    1..2
    ok 1 kvmig_wire_hello
        KTAP version 1
        # Subtest: kvmig_wire_record
        ok 1 pages
        ok 2 zero
    # kvmig_wire_record: pass:2 fail:0 skip:0 total:2
    ok 2 kvmig_wire_record
# kvmig_wire: pass:2 fail:0 skip:0 total:2
ok 1 kvmig_wire
EOF
expect "tap-count: KUnit with planless parameterised cases passes" 0 \
	": 3 passed, 0 failed, 0 skipped" tapc "$tmp/kunit.ktap"
head -7 "$tmp/kunit.ktap" >"$tmp/kunit-cut.ktap"
expect "tap-count: a KUnit suite cut short fails, named after its Subtest line" 1 \
	"kvmig_wire: stream ended after 1 of 2 planned results" \
	tapc "$tmp/kunit-cut.ktap"
printf 'TAP version 13\nok 1 a\nok 2 b\n1..2\n' >"$tmp/trailing.tap"
expect "tap-count: a trailing plan (check.sh's own files) passes" 0 \
	": 2 passed" tapc "$tmp/trailing.tap"
: >"$tmp/empty.tap"
expect "tap-count: an empty file fails" 1 "no results" tapc "$tmp/empty.tap"

# The count guest (userspace/qemu/guest/count.S) under TCG, 4 s each: one
# 'B' per MiB written; with the fw_cfg file opt/kvmig/tsc-per-mib it waits
# that many TSC ticks per MiB (2e9: about a second on any host of 1-4 GHz),
# and a file of another name must not pace it. The bounds are a hundredfold
# apart: this checks that the knob works, not how fast anything is.
count_marks() { # count_marks [QEMU ARGS...]: 'B's printed in 4 s
	rm -f "$tmp/count.serial"
	timeout 4 qemu-system-x86_64 -accel tcg -m 32 -nodefaults -display none \
		-drive "file=$top/userspace/qemu/guest/count.img,format=raw" \
		-serial "file:$tmp/count.serial" "$@" >/dev/null 2>&1
	tr -cd B <"$tmp/count.serial" | wc -c
}
in_range() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ] || { echo "$1 marks, wanted $2..$3"; return 1; }; }
if make -s -C "$top/userspace/qemu" >"$tmp/out" 2>&1 && command -v qemu-system-x86_64 >/dev/null; then
	m=$(count_marks)
	expect "count guest: unpaced, thousands of MiB in 4 s ($m)" 0 "" in_range "$m" 1000 100000000
	m=$(count_marks -fw_cfg name=opt/kvmig/tsc-per-mib,string=2000000000)
	expect "count guest: paced at 2e9 TSC ticks per MiB, at most 10 in 4 s ($m)" 0 "" in_range "$m" 1 10
	m=$(count_marks -fw_cfg name=opt/kvmig/tsc-per-mi,string=2000000000)
	expect "count guest: a fw_cfg file of another name does not pace it ($m)" 0 "" in_range "$m" 1000 100000000
else
	n=$((n + 1))
	echo "not ok $n count guest: cannot build userspace/qemu/guest or no qemu-system-x86_64"
	sed 's/^/#   /' "$tmp/out"
	fail=1
fi

# The TLS 1.3 handshake the demo makes before handing its sockets to
# kTLS: key derivation against RFC 8448, handshakes over loopback (kTLS
# itself is the lab's: this machine's kernel may have none).
expect "ktls_test: RFC 8448 keys, PSK handshakes, failures" 0 "0 failed" \
	sh -c "make -s -C '$top/userspace' ktls_test && '$top/userspace/ktls_test'"

# QEMU's patch 0001 carries a copy of uapi/kvmig.h, as QEMU carries the
# KVM headers: a copy that drifted would build a QEMU against another ABI.
# userspace/qemu/sync-uapi.py rewrites it.
patch_hdr() {
	awk '/^\+\+\+ b\/linux-headers\/linux\/kvmig\.h$/ { on = 1; next }
		on && (/^diff --git / || /^-- $/) { exit }
		on && /^\+/ { print substr($0, 2) }' \
		"$top"/userspace/qemu/patches/0001-*.patch >"$tmp/kvmig.h" &&
		[ -s "$tmp/kvmig.h" ] && diff -u "$top/uapi/kvmig.h" "$tmp/kvmig.h"
}
expect "QEMU patch 0001's linux/kvmig.h is uapi/kvmig.h" 0 "" patch_hdr

# The documentation parses as Sphinx would read it: a malformed table or
# a bad indentation is an error, not a silently mangled page.
expect "Documentation/*.rst parse without a warning" 0 "" \
	"$top/scripts/rst-check.py" "$top"/Documentation/*.rst
printf 'T\n=\n\n====  ====\n``long`` x\n====  ====\n' >"$tmp/bad.rst"
expect "rst-check: refuses a malformed table" 1 "Malformed table" \
	"$top/scripts/rst-check.py" "$tmp/bad.rst"

echo "1..$n"
exit $fail
