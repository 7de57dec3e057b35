#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Migrations over RDMA (KVMIG_XFER_SETUP_RDMA) on soft-RoCE: a dummy
# device with an address, an rxe device on it, and kvmig_xfer_test's rdma
# fixture run with both ends at that address, through the one rxe device
# in loopback. Before Linux 7.1, rxe sends and routes in the initial
# network namespace only, so two namespaces joined by veth cannot carry
# it (Documentation/xfer.rst). TAP output; exit 4 (skip) without root, ip
# and rdma (iproute2), or soft-RoCE (rdma_rxe), unless KVMIG_REQUIRE is
# set.
cd "$(dirname "$0")" || exit 1
. ./lib.sh
[ "$(id -u)" = 0 ] || skip "needs root"
command -v ip >/dev/null || skip "needs ip (iproute2)"
command -v rdma >/dev/null || skip "needs rdma (iproute2)"
[ -x ./kvmig_xfer_test ] || skip "build kvmig_xfer_test first"

ifc=kvmigd$$ rxe=kvmigrxe$$ addr=10.97.0.1
cleanup() {
	rdma link delete $rxe 2>/dev/null
	ip link del $ifc 2>/dev/null
}
trap cleanup EXIT
# A 9000-byte MTU gives rxe a 4096-byte RDMA MTU: a page per packet.
ip link add $ifc mtu 9000 type dummy && ip addr add $addr/24 dev $ifc &&
	ip link set $ifc up || skip "cannot make a dummy device"
modprobe -q rdma_rxe 2>/dev/null
# The userspace RDMA CM and verbs, for kvmig_xfer_test's hand-written peer.
modprobe -q rdma_ucm 2>/dev/null
modprobe -q ib_uverbs 2>/dev/null
rdma link add $rxe type rxe netdev $ifc ||
	skip "cannot add a soft-RoCE device (rdma_rxe)"
rdma link show | grep -w "$ifc" | sed 's/^/# /'
# shellcheck disable=SC2086 # KVMIG_XFER_ARGS: more harness options
# device_removed_mid_precopy deletes $rxe, then adds it back.
KVMIG_RDMA_ADDR=$addr KVMIG_RDMA_DEV=$rxe KVMIG_RDMA_NETDEV=$ifc \
	./kvmig_xfer_test -f rdma ${KVMIG_XFER_ARGS:-}
