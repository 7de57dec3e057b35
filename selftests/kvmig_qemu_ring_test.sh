#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The patched QEMU refuses x-kvmig in dirty-ring mode, where its kvm-reaper
# thread harvests the rings itself (kvmig would lose what it reaps), and
# says what to do; the same QEMU without dirty rings accepts it.
cd "$(dirname "$0")" || exit 1
. ./lib.sh
q=$(cd .. && pwd)/build/qemu/qemu-system-x86_64
qmp=../userspace/qemu/qmp.py
[ "$(id -u)" = 0 ] || skip "needs root"
[ -x "$q" ] || skip "no patched QEMU at $q: run scripts/qemu.sh"
[ -c /dev/kvm ] || skip "/dev/kvm not present"
tmp=$(mktemp -d)
pid=
trap 'kill -9 $pid 2>/dev/null; rm -rf "$tmp"' EXIT

echo "TAP version 13"
echo "1..2"
# try N ACCEL-OPTS: start an empty VM, set x-kvmig; prints QMP's answer.
try() {
	"$q" -machine pc -accel "kvm$2" -m 16 -display none -nodefaults \
		-S -qmp "unix:$tmp/q$1,server=on,wait=off" >"$tmp/log$1" 2>&1 &
	pid=$!
	$qmp -t 120 "$tmp/q$1" migrate-set-capabilities \
		'{"capabilities": [{"capability": "x-kvmig", "state": true}]}' 2>&1
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
}
out=$(try 1 ,dirty-ring-size=4096)
echo "# dirty-ring-size=4096: $out"
case $out in
*dirty-ring-size*) echo "ok 1 dirty-ring mode: x-kvmig refused, the error says why" ;;
*) echo "not ok 1 dirty-ring mode: x-kvmig refused, the error says why" ;;
esac
out=$(try 2 "")
echo "# bitmap mode: ${out:-accepted}"
case $out in
*rror*) echo "not ok 2 bitmap mode: x-kvmig accepted" ;;
*) echo "ok 2 bitmap mode: x-kvmig accepted" ;;
esac
