#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# lab-initramfs.sh STOCKDIR: print the path of an initramfs for the stock
# kernel unpacked in STOCKDIR (see kernel.sh stock, stock61), building it on
# first use. It loads what mounting the host root over 9p needs, then switches
# to it and runs $KVMIG_INIT.
set -euo pipefail

stock=$1
abi=$(cat "$stock/abi")
root=$stock/root
key=$(sha256sum "$0" | cut -c1-12)
out=$stock/initramfs-$key.cpio.gz
if [ -f "$out" ]; then
	echo "$out"
	exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{bin,dev,proc,sys,newroot,modules}
cp /bin/busybox "$tmp/bin/busybox"
for a in sh mount umount insmod mkdir switch_root cat echo sleep; do
	ln -s busybox "$tmp/bin/$a"
done

# Dependency order from modprobe itself; decompressed so busybox can load them
# (6.12's modules are .ko.xz, 6.1's plain .ko). The virtio PCI transport is
# built into 6.12 (modprobe then says "builtin" and nothing is added) but a
# module on 6.1, and no symbol of it is needed by 9pnet_virtio: named first.
: >"$tmp/modules/order"
for m in virtio_pci 9p 9pnet_virtio; do
	modprobe -d "$root" -S "$abi" --show-depends "$m" |
		awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' | while read -r ko; do
	name=$(basename "$ko")
	case $name in
	*.ko.xz) xz -dc "$ko" >"$tmp/modules/${name%.xz}" ;;
	*) cp "$ko" "$tmp/modules/$name" ;;
	esac
	echo "${name%.xz}" >>"$tmp/modules/order"
done

cat >"$tmp/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules/order); do
	insmod /modules/$m || echo "initramfs: insmod $m failed"
done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro /dev/root /newroot ||
	{ echo "initramfs: cannot mount the host root"; sleep 2; echo b >/proc/sysrq-trigger; }
umount /dev /sys /proc
exec switch_root /newroot "$KVMIG_INIT"
INIT
chmod +x "$tmp/init"
(cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
