#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# QEMU live migration between two network namespaces joined by veth, with
# the project's boot-sector guests (userspace/qemu/guest/): the source QEMU
# in one namespace, the destination (-incoming tcp:… -S) in the other, both
# driven over QMP by userspace/qemu/qmp.py.
#   1. count guest (CPU writes every page): migration completes; with both
#      ends paused, all guest RAM compared byte for byte; the destination,
#      resumed, goes on printing;
#   2. migrate_cancel in mid pre-copy: the source runs on;
#   3. destination killed in mid pre-copy: the source fails and runs on;
#   4. source killed in mid pre-copy: the destination never runs the guest;
#   5. dmaio guest (virtio-blk DMA writes, not the CPU): as 1;
#   6. auto-converge: the count guest, unpaced, outruns a link capped at
#      16 MiB/s; the source's cpu-throttle-percentage must rise above 0
#      during pre-copy, the migration complete as in 1, and the throttle
#      be off after it.
# TAP output; exit 4 (skip) without root, ip, the QEMU binary, /dev/kvm or
# the guest images, unless KVMIG_REQUIRE is set.
#
#   KVMIG_QEMU       QEMU binary (default qemu-system-x86_64)
#   KVMIG_QEMU_CAPS  migration capabilities set on both ends before each
#                    migration, comma- or space-separated (e.g. x-kvmig)
#   KVMIG_QEMU_ARGS  extra QEMU arguments for both ends (word-split)
#   KVMIG_QEMU_MEM   guest RAM in MiB (default 64)
#   KVMIG_QEMU_ACCEL kvm (default; -cpu host) or tcg (no /dev/kvm needed)
#   KVMIG_QEMU_TEST_CORRUPT=1  flip one byte of the destination's dump
#                    before each compare: the memory cases must fail
#   KVMIG_QEMU_CASES only these case numbers (e.g. "1 5"); the others are
#                    reported skipped
#   KVMIG_QEMU_AC_BW case 6's max-bandwidth, bytes/s (default 16777216)
cd "$(dirname "$0")" || exit 1
. ./lib.sh
qemu=${KVMIG_QEMU:-qemu-system-x86_64}
caps=${KVMIG_QEMU_CAPS:-}
mem=${KVMIG_QEMU_MEM:-64}
accel=${KVMIG_QEMU_ACCEL:-kvm}
ac_bw=${KVMIG_QEMU_AC_BW:-16777216}
qmp=../userspace/qemu/qmp.py
guest=../userspace/qemu/guest
# shellcheck source=../userspace/qemu/lab-qemu.sh
. ../userspace/qemu/lab-qemu.sh
[ "$(id -u)" = 0 ] || skip "needs root"
command -v ip >/dev/null || skip "needs ip (iproute2)"
command -v nsenter >/dev/null || skip "needs nsenter (util-linux)"
command -v python3 >/dev/null || skip "needs python3"
command -v "$qemu" >/dev/null || skip "no QEMU binary $qemu"
if [ "$accel" = kvm ]; then
	[ -c /dev/kvm ] || skip "/dev/kvm not present"
	cpu=host
else
	cpu=qemu64
fi
for f in count.img dmaio.img dmaio-disk.img; do
	[ -f $guest/$f ] || skip "build userspace/qemu first (no guest/$f)"
done

ns_s=kvmigq-src-$$ ns_d=kvmigq-dst-$$ tmp=$(mktemp -d)
addr_d=10.98.1.2
# PID QP QW QR (per VM: QEMU's pid, its qmp.py session): lab-qemu.sh.
cleanup() {
	local p
	for p in "${PID[@]}" "${QP[@]}"; do kill -9 "$p" 2>/dev/null; done
	cleanup_ns
	rm -rf "$tmp"
}
trap cleanup EXIT
veth_ns $ns_s veth-qs $ns_d veth-qd 10.98.1.1/24 $addr_d/24 ||
	skip "cannot make network namespaces and veth"

echo "TAP version 13"
echo "1..7"
fail=0
t_start=$(date +%s)
check() { # check N NAME CONDITION...
	local n=$1 name=$2
	shift 2
	if "$@"; then echo "ok $n $name"; else echo "not ok $n $name"; fail=1; fi
}
# Diagnostics from inside $(...) go to fd 3, the TAP stream.
exec 3>&1
# A qmp.py session gone with its QEMU must not kill the script.
trap '' PIPE

# Extra QEMU arguments of the destination and the source that pair starts.
pair_d_args=() pair_s_args=()

# pair N GUEST: destination dN and source sN of case N; the source's guest
# started (serial 'A' and a progress byte; the count guest, a whole pass
# over its RAM: first_pass), capabilities set on both ends.
# The destination listens on port 7100+N.
pair() {
	local n=$1 g=$2 c list=() first=2
	[ "$g" = count ] && first=$(first_pass)
	start_vm d$n $ns_d "$g" -incoming "tcp:$addr_d:$((7100 + n))" -S \
		"${pair_d_args[@]}"
	start_vm s$n $ns_s "$g" "${pair_s_args[@]}"
	# The first QEMU of a lab boot reads its binary and libraries over 9p
	# under TCG: a minute or more. A source guest that never printed (seen
	# once in about twenty starts, before migration is involved) gets one
	# more start, said as a diagnostic.
	if ! wait_serial s$n $first 180; then
		diag "s$n: guest did not start: $(serial_size s$n) bytes on its serial port, QEMU $(alive s$n && echo "alive, wchan $(cat /proc/${PID[s$n]}/wchan)" || echo gone): $(tr '\n' ' ' <"$tmp/s$n.log"); starting it again"
		stop_vm s$n
		start_vm s$n $ns_s "$g" "${pair_s_args[@]}"
		wait_serial s$n $first 180 || return 1
	fi
	qmp_open d$n && qmp_open s$n || return 1
	for c in ${caps//,/ }; do
		list+=("{\"capability\": \"$c\", \"state\": true}")
	done
	if [ ${#list[@]} -gt 0 ]; then
		c="{\"capabilities\": [$(IFS=,; echo "${list[*]}")]}"
		q s$n migrate-set-capabilities "$c" >/dev/null &&
			q d$n migrate-set-capabilities "$c" >/dev/null || return 1
	fi
	diag "s$n $(vm_status s$n), d$n $(vm_status d$n) ($(($(date +%s) - t_start)) s)"
}

# migrate N PARAMS-JSON: start case N's migration with these parameters.
migrate() {
	q s$1 migrate-set-parameters "$2" >/dev/null &&
		q s$1 migrate "{\"uri\": \"tcp:$addr_d:$((7100 + $1))\"}" >/dev/null
}

# mem_compare N: all guest RAM of sN and dN, byte for byte.
mem_compare() {
	local n=$1 vm off diff
	for vm in s$n d$n; do
		q $vm -t 120 pmemsave "{\"val\": 0, \"size\": $((mem << 20)), \"filename\": \"$tmp/$vm.mem\"}" >/dev/null ||
			return 1
	done
	if [ -n "${KVMIG_QEMU_TEST_CORRUPT:-}" ]; then
		off=$((3 << 20))
		python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); b = f.read(1)[0]; f.seek(-1, 1); f.write(bytes([b ^ 0xff]))' \
			"$tmp/d$n.mem" $off
		diag "KVMIG_QEMU_TEST_CORRUPT: flipped the byte at $off of d$n's dump"
	fi
	diff="0 0"
	cmp -s "$tmp/s$n.mem" "$tmp/d$n.mem" ||
		diff=$(cmp -l "$tmp/s$n.mem" "$tmp/d$n.mem" | head -100000 |
			awk '{ p[int(($1 - 1) / 4096)] = 1; b++ }
			     END { for (i in p) n++; printf "%d %d", b, n }')
	rm -f "$tmp/s$n.mem" "$tmp/d$n.mem"
	diag "memory compare of $mem MiB: ${diff% *} bytes differ in ${diff#* } pages"
	[ "${diff% *}" = 0 ]
}

# report N: the source's view of case N's migration.
report() {
	local r f v out=
	r=$(q s$1 -t 20 query-migrate)
	for f in status setup-time total-time downtime expected-downtime \
		transferred dirty-sync-count; do
		v=$(field "$r" $f) && out+=" $f $v"
	done
	diag "s$1 query-migrate:$out"
}

# kvmig_carried N: with x-kvmig, kvmig moved the guest's RAM, not QEMU's
# "ram": the source's kvmig session is DONE (state 6) and sent every page
# of guest RAM at least once, with contents or as a zero page.
kvmig_carried() {
	local r line sent zero
	r=$(q s$1 human-monitor-command '{"command-line": "info migrate"}') ||
		return 1
	case $r in *"kvmig: "*) ;; *) diag "s$1: no kvmig line in info migrate"; return 1 ;; esac
	line=${r#*kvmig: }
	line=${line%%\\*}
	diag "s$1 kvmig: $line"
	sent=${line#*pages sent }
	sent=${sent%%,*}
	zero=${line#*zero pages }
	zero=${zero%%,*}
	[[ $line == "state 6,"* ]] && [ $((sent + zero)) -ge $((mem * 256)) ]
}

# full N GUEST: a migration that must complete, then the memory compare
# and the destination resumed.
full() {
	local n=$1 g=$2 t0
	pair "$n" "$g" || return 1
	t0=$(date +%s)
	# The count guest rewrites all its RAM in a few ms: let the switchover
	# take up to 20 s, so that it converges after one round.
	migrate "$n" '{"max-bandwidth": 1073741824, "downtime-limit": 20000}' ||
		return 1
	if ! q s$n -t 180 migrate-wait >/dev/null; then
		report "$n"
		diag "d$n: $(tr '\n' ' ' <"$tmp/d$n.log")"
		return 1
	fi
	verify_completed "$n" "$t0"
}

# verify_completed N T0: case N's migration, started at T0 (date +%s), has
# completed: the source's report; with x-kvmig, kvmig carried the RAM;
# the source in postmigrate, the destination paused; all guest RAM
# compared; the destination resumed and printing.
verify_completed() {
	local n=$1 t0=$2 ss sd
	report "$n"
	case " ${caps//,/ } " in
	*" x-kvmig "*) kvmig_carried "$n" || return 1 ;;
	esac
	ss=$(vm_status s$n) sd=$(vm_status d$n)
	diag "after $(($(date +%s) - t0)) s: s$n $ss, d$n $sd"
	[ "$ss" = postmigrate ] && [ "$sd" = paused ] || return 1
	t0=$(date +%s)
	mem_compare "$n" || return 1
	diag "compare took $(($(date +%s) - t0)) s"
	q d$n cont >/dev/null || return 1
	t0=$(date +%s)
	if ! advances d$n 30; then
		diag "d$n printed nothing after cont ($(vm_status d$n))"
		return 1
	fi
	diag "d$n $(vm_status d$n), printed $(serial_size d$n) bytes $(($(date +%s) - t0)) s after cont"
}

# precopy N: start a migration of the count guest throttled to 1 MiB/s,
# so that pre-copy of its RAM lasts a minute; return once it is active and
# has sent something.
precopy() {
	local n=$1 r
	pair "$n" count || return 1
	migrate "$n" '{"max-bandwidth": 1048576, "downtime-limit": 300}' ||
		return 1
	r=$(q s$n migrate-wait active) || { diag "s$n: $r"; return 1; }
	sleep 2
	report "$n"
}

# src_runs N: the source guest is running and still prints.
src_runs() {
	local st
	st=$(vm_status s$1)
	diag "s$1 $st"
	[ "$st" = running ] && advances s$1 30
}

case_cancel() {
	local r
	precopy 2 || return 1
	q s2 migrate_cancel >/dev/null || return 1
	r=$(q s2 migrate-wait cancelled)
	diag "s2 after migrate_cancel: $(field "$r" status)"
	[ "$(field "$r" status)" = cancelled ] && src_runs 2
}

case_kill_dst() {
	local r
	precopy 3 || return 1
	stop_vm d3
	r=$(q s3 -t 120 migrate-wait failed)
	diag "s3 after the destination's SIGKILL: $(field "$r" status)"
	[ "$(field "$r" status)" = failed ] && src_runs 3
}

case_kill_src() {
	local i st=
	precopy 4 || return 1
	stop_vm s4
	# The destination must not run the guest: it exits, or stays in
	# inmigrate (or paused) without running; its guest never prints.
	for ((i = 0; i < 20; i++)); do
		sleep 1
		alive d4 || break
		st=$(vm_status d4 3)
		[ "$st" = running ] && break
	done
	if alive d4; then
		diag "d4 still there $i s after the source's SIGKILL: $st"
		[ "$st" != running ] || return 1
	else
		wait "${PID[d4]}"
		diag "d4 exited ($?) within $((i + 1)) s of the source's SIGKILL: $(tr '\n' ' ' <"$tmp/d4.log")"
		unset "PID[d4]"
	fi
	diag "d4's guest printed $(serial_size d4) bytes"
	[ "$(serial_size d4)" = 0 ]
}

# tenths X: X/10 with one decimal.
tenths() { echo "$(($1 / 10)).$(($1 % 10))"; }

# case_auto_converge: the count guest, unpaced (as fast as it can),
# against a link capped at $ac_bw bytes/s, with auto-converge on the
# source (cpu-throttle-initial 50, cpu-throttle-increment 25,
# max-cpu-throttle 99). The guest dirties its RAM faster than half of
# what pre-copy sends, so the throttle must step up: QEMU's own after two
# bitmap syncs in a row that found more than half of what was sent
# dirtied again (throttle-trigger-threshold 50); under x-kvmig, kvmig's
# AUTO throttle after two such harvests, applied by QEMU after each round
# (Documentation/throttle.rst). query-migrate is polled about every
# second for cpu-throttle-percentage. Passes only if it rose above 0, the
# migration completed and then passed verify_completed, and the source's
# throttle was off after it.
case_auto_converge() {
	local n=6 r st pct last=0 top=0 steps='' polls=0 t0 e0 s0 t1='' s1='' what
	pair $n count || return 1
	q s$n migrate-set-capabilities '{"capabilities": [{"capability": "auto-converge", "state": true}]}' >/dev/null ||
		return 1
	s0=$(serial_size s$n)
	t0=$(date +%s) e0=$SECONDS
	migrate $n "{\"max-bandwidth\": $ac_bw, \"downtime-limit\": 300, \"throttle-trigger-threshold\": 50, \"cpu-throttle-initial\": 50, \"cpu-throttle-increment\": 25, \"max-cpu-throttle\": 99}" ||
		return 1
	while :; do
		if ! r=$(q s$n query-migrate); then
			diag "s$n: query-migrate failed $((SECONDS - e0)) s after migrate: $r"
			return 1
		fi
		polls=$((polls + 1))
		st=$(field "$r" status)
		pct=$(field "$r" cpu-throttle-percentage) || pct=0
		case $pct in '' | *[!0-9]*) pct=0 ;; esac
		if [ "$pct" != "$last" ]; then
			steps+="${steps:+, }$pct % at $((SECONDS - e0)) s"
			last=$pct
		fi
		[ "$pct" -le "$top" ] || top=$pct
		# The guest's own rate (a serial byte per MiB written) until
		# the throttle first shows.
		if [ "$pct" -gt 0 ] && [ -z "$t1" ]; then
			t1=$SECONDS s1=$(serial_size s$n)
		fi
		case $st in completed | failed | cancelled) break ;; esac
		if [ $((SECONDS - e0)) -ge 240 ]; then
			diag "s$n: still $st 240 s after migrate"
			break
		fi
		sleep 1
	done
	what="before the throttle"
	if [ -z "$t1" ]; then
		t1=$SECONDS s1=$(serial_size s$n) what="during the migration, never throttled"
	fi
	[ $((t1 - e0)) -gt 0 ] || t1=$((e0 + 1))
	diag "s$n auto-converge: $st after $((SECONDS - e0)) s, highest cpu-throttle-percentage $top % (${steps:-never shown}; $polls polls), dirty-sync-count $(field "$r" dirty-sync-count || echo none); the guest wrote $(tenths $(((s1 - s0) * 10 / (t1 - e0)))) MiB/s in the $((t1 - e0)) s $what, the link is capped at $(tenths $((ac_bw * 10 >> 20))) MiB/s"
	if [ "$st" != completed ]; then
		report "$n"
		diag "s$n: $st $(field "$r" error-desc); d$n: $(tr '\n' ' ' <"$tmp/d$n.log")"
		return 1
	fi
	if [ "$top" = 0 ]; then
		diag "no throttle: the guest did not outrun the link, or auto-converge did nothing; s$n: $(tr '\n' ' ' <"$tmp/s$n.log")"
		return 1
	fi
	verify_completed "$n" "$t0" || return 1
	r=$(q s$n query-migrate) || return 1
	if pct=$(field "$r" cpu-throttle-percentage) && [ "$pct" != 0 ]; then
		diag "s$n: cpu-throttle-percentage still $pct % after the migration"
		return 1
	fi
	diag "s$n: throttle off after the migration"
}

# case_uuid: kvmig's pre-check, through x-kvmig. The destination was
# started as another VM (-uuid): the migration fails in kvmig's handshake,
# before any page of guest RAM can move (kvmig_xfer_test's check fixture
# counts the bytes of such a refusal), the error says why, and the source
# runs on.
case_uuid() {
	local r rc
	case " ${caps//,/ } " in
	*" x-kvmig "*) ;;
	*) echo "ok 7 pre-check refuses another VM # SKIP the pre-check is kvmig's (x-kvmig)"; return 2 ;;
	esac
	pair_d_args=(-uuid 6b766d69-6700-4000-8000-0000000000d7)
	pair_s_args=(-uuid 6b766d69-6700-4000-8000-0000000000a7)
	pair 7 count
	rc=$?
	pair_d_args=() pair_s_args=()
	[ $rc = 0 ] || return 1
	migrate 7 '{"max-bandwidth": 1073741824, "downtime-limit": 20000}' ||
		return 1
	r=$(q s7 -t 120 migrate-wait failed)
	diag "s7 after the migration: $r"
	case $r in
	*"pre-check refused the migration: the VMs' UUIDs differ"*) ;;
	*) return 1 ;;
	esac
	src_runs 7
}

run() { # run N NAME FUNCTION ARGS...
	local n=$1 name=$2 t0
	t0=$(date +%s)
	shift 2
	case " ${KVMIG_QEMU_CASES:-$n} " in
	*" $n "*) ;;
	*) echo "ok $n $name # SKIP not in KVMIG_QEMU_CASES"; return ;;
	esac
	"$@"
	local rc=$?
	# 2: the case said it skips.
	[ $rc = 2 ] && return
	diag "case $n: $(($(date +%s) - t0)) s"
	check "$n" "$name" test $rc = 0
	stop_vm s$n d$n
}

diag "$($qemu --version | head -1), accel $accel, ${mem} MiB, capabilities: ${caps:-none}"
# Bring QEMU's and Python's files into the page cache one after the other,
# not all at once in the first case (the lab reads them over 9p).
t0=$SECONDS
$qmp -t 0 "$tmp/none" query-status 2>/dev/null
printf '%s\n' '{"execute": "qmp_capabilities"}' '{"execute": "quit"}' |
	timeout 120 "$qemu" -machine none -accel "$accel" -display none \
		-nodefaults -qmp stdio >/dev/null 2>&1
diag "warm-up: $((SECONDS - t0)) s"
run 1 "count guest: migration completes, RAM equal, destination runs on" full 1 count
run 2 "migrate_cancel in mid pre-copy: source runs on" case_cancel
run 3 "destination killed in mid pre-copy: source fails, runs on" case_kill_dst
run 4 "source killed in mid pre-copy: destination does not run" case_kill_src
run 5 "dmaio guest (virtio-blk DMA): migration completes, RAM equal, destination runs on" full 5 dmaio
run 6 "auto-converge: guest faster than the link throttled, migration completes, RAM equal, destination runs on" case_auto_converge
run 7 "pre-check: a destination of another VM (-uuid) refuses the migration, the error says why, source runs on" case_uuid
diag "total $(($(date +%s) - t_start)) s"
exit $fail
