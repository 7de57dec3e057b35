#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Provide the lab's kernels, cached outside the checkout:
#
#   kernel.sh debug    build the debug kernel from Debian's linux-source-6.12
#                      with allnoconfig + lab/debug.config; prints its build dir
#   kernel.sh stock    fetch Debian's newest 6.12 amd64 image whose headers are
#                      also offered; prints the unpacked dir
#   kernel.sh stock61  the same for Debian 12's own 6.1 LTS (6.1.0-N-amd64)
#
# The cache is $KVMIG_CACHE (default ~/.cache/kvmig); entries are keyed by
# version and configuration and only published once complete, so a second
# run reuses them and an interrupted one starts over.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cache=${KVMIG_CACHE:-$HOME/.cache/kvmig}
jobs=${KVMIG_JOBS:-$(($(nproc) + 1))}
mkdir -p "$cache"
# One builder at a time: a second caller (a lab boot, a module build) would
# otherwise start the same build over in the same directory. It waits, then
# finds the kernel cached.
# The stock kernels share a lock of their own (and apt-get update), so that
# fetching one never waits for a debug build.
case ${1:-} in stock*) lock=$cache/.lock-stock ;; *) lock=$cache/.lock ;; esac
exec 8>"$lock"
flock 8

log() { echo "kernel: $*" >&2; }

debug_kernel() {
	local ver src key out tmp frag t0
	frag=$top/lab/debug.config
	ver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
	key=$( (echo "$ver"; gcc --version | head -1; cat "$frag") |
		sha256sum | cut -c1-12)
	out=$cache/debug-$ver-$key
	if [ -f "$out/.done" ]; then
		echo "$out"
		return
	fi

	src=$cache/src-$ver
	if [ ! -f "$src/.done" ]; then
		log "unpacking linux-source $ver"
		rm -rf "$src" "$src.tmp"
		mkdir -p "$src.tmp"
		tar -C "$src.tmp" --strip-components=1 \
			-xf /usr/src/linux-source-6.12.tar.xz
		touch "$src.tmp/.done"
		mv "$src.tmp" "$src"
	fi

	tmp=$out.tmp
	rm -rf "$tmp"
	# A tree built from an earlier fragment turns a full build into an
	# incremental one: kbuild tracks dependencies per CONFIG_ option.
	seed=$(ls -dt "$cache"/debug-"$ver"-*/.done 2>/dev/null | head -1) || true
	if [ -n "$seed" ]; then
		log "seeding from $(dirname "$seed")"
		cp -a "$(dirname "$seed")" "$tmp"
		rm -f "$tmp/.done"
	fi
	mkdir -p "$tmp"
	log "configuring debug kernel in $tmp"
	make -s -C "$src" O="$tmp" allnoconfig >&2
	"$src/scripts/kconfig/merge_config.sh" -m -O "$tmp" \
		"$tmp/.config" "$frag" >"$tmp/merge_config.log"
	make -s -C "$src" O="$tmp" olddefconfig >&2

	# Kconfig silently drops options whose dependencies are unmet: refuse
	# to build a kernel that lacks something the fragment asked for.
	local bad=0 line
	while read -r line; do
		case "$line" in CONFIG_*) ;; *) continue ;; esac
		grep -qxF "$line" "$tmp/.config" || {
			log "missing from .config: $line"
			bad=1
		}
	done <"$frag"
	[ $bad -eq 0 ] || exit 1

	log "building debug kernel with -j$jobs (this takes a while once)"
	t0=$(date +%s)
	make -s -C "$src" O="$tmp" -j"$jobs" >&2
	log "debug kernel built in $(($(date +%s) - t0)) s"
	echo "$(($(date +%s) - t0))" >"$tmp/.build-seconds"
	touch "$tmp/.done"
	rm -rf "$out"
	mv "$tmp" "$out"
	# Older configurations are of no further use: keep the cache small.
	find "$cache" -maxdepth 1 -name "debug-*" ! -path "$out" \
		-exec rm -rf {} + 2>/dev/null
	echo "$out"
}

# The stock kernels, by name: the series and an extended regular expression
# for the <kver> part of Debian's package names (linux-image-<kver>-amd64):
# 6.12.N+deb12, the 6.12 that Debian 12 also ships (bookworm-security), and
# 6.1.0-N, its own 6.1 (the ABI number N, not the upstream 6.1.M, is in the
# names: 6.1.0-57 is 6.1.192).
stock_series() {
	case $1 in
	stock) echo '6.12 6\.12\.[0-9]+\+deb12' ;;
	stock61) echo '6.1 6\.1\.0-[0-9]+' ;;
	*) return 1 ;;
	esac
}

# stock_abi KVER-RE SERIES: the newest <kver>-amd64 whose image (unsigned if
# offered, else the signed one: the same bzImage with an EFI signature) and
# headers are both offered, with the image package's name:
# "<kver>-amd64 linux-image-<kver>-amd64[-unsigned]".
stock_abi() {
	local re=$1 series=$2 v img
	for v in $(apt-cache search --names-only \
			"^linux-image-($re)-amd64(-unsigned)?\$" |
			sed -E "s/^linux-image-($re)-amd64.*/\\1/" |
			sort -Vru); do
		apt-cache show "linux-headers-$v-amd64" >/dev/null 2>&1 || continue
		img=linux-image-$v-amd64-unsigned
		apt-cache show "$img" >/dev/null 2>&1 || img=${img%-unsigned}
		echo "$v-amd64 $img"
		return
	done
	log "no linux-image-$series amd64 image with headers offered"
	exit 1
}

# stock_kernel NAME: the image, the headers and what the headers depend on
# (their -common package and linux-kbuild: linux-kbuild-<kver> for 6.12,
# linux-kbuild-6.1 for 6.1; read from the headers' Depends) are unpacked
# side by side under <entry>/root, never installed on the machine; the
# headers' one absolute path is made relative, so
# <entry>/root/usr/src/linux-headers-<abi> is a KDIR for out-of-tree builds.
stock_kernel() {
	local series re abi img out tmp deb hdr deps r
	r=$(stock_series "$1")
	read -r series re <<<"$r"
	[ -n "$(apt-cache search --names-only "^linux-image-($re)-amd64" | head -1)" ] ||
		apt-get update -qq >&2
	r=$(stock_abi "$re" "$series")
	read -r abi img <<<"$r"
	out=$cache/stock-$abi
	if [ ! -f "$out/.done" ]; then
		tmp=$out.tmp
		rm -rf "$tmp"
		mkdir -p "$tmp/debs"
		deps=$(apt-cache show --no-all-versions "linux-headers-$abi" |
			sed -n 's/^Depends: //p' | sed 's/[,|]/\n/g' |
			sed -E 's/^ *([^ ]+).*/\1/' |
			grep -E '^linux-(headers-.*-common|kbuild-.*)$' | sort -u) || true
		case $deps in *linux-kbuild-*) ;; *)
			log "no linux-kbuild in the Depends of linux-headers-$abi"
			exit 1
			;;
		esac
		log "fetching $abi: $img linux-headers-$abi ${deps//$'\n'/ }"
		# shellcheck disable=SC2086 # deps: package names
		(cd "$tmp/debs" && apt-get download -qq \
			"$img" "linux-headers-$abi" $deps >&2)
		for deb in "$tmp"/debs/*.deb; do
			dpkg-deb -x "$deb" "$tmp/root"
		done
		rm -rf "$tmp/debs"
		hdr=$tmp/root/usr/src/linux-headers-$abi
		sed -i "s|^include /usr/src/|include \$(dir \$(lastword \$(MAKEFILE_LIST)))../|" \
			"$hdr/Makefile"
		depmod -b "$tmp/root" "$abi"
		echo "$abi" >"$tmp/abi"
		touch "$tmp/.done"
		rm -rf "$out"
		mv "$tmp" "$out"
	fi
	echo "$out"
}

case "${1:-}" in
debug) debug_kernel ;;
stock | stock61) stock_kernel "$1" ;;
*)
	echo "usage: $0 debug|stock|stock61" >&2
	exit 2
	;;
esac
