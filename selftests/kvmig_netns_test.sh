#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Migrations between two network namespaces joined by veth, with
# userspace/kvmig-demo as the VMM on both ends:
#   1. a clean migration: the memory checksum at pause equals the one at
#      resume;
#   2. the link cut (veth down) in mid pre-copy: both ends fail within the
#      I/O timeout, the source guest resumes and runs, the destination
#      discards its partial VM.
# TAP output; exit 4 (skip) without root, ip, /dev/kvm or /dev/kvmig,
# unless KVMIG_REQUIRE is set.
cd "$(dirname "$0")" || exit 1
. ./lib.sh
demo=../userspace/kvmig-demo
[ "$(id -u)" = 0 ] || skip "needs root"
command -v ip >/dev/null || skip "needs ip (iproute2)"
[ -c /dev/kvm ] || skip "/dev/kvm not present"
[ -c /dev/kvmig ] || skip "/dev/kvmig not present"
[ -x $demo ] || skip "build userspace/kvmig-demo first"

ns_s=kvmigt-src-$$ ns_d=kvmigt-dst-$$ tmp=$(mktemp -d)
cleanup() {
	cleanup_ns
	rm -rf "$tmp"
}
trap cleanup EXIT
veth_ns $ns_s veth-s $ns_d veth-d 10.98.0.1/24 10.98.0.2/24 ||
	skip "cannot make network namespaces and veth"

echo "TAP version 13"
echo "1..2"
fail=0
check() { # check N NAME CONDITION...
	local n=$1 name=$2
	shift 2
	if "$@"; then echo "ok $n $name"; else echo "not ok $n $name"; fail=1; fi
}

# 1. A clean migration.
ip netns exec $ns_d $demo dest --listen 10.98.0.2:7001 --mem 32 \
	>"$tmp/d1" 2>&1 &
dpid=$!
ip netns exec $ns_s $demo source --connect 10.98.0.2:7001 --mem 32 \
	--rate 8000 >"$tmp/s1" 2>&1
src=$?
wait $dpid
dst=$?
sed 's/^/# /' "$tmp/s1" "$tmp/d1"
ps=$(sed -n 's/.*checksum at pause  *\([0-9a-f]*\)/\1/p' "$tmp/s1")
rs=$(sed -n 's/.*checksum at resume *\([0-9a-f]*\)/\1/p' "$tmp/d1")
check 1 "migration over veth: checksum at pause equals at resume" \
	test "$src$dst" = 00 -a -n "$ps" -a "$ps" = "$rs"

# 2. The link goes down in mid pre-copy (round 0 is throttled to 2 MB/s).
ip netns exec $ns_d $demo dest --listen 10.98.0.2:7002 --mem 32 \
	--io-timeout 2000 >"$tmp/d2" 2>&1 &
dpid=$!
ip netns exec $ns_s $demo source --connect 10.98.0.2:7002 --mem 32 \
	--rate 8000 --bandwidth 2 --io-timeout 2000 >"$tmp/s2" 2>&1 &
spid=$!
for _ in $(seq 100); do
	grep -q 'layout accepted' "$tmp/s2" && break
	sleep 0.2
done
sleep 1
ip -n $ns_s link set veth-s down
echo "# link down at $(date +%T.%N)"
wait $spid
src=$?
wait $dpid
dst=$?
sed 's/^/# /' "$tmp/s2" "$tmp/d2"
check 2 "link cut in mid pre-copy: both ends fail, source guest runs on" \
	test "$src$dst" = 11 -a \
	"$(grep -c 'KVMIG_XFER_ROUND failed: Connection timed out' "$tmp/s2")" = 1 -a \
	"$(grep -c 'guest resumed and running.*(ok)' "$tmp/s2")" = 1 -a \
	"$(grep -c 'discarding the partial VM' "$tmp/d2")" = 1
exit $fail
