#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# lab-demo-evacuate.sh MODDIR: inside the lab guest, what `make
# demo-evacuate` shows: a host in maintenance. Four demo VMs run in one
# network namespace (this host, src) and all migrate at once to another
# (dst), under kvmig's host limits: 2 migrations at a time (max_outgoing),
# 16 MB/s shared (max_bandwidth), two VMs of high priority (weight 3). The
# operator watches them all with kvmigctl watch --all.
set -euo pipefail
mod=$1
nr=${KVMIG_EVAC_VMS:-4} mem=${KVMIG_EVAC_MEM:-48}
par=/sys/module/kvmig/parameters
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "loading KVM and kvmig (max_outgoing=2 max_bandwidth=16000000 high_weight=3)"
for m in ccp kvm_amd veth; do
	scripts/lab-modprobe $m
done
[ -z "${KVMIG_MODROOT:-}" ] || scripts/lab-modprobe rdma_cm
insmod "$mod/kvmig.ko" max_outgoing=2 max_bandwidth=16000000 high_weight=3
grep -H . $par/max_outgoing $par/max_bandwidth $par/high_weight | sed 's/^/  /'

say "two hosts: network namespaces src (10.99.0.1) and dst (10.99.0.2), joined by veth"
. selftests/lib.sh
veth_ns src veth-src dst veth-dst 10.99.0.1/24 10.99.0.2/24
in_src() { in_ns src "$@"; }
in_dst() { in_ns dst "$@"; }

say "evacuating src: $nr VMs of $mem MiB, VMs 1 and 3 high priority"
userspace/kvmigctl watch --all --interval 500ms --wait 120s \
	>/tmp/kvmig-evac-watch.out 2>&1 &
wpid=$!
for i in $(seq "$nr"); do
	prio=standard
	[ $((i % 2)) = 1 ] && [ "$i" -le 3 ] && prio=high
	in_dst userspace/kvmig-demo dest --listen 10.99.0.2:$((7800 + i)) \
		--mem "$mem" >/tmp/kvmig-evac-d$i.out 2>&1 &
	in_src userspace/kvmig-demo source --connect 10.99.0.2:$((7800 + i)) \
		--mem "$mem" --touch $((mem * 3 / 4)) --rate 200 \
		--priority $prio >/tmp/kvmig-evac-s$i.out 2>&1 &
done
sleep 4
say "kvmigctl list, a few seconds in"
userspace/kvmigctl list
rc=0
for p in $(jobs -p | grep -v "^$wpid\$"); do
	wait "$p" || rc=1
done
wait $wpid || rc=1

say "kvmigctl watch --all, as it printed"
cat /tmp/kvmig-evac-watch.out

say "each VM, as its VMMs report it"
for i in $(seq "$nr"); do
	ps=$(sed -n 's/.*checksum at pause  *\([0-9a-f]*\)/\1/p' /tmp/kvmig-evac-s$i.out)
	rs=$(sed -n 's/.*checksum at resume *\([0-9a-f]*\)/\1/p' /tmp/kvmig-evac-d$i.out)
	printf '  VM %s: %s priority, %s; %s; memory %s\n' "$i" \
		"$(sed -n 's/^  priority  *//p' /tmp/kvmig-evac-s$i.out)" \
		"$(grep -o 'waited [0-9.]* s for its turn' /tmp/kvmig-evac-s$i.out || echo 'no wait')" \
		"$(sed -n 's/^  total time  *//p' /tmp/kvmig-evac-s$i.out)" \
		"$([ -n "$ps" ] && [ "$ps" = "$rs" ] && echo "identical at resume ($rs)" || echo "DIFFERS")"
	[ -n "$ps" ] && [ "$ps" = "$rs" ] || rc=1
done
[ $rc = 0 ] && say "evacuation complete: $nr VMs moved, never more than 2 at once" ||
	say "evacuation FAILED (see /tmp/kvmig-evac-*.out)"
exit $rc
