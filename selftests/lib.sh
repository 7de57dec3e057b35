#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# lib.sh: what kvmig's shell selftests share; sourced, after the kernel's
# tools/testing/selftests/net/lib.sh (setup_ns, cleanup_ns, ksft_skip).
#   skip REASON          skip the whole program: TAP "1..0 # SKIP", exit 4
#                        (exit 1 under KVMIG_REQUIRE, as the lab sets it)
#   veth_ns NS_A IF_A NS_B IF_B ADDR_A ADDR_B [ADDR_A ADDR_B]...
#                        two network namespaces joined by a veth pair
#   in_ns NS CMD...      run CMD in NS's network namespace
#   cleanup_ns [NS...]   delete namespaces (default: all veth_ns made)

ksft_skip=4

# Namespaces made by veth_ns, for cleanup_ns.
NS_LIST=()

skip() {
	echo "1..0 # SKIP $*"
	[ -n "${KVMIG_REQUIRE:-}" ] && exit 1
	exit $ksft_skip
}

# veth_ns NS_A IF_A NS_B IF_B ADDR_A ADDR_B [ADDR_A ADDR_B]...: make the
# network namespaces NS_A and NS_B, a veth pair with IF_A in NS_A and IF_B in
# NS_B, give each end its address of every pair (CIDR; IPv6 ones without
# duplicate address detection, which would hold them back for a second or
# more), and bring both ends up. Returns non-zero if any step failed; what
# was made is then still recorded for cleanup_ns.
veth_ns() {
	local ns_a=$1 if_a=$2 ns_b=$3 if_b=$4 nodad
	shift 4
	ip netns add "$ns_a" || return 1
	NS_LIST+=("$ns_a")
	ip netns add "$ns_b" || return 1
	NS_LIST+=("$ns_b")
	ip link add "$if_a" netns "$ns_a" type veth peer name "$if_b" \
		netns "$ns_b" || return 1
	while [ $# -ge 2 ]; do
		nodad=
		case $1 in *:*) nodad=nodad ;; esac
		ip -n "$ns_a" addr add "$1" dev "$if_a" $nodad || return 1
		ip -n "$ns_b" addr add "$2" dev "$if_b" $nodad || return 1
		shift 2
	done
	ip -n "$ns_a" link set "$if_a" up && ip -n "$ns_b" link set "$if_b" up
}

# in_ns NS CMD...: nsenter --net, not ip netns exec: the latter also gives
# CMD a private mount namespace with a fresh /sys, where the eBPF maps
# pinned under /sys/fs/bpf are not visible. In the background, $! is the
# shell running in_ns, not CMD: to signal CMD itself, call nsenter directly
# (it execs CMD).
in_ns() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@"
}

# cleanup_ns [NS...]: kill what still runs in each namespace (a VMM that
# hung), then delete it. Without arguments: every namespace veth_ns made.
cleanup_ns() {
	local ns
	[ $# -gt 0 ] || set -- "${NS_LIST[@]}"
	for ns in "$@"; do
		[ -e "/run/netns/$ns" ] || continue
		ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
}
