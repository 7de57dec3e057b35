#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# lab-demo.sh MODDIR: inside the lab guest, what `make demo` shows: KVM and
# kvmig loaded, then a live migration between two network namespaces
# ("hosts") joined by veth, with the guest writing all along, as an operator
# sees it: kvmigctl watch on the source, the eBPF monitor on its veth, and
# the gratuitous RARP the destination announces when its session completes.
# Then Debian's QEMU with x-kvmig does the same (scripts/lab-demo-qemu.sh).
set -euo pipefail
mod=$1
mem=${KVMIG_DEMO_MEM:-128} rate=${KVMIG_DEMO_RATE:-10000}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "host: $(uname -sr), $(nproc) vCPUs; CPU has: $(grep -ow -m1 -e svm -e npt /proc/cpuinfo | sort -u | tr '\n' ' ')"
say "loading KVM and kvmig"
scripts/lab-modprobe ccp
scripts/lab-modprobe kvm_amd
scripts/lab-modprobe veth
scripts/lab-modprobe sch_ingress
scripts/lab-modprobe cls_bpf
# kvmig.ko needs the RDMA CM: a module on the stock kernels.
[ -z "${KVMIG_MODROOT:-}" ] || scripts/lab-modprobe rdma_cm
insmod "$mod/kvmig.ko"
dmesg | grep -E 'kvm_amd: Nested|kvmig:' | sed 's/^/  /'
ls -l /dev/kvm /dev/kvmig
userspace/kvmigctl version

say "two hosts: network namespaces src (10.99.0.1) and dst (10.99.0.2), joined by veth"
ip netns add src
ip netns add dst
ip link add veth-src netns src type veth peer name veth-dst netns dst
ip -n src addr add 10.99.0.1/24 dev veth-src
ip -n dst addr add 10.99.0.2/24 dev veth-dst
ip -n src link set veth-src up
ip -n dst link set veth-dst up
ip -n src link set lo up
ip -n dst link set lo up
ip -n src -br addr show veth-src | sed "s/^/  src: /"
ip -n dst -br addr show veth-dst | sed "s/^/  dst: /"

say "operator's tools: eBPF monitor on veth-src, RARP announce armed on dst"
# nsenter, not ip netns exec: that one remounts /sys, hiding /sys/fs/bpf.
in_src() { nsenter --net=/run/netns/src "$@"; }
in_dst() { nsenter --net=/run/netns/dst "$@"; }
mac=52:54:00:12:34:56
in_src userspace/kvmigctl monitor attach veth-src --port 7777
in_src tcpdump -l -i veth-src -n -e -tt 'ether proto 0x8035' \
	>/tmp/kvmig-rarp.out 2>/dev/null &
tdpid=$!
in_dst userspace/kvmigctl announce veth-dst --mac $mac --wait-done \
	--timeout 300000 >/tmp/kvmig-announce.out 2>&1 &
apid=$!
sleep 1

say "migrating a ${mem} MiB guest that writes ${rate} pages/s, source -> destination"
in_dst userspace/kvmig-demo dest --listen 10.99.0.2:7777 \
	--mem "$mem" >/tmp/kvmig-dest.out 2>&1 &
dpid=$!
# In src, where veth-src and its monitor are: interface names are per
# network namespace.
in_src userspace/kvmigctl watch --role source --wait 120000 --interval 250 \
	--iface veth-src >/tmp/kvmig-watch.out 2>&1 &
wpid=$!
in_src userspace/kvmig-demo source --connect 10.99.0.2:7777 \
	--mem "$mem" --rate "$rate" | tee /tmp/kvmig-src.out
wait $dpid
cat /tmp/kvmig-dest.out
wait $wpid || true
wait $apid || true
sleep 0.2
kill $tdpid

say "kvmigctl watch --role source --iface veth-src, as it scrolled during the migration"
sed 's/^/  /' /tmp/kvmig-watch.out
say "kvmigctl monitor show veth-src (eBPF counters of the migration connection)"
in_src userspace/kvmigctl monitor show veth-src | sed 's/^/  /'
say "the destination announced the VM: kvmigctl announce --wait-done, and tcpdump on the source side"
sed 's/^/  /' /tmp/kvmig-announce.out
sed 's/^/  /' /tmp/kvmig-rarp.out
in_src userspace/kvmigctl monitor detach veth-src

say "checks"
ps=$(sed -n 's/.*checksum at pause  *\([0-9a-f]*\)/\1/p' /tmp/kvmig-src.out)
rs=$(sed -n 's/.*checksum at resume *\([0-9a-f]*\)/\1/p' /tmp/kvmig-dest.out)
tp=$(sed -n 's/^source: paused at \([0-9.]*\).*/\1/p' /tmp/kvmig-src.out)
tr=$(sed -n 's/^dest: resumed at \([0-9.]*\).*/\1/p' /tmp/kvmig-dest.out)
echo "  memory checksum at pause $ps, at resume $rs: $([ "$ps" = "$rs" ] && echo equal, no page lost || echo DIFFERENT)"
echo "  downtime, pause on the source to resume on the destination: $(python3 -c "print(f'{($tr - $tp) * 1000:.1f} ms')")"
[ "$ps" = "$rs" ]

say "now QEMU, the VMM hypervisor hosts run, carrying its RAM through kvmig"
scripts/lab-demo-qemu.sh
rmmod kvmig
say "done: both guests moved and carried on"
