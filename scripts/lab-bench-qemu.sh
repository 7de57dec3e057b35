#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# lab-bench-qemu.sh MODDIR OUTDIR [RUNS [MiB]]: inside the lab guest, QEMU's
# migration paths side by side on the same guest, the same link and the
# same dirty rate: the count guest (userspace/qemu/guest/count.img, writes
# every page above 1 MiB for ever, paced to KVMIG_BENCH_RATE MiB/s, default
# 16; 0 for as fast as it can), source and destination QEMU in two
# network namespaces joined by veth (userspace/qemu/lab-qemu.sh, as
# selftests/kvmig_qemu_test.sh), RUNS migrations (default 3) of a MiB-MiB
# guest (default 256) per path:
#   precopy     Debian's QEMU, plain pre-copy
#   multifd     Debian's QEMU, multifd with 2 channels
#   multifd-zc  the same with zero-copy-send (QEMU under -overcommit
#               mem-lock=on; if that fails, ulimit -l unlimited instead;
#               KVMIG_BENCH_ZC=ulimit or none to start with those)
#   kvmig       $KVMIG_QEMU_KVMIG (QEMU with userspace/qemu/patches),
#               capability x-kvmig on both ends, kvmig.ko from MODDIR;
#               skipped, with the reason, if absent or its migration fails
# All with the same downtime-limit and max-bandwidth (KVMIG_BENCH_DOWNTIME
# ms, default 300, KVMIG_BENCH_BW bytes/s); the destination runs -incoming
# without -S, so that it resumes the guest by itself. The guest's pace is in
# TSC ticks per MiB (fw_cfg opt/kvmig/tsc-per-mib, see count.S), from this
# kernel's TSC frequency: KVM gives the guest the host's TSC rate.
#
# Per run: QEMU's total time and downtime (query-migrate); the guest's own
# view of the downtime, the longest gap in its serial progress (COM1 on a
# chardev socket read by userspace/qemu/serial-ts.py, which timestamps the
# bytes as they arrive, the source's then the destination's); CPU from
# /proc/stat system-wide (both QEMUs share this kernel) and from /proc/PID/
# stat per QEMU and per kvmig worker kthread (kvmig-<id>); bytes on the
# wire from the source veth's counters. The window: from the migrate
# command to the destination's "running". For kvmig, kvmigctl watch --json
# meanwhile (the ETA it showed, against the actual end). scripts/
# bench-qemu-report.py makes OUTDIR/bench-qemu.txt, .csv and .svg; raw
# data in OUTDIR/bench-qemu-raw/.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
mod=$1 out=$2 runs=${3:-3} mem=${4:-256}
mkdir -p "$out"
# Both relative to where we were called from: resolve before the cd.
mod=$(cd "$mod" 2>/dev/null && pwd || echo "$mod")
out=$(cd "$out" && pwd)
cd "$top/selftests" || exit 1
. ./lib.sh
qemu_std='qemu-system-x86_64'
qemu_kvmig=${KVMIG_QEMU_KVMIG:-${KVMIG_CACHE:-$HOME/.cache/kvmig}/qemu-src/build/qemu-system-x86_64}
downtime=${KVMIG_BENCH_DOWNTIME:-300}
rate=${KVMIG_BENCH_RATE:-16}
bw=${KVMIG_BENCH_BW:-1073741824}
paths=${KVMIG_BENCH_PATHS:-precopy multifd multifd-zc kvmig}
# KVMIG_BENCH_ACCEL=tcg: a smoke test of the script outside the lab.
accel=${KVMIG_BENCH_ACCEL:-kvm} cpu=host
[ "$accel" = tcg ] && cpu=qemu64
qmp=$top/userspace/qemu/qmp.py
guest=$top/userspace/qemu/guest
serial_sock=1
. "$top/userspace/qemu/lab-qemu.sh"

[ "$(id -u)" = 0 ] || { echo "lab-bench-qemu: needs root" >&2; exit 1; }
[ "$accel" != kvm ] || [ -c /dev/kvm ] || { echo "lab-bench-qemu: no /dev/kvm" >&2; exit 1; }
[ -f "$guest/count.img" ] || { echo "lab-bench-qemu: no $guest/count.img" >&2; exit 1; }
case $rate in *[!0-9]* | '') echo "lab-bench-qemu: KVMIG_BENCH_RATE: MiB/s, an integer" >&2; exit 1 ;; esac
pace=()
if [ "$rate" -gt 0 ]; then
	# "tsc: Detected 2095.990 MHz processor", or the refined calibration
	# after it: kHz are the digits without the point.
	tsc_khz=$(dmesg | grep -E 'tsc: (Detected|Refined TSC clocksource calibration:) [0-9]+\.[0-9]{3} MHz' |
		tail -1 | sed -E 's/.* ([0-9]+)\.([0-9]{3}) MHz.*/\1\2/')
	[ -n "$tsc_khz" ] || { echo "lab-bench-qemu: no TSC frequency in dmesg" >&2; exit 1; }
	pace=(-fw_cfg "name=opt/kvmig/tsc-per-mib,string=$((tsc_khz * 1000 / rate))")
fi
raw=$out/bench-qemu-raw
rm -rf "$raw"
mkdir -p "$raw"
tmp=$(mktemp -d)
ns_s=kvmigb-src-$$ ns_d=kvmigb-dst-$$ if_s=veth-bs addr_d=10.98.2.2
hz=$(getconf CLK_TCK)
zc_used=
loaded=
if [ ! -e /sys/module/kvmig ] && [ -f "$mod/kvmig.ko" ]; then
	# kvmig.ko needs the RDMA CM: a module on the stock kernels.
	[ -z "${KVMIG_MODROOT:-}" ] || "$top/scripts/lab-modprobe" rdma_cm
	insmod "$mod/kvmig.ko" && loaded=1 || echo "lab-bench-qemu: insmod $mod/kvmig.ko failed" >&2
fi
sampler='' reader=''
cleanup() {
	local p
	for p in "${PID[@]}" "${QP[@]}" $sampler $reader; do kill -9 "$p" 2>/dev/null; done
	cleanup_ns
	[ -n "$loaded" ] && rmmod kvmig 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
exec 3>&1
trap '' PIPE
[ -d /sys/module/veth ] || "$top/scripts/lab-modprobe" veth
veth_ns $ns_s $if_s $ns_d veth-bd 10.98.2.1/24 $addr_d/24 ||
	{ echo "lab-bench-qemu: cannot make the namespaces and veth" >&2; exit 1; }

# All the VMs' serial sockets, up front: one Python for the whole bench.
names=()
for p in $paths; do
	for ((i = 1; i <= runs + 1; i++)); do names+=("s-$p-$i" "d-$p-$i"); done
done
mkfifo "$tmp/reader.in"
"$top/userspace/qemu/serial-ts.py" "$tmp" "${names[@]}" <"$tmp/reader.in" >"$tmp/reader.out" 2>&1 &
reader=$!
exec {rfd}>"$tmp/reader.in"
t0=$SECONDS
until grep -q ready "$tmp/reader.out" 2>/dev/null; do
	kill -0 $reader 2>/dev/null && [ $((SECONDS - t0)) -lt 120 ] ||
		{ echo "lab-bench-qemu: serial-ts.py: $(cat "$tmp/reader.out")" >&2; exit 1; }
	sleep 0.3
done

# cpu_stat: system-wide ticks "busy guest softirq" (busy: all but idle
# and iowait; guest is also inside user, see proc(5)).
cpu_stat() {
	local c us ni sy irq si st g gn
	read -r c us ni sy _ _ irq si st g gn </proc/stat
	echo "$((us + ni + sy + irq + si + st)) $((g + gn)) $si"
}
# proc_cpu PID: "utime+stime guest_time" ticks of a process (all threads,
# dead ones included), 0 0 if gone.
proc_cpu() {
	local s f
	{ s=$(<"/proc/$1/stat"); } 2>/dev/null || { echo "0 0"; return; }
	# shellcheck disable=SC2206
	f=(${s##*) })
	echo "$((f[11] + f[12])) ${f[40]}"
}
# wire: "tx rx" bytes of the source's veth. (No <(...): the lab has no
# /dev/fd.)
wire() {
	local l
	while read -r l; do
		case $l in "$if_s:"*) set -- ${l#*:}; echo "${9} ${1}"; return ;; esac
	done <<<"$(nsenter --net="/run/netns/$ns_s" cat /proc/net/dev)"
	echo "0 0"
}
# kvmig_sampler DIR: every 0.2 s, each kvmig-<id> kthread's utime+stime
# into DIR/PID: a worker ends with its session, when QEMU closes
# /dev/kvmig, maybe before the run's last snapshot.
kvmig_sampler() {
	local f c pid s x
	while :; do
		for f in /proc/[0-9]*/comm; do
			read -r c 2>/dev/null <"$f" || continue
			case $c in kvmig-*) ;; *) continue ;; esac
			pid=${f#/proc/}
			pid=${pid%/comm}
			{ s=$(<"/proc/$pid/stat"); } 2>/dev/null || continue
			# shellcheck disable=SC2206
			x=(${s##*) })
			echo "$((x[11] + x[12]))" >"$1/$pid"
		done
		sleep 0.2
	done
}
kvmig_ticks() { # sum of DIR's samples
	local f v sum=0
	for f in "$1"/*; do
		[ -f "$f" ] && read -r v <"$f" && sum=$((sum + v))
	done
	echo $sum
}

caps_json() { # caps_json CAP...: migrate-set-capabilities' argument
	local c list=()
	for c in "$@"; do list+=("{\"capability\": \"$c\", \"state\": true}"); done
	echo "{\"capabilities\": [$(IFS=,; echo "${list[*]}")]}"
}

# run_one PATH N: one migration; appends a line to $raw/runs.tsv. Returns
# non-zero, with the reason in $why, if it did not complete.
run_one() {
	local p=$1 n=$2 bin=$qemu_std caps=() scaps=() params='' extra=()
	local s=s-$p-$n d=d-$p-$n
	local port=$((7200 + RANDOM % 500)) r st c0 c1 w0 w1 ps0 pd0 ps1 pd1 ta tb tc kd wpid
	case $p in
	multifd) caps=(multifd) params=', "multifd-channels": 2' ;;
	multifd-zc)
		caps=(multifd) scaps=(zero-copy-send) params=', "multifd-channels": 2'
		[ "$zc_mode" = mem-lock ] && extra=(-overcommit mem-lock=on) ;;
	kvmig) bin=$qemu_kvmig caps=(x-kvmig) ;;
	esac
	qemu=$bin
	why=
	start_vm "$d" $ns_d count -incoming "tcp:$addr_d:$port" "${pace[@]}" "${extra[@]}"
	start_vm "$s" $ns_s count "${pace[@]}" "${extra[@]}"
	# A source guest that prints nothing at all (about one start in
	# twenty in the lab, before any migration: as in kvmig_qemu_test.sh)
	# gets one more start, said as a diagnostic.
	if ! wait_serial "$s" 1 60; then
		diag "$s: no serial output in 60 s, QEMU $(alive "$s" && echo "alive, wchan $(cat "/proc/${PID[$s]}/wchan" 2>/dev/null)" || echo gone); starting it again"
		stop_vm "$s"
		start_vm "$s" $ns_s count "${pace[@]}" "${extra[@]}"
	fi
	# Every page written once, and then some, before the migration starts.
	if ! wait_serial "$s" $(($(first_pass) + 4)) 240; then
		why="source guest did not start: $(serial_size "$s") serial bytes; QEMU $(alive "$s" && echo alive || echo gone): $(tr '\n' ' ' <"$tmp/$s.log")"
		return 1
	fi
	alive "$d" || { why="destination QEMU exited: $(tr '\n' ' ' <"$tmp/$d.log")"; return 1; }
	qmp_open "$d" && qmp_open "$s" || { why="qmp"; return 1; }
	if [ ${#caps[@]} -gt 0 ]; then
		r=$(q "$d" migrate-set-capabilities "$(caps_json "${caps[@]}")") &&
			r=$(q "$s" migrate-set-capabilities "$(caps_json "${caps[@]}" "${scaps[@]}")") ||
			{ why="migrate-set-capabilities: $r"; return 1; }
	fi
	[ -n "$params" ] && { r=$(q "$d" migrate-set-parameters "{${params#, }}") ||
		{ why="destination migrate-set-parameters: $r"; return 1; }; }
	r=$(q "$s" migrate-set-parameters "{\"downtime-limit\": $downtime, \"max-bandwidth\": $bw$params}") ||
		{ why="migrate-set-parameters: $r"; return 1; }
	rm -f "$tmp/kv"/*
	# kvmig: what an operator watching it sees, every 0.2 s, for the
	# ETA's error and the per-round timeline (scripts/bench-plots.py).
	wpid=
	if [ "$p" = kvmig ]; then
		"$top/userspace/kvmigctl" --json watch --role source --interval 200ms \
			--wait 60s >"$raw/watch-kvmig-$n.jsonl" 2>&1 &
		wpid=$!
	fi
	c0=$(cpu_stat) w0=$(wire) ps0=$(proc_cpu "${PID[$s]}") pd0=$(proc_cpu "${PID[$d]}")
	ta=$EPOCHREALTIME
	r=$(q "$s" migrate "{\"uri\": \"tcp:$addr_d:$port\"}") || { why="migrate: $r"; return 1; }
	r=$(q "$s" -t 300 migrate-wait)
	st=$(field "$r" status)
	tb=$EPOCHREALTIME
	# watch ends by itself at done; not after a failure.
	[ -n "$wpid" ] && { [ "$st" = completed ] || kill "$wpid"; wait "$wpid"; }
	if [ "$st" != completed ]; then
		why="status ${st:-unknown}: $(field "$r" error-desc); destination: $(tr '\n' ' ' <"$tmp/$d.log")"
		return 1
	fi
	if ! q "$d" -t 120 status-wait running >/dev/null; then
		why="destination not running: $(vm_status "$d") $(tr '\n' ' ' <"$tmp/$d.log")"
		return 1
	fi
	tc=$EPOCHREALTIME
	c1=$(cpu_stat) w1=$(wire) ps1=$(proc_cpu "${PID[$s]}") pd1=$(proc_cpu "${PID[$d]}")
	kd=$(kvmig_ticks "$tmp/kv")
	r=$(q "$s" query-migrate)
	wait_serial "$d" 4 60 || diag "$d: its guest printed $(serial_size "$d") bytes in 60 s"
	# shellcheck disable=SC2086
	set -- $c0 $c1 $w0 $w1 $ps0 $ps1 $pd0 $pd1
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		"$p" "$n" "$(field "$r" total-time)" "$(field "$r" downtime)" \
		"$(field "$r" setup-time)" "$(field "$r" transferred)" "$ta" "$tb" "$tc" \
		"$(field "$r" dirty-sync-count)" \
		$(($9 - $7)) $((${10} - $8)) \
		$(($4 - $1)) $(($5 - $2)) $(($6 - $3)) \
		$((${13} - ${11})) $((${14} - ${12})) $((${17} - ${15})) $((${18} - ${16})) \
		"$kd" "$hz" "$(field "$r" dirty-sync-missed-zero-copy)" >>"$raw/runs.tsv"
	[ "$p" = multifd-zc ] && zc_used="$zc_mode (ulimit -l $(ulimit -l))"
	diag "$p run $n: $(field "$r" status) total $(field "$r" total-time) ms downtime $(field "$r" downtime) ms, wire $((($9 - $7) >> 20)) MiB"
}

printf '# path\trun\ttotal_ms\tdowntime_ms\tsetup_ms\tqemu_transferred\tt_migrate\tt_completed\tt_dst_running\tdirty_syncs\twire_tx\twire_rx\tsys_busy\tsys_guest\tsys_softirq\tsrc_cpu\tsrc_guest\tdst_cpu\tdst_guest\tkvmig_worker\thz\tzc_missed\n' >"$raw/runs.tsv"
: >"$raw/skips.tsv"
mkdir -p "$tmp/kv"
kvmig_sampler "$tmp/kv" &
sampler=$!
t_all=$SECONDS
diag "$($qemu_std --version | head -1); ${mem} MiB count guest at $rate MiB/s (${pace[1]:-unpaced}), downtime-limit $downtime ms, max-bandwidth $bw B/s, $runs runs per path"
# Warm the page cache (the lab reads binaries over 9p).
cat "$(command -v "$qemu_std")" >/dev/null
for p in $paths; do
	zc_mode=${KVMIG_BENCH_ZC:-mem-lock}
	t_path=$SECONDS
	if [ "$p" = kvmig ]; then
		if [ ! -x "$qemu_kvmig" ]; then
			printf 'kvmig\tno kvmig QEMU binary at %s (KVMIG_QEMU_KVMIG)\n' "$qemu_kvmig" >>"$raw/skips.tsv"
			diag "kvmig: skipped: no binary $qemu_kvmig"
			continue
		fi
		if [ ! -e /sys/module/kvmig ]; then
			printf 'kvmig\tkvmig.ko not loaded (%s/kvmig.ko)\n' "$mod" >>"$raw/skips.tsv"
			continue
		fi
		cat "$qemu_kvmig" >/dev/null
		diag "kvmig QEMU: $qemu_kvmig ($("$qemu_kvmig" --version | head -1))"
	fi
	ok=0
	for ((n = 1; n <= runs; n++)); do
		if run_one "$p" $n; then
			ok=$((ok + 1))
		else
			diag "$p run $n failed: $why"
			if [ "$p" = multifd-zc ] && [ "$zc_mode" = mem-lock ] && [ $ok = 0 ]; then
				printf '%s\trun %d with -overcommit mem-lock=on failed: %s\n' "$p" $n "$why" >>"$raw/skips.tsv"
				stop_vm "s-$p-$n" "d-$p-$n"
				zc_mode='ulimit'
				ulimit -l unlimited
				diag "$p: retrying with ulimit -l unlimited, without mem-lock"
				# The spare name of this path: run runs+1.
				if run_one "$p" $((runs + 1)); then ok=1; else
					printf '%s\twith ulimit -l unlimited: %s\n' "$p" "$why" >>"$raw/skips.tsv"
				fi
				stop_vm "s-$p-$((runs + 1))" "d-$p-$((runs + 1))"
				[ $ok = 1 ] && continue
			elif [ $ok = 0 ]; then
				printf '%s\trun %d failed: %s\n' "$p" $n "$why" >>"$raw/skips.tsv"
			else
				printf '%s\trun %d failed (others completed): %s\n' "$p" $n "$why" >>"$raw/skips.tsv"
			fi
		fi
		stop_vm "s-$p-$n" "d-$p-$n"
		# A path that fails its first run is skipped (kvmig may not work yet).
		[ $ok = 0 ] && break
	done
	diag "$p: $ok runs completed in $((SECONDS - t_path)) s"
done
diag "all paths: $((SECONDS - t_all)) s"
kill $sampler 2>/dev/null
sampler=
exec {rfd}>&-
sleep 0.5
for f in "$tmp"/*.ts "$tmp"/*.log; do [ -f "$f" ] && cp "$f" "$raw/"; done
{
	echo "$(date -u +%FT%TZ) kernel $(uname -r), $(nproc) vCPUs, QEMU TCG with nested SVM"
	echo "$($qemu_std --version | head -1); kvmig QEMU $qemu_kvmig"
	echo "${mem} MiB count guest writing ${rate} MiB/s (0: unpaced), downtime-limit $downtime ms, max-bandwidth $bw B/s, multifd-channels 2, zero-copy-send's locked memory: ${zc_used:-none worked}"
} >"$raw/info.txt"
python3 "$top/scripts/bench-qemu-report.py" "$raw" "$out"
