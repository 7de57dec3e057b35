#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot a lab kernel in QEMU (TCG, -cpu max: emulated AMD SVM with nested
# paging, so kvm_amd runs real guests inside), with the host's root shared
# read-only and this checkout read-write over 9p, as virtme-ng does; run one
# command inside and exit with its status.
#
#   lab-run.sh [options] [--] command [args...]
#     -k, --kernel debug|stock|stock61
#                                which lab kernel (default: debug); stock is
#                                Debian's 6.12, stock61 Debian 12's own 6.1
#     -c, --cpus N               vCPUs (default: 2)
#     -m, --mem SIZE             guest memory (default: 2G)
#     -t, --timeout SECONDS      hard limit for the whole boot (default: 600)
#     -l, --log FILE             console log (default: build/lab/<kernel>.log)
#     -q, --quiet                show the command's output, not the console
#
# Inside the guest: KVMIG_KERNEL is debug, stock or stock61; KVMIG_MODROOT,
# for a stock kernel, is the root of its unpacked modules (lab-modprobe).
# Exit status: the command's, or 124 on timeout, 125 if no status was left.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
kernel=debug cpus=2 mem=2G timeout=600 log= quiet=

while [ $# -gt 0 ]; do
	case $1 in
	-k | --kernel) kernel=$2; shift 2 ;;
	-c | --cpus) cpus=$2; shift 2 ;;
	-m | --mem) mem=$2; shift 2 ;;
	-t | --timeout) timeout=$2; shift 2 ;;
	-l | --log) log=$2; shift 2 ;;
	-q | --quiet) quiet=1; shift ;;
	--) shift; break ;;
	-*) echo "lab-run: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "usage: lab-run.sh [options] command..." >&2; exit 2; }

initrd=() modshare=()
case $kernel in
debug)
	kdir=$("$top/scripts/kernel.sh" debug)
	bzimage=$kdir/arch/x86/boot/bzImage
	modroot=
	;;
stock | stock61)
	# Debian's kernels: 9p (and on 6.1 virtio's PCI transport) are modules,
	# loaded by an initramfs; the rest come from the unpacked package.
	sdir=$("$top/scripts/kernel.sh" "$kernel")
	abi=$(cat "$sdir/abi")
	bzimage=$sdir/root/boot/vmlinuz-$abi
	initrd=(-initrd "$("$top/scripts/lab-initramfs.sh" "$sdir")")
	modroot=$sdir/root
	modshare=(-fsdev "local,id=mod,path=$modroot,security_model=none,readonly=on,multidevs=remap"
		-device virtio-9p-pci,fsdev=mod,mount_tag=kvmigmod)
	;;
*)
	echo "lab-run: --kernel must be debug, stock or stock61" >&2
	exit 2
	;;
esac

# One lab at a time on this machine: two TCG guests on two cores would
# each run at half speed and time out. Later boots wait their turn.
exec 9>"${KVMIG_LAB_LOCK:-/tmp/kvmig-lab.lock}"
flock 9

mkdir -p "$top/build/lab"
log=${log:-$top/build/lab/$kernel.log}
run=$(mktemp -d /tmp/kvmig-lab.XXXXXX)
trap 'rm -rf "$run"' EXIT
{
	printf 'export KVMIG_KERNEL=%q KVMIG_MODROOT=%q KVMIG_REQUIRE=1\n' \
		"$kernel" "$modroot"
	printf 'cd %q || exit 125\n' "$PWD"
	printf '%q ' "$@"
	echo
} >"$run/cmd"

# TCG runs a KASAN+lockdep kernel some fifty times slower than hardware, and
# QEMU's I/O thread shares the host's cores with the vCPUs: RCU's default
# 21 s stall limit then fires on plain boot work. A real stall still shows.
# For the same reason a vCPU can sit for half a minute in a stop_machine()
# while the other one emulates slow boot work: the soft-lockup detector then
# reports after 120 s (watchdog_thresh=60, its maximum) instead of 20 s.
cmdline="console=ttyS0 loglevel=7 panic=-1 rcupdate.rcu_cpu_stall_timeout=300"
cmdline+=" watchdog_thresh=60"
# Under TCG with emulated SVM the guest's TSC can jump by hours at once while
# nested KVM guests run (seen once in 6.12: "clocksource: Long readout
# interval ... cs_nsec: 7267295141239", a 6768 s soft lockup and every
# selftest timeout firing together). The lab keeps time on the HPET: the
# TSC is still what rdtsc returns (lab-bench-qemu.sh paces on it).
cmdline+=" tsc=unstable"
cmdline+=" root=/dev/root rootfstype=9p ro"
cmdline+=" rootflags=trans=virtio,version=9p2000.L,msize=262144"
cmdline+=" init=$top/scripts/lab-init.sh"
cmdline+=" KVMIG_INIT=$top/scripts/lab-init.sh KVMIG_RUN=$run KVMIG_TOP=$top"
cmdline+=" KVMIG_MODROOT=$modroot"
# -cpu max offers LA57, and with 5-level paging a KASAN kernel can report a
# false "wild-memory-access" at boot: identify_cpu() clears the boot CPU's
# capabilities while it re-reads them, and an interrupt in that window sees
# pgtable_l5_enabled() false and KASAN's 4-level shadow bounds (upstream:
# "kasan: Fix false-positive wild-memory-access on x86 under 5-level
# paging", June 2026). The report also switches lockdep off for the whole
# run. The debug kernel therefore boots with 4-level paging; the stock
# kernels, which have no KASAN, keep 5-level paging.
[ "$kernel" = debug ] && cmdline+=" no5lvl"

: >"$log"
: >"$run/output"
# Single-threaded TCG: under multi-threaded TCG (QEMU 7.2) a vCPU can run a
# stale translation of kernel text that another vCPU is live-patching with
# text_poke_bp(), and dies on an int3 no patch owns ("Oops: int3" in
# __schedule once kvm flips the preempt-notifier static key). The guest still
# has $cpus vCPUs, interleaved by QEMU. KVMIG_TCG_THREAD=multi to override.
qemu=(qemu-system-x86_64 -accel "tcg,thread=${KVMIG_TCG_THREAD:-single}"
	-cpu "${KVMIG_CPU:-max}"
	-smp "$cpus" -m "$mem" -nodefaults -no-reboot
	-display none -monitor none -serial "file:$log"
	-kernel "$bzimage" "${initrd[@]}" -append "$cmdline"
	-fsdev local,id=root,path=/,security_model=none,readonly=on,multidevs=remap
	-device virtio-9p-pci,fsdev=root,mount_tag=/dev/root
	-fsdev local,id=top,path="$top",security_model=none,multidevs=remap
	-device virtio-9p-pci,fsdev=top,mount_tag=kvmigtop
	-fsdev local,id=run,path="$run",security_model=none
	-device virtio-9p-pci,fsdev=run,mount_tag=kvmigrun "${modshare[@]}")

timeout -k 5 "$timeout" "${qemu[@]}" </dev/null &
qpid=$!
if [ -z "$quiet" ]; then
	tail -n +1 -f --pid=$qpid "$log" &
else
	tail -n +1 -f --pid=$qpid "$run/output" &
fi
qrc=0
wait $qpid || qrc=$?
sleep 0.2

if [ $qrc -eq 124 ] || [ $qrc -eq 137 ]; then
	echo "lab-run: timed out after ${timeout}s (console: $log)" >&2
	exit 124
fi
if [ ! -s "$run/status" ]; then
	echo "lab-run: guest left no status, qemu exit $qrc (console: $log)" >&2
	exit 125
fi
exit "$(cat "$run/status")"
