#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# lab-qemu.sh: QEMU VMs driven over QMP from shell, sourced by
# selftests/kvmig_qemu_test.sh and scripts/lab-bench-qemu.sh.
#
# The sourcing script sets, before calling any of these:
#   qemu   QEMU binary          accel  kvm or tcg     cpu  -cpu model
#   mem    guest RAM in MiB     guest  directory of the guest images
#   qmp    path of qmp.py       tmp    a private directory (sockets, logs)
#   serial_sock  optional: see start_vm
# and opens fd 3 for diagnostics (`exec 3>&1`: they must reach the output
# from inside $(...)); it should ignore SIGPIPE (`trap '' PIPE`), so that a
# qmp.py session gone with its QEMU does not kill it.
#
#   diag TEXT            a "# TEXT" diagnostic line on stdout
#   start_vm / stop_vm / alive            a VM's QEMU
#   qmp_open / qmp_close / q / vm_status  its QMP session, requests
#   field JSON NAME      one value out of an answer
#   serial_size / wait_serial / advances / first_pass  its guest's serial output

# shellcheck disable=SC2154 # qemu, accel, cpu, mem, guest, qmp, tmp: the caller's
# Per VM: QEMU's pid; its qmp.py session's pid and its request and answer
# fds (see qmp_open).
declare -A PID QP QW QR

diag() { echo "# $*"; }

# qmp_open VM: one qmp.py session per VM for all its requests, through two
# FIFOs: starting Python costs seconds in the lab (TCG, and the guests
# take the vCPUs). It connects at the first request.
qmp_open() {
	local vm=$1 fw fr
	mkfifo "$tmp/$vm.qi" "$tmp/$vm.qo" || return 1
	$qmp -t 60 "$tmp/$vm.qmp" - <"$tmp/$vm.qi" >"$tmp/$vm.qo" 2>&1 &
	QP[$vm]=$!
	exec {fw}>"$tmp/$vm.qi" {fr}<"$tmp/$vm.qo"
	QW[$vm]=$fw QR[$vm]=$fr
}

qmp_close() {
	local vm=$1 fw=${QW[$1]:-} fr=${QR[$1]:-}
	[ -n "$fw" ] || return 0
	exec {fw}>&- {fr}<&-
	# Not EOF: the QEMUs and sessions started later hold the FIFO too.
	kill "${QP[$vm]}" 2>/dev/null
	wait "${QP[$vm]}" 2>/dev/null
	unset "QW[$vm]" "QR[$vm]" "QP[$vm]"
}

# q VM [-t SECS] REQUEST...: one request of qmp.py (a QMP command and its
# JSON arguments, or wait-event, migrate-wait, status-wait) to VM, SECS its
# time limit (default 60); prints the answer's JSON. Fails (an error, a
# timeout, a wait that ended elsewhere: said as a diagnostic) with 1.
q() {
	local vm=$1 t=60 word rest
	shift
	[ "$1" = -t ] && { t=$2; shift 2; }
	if [ -z "${QW[$vm]:-}" ] ||
		! echo "-t $t $*" 1>&"${QW[$vm]}" 2>/dev/null ||
		! read -r -t $((t + 30)) word rest <&"${QR[$vm]}"; then
		diag "$vm: no answer from qmp.py to $1" >&3
		return 2
	fi
	case $word in
	ok) echo "$rest" ;;
	fail) echo "$rest"; return 1 ;;
	*) diag "$vm: $1: $word: $rest" >&3; return 1 ;;
	esac
}
# field JSON NAME: the value of the first "NAME": in JSON (a string or a
# number). No sed: every exec costs in the lab.
field() {
	local re="\"$2\": \"?([^\",}]*)"
	[[ $1 =~ $re ]] && echo "${BASH_REMATCH[1]}"
}
vm_status() { field "$(q "$1" -t "${2:-20}" query-status)" status; }
serial_size() { stat -c %s "$tmp/$1.serial" 2>/dev/null || echo 0; }

# start_vm NAME NS GUEST [QEMU ARGS...]: QEMU with GUEST (count or dmaio)
# in NS, in the background; its pid in PID[NAME]. nsenter execs QEMU, so
# $! is QEMU's own pid.
# Its serial port (COM1) goes to the file $tmp/NAME.serial; with
# serial_sock set, to a chardev socket that QEMU connects to at
# $tmp/NAME.sock (a reader must listen there first: see serial-ts.py).
start_vm() {
	local name=$1 ns=$2 g=$3
	shift 3
	local serial=(-serial "file:$tmp/$name.serial")
	# shellcheck disable=SC2054 # commas inside QEMU's option values
	if [ -n "${serial_sock:-}" ]; then
		serial=(-chardev "socket,id=com1,path=$tmp/$name.sock,server=off"
			-serial chardev:com1)
	fi
	# shellcheck disable=SC2054
	local args=(-machine pc -accel "$accel" -cpu "$cpu" -m "$mem"
		-nodefaults -display none -vga none
		"${serial[@]}"
		-qmp "unix:$tmp/$name.qmp,server=on,wait=off"
		-drive "file=$guest/$g.img,format=raw,if=none,id=boot"
		-device ide-hd,drive=boot,bootindex=0)
	# shellcheck disable=SC2054
	[ "$g" = dmaio ] && args+=(
		-drive "file=$guest/dmaio-disk.img,format=raw,if=none,id=data,readonly=on"
		-device virtio-blk-pci,drive=data,disable-modern=on)
	# shellcheck disable=SC2206
	args+=(${KVMIG_QEMU_ARGS:-} "$@")
	nsenter --net="/run/netns/$ns" "$qemu" "${args[@]}" \
		>"$tmp/$name.log" 2>&1 </dev/null &
	PID[$name]=$!
}

# stop_vm NAME...: end them (SIGKILL: nothing of theirs is kept).
stop_vm() {
	local n
	for n in "$@"; do
		if [ -n "${PID[$n]:-}" ]; then
			kill -9 "${PID[$n]}" 2>/dev/null
			wait "${PID[$n]}" 2>/dev/null
			unset "PID[$n]"
		fi
		qmp_close "$n"
	done
}

# alive NAME: its QEMU still runs.
alive() { [ -n "${PID[$1]:-}" ] && kill -0 "${PID[$1]}" 2>/dev/null; }

# wait_serial NAME BYTES SECS: until NAME's serial output has BYTES bytes
# (wall clock: in the lab every stat takes a good part of a second).
wait_serial() {
	local end=$((SECONDS + $3))
	while [ $SECONDS -le $end ]; do
		[ "$(serial_size "$1")" -ge "$2" ] && return 0
		sleep 0.5
	done
	return 1
}

# first_pass: the serial size at which the count guest has written every
# page once: 'A', then a 'B' per MiB from 2 MiB up to the top ($mem MiB).
first_pass() { echo "$mem"; }

# advances NAME SECS: NAME's guest prints at least 2 bytes more within SECS.
advances() {
	local s0
	s0=$(serial_size "$1")
	wait_serial "$1" $((s0 + 2)) "$2"
}
