/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kvmig: in-kernel live migration of KVM guest memory.
 *
 * Userspace API of /dev/kvmig. Each open file descriptor is one migration
 * session; everything a session holds is released when the last reference
 * to that file is dropped (close(), or the VMM exiting).
 *
 * Rules followed here (Documentation/process/botching-up-ioctls.rst):
 *  - only fixed-width __u32/__u64, naturally aligned, structs padded to a
 *    multiple of 8 bytes with explicit padding;
 *  - user pointers are carried as __u64;
 *  - every flags field, padding field and reserved field must be zero and is
 *    rejected with -EINVAL otherwise, so it can be given a meaning later;
 *  - optional behaviour is announced by feature bits (KVMIG_GET_API), in an
 *    array of 64-bit words that can grow without a new ioctl.
 *
 * Ioctl numbers use the magic KVMIG_IO, in ranges per area:
 *   0x00-0x0f  core (API and feature query, session)
 *   0x10-0x2f  dirty tracking
 *   0x30-0x4f  transfer
 *   0x50-0x5f  statistics
 */
#ifndef _UAPI_KVMIG_H
#define _UAPI_KVMIG_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define KVMIG_API_VERSION	1

#define KVMIG_IO		0xB9

/*
 * Feature bits, reported by KVMIG_GET_API in word 0 of the feature array.
 * A bit is only ever added, never reused; the kernel sets only bits it
 * implements. No optional feature exists yet in API version 1.
 */
#define KVMIG_F_ALL_0		0ULL

/* Number of 64-bit feature words this header knows about. */
#define KVMIG_NR_FEATURE_WORDS	1

/**
 * struct kvmig_api - API version and feature query
 * @api_version: out: KVMIG_API_VERSION of the running module
 * @flags: in: must be 0
 * @nr_features: in: number of __u64 words at @features_ptr;
 *	out: number of feature words the module has. If the module has more
 *	than the caller offered, only the first @nr_features (in) are written;
 *	words the caller offered beyond the module's are left untouched.
 * @pad: must be 0
 * @features_ptr: in: user address of a __u64 array of @nr_features words,
 *	filled with the module's feature bits; may be 0 if @nr_features is 0
 * @reserved: must be 0
 *
 * Returns 0, or -EFAULT if the struct or the feature array cannot be
 * accessed, or -EINVAL if a flag, pad or reserved field is not zero.
 */
struct kvmig_api {
	__u32 api_version;
	__u32 flags;
	__u32 nr_features;
	__u32 pad;
	__u64 features_ptr;
	__u64 reserved[4];
};

#define KVMIG_GET_API		_IOWR(KVMIG_IO, 0x00, struct kvmig_api)

/*
 * Session lifecycle. A session is one open file of /dev/kvmig.
 *
 *   open()
 *     |
 *     v
 *   +--------+   KVMIG_ATTACH_VM    +----------+
 *   |  IDLE  | -------------------> | ATTACHED | ---> (dirty tracking and
 *   +--------+                      +----------+      transfer: later)
 *     |                                  |
 *     +---------- close() / exit --------+--> released: the VM reference
 *                                             and the VM file are dropped
 *
 * A call that the current state does not allow fails with -EBUSY and
 * changes nothing.
 *
 * While attached, the VMM must not harvest the VM's dirty log itself:
 * no KVM_GET_DIRTY_LOG or KVM_CLEAR_DIRTY_LOG (bitmap mode), no reaping of
 * the dirty rings and no KVM_RESET_DIRTY_RINGS (ring mode). There must be
 * exactly one harvester; a page the VMM reaps is a page kvmig never sends.
 * The VMM keeps running its vCPUs and keeps its VM file; kvmig holds its own
 * reference, so the VM outlives the VMM's close() until the session ends.
 */

/* Roles of a session (struct kvmig_attach.role). */
#define KVMIG_ROLE_SOURCE	1	/* sends the VM's memory */
#define KVMIG_ROLE_DEST		2	/* receives into the VM's memory */

/* Dirty-tracking modes (struct kvmig_attach.dirty_mode). */
#define KVMIG_DIRTY_AUTO	0	/* ring if the VM has rings, else bitmap */
#define KVMIG_DIRTY_RING	1	/* per-vCPU dirty rings (KVM_CAP_DIRTY_LOG_RING*) */
#define KVMIG_DIRTY_BITMAP	2	/* bitmap, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 */

/**
 * struct kvmig_attach - hand the session a KVM VM
 * @vm_fd: in: a VM file descriptor from KVM_CREATE_VM, of the caller's own
 *	process (the VM's mm must be the caller's)
 * @flags: in: must be 0
 * @role: in: KVMIG_ROLE_SOURCE or KVMIG_ROLE_DEST
 * @dirty_mode: in: a KVMIG_DIRTY_* mode; out: the mode in use, never
 *	KVMIG_DIRTY_AUTO. Only a source tracks dirty pages: a destination must
 *	pass KVMIG_DIRTY_AUTO and gets it back.
 * @reserved: must be 0
 *
 * Errors: -EFAULT; -EINVAL for a nonzero flag or reserved field, an unknown
 * role or mode, a file that is not a KVM VM, or a mode the VM is not set up
 * for (ring mode without rings; bitmap mode with rings, or without manual
 * protect); -EBADF for a descriptor that is not open; -EPERM for a VM of
 * another process; -EBUSY if the session is not IDLE.
 */
struct kvmig_attach {
	__u32 vm_fd;
	__u32 flags;
	__u32 role;
	__u32 dirty_mode;
	__u64 reserved[4];
};

#define KVMIG_ATTACH_VM		_IOWR(KVMIG_IO, 0x01, struct kvmig_attach)

#endif /* _UAPI_KVMIG_H */
