#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# lab-demo-qemu.sh: inside the lab guest, after lab-demo.sh set up KVM,
# kvmig and the network namespaces src (10.99.0.1) and dst (10.99.0.2):
# Debian's QEMU with x-kvmig moves a running guest from src to dst. QEMU's
# `info migrate` and `kvmigctl watch` side by side, then the guest counting
# on at the destination.
set -uo pipefail
qemu=$PWD/build/qemu/qemu-system-x86_64
qmp=$PWD/userspace/qemu/qmp.py
guest=$PWD/userspace/qemu/guest
accel=kvm cpu=host mem=${KVMIG_DEMO_QEMU_MEM:-256}
tmp=$(mktemp -d)
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
exec 3>&1
trap '' PIPE

# shellcheck source=../userspace/qemu/lab-qemu.sh
. userspace/qemu/lab-qemu.sh
trap 'stop_vm s d; rm -rf "$tmp"' EXIT

[ -x "$qemu" ] || { echo "no patched QEMU at $qemu (scripts/qemu.sh)"; exit 1; }
say "QEMU: $("$qemu" --version | head -1), with userspace/qemu/patches (x-kvmig)"
start_vm d dst count -incoming tcp:10.99.0.2:7300 -machine pc,smm=on
start_vm s src count -machine pc,smm=on
wait_serial s "$(first_pass)" 180 || { echo "the source guest did not start"; exit 1; }
qmp_open s && qmp_open d || exit 1
caps='{"capabilities": [{"capability": "x-kvmig", "state": true}]}'
q s migrate-set-capabilities "$caps" >/dev/null &&
	q d migrate-set-capabilities "$caps" >/dev/null || exit 1
say "a ${mem} MiB guest, SMM on, counting in every page above 1 MiB and printing a B per MiB: $(serial_size s) bytes on its serial port so far"

userspace/kvmigctl watch --role source --wait 120000 --interval 250 \
	>"$tmp/watch.out" 2>&1 &
wpid=$!
q s migrate-set-parameters '{"max-bandwidth": 1073741824, "downtime-limit": 2000}' >/dev/null
q s migrate '{"uri": "tcp:10.99.0.2:7300"}' >/dev/null || exit 1
say "QEMU's info migrate on the source, every second"
for ((i = 0; i < 120; i++)); do
	r=$(q s human-monitor-command '{"command-line": "info migrate"}')
	st=$(field "$(q s query-migrate)" status)
	printf '%s\n' "${r//\\r\\n/$'\n'}" | grep -E '^(Migration status|total time|downtime|expected downtime|transferred ram|remaining ram|kvmig:)' |
		tr '\n' ' ' | sed 's/^/  /; s/$/\n/'
	case $st in completed | failed | cancelled) break ;; esac
	sleep 1
done
wait $wpid 2>/dev/null
say "kvmigctl watch --role source, as it scrolled meanwhile"
sed 's/^/  /' "$tmp/watch.out"
say "after the switchover"
echo "  source: $(vm_status s), destination: $(vm_status d)"
b=$(serial_size d)
sleep 5
echo "  the destination's guest printed $(($(serial_size d) - b)) more progress bytes (MiB written) in 5 s; the source's stays at $(serial_size s)"
[ "$st" = completed ] && [ "$(vm_status d)" = running ]
