#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# lab-tests.sh OUT MODDIR: the tests `make check` runs inside a lab guest.
# Loads the module built in MODDIR, runs KUnit (debug kernel) and the
# selftests, unloads, checks kmemleak (debug kernel); writes TAP to OUT:
#   lab.tap        the steps of this script
#   kunit.ktap     the KUnit results of kvmig_test.ko (debug kernel)
#   selftests.tap  make -C selftests run_tests
set -u
out=$1 mod=$2
mkdir -p "$out"
rm -f "$out"/*.tap "$out"/*.ktap

n=0 plan=()
exec 3>"$out/lab.tap"
echo "TAP version 13" >&3
result() { # result NAME STATUS
	n=$((n + 1))
	if [ "$2" -eq 0 ]; then echo "ok $n $1" >&3; else echo "not ok $n $1" >&3; fi
	echo "lab-tests: $([ "$2" -eq 0 ] && echo ok || echo FAILED): $1"
}
step() { # step NAME CMD...: run, log, record
	local name=$1
	shift
	echo "lab-tests: + $*"
	"$@"
	result "$name" $?
}
debug=
[ "${KVMIG_KERNEL:-}" = debug ] && debug=1
kmemleak=/sys/kernel/debug/kmemleak

# Forget objects from boot: only what the tests leave counts.
[ -n "$debug" ] && [ -w $kmemleak ] && echo clear >$kmemleak

if [ -z "$debug" ]; then
	# kTLS (tls) needs gcm(aes): the kernel would ask modprobe for its
	# pieces, which cannot find the lab's modules, so they go in first.
	# kvmig.ko needs the RDMA CM (rdma_cm, ib_core) where the kernel has
	# it as modules; rdma_rxe is soft-RoCE, for kvmig_rdma_test.sh, and
	# needs crc32 (else "failed to init crc32 algorithm": no rxe link).
	# rdma_ucm and ib_uverbs: the userspace RDMA peer of kvmig_xfer_test.
	step "modprobe kvm_amd (with ccp, irqbypass), veth, sch_ingress, cls_bpf, tls (with gcm, ctr, ghash), rdma_cm, rdma_ucm, ib_uverbs, rdma_rxe (with crc32), dummy" \
		sh -c 'for m in ccp kvm_amd veth sch_ingress cls_bpf tls gcm ctr ghash_generic rdma_cm rdma_ucm ib_uverbs crc32_generic rdma_rxe dummy; do scripts/lab-modprobe $m || exit 1; done'
fi
step "/dev/kvm present" test -c /dev/kvm
step "insmod kvmig.ko" insmod "$mod/kvmig.ko"
step "/dev/kvmig is a root-only char device" \
	sh -c '[ -c /dev/kvmig ] && [ "$(stat -c %a /dev/kvmig)" = 600 ]'
modinfo "$mod/kvmig.ko"

if [ -n "$debug" ]; then
	# KUnit runs the suites at load and prints KTAP to the kernel log:
	# take the log from the module's first line, keep only KTAP lines.
	dmesg -C
	step "insmod kvmig_test.ko (KUnit)" insmod "$mod/kvmig_test.ko"
	dmesg -t | grep -E '^ *(KTAP version|# |ok |not ok |1\.\.)' \
		>"$out/kunit.ktap"
	cat "$out/kunit.ktap"
	for suite in kvmig_api kvmig_session kvmig_dirty kvmig_wire kvmig_xfer \
		kvmig_holes; do
		step "KUnit suite $suite reported" \
			grep -qE "^(not )?ok [0-9]+ $suite\$" "$out/kunit.ktap"
	done
	step "rmmod kvmig_test" rmmod kvmig_test
fi

if [ -n "$debug" ]; then
	# Under TCG the debug kernel makes every exec, BTF load and BPF
	# verification several times slower. kvmig_bpf_test.sh does not use
	# kvmig.ko at all (the stock run has it: 75 s there, 401 s here), and
	# bpftrace alone takes 80-90 s to start here; both stay in the stock run.
	# The QEMU tests boot two nested QEMUs per case: 3 minutes each on
	# the stock kernel. kvmig_qemu_test.sh does not use kvmig.ko; the
	# region code that the x-kvmig ones drive runs here under
	# kvmig_region_test.
	export KVMIG_SKIP_TESTS="kvmig_bpf_test.sh kvmig_qemu_test.sh kvmig_qemu_kvmig_test.sh kvmig_qemu_ring_test.sh"
	export KVMIG_NO_BPFTRACE=1
	export KVMIG_SKIP_WHY="too slow under the debug kernel's TCG; run on the stock kernel"
fi
make -s -C selftests run_tests >"$out/selftests.tap" 2>&1
cat "$out/selftests.tap"

step "rmmod kvmig" rmmod kvmig
step "/dev/kvmig gone after rmmod" test ! -e /dev/kvmig
step "kvmigctl without the module: exit 3, says so" \
	sh -c 'userspace/kvmigctl list 2>&1 | grep -q "is kvmig.ko loaded"; [ "$(userspace/kvmigctl list >/dev/null 2>&1; echo $?)" = 3 ]'

if [ -n "$debug" ]; then
	# kmemleak reports objects older than 5 s only; scan twice to settle.
	sleep 5
	echo scan >$kmemleak
	echo scan >$kmemleak
	leaks=$(grep -c 'unreferenced object' $kmemleak)
	[ "$leaks" -eq 0 ] || cat $kmemleak
	result "kmemleak: no leaks ($leaks reported)" "$leaks"
	# Any earlier splat (even one at boot) turns lockdep off for the rest of
	# the run; then the run proved nothing about locking.
	step "lockdep still validating at the end (debug_locks 1)" \
		grep -qE '^ *debug_locks: +1$' /proc/lockdep_stats
fi
echo "1..$n" >&3
