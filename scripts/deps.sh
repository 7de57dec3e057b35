#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install the Debian packages the lab needs; a no-op when all are present.
# deps.sh bench: also what make bench needs (its plots, iperf3 for the
# link's ceiling, perftest's ib_write_bw for the RDMA ceiling; perftest
# pulls in ibverbs-providers, where soft-RoCE's userspace driver is).
set -euo pipefail

# libssl-dev: kernel builds, and userspace's OpenSSL (lib/ktls.c: the demo's
# --tls-psk handshake, ktls_test). librdmacm-dev, libibverbs-dev: the RDMA
# peer kvmig_xfer_test writes by hand, with soft-RoCE's userspace driver
# (ibverbs-providers). All are installed before any build.
pkgs=(
	build-essential bc bison flex libelf-dev libssl-dev dwarves cpio kmod
	xz-utils python3 qemu-system-x86 linux-source-6.12 busybox-static
	sparse clang libclang-rt-14-dev iproute2 python3-docutils
	libbpf-dev bpftool bpftrace tcpdump linux-perf util-linux
	git dpkg-dev meson ninja-build libglib2.0-dev libpixman-1-dev libfdt-dev
	libslirp-dev seabios ipxe-qemu
	librdmacm-dev libibverbs-dev ibverbs-providers
)
[ "${1:-}" = bench ] && pkgs+=(python3-matplotlib iperf3 perftest)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
