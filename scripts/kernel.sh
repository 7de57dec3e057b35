#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Provide the lab's two kernels, cached outside the checkout:
#
#   kernel.sh debug   build the debug kernel from Debian's linux-source-6.12
#                     with allnoconfig + lab/debug.config; prints its build dir
#   kernel.sh stock   fetch Debian's newest 6.12 amd64 image whose headers are
#                     also offered; prints the unpacked dir
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
[ "${1:-}" = stock ] && lock=$cache/.lock-stock || lock=$cache/.lock
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

# Newest 6.12.N for which the unsigned image and the headers are both offered.
stock_abi() {
	local v
	for v in $(apt-cache search --names-only \
			'^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' |
			sed -E 's/^linux-image-(6\.12\.[0-9]+\+deb12)-amd64.*/\1/' |
			sort -Vr); do
		if apt-cache show "linux-headers-$v-amd64" >/dev/null 2>&1; then
			echo "$v-amd64"
			return
		fi
	done
	log "no linux-image-6.12.*-amd64-unsigned with headers offered"
	exit 1
}

# The image, the headers and what they need are unpacked side by side under
# <entry>/root, never installed on the machine; the headers' one absolute
# path is made relative, so <entry>/root/usr/src/linux-headers-<abi> is a
# KDIR for out-of-tree builds.
stock_kernel() {
	local abi kver out tmp deb hdr
	[ -n "$(apt-cache search --names-only '^linux-image-6\.12' | head -1)" ] ||
		apt-get update -qq >&2
	abi=$(stock_abi)
	kver=${abi%-amd64}
	out=$cache/stock-$abi
	if [ ! -f "$out/.done" ]; then
		tmp=$out.tmp
		rm -rf "$tmp"
		mkdir -p "$tmp/debs"
		log "fetching $abi"
		(cd "$tmp/debs" && apt-get download -qq \
			"linux-image-$abi-unsigned" "linux-headers-$abi" \
			"linux-headers-$kver-common" "linux-kbuild-$kver" >&2)
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
stock) stock_kernel ;;
*)
	echo "usage: $0 debug|stock" >&2
	exit 2
	;;
esac
