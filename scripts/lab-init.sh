#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# PID 1 of a lab guest (see scripts/lab-run.sh). The root filesystem is the
# host's, read-only over 9p; the checkout and the run directory are mounted
# read-write at their host paths. Runs $KVMIG_RUN/cmd, stores its exit status
# in $KVMIG_RUN/status and reboots, which ends QEMU (-no-reboot).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/tmp TERM=dumb LC_ALL=C.UTF-8

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null

# The shares go to their host paths; those may sit under a tmpfs mounted
# above (a checkout in /tmp), so make the mount points first.
share() { # share TAG PATH [ro]
	local opts=trans=virtio,version=9p2000.L,msize=262144${3:+,ro}

	[ -n "$2" ] || return 0
	mkdir -p "$2" 2>/dev/null
	mount -t 9p -o "$opts" "$1" "$2" || echo "lab: cannot mount $1 on $2"
}
share kvmigrun "$KVMIG_RUN"
share kvmigtop "$KVMIG_TOP"
share kvmigmod "${KVMIG_MODROOT:-}" ro

ip link set lo up 2>/dev/null
hostname kvmig-lab 2>/dev/null
echo "lab: $(uname -r), $(nproc) vCPUs, $(awk '/MemTotal/ {print $2}' /proc/meminfo) kB"

# The command's output goes to the console and to the run directory, where
# lab-run.sh -q shows it without the kernel's messages.
cd "$KVMIG_TOP" && bash "$KVMIG_RUN/cmd" 2>&1 | tee -a "$KVMIG_RUN/output"
echo "${PIPESTATUS[0]}" >"$KVMIG_RUN/status"
sync
echo b >/proc/sysrq-trigger
