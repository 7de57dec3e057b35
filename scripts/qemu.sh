#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Provide Debian's QEMU 7.2 with the project's patches (userspace/qemu/
# patches/series applied in order), cached outside the checkout like the lab
# kernels. Prints the directory that holds qemu-system-x86_64.
#
# The source is Debian's own (apt-get source qemu through a private deb-src
# list: the machine's apt configuration is not touched), with Debian's patches
# applied by dpkg-source. The work tree is a git repository of that pristine
# source: a changed series is reset and re-applied there and ninja rebuilds
# only what the patches touch. Each finished build is published under a key
# of the Debian version, the configure line and the patches, and linked from
# build/qemu/qemu-system-x86_64 in the checkout.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cache=${KVMIG_CACHE:-$HOME/.cache/kvmig}
jobs=${KVMIG_JOBS:-$(($(nproc) + 1))}
pdir=$top/userspace/qemu/patches
mkdir -p "$cache"
exec 7>"$cache/.lock-qemu"
flock 7

log() { echo "qemu: $*" >&2; }

conf=(--target-list=x86_64-softmmu --enable-kvm --disable-tcg
	--without-default-features --disable-docs --disable-user
	--disable-tools --enable-fdt=system --enable-slirp --audio-drv-list=
	--disable-werror
	--firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu)

series=()
if [ -f "$pdir/series" ]; then
	while read -r p; do
		case $p in '' | '#'*) continue ;; esac
		series+=("$pdir/$p")
	done <"$pdir/series"
fi

# The source: Debian's qemu, fetched once.
src=$cache/qemu-src
if [ ! -f "$src/.done" ]; then
	log "fetching Debian's qemu source"
	rm -rf "$src" "$src.tmp"
	mkdir -p "$src.tmp/apt/lists/partial" "$src.tmp/apt/cache/archives/partial"
	sed -n 's/^Types: deb$/Types: deb-src/p; /^URIs:\|^Suites:\|^Components:\|^Signed-By:/p; /^$/p' \
		/etc/apt/sources.list.d/debian.sources >"$src.tmp/apt/debian.sources"
	aopt=(-o Dir::Etc::SourceList=/dev/null
		-o Dir::Etc::SourceParts="$src.tmp/apt"
		-o Dir::State::Lists="$src.tmp/apt/lists"
		-o Dir::Cache="$src.tmp/apt/cache")
	apt-get -qq -o APT::Sandbox::User=root "${aopt[@]}" update >&2
	(cd "$src.tmp" && apt-get -qq -o APT::Sandbox::User=root "${aopt[@]}" source qemu >&2)
	d=$(find "$src.tmp" -mindepth 1 -maxdepth 1 -type d -name 'qemu-*' | head -1)
	[ -n "$d" ] || { log "apt-get source left no tree"; exit 1; }
	dpkg-parsechangelog -l "$d/debian/changelog" -S Version >"$src.tmp/version"
	mv "$d" "$src.tmp/tree"
	(cd "$src.tmp/tree" && git init -q && git add -Af . &&
		git -c user.name=kvmig -c user.email=kvmig@localhost \
			commit -qm "Debian qemu $(cat ../version)" &&
		git tag pristine)
	rm -rf "$src.tmp/apt" "$src.tmp"/qemu_*
	touch "$src.tmp/.done"
	mv "$src.tmp" "$src"
fi
ver=$(cat "$src/version")

key=$( (echo "$ver"; gcc --version | head -1; echo "${conf[*]}"
	cat "${series[@]}" /dev/null) | sha256sum | cut -c1-12)
out=$cache/qemu-$ver-$key
# The lab sees the host's root read-only: build/qemu/ points at the cache.
publish() {
	mkdir -p "$top/build/qemu"
	ln -sfn "$out/qemu-system-x86_64" "$top/build/qemu/qemu-system-x86_64"
	echo "$out"
}
if [ -f "$out/.done" ]; then
	publish
	exit 0
fi

tree=$src/tree
bld=$src/build
log "applying ${#series[@]} patch(es) to qemu $ver"
git -C "$tree" reset -q --hard pristine
git -C "$tree" clean -fdqx
for p in "${series[@]}"; do
	git -C "$tree" apply --whitespace=nowarn "$p" ||
		{ log "$(basename "$p") does not apply"; exit 1; }
done
if [ ! -f "$bld/build.ninja" ] || [ "$(cat "$bld/.conf" 2>/dev/null)" != "${conf[*]}" ]; then
	rm -rf "$bld"
	mkdir -p "$bld"
	log "configuring in $bld"
	(cd "$bld" && "$tree/configure" "${conf[@]}" >configure.log 2>&1) ||
		{ tail -20 "$bld/configure.log" >&2; exit 1; }
	echo "${conf[*]}" >"$bld/.conf"
fi
t0=$(date +%s)
log "building (ninja -j$jobs)"
# A build and a lab boot on the same two cores would each run at half speed
# and the boot could time out: the build waits for the lab, and the reverse.
flock "${KVMIG_LAB_LOCK:-/tmp/kvmig-lab.lock}" \
	ninja -C "$bld" -j"$jobs" qemu-system-x86_64 >"$bld/ninja.log" 2>&1 ||
	{ grep -B2 -A12 'error' "$bld/ninja.log" | head -60 >&2; exit 1; }
log "built in $(($(date +%s) - t0)) s"
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
cp "$bld/qemu-system-x86_64" "$out.tmp/"
echo "$ver" >"$out.tmp/version"
touch "$out.tmp/.done"
rm -rf "$out"
mv "$out.tmp" "$out"
publish
