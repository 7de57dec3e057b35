#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Migrations between two network namespaces joined by veth, with
# userspace/kvmig-demo as the VMM on both ends:
#   1. a clean migration: the memory checksum at pause equals the one at
#      resume;
#   2. the link cut (veth down) in mid pre-copy: both ends fail within the
#      I/O timeout, the source guest resumes and runs, the destination
#      discards its partial VM;
#   3. a migration over 2 TCP connections, each made kTLS by a TLS 1.3
#      handshake with a pre-shared key: the checksums match;
#   4. the two ends with different keys: the handshake fails at both, no
#      migration starts, and the source guest runs on.
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
echo "1..4"
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

# The link is back for 3 and 4, which need kTLS: built in, or the tls
# module loaded.
ip -n $ns_s link set veth-s up
if ! grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null; then
	[ -n "${KVMIG_REQUIRE:-}" ] && { echo "not ok 3 no kTLS (modprobe tls)"; exit 1; }
	echo "ok 3 # SKIP no kTLS in this kernel (modprobe tls)"
	echo "ok 4 # SKIP no kTLS in this kernel (modprobe tls)"
	exit $fail
fi
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$tmp/psk"
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$tmp/psk2"

# 3. Two connections, kTLS on each. Software AES under the lab's emulator
# (and KASAN) moves a few MB/s, and a handshake takes seconds: a small
# guest, a slow writer, a downtime budget it meets, room in the timeouts.
timeout 300 ip netns exec $ns_d $demo dest --listen 10.98.0.2:7003 --mem 8 \
	--io-timeout 60000 --streams 2 --tls-psk "$tmp/psk" >"$tmp/d3" 2>&1 &
dpid=$!
timeout 300 ip netns exec $ns_s $demo source --connect 10.98.0.2:7003 --mem 8 \
	--rate 100 --downtime 2000 --io-timeout 60000 --streams 2 \
	--tls-psk "$tmp/psk" >"$tmp/s3" 2>&1
src=$?
wait $dpid
dst=$?
sed 's/^/# /' "$tmp/s3" "$tmp/d3"
ps=$(sed -n 's/.*checksum at pause  *\([0-9a-f]*\)/\1/p' "$tmp/s3")
rs=$(sed -n 's/.*checksum at resume *\([0-9a-f]*\)/\1/p' "$tmp/d3")
check 3 "2 kTLS connections: checksum at pause equals at resume" \
	test "$src$dst" = 00 -a -n "$ps" -a "$ps" = "$rs" -a \
	"$(grep -c 'tls: TLS 1.3' "$tmp/s3")" -ge 1 -a \
	"$(grep -c 'tls: TLS 1.3' "$tmp/d3")" -ge 1

# 4. Different keys: refused in the handshake, before anything moves.
timeout 300 ip netns exec $ns_d $demo dest --listen 10.98.0.2:7004 --mem 8 \
	--io-timeout 60000 --tls-psk "$tmp/psk2" >"$tmp/d4" 2>&1 &
dpid=$!
timeout 300 ip netns exec $ns_s $demo source --connect 10.98.0.2:7004 --mem 8 \
	--rate 100 --io-timeout 60000 --tls-psk "$tmp/psk" >"$tmp/s4" 2>&1
src=$?
wait $dpid
dst=$?
sed 's/^/# /' "$tmp/s4" "$tmp/d4"
check 4 "different keys: the handshake fails at both ends" \
	test "$src$dst" = 11 -a \
	"$(grep -ci 'handshake' "$tmp/s4")" -ge 1 -a \
	"$(grep -ci 'handshake' "$tmp/d4")" -ge 1 -a \
	"$(grep -c 'checksum at resume' "$tmp/d4")" = 0
exit $fail
