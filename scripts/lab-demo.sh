#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# lab-demo.sh MODDIR: inside the lab guest, what `make demo` shows: KVM and
# kvmig loaded, then a live migration between two network namespaces
# ("hosts") joined by veth, with the guest writing all along.
set -euo pipefail
mod=$1
mem=${KVMIG_DEMO_MEM:-128} rate=${KVMIG_DEMO_RATE:-10000}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "host: $(uname -sr), $(nproc) vCPUs; CPU has: $(grep -ow -m1 -e svm -e npt /proc/cpuinfo | sort -u | tr '\n' ' ')"
say "loading KVM and kvmig"
scripts/lab-modprobe ccp
scripts/lab-modprobe kvm_amd
scripts/lab-modprobe veth
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

say "migrating a ${mem} MiB guest that writes ${rate} pages/s, source -> destination"
ip netns exec dst userspace/kvmig-demo dest --listen 10.99.0.2:7777 \
	--mem "$mem" >/tmp/kvmig-dest.out 2>&1 &
dpid=$!
ip netns exec src userspace/kvmig-demo source --connect 10.99.0.2:7777 \
	--mem "$mem" --rate "$rate" | tee /tmp/kvmig-src.out
wait $dpid
cat /tmp/kvmig-dest.out

say "checks"
ps=$(sed -n 's/.*checksum at pause  *\([0-9a-f]*\)/\1/p' /tmp/kvmig-src.out)
rs=$(sed -n 's/.*checksum at resume *\([0-9a-f]*\)/\1/p' /tmp/kvmig-dest.out)
tp=$(sed -n 's/^source: paused at \([0-9.]*\).*/\1/p' /tmp/kvmig-src.out)
tr=$(sed -n 's/^dest: resumed at \([0-9.]*\).*/\1/p' /tmp/kvmig-dest.out)
echo "  memory checksum at pause $ps, at resume $rs: $([ "$ps" = "$rs" ] && echo equal, no page lost || echo DIFFERENT)"
echo "  downtime, pause on the source to resume on the destination: $(python3 -c "print(f'{($tr - $tp) * 1000:.1f} ms')")"
[ "$ps" = "$rs" ]
rmmod kvmig
say "done: the guest moved and carried on"
