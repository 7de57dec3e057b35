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

#include <linux/const.h>
#include <linux/ioctl.h>
#include <linux/types.h>

#define KVMIG_API_VERSION	2

#define KVMIG_IO		0xB9

/*
 * Feature bits, reported by KVMIG_GET_API in word 0 of the feature array.
 * A bit is only ever added, never reused; the kernel sets only bits it
 * implements.
 */
#define KVMIG_F0_DIRTY_RING	_BITULL(0)	/* KVMIG_DIRTY_RING trackers */
#define KVMIG_F0_DIRTY_BITMAP	_BITULL(1)	/* KVMIG_DIRTY_BITMAP trackers */
#define KVMIG_F0_DIRTY_READ	_BITULL(2)	/* KVMIG_DIRTY_READ */
#define KVMIG_F0_STATS		_BITULL(3)	/* KVMIG_GET_STATS */
#define KVMIG_F0_XFER_TCP	_BITULL(4)	/* KVMIG_XFER_* over TCP */
#define KVMIG_F0_DIRTY_MARK	_BITULL(5)	/* KVMIG_DIRTY_MARK */
#define KVMIG_F0_LIST		_BITULL(6)	/* KVMIG_LIST_SESSIONS, stats id */
/*
 * The switchover is a two-phase commit: KVMIG_STATE_IN_DOUBT and
 * KVMIG_XFER_RESOLVE exist, and KVMIG_XFER_FINAL and _RECV may return
 * -EINPROGRESS (outcome in doubt: neither side resumes on its own).
 */
#define KVMIG_F0_COMMIT		_BITULL(7)
/*
 * The transfer runs on a per-session kernel worker in the VM's address
 * space: KVMIG_XFER_* may be called from any process that holds the
 * session and VM files, the waits are interruptible and restartable, and
 * KVMIG_XFER_SETUP takes an eventfd (KVMIG_XFER_SETUP_EVENTFD).
 */
#define KVMIG_F0_WORKER		_BITULL(8)
/*
 * KVMIG_ATTACH_REGIONS: the session migrates RAM regions that the VMM
 * names, whatever memslots map them (address space 1, SMM, included), and
 * follows memslot changes during pre-copy instead of failing.
 */
#define KVMIG_F0_REGIONS	_BITULL(9)
/*
 * KVMIG_SET_THROTTLE, and the throttle fields of struct kvmig_stats:
 * kvmig slows down a guest that dirties memory faster than the link
 * drains it (in ring mode itself; in bitmap mode it tells the VMM).
 */
#define KVMIG_F0_THROTTLE	_BITULL(10)
/*
 * Round 0 and the destination pass over never-populated guest memory
 * without touching it; struct kvmig_stats.hole_pages and struct
 * kvmig_round.hole_pages count it.
 */
#define KVMIG_F0_HOLES		_BITULL(11)
/*
 * struct kvmig_xfer_setup takes several connected sockets, one migration
 * over all of them (KVMIG_XFER_SETUP_STREAMS).
 */
#define KVMIG_F0_STREAMS	_BITULL(12)
/*
 * KVMIG_XFER_SETUP_RDMA: the migration runs over an RDMA connection
 * (rdma_cm, reliable connected), set up through the socket handed in. Set
 * only by a module built with RDMA support.
 */
#define KVMIG_F0_RDMA		_BITULL(13)
/*
 * The handshake runs a pre-check before the first page (KVMIG_SET_CHECK,
 * KVMIG_GET_CHECK, KVMIG_XFER_SETUP_DRY_RUN, KVMIG_STATE_CHECKED).
 */
#define KVMIG_F0_CHECK		_BITULL(14)
/*
 * Host-wide limits on outgoing migrations: a source beyond the module's
 * max_outgoing waits for its turn in round 0 (KVMIG_SESSION_QUEUED), and
 * the module's max_bandwidth is shared among the running sources by
 * priority (struct kvmig_xfer_setup.priority). See
 * Documentation/host-limits.rst.
 */
#define KVMIG_F0_HOST		_BITULL(15)
#define KVMIG_F_ALL_0		(KVMIG_F0_DIRTY_RING | KVMIG_F0_DIRTY_BITMAP | \
				 KVMIG_F0_DIRTY_READ | KVMIG_F0_STATS | \
				 KVMIG_F0_XFER_TCP | KVMIG_F0_DIRTY_MARK | \
				 KVMIG_F0_LIST | KVMIG_F0_COMMIT | \
				 KVMIG_F0_WORKER | KVMIG_F0_REGIONS | \
				 KVMIG_F0_THROTTLE | KVMIG_F0_HOLES | \
				 KVMIG_F0_STREAMS | KVMIG_F0_RDMA | \
				 KVMIG_F0_CHECK | KVMIG_F0_HOST)

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
 *   +------+  KVMIG_ATTACH_VM  +----------+  KVMIG_DIRTY_START  +----------+
 *   | IDLE | ----------------> | ATTACHED | ------------------> | TRACKING |
 *   +------+                   +----------+    (source only)    +----------+
 *                                   |                             |  ^   |
 *                                   |   KVMIG_DIRTY_HARVEST, READ +--+   |
 *                  KVMIG_XFER_SETUP |                                    |
 *                  (destination)    |                   KVMIG_XFER_SETUP |
 *                                   v                   (source)         v
 *                             +-----------+                       +---------+
 *                             | RECEIVING |                       | PRECOPY |
 *                             +-----------+                       +---------+
 *                                   |                          ROUND |  ^ |
 *                  KVMIG_XFER_RECV  |                                +--+ |
 *                                   v               KVMIG_XFER_FINAL      |
 *                              +--------+  <------------------------------+
 *                              |  DONE  |                                 |
 *                              +--------+  <--+ RESOLVE(COMMIT)           |
 *                                             |                           |
 *                                       +----------+   outcome unknown    |
 *                                       | IN_DOUBT | <--------------------+
 *                                       +----------+   (FINAL, RECV)
 *                                             |
 *                                             +--> FAILED  RESOLVE(ABORT)
 *
 *   TRACKING, PRECOPY, RECEIVING --(error, peer, cancel)--> FAILED
 *   KVMIG_XFER_SETUP with KVMIG_XFER_SETUP_DRY_RUN: TRACKING (source) or
 *   ATTACHED (destination) --(the pre-check's handshake)--> CHECKED
 *   close() or exit, from any state: released.
 *
 * The switchover is a two-phase commit with the source as coordinator
 * (Documentation/xfer.rst has the message diagram):
 *  - FAILED before the source sends COMMIT: the source VMM resumes its VM,
 *    which is intact; a destination discards its VM. A destination never
 *    runs the guest before it has the source's COMMIT.
 *  - DONE: the outcome is known. The source VMM stops its VM for good; the
 *    destination VMM loads the state and resumes.
 *  - IN_DOUBT: the session cannot know what its peer decided (the
 *    connection failed after the destination said it had everything).
 *    The VMM must neither resume nor discard its VM. The orchestrator,
 *    which can ask both hosts, settles it with KVMIG_XFER_RESOLVE on each
 *    side in doubt: COMMIT (to DONE) or ABORT (to FAILED).
 *
 * KVMIG_GET_API and KVMIG_GET_STATS work in every state. Any other call
 * that the current state does not allow fails with -EBUSY and changes
 * nothing; in FAILED, the dirty-tracking calls fail with -ESTALE and
 * KVMIG_GET_STATS tells why (struct kvmig_stats.fail_reason). They fail
 * with -ESTALE in CHECKED too: after a dry run kvmig harvests no more, and
 * the VMM takes its dirty log back as after a failure.
 *
 * What the VMM must do while attached:
 *  - create the VM, its memslots and its vCPUs itself, and keep running
 *    the vCPUs; kvmig never runs them;
 *  - for a source, before KVMIG_DIRTY_START: set KVM_MEM_LOG_DIRTY_PAGES on
 *    every memslot of guest RAM (read-only slots excepted), with the VM set
 *    up for the chosen mode (KVM_CAP_DIRTY_LOG_RING[_ACQ_REL] before the
 *    first vCPU, or KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2); kvmig refuses to
 *    start on a VM with an unlogged RAM slot or with SMM memslots;
 *  - in ring mode, answer KVM_EXIT_DIRTY_RING_FULL with KVMIG_DIRTY_HARVEST
 *    before running the vCPU again;
 *  - make the dirty-tracking calls from its own process (the VM's mm):
 *    they fail with -EPERM from any other.
 *
 * What the VMM must not do while tracking:
 *  - harvest the dirty log itself: no reaping of the dirty rings and no
 *    KVM_RESET_DIRTY_RINGS (ring mode), no KVM_CLEAR_DIRTY_LOG (bitmap
 *    mode). There must be exactly one harvester: a page the VMM reaps is a
 *    page kvmig never sends. In ring mode kvmig detects entries collected
 *    behind its back and fails the session (KVMIG_FAIL_RING_STOLEN); a
 *    KVM_CLEAR_DIRTY_LOG cannot be detected;
 *  - add, delete, move or change the flags of a memslot: kvmig detects it
 *    at the next harvest and fails the session (KVMIG_FAIL_MEMSLOTS), since
 *    the layout is what the destination was promised;
 *  - unmap or remap the scratch area kvmig maps in its address space at
 *    KVMIG_DIRTY_START in bitmap mode (kvmig_dirty_start.scratch_addr).
 * The VMM keeps its VM file; kvmig holds its own reference, so the VM
 * outlives the VMM's close() until the session ends.
 */

/* Roles of a session (struct kvmig_attach.role). */
#define KVMIG_ROLE_SOURCE	1	/* sends the VM's memory */
#define KVMIG_ROLE_DEST		2	/* receives into the VM's memory */

/* Dirty-tracking modes (struct kvmig_attach.dirty_mode). */
#define KVMIG_DIRTY_AUTO	0	/* ring if the VM has rings, else bitmap */
#define KVMIG_DIRTY_RING	1	/* per-vCPU dirty rings (KVM_CAP_DIRTY_LOG_RING*) */
#define KVMIG_DIRTY_BITMAP	2	/* bitmap, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 */

/**
 * struct kvmig_region - guest RAM as the VMM allocated it (KVMIG_F0_REGIONS)
 * @userspace_addr: start, in the VMM's address space; page aligned
 * @size: bytes, a nonzero multiple of the page size
 * @id: the VMM's name for it, unique in the session; both ends of a
 *	migration must declare the same ids with the same sizes
 * @flags: must be 0
 * @reserved: must be 0
 *
 * A VMM such as QEMU allocates guest RAM in blocks and maps windows of them
 * into the guest as memslots, which change with the guest's configuration
 * (PAM, SMRAM, BARs) and may differ between source and destination until
 * the device state is loaded. A region session addresses pages by region
 * and page offset, which both ends agree on: struct kvmig_dirty_run then
 * carries the region id in @slot and the page offset in @gfn.
 */
struct kvmig_region {
	__u64 userspace_addr;
	__u64 size;
	__u32 id;
	__u32 flags;
	__u64 reserved;
};

#define KVMIG_MAX_REGIONS	256

/**
 * struct kvmig_attach - hand the session a KVM VM
 * @vm_fd: in: a VM file descriptor from KVM_CREATE_VM. Holding it is
 *	what grants the session that VM (as with KVM's own ioctls); a helper
 *	may have it from the VMM through SCM_RIGHTS or pidfd_getfd(), which
 *	already required the right to ptrace the VMM
 * @flags: in: 0 or KVMIG_ATTACH_REGIONS
 * @role: in: KVMIG_ROLE_SOURCE or KVMIG_ROLE_DEST
 * @dirty_mode: in: a KVMIG_DIRTY_* mode; out: the mode in use, never
 *	KVMIG_DIRTY_AUTO. Only a source tracks dirty pages: a destination must
 *	pass KVMIG_DIRTY_AUTO and gets it back.
 * @nr_regions: in: with KVMIG_ATTACH_REGIONS, entries at @regions_ptr,
 *	1..KVMIG_MAX_REGIONS; otherwise 0
 * @pad: must be 0
 * @regions_ptr: in: with KVMIG_ATTACH_REGIONS, user address of struct
 *	kvmig_region[@nr_regions]; otherwise 0
 * @reserved: must be 0
 *
 * Without KVMIG_ATTACH_REGIONS the session migrates the VM's memslots of
 * address space 0 as they are at KVMIG_DIRTY_START, and both ends must
 * have the same memslots. With it, the session migrates the regions:
 *  - each must lie in the caller's address space, overlap no other, and
 *    be mapped into the guest by at least one memslot when the source
 *    starts tracking or the destination sets up its transfer;
 *  - a source harvests every memslot (either address space) that maps
 *    region memory, must have KVM_MEM_LOG_DIRTY_PAGES on each of them
 *    that is writable, and follows memslots added, removed or changed
 *    during pre-copy; pages of memslots outside the regions are left to
 *    the VMM (kvmig neither reads nor clears their dirty bits);
 *  - bitmap mode only (ring mode: -EOPNOTSUPP; a dirty ring names a
 *    memslot that may be gone by the time it is read).
 *
 * Errors: -EFAULT; -EINVAL for an unknown flag, a nonzero pad or reserved
 * field, an unknown role or mode, a file that is not a KVM VM, a mode the
 * VM is not set up for (ring mode without rings; bitmap mode with rings,
 * or without manual protect), or bad regions (count, alignment, size,
 * overlap, duplicate id, flags); -EOPNOTSUPP for regions in ring mode;
 * -EBADF for a descriptor that is not open; -EBUSY if the session is not
 * IDLE, or if another session is attached to the same VM (one VM, one
 * session: two harvesters would lose pages).
 */
struct kvmig_attach {
	__u32 vm_fd;
	__u32 flags;
	__u32 role;
	__u32 dirty_mode;
	__u32 nr_regions;
	__u32 pad;
	__u64 regions_ptr;
	__u64 reserved[2];
};

/* struct kvmig_attach.flags */
#define KVMIG_ATTACH_REGIONS	_BITUL(0)	/* migrate @regions_ptr */
#define KVMIG_ATTACH_FLAGS	KVMIG_ATTACH_REGIONS

#define KVMIG_ATTACH_VM		_IOWR(KVMIG_IO, 0x01, struct kvmig_attach)

/**
 * struct kvmig_cpuid_entry - one CPUID leaf, laid out as KVM's struct
 * kvm_cpuid_entry2 (an array from KVM_GET_SUPPORTED_CPUID may be passed
 * as it is)
 * @function: EAX in
 * @index: ECX in, for the leaves that have subleaves
 * @flags: KVM's KVM_CPUID_FLAG_*; ignored
 * @eax: EAX out
 * @ebx: EBX out
 * @ecx: ECX out
 * @edx: EDX out
 * @padding: ignored
 */
struct kvmig_cpuid_entry {
	__u32 function;
	__u32 index;
	__u32 flags;
	__u32 eax;
	__u32 ebx;
	__u32 ecx;
	__u32 edx;
	__u32 padding[3];
};

#define KVMIG_MAX_CPUID		256	/* KVM's KVM_MAX_CPUID_ENTRIES */

/**
 * struct kvmig_check_setup - what the pre-check compares (KVMIG_F0_CHECK)
 * @flags: in: KVMIG_CHECK_*
 * @nr_cpuid: in: destination, with KVMIG_CHECK_CPUID: entries at
 *	@cpuid_ptr, 1..KVMIG_MAX_CPUID; otherwise 0
 * @uuid: in: with KVMIG_CHECK_UUID, the VM's identity (QEMU's -uuid);
 *	otherwise all zero
 * @cpuid_ptr: in: with KVMIG_CHECK_CPUID, user address of struct
 *	kvmig_cpuid_entry[@nr_cpuid]: what the destination host's KVM offers
 *	a guest, as KVM_GET_SUPPORTED_CPUID reports it (plus, if the VMM
 *	gives its guests emulated features, KVM_GET_EMULATED_CPUID's);
 *	otherwise 0
 * @reserved: must be 0
 *
 * Made before KVMIG_XFER_SETUP (source: ATTACHED or TRACKING; destination:
 * ATTACHED); a second call replaces the first. The handshake that
 * KVMIG_XFER_SETUP runs then checks, before any page moves:
 *  - the identity: both ends named one and they differ, an error
 *    (KVMIG_CHECK_E_UUID); only one end named one, a warning;
 *  - the memslot layout and page size, as without a pre-check;
 *  - the vCPUs: the destination VM has vCPUs, but not as many as the
 *    source's (an error: the device state cannot load);
 *  - dirty logging: the destination VM is not set up as the source's is
 *    (dirty ring size, manual protect): a warning, since the guest runs
 *    but cannot leave the destination the same way;
 *  - CPUID: every feature bit a source vCPU's guest sees (read from KVM:
 *    what KVM_SET_CPUID2 gave it) that the destination's @cpuid_ptr lacks
 *    is an error, one finding per register; a destination without
 *    KVMIG_CHECK_CPUID, source vCPUs whose features differ, a vCPU whose
 *    CPUID cannot be read, or a guest whose highest leaf is beyond the
 *    destination's, a warning. The bits the CPU or KVM set at run time
 *    (OSXSAVE, OSPKE) and the hypervisor bit are not compared.
 * Without this call a session checks the same, with no identity and, at
 * a destination, no CPUID (warnings).
 *
 * Errors: -EFAULT; -EINVAL for an unknown flag, a nonzero reserved field,
 * a @uuid without KVMIG_CHECK_UUID, or all zero with it, KVMIG_CHECK_CPUID
 * at a source, @nr_cpuid or @cpuid_ptr without KVMIG_CHECK_CPUID, or
 * @nr_cpuid out of range; -EBUSY in another state.
 */
struct kvmig_check_setup {
	__u32 flags;
	__u32 nr_cpuid;
	__u8 uuid[16];
	__u64 cpuid_ptr;
	__u64 reserved[4];
};

/* struct kvmig_check_setup.flags */
#define KVMIG_CHECK_UUID	_BITUL(0)	/* @uuid is set */
#define KVMIG_CHECK_CPUID	_BITUL(1)	/* @nr_cpuid, @cpuid_ptr */
#define KVMIG_CHECK_FLAGS	(KVMIG_CHECK_UUID | KVMIG_CHECK_CPUID)

#define KVMIG_SET_CHECK		_IOW(KVMIG_IO, 0x02, struct kvmig_check_setup)

/* struct kvmig_finding.severity */
#define KVMIG_CHECK_ERROR	1	/* the migration is refused */
#define KVMIG_CHECK_WARNING	2	/* reported; the migration goes on */

/*
 * struct kvmig_finding.code: errors, then warnings. Codes are only ever
 * added; an unknown code is reported with its severity.
 */
#define KVMIG_CHECK_E_UUID	1	/* the identities differ */
#define KVMIG_CHECK_E_LAYOUT	2	/* memslot layout or page size differs */
#define KVMIG_CHECK_E_VCPUS	3	/* @source vCPUs, the destination @dest */
#define KVMIG_CHECK_E_CPUID	4	/* @bits of @function.@index @reg missing */
#define KVMIG_CHECK_W_UUID	64	/* only one end named an identity */
#define KVMIG_CHECK_W_DIRTY	65	/* dirty ring bytes per vCPU: @source, @dest */
#define KVMIG_CHECK_W_NO_CPUID	66	/* the destination passed no CPUID */
#define KVMIG_CHECK_W_CPUID_VCPUS 67	/* vCPU @index's features differ from vCPU 0's */
#define KVMIG_CHECK_W_CPUID_UNREAD 68	/* vCPU @index's CPUID not read (never ran, busy) */
#define KVMIG_CHECK_W_CPUID_LEAF 69	/* highest leaf above @function: @source, @dest */
#define KVMIG_CHECK_W_MANUAL	70	/* manual dirty-log protect: @source, @dest (0, 1) */

/* struct kvmig_finding.reg */
#define KVMIG_CPUID_EAX		0
#define KVMIG_CPUID_EBX		1
#define KVMIG_CPUID_ECX		2
#define KVMIG_CPUID_EDX		3

/**
 * struct kvmig_finding - one thing the pre-check found
 * @code: KVMIG_CHECK_E_* or KVMIG_CHECK_W_*
 * @severity: KVMIG_CHECK_ERROR or KVMIG_CHECK_WARNING
 * @function: CPUID codes: the leaf (for _W_CPUID_LEAF, 0 or 0x80000000)
 * @index: CPUID codes: the subleaf; _E_LAYOUT: the first slot that
 *	differs; _W_CPUID_VCPUS, _W_CPUID_UNREAD: the vCPU
 * @reg: _E_CPUID: KVMIG_CPUID_*
 * @bits: _E_CPUID: the bits the guest sees and the destination lacks
 * @source: the source's figure (_E_VCPUS, _W_DIRTY, _W_MANUAL,
 *	_W_CPUID_LEAF, _E_CPUID: the register's bits; _W_UUID: 1 if it is
 *	the source that named one)
 * @dest: the destination's
 */
struct kvmig_finding {
	__u32 code;
	__u32 severity;
	__u32 function;
	__u32 index;
	__u32 reg;
	__u32 bits;
	__u64 source;
	__u64 dest;
};

#define KVMIG_MAX_FINDINGS	32

/* struct kvmig_check.status */
#define KVMIG_CHECK_NOT_RUN	0	/* no handshake got that far */
#define KVMIG_CHECK_PASSED	1	/* no finding */
#define KVMIG_CHECK_WARNED	2	/* warnings only */
#define KVMIG_CHECK_REFUSED	3	/* at least one error */

/**
 * struct kvmig_check - the pre-check's findings (KVMIG_F0_CHECK)
 * @flags: in: must be 0
 * @nr_findings: in: room at @findings_ptr, in entries; out: the number of
 *	findings (at most KVMIG_MAX_FINDINGS)
 * @findings_ptr: in: user address of struct kvmig_finding[@nr_findings]
 *	(may be 0 if @nr_findings is 0)
 * @nr_filled: out: entries written, errors first
 * @status: out: KVMIG_CHECK_NOT_RUN, _PASSED, _WARNED or _REFUSED
 * @id: in: 0 for the caller's own session, or the id of another
 *	(struct kvmig_stats.id), which the caller must be allowed to list
 *	(KVMIG_LIST_SESSIONS): an operator's tool reads a VMM's findings
 * @reserved: must be 0
 *
 * Both ends get the same findings: the destination compares and sends
 * them to the source with its answer. Readable in every state once the
 * handshake has run, and never waits for a running transfer; a handshake
 * that never got as far as the pre-check (a peer that spoke no CHECK, a
 * connection lost) leaves KVMIG_CHECK_NOT_RUN.
 *
 * Errors: -EFAULT; -EINVAL for a nonzero flag or reserved field; -ENOENT
 * for an @id that names no session the caller may list.
 */
struct kvmig_check {
	__u32 flags;
	__u32 nr_findings;
	__u64 findings_ptr;
	__u32 nr_filled;
	__u32 status;
	__u64 id;
	__u64 reserved[2];
};

#define KVMIG_GET_CHECK		_IOWR(KVMIG_IO, 0x03, struct kvmig_check)

/**
 * struct kvmig_dirty_start - start harvesting the VM's dirty pages
 * @flags: in: must be 0
 * @nr_slots: out: memslots tracked (address space 0, user slots)
 * @guest_pages: out: pages in those memslots
 * @scratch_addr: out: bitmap mode: the address of the scratch area kvmig
 *	mapped in the caller's address space (KVM_CLEAR_DIRTY_LOG reads its
 *	argument from user memory); 0 in ring mode. Unmapped on close() when
 *	it is the VMM that closes.
 * @scratch_len: out: its length in bytes
 * @reserved: must be 0
 *
 * From ATTACHED (source) to TRACKING. The memslot layout is recorded here;
 * pages dirtied from now on (and, in bitmap mode, any bit already in
 * KVM's bitmaps) are reported by the following harvests.
 *
 * Errors: -EFAULT; -EINVAL for a nonzero flag or reserved field, a
 * destination session, a RAM slot without KVM_MEM_LOG_DIRTY_PAGES, a VM
 * with no memslot, or a VM whose dirty-log setup no longer matches the
 * attached mode; -EOPNOTSUPP for a VM with memslots in another address
 * space (SMM); -EPERM from another process than the VM's; -EBUSY if the
 * session is not ATTACHED; -ENOMEM.
 */
struct kvmig_dirty_start {
	__u32 flags;
	__u32 nr_slots;
	__u64 guest_pages;
	__u64 scratch_addr;
	__u64 scratch_len;
	__u64 reserved[4];
};

#define KVMIG_DIRTY_START	_IOWR(KVMIG_IO, 0x10, struct kvmig_dirty_start)

/**
 * struct kvmig_harvest - one harvest of the VM's dirty tracking
 * @flags: in: must be 0
 * @pad: must be 0
 * @found: out: pages this harvest collected (ring entries, or bits)
 * @pending: out: pages harvested and not yet consumed, after this harvest
 * @round: out: number of harvests so far, this one included
 * @reserved: must be 0
 *
 * Collects what KVM logged since the last harvest, adds it to the
 * session's pending set and re-protects those pages, so that the next
 * write to any of them is logged again: ring mode walks every vCPU's
 * dirty ring and calls KVM_RESET_DIRTY_RINGS; bitmap mode reads each
 * memslot's bitmap and calls KVM_CLEAR_DIRTY_LOG on the bits it took.
 *
 * Valid in TRACKING and PRECOPY. It takes only the tracker's lock, never
 * one a pre-copy round holds across the network: a vCPU thread answering
 * KVM_EXIT_DIRTY_RING_FULL during a round waits for one batch at most.
 *
 * Errors: -EFAULT; -EINVAL for a nonzero flag, pad or reserved field;
 * -EBUSY if the session is not TRACKING or PRECOPY; -EPERM from another process
 * than the VM's; -ESTALE once the session has FAILED (this call may be
 * the one that fails it); other errors from KVM's ioctls, after which
 * the pages harvested so far stay pending and the call may be repeated.
 *
 * In ring mode kvmig has collected entries from the VMM's rings and reset
 * them, so the VMM's own fetch index is stale: after -ESTALE, a VMM that
 * goes on running its vCPUs (a failed or cancelled migration) must take
 * back every published entry of every ring and call KVM_RESET_DIRTY_RINGS
 * itself, or the next full ring stops the vCPU for good.
 */
struct kvmig_harvest {
	__u32 flags;
	__u32 pad;
	__u64 found;
	__u64 pending;
	__u64 round;
	__u64 reserved[4];
};

#define KVMIG_DIRTY_HARVEST	_IOWR(KVMIG_IO, 0x11, struct kvmig_harvest)

/**
 * struct kvmig_dirty_run - pages [@gfn, @gfn + @npages) of memslot @slot
 * @gfn: first guest frame number of the run
 * @npages: pages in the run, at least 1
 * @slot: KVM memslot id (address space 0)
 */
struct kvmig_dirty_run {
	__u64 gfn;
	__u32 npages;
	__u32 slot;
};

/**
 * struct kvmig_dirty_read - take pending pages out as runs
 * @flags: in: must be 0
 * @nr_runs: in: capacity of the array at @runs_ptr; out: runs written
 * @runs_ptr: in: user address of struct kvmig_dirty_run[@nr_runs]
 * @pages: out: pages in the runs written
 * @pending: out: pages still pending after this read
 * @reserved: must be 0
 *
 * Writes the pending set as runs of consecutive dirty gfns, by memslot id
 * and then gfn, and removes what it wrote from the pending set: a run is
 * returned once. Read until @pending is 0 to drain. This is how tests and
 * userspace transports see what was harvested; the in-kernel transfer
 * engine consumes the same set without it.
 *
 * Errors: -EFAULT (nothing is removed: the runs stay pending); -EINVAL for
 * a nonzero flag or reserved field, or @nr_runs of 0 or above 65536;
 * -EBUSY if the session is not TRACKING; -EPERM from another process than
 * the VM's (it would take the pages away from the VMM); -ESTALE once it
 * has FAILED.
 */
struct kvmig_dirty_read {
	__u32 flags;
	__u32 nr_runs;
	__u64 runs_ptr;
	__u64 pages;
	__u64 pending;
	__u64 reserved[4];
};

#define KVMIG_DIRTY_READ	_IOWR(KVMIG_IO, 0x12, struct kvmig_dirty_read)

/**
 * struct kvmig_dirty_mark - pages the VMM wrote itself
 * @flags: in: must be 0
 * @nr_runs: in: runs at @runs_ptr, 1..65536
 * @runs_ptr: in: user address of struct kvmig_dirty_run[@nr_runs]
 * @reserved: must be 0
 *
 * KVM logs only the guest's own writes. Pages the VMM writes through its
 * mapping (device emulation, DMA, a mailbox) must be reported here, or
 * they are not sent again. Each run must lie inside one recorded memslot.
 * Valid in TRACKING and PRECOPY.
 *
 * Errors: -EFAULT; -EINVAL for a nonzero flag or reserved field, a bad
 * count, or a run outside the layout (then nothing is marked); -EBUSY in
 * another state.
 */
struct kvmig_dirty_mark {
	__u32 flags;
	__u32 nr_runs;
	__u64 runs_ptr;
	__u64 reserved[2];
};

#define KVMIG_DIRTY_MARK	_IOW(KVMIG_IO, 0x13, struct kvmig_dirty_mark)

/* struct kvmig_throttle.policy */
#define KVMIG_THROTTLE_OFF	0	/* never slow the guest down */
#define KVMIG_THROTTLE_AUTO	1	/* auto-converge: steps of vCPU time */
#define KVMIG_THROTTLE_RATE	2	/* hold the dirty rate at a target */

/**
 * struct kvmig_throttle - slow down a guest that outruns the link (source)
 * @flags: in: must be 0
 * @policy: in: KVMIG_THROTTLE_*
 * @dirty_rate: in, RATE: pages per second the whole VM may dirty, at
 *	least 1; must be 0 for the other policies
 * @initial_pct: in, AUTO: the first step, in percent of each vCPU's time
 *	taken away (1..99); must be 0 for the other policies
 * @step_pct: in, AUTO: added at each further step (1..99); 0 otherwise
 * @max_pct: in, AUTO and RATE: the throttle never takes more (1..99);
 *	0 for OFF
 * @pad: must be 0
 * @reserved: must be 0
 *
 * AUTO works like QEMU's auto-converge: whenever two harvests in a row
 * find that the guest dirtied more than half of what was sent since the
 * harvest before, the throttle goes up one step: @initial_pct, then
 * @step_pct more each time, up to @max_pct. RATE holds the pages dirtied
 * per second at @dirty_rate.
 *
 * In ring mode kvmig applies it itself, to each vCPU separately: a vCPU
 * thread that answers KVM_EXIT_DIRTY_RING_FULL with KVMIG_DIRTY_HARVEST
 * sleeps in that call until its share is paid (AUTO: the step's share of
 * the time it ran; RATE: its pages at its part of @dirty_rate), at most
 * five seconds per call. The sleep holds no lock and ends early on a
 * signal, so that the VMM can always pause its vCPUs, on a new setting,
 * and when the session leaves PRECOPY. A harvest from a thread that is
 * not a vCPU's never sleeps.
 *
 * In bitmap mode kvmig cannot stop a vCPU: struct kvmig_stats.throttle_pct
 * is the share of each vCPU's time that the VMM should take away (for
 * RATE, computed at each harvest from the dirty rate measured), and the
 * VMM applies it, e.g. by sleeping each vCPU thread that share of every
 * 10 ms.
 *
 * Valid in TRACKING and PRECOPY, any number of times; a new setting
 * starts from its first step. OFF ends any throttle at once.
 *
 * Errors: -EFAULT; -EINVAL for an unknown policy, a nonzero flag, pad or
 * reserved field, or a field out of range or set for another policy;
 * -EBUSY if the session is not a source in TRACKING or PRECOPY.
 */
struct kvmig_throttle {
	__u32 flags;
	__u32 policy;
	__u64 dirty_rate;
	__u32 initial_pct;
	__u32 step_pct;
	__u32 max_pct;
	__u32 pad;
	__u64 reserved[4];
};

#define KVMIG_SET_THROTTLE	_IOW(KVMIG_IO, 0x14, struct kvmig_throttle)

/* Session states, as reported in struct kvmig_stats.state. */
#define KVMIG_STATE_IDLE	0
#define KVMIG_STATE_ATTACHED	1
#define KVMIG_STATE_TRACKING	2
#define KVMIG_STATE_FAILED	3
#define KVMIG_STATE_PRECOPY	4
#define KVMIG_STATE_RECEIVING	5
#define KVMIG_STATE_DONE	6
#define KVMIG_STATE_IN_DOUBT	7
#define KVMIG_STATE_CHECKED	8	/* a dry run ended; no page moved */

/* Why a session failed (struct kvmig_stats.fail_reason). */
#define KVMIG_FAIL_NONE		0
#define KVMIG_FAIL_MEMSLOTS	1	/* memslot added, deleted, moved or changed */
#define KVMIG_FAIL_RING_STOLEN	2	/* ring entries reaped by someone else */
#define KVMIG_FAIL_LAYOUT	3	/* the peer's memslots differ */
#define KVMIG_FAIL_PROTOCOL	4	/* the peer sent a malformed stream */
#define KVMIG_FAIL_IO		5	/* the connection failed or timed out */
#define KVMIG_FAIL_CANCELLED	6	/* KVMIG_XFER_CANCEL */
#define KVMIG_FAIL_PEER		7	/* the peer reported a failure */
#define KVMIG_FAIL_LOCAL	8	/* guest memory could not be accessed */
#define KVMIG_FAIL_ABORTED	9	/* KVMIG_XFER_RESOLVE(ABORT) while in doubt */
#define KVMIG_FAIL_STREAMS	10	/* the peer's streams differ in number or order */
#define KVMIG_FAIL_CHECK	11	/* the pre-check found an error (KVMIG_GET_CHECK) */

/**
 * struct kvmig_stats - what a session is doing
 * @flags: in: must be 0
 * @state: out: KVMIG_STATE_*
 * @role: out: KVMIG_ROLE_*, 0 before attach
 * @dirty_mode: out: KVMIG_DIRTY_*, as resolved at attach
 * @fail_reason: out: KVMIG_FAIL_*: why the session FAILED, or, while it
 *	is IN_DOUBT, why the outcome could not be learned (the connection
 *	failed, timed out or was cancelled)
 * @nr_slots: out: memslots tracked
 * @guest_pages: out: pages in those memslots
 * @rounds: out: harvests done
 * @pages_harvested: out: pages collected, summed over all harvests
 * @pages_pending: out: pages harvested and not yet consumed
 * @pages_read: out: pages handed out by KVMIG_DIRTY_READ
 * @harvest_ns: out: time spent in harvests, in nanoseconds
 * @xfer_round: out: pre-copy rounds started (source), or the round being
 *	received (destination)
 * @pages_sent: out: pages sent with their contents
 * @bytes_sent: out: bytes written to the socket
 * @zero_pages: out: pages sent (or received) as zero, without contents
 * @pages_spliced: out: pages sent zero-copy, by reference to the pinned page
 *	(MSG_SPLICE_PAGES since 6.5, kernel_sendpage before)
 * @pages_copied: out: pages the socket had to copy
 * @pages_received: out: pages written into the guest (destination)
 * @dirty_rate: out: pages dirtied per second, at the last harvest
 * @throughput: out: bytes per second of the last round
 * @expected_downtime_ns: out: what the pending pages would take to send;
 *	U64_MAX until a round has measured a throughput
 * @downtime_ns: out: from KVMIG_XFER_FINAL to the destination's answer
 * @remaining: out: pages pending (source)
 * @id: out: the session's id, as KVMIG_LIST_SESSIONS and the kvmig
 *	tracepoints name it (KVMIG_F0_LIST); must be 0 in
 * @throttle_policy: out: KVMIG_THROTTLE_*, as last set (KVMIG_F0_THROTTLE)
 * @throttle_pct: out: the share of each vCPU's time the throttle takes,
 *	in percent: AUTO's current step; for RATE, in ring mode the share
 *	the vCPUs slept since the harvest before, in bitmap mode what the
 *	VMM is asked to apply
 * @throttle_ns: out: time vCPU threads slept in kvmig's throttle, summed
 *	over all vCPUs (ring mode)
 * @hole_pages: out: of @zero_pages, those the VMM's mapping never
 *	populated: passed over by a page-table (or shmem page-cache) walk
 *	without being faulted in, read or written (KVMIG_F0_HOLES)
 *
 * The figures are a snapshot the session publishes at the end of each of
 * its calls and, during KVMIG_XFER_ROUND, _FINAL and _RECV, after every
 * record: KVMIG_GET_STATS never waits for a running transfer.
 */
struct kvmig_stats {
	__u32 flags;
	__u32 state;
	__u32 role;
	__u32 dirty_mode;
	__u32 fail_reason;
	__u32 nr_slots;
	__u64 guest_pages;
	__u64 rounds;
	__u64 pages_harvested;
	__u64 pages_pending;
	__u64 pages_read;
	__u64 harvest_ns;
	__u64 xfer_round;
	__u64 pages_sent;
	__u64 bytes_sent;
	__u64 zero_pages;
	__u64 pages_spliced;
	__u64 pages_copied;
	__u64 pages_received;
	__u64 dirty_rate;
	__u64 throughput;
	__u64 expected_downtime_ns;
	__u64 downtime_ns;
	__u64 remaining;
	__u64 id;
	__u32 throttle_policy;
	__u32 throttle_pct;
	__u64 throttle_ns;
	__u64 hole_pages;
};

#define KVMIG_GET_STATS		_IOWR(KVMIG_IO, 0x50, struct kvmig_stats)

/**
 * struct kvmig_session_info - one session, as KVMIG_LIST_SESSIONS sees it
 * @pid: the process that opened the session, in the caller's PID
 *	namespace (0: not visible there)
 * @flags: KVMIG_SESSION_*
 * @priority: a source's KVMIG_PRIORITY_*, as set at KVMIG_XFER_SETUP
 * @queue_pos: a source waiting for its turn (KVMIG_SESSION_QUEUED): its
 *	place in the host's queue, 1 first; otherwise 0
 * @wait_ns: a source: how long it waited in the queue, so far while it
 *	still waits (KVMIG_F0_HOST)
 * @reserved: 0
 * @stats: the session's KVMIG_GET_STATS snapshot; @stats.id names it
 */
struct kvmig_session_info {
	__u32 pid;
	__u32 flags;
	__u32 priority;
	__u32 queue_pos;
	__u64 wait_ns;
	__u64 reserved;
	struct kvmig_stats stats;
};

#define KVMIG_SESSION_SELF	_BITUL(0)	/* the caller's own fd */
/*
 * Source: in PRECOPY but waiting for its turn under the host's
 * max_outgoing; no page has left yet. Destination: its source said so.
 */
#define KVMIG_SESSION_QUEUED	_BITUL(1)

/**
 * struct kvmig_list - list the module's sessions (KVMIG_F0_LIST)
 * @flags: in: must be 0
 * @nr_sessions: in: room at @sessions_ptr, in entries; out: the number of
 *	sessions visible to the caller (may exceed the room: call again)
 * @sessions_ptr: in: array of struct kvmig_session_info
 * @nr_filled: out: entries written, oldest session first
 * @pad: must be 0
 * @reserved: must be 0
 *
 * Any fd of /dev/kvmig may list; the caller's own session is included and
 * flagged. Without CAP_SYS_ADMIN only the sessions opened by the calling
 * process are visible. Never blocks on a running transfer.
 */
struct kvmig_list {
	__u32 flags;
	__u32 nr_sessions;
	__u64 sessions_ptr;
	__u32 nr_filled;
	__u32 pad;
	__u64 reserved[3];
};

#define KVMIG_LIST_MAX		4096	/* entries per call, at most */
#define KVMIG_LIST_SESSIONS	_IOWR(KVMIG_IO, 0x51, struct kvmig_list)

/**
 * struct kvmig_xfer_setup - hand the session its connection, and handshake
 * @sock_fd: in: a connected TCP socket; kvmig takes its own reference and
 *	uses it alone from now on (the VMM must not read or write it)
 * @flags: in: KVMIG_XFER_SETUP_*
 * @max_rounds: in: source: pre-copy rounds before giving up converging
 *	(0: 30)
 * @io_timeout_ms: in: how long one send or receive may block (0: 10000)
 * @downtime_ns: in: source: the downtime budget (0: 300 ms)
 * @bandwidth: in: source: bytes per second at most (0: no cap)
 * @timeout_ms: in: source: pre-copy time limit (0: none)
 * @event_fd: in: with KVMIG_XFER_SETUP_EVENTFD, an eventfd that kvmig
 *	signals whenever poll() would report a change: a call's result is
 *	ready, pre-copy converged, the session is DONE, FAILED or IN_DOUBT
 * @nr_streams: in: with KVMIG_XFER_SETUP_STREAMS, how many connections
 *	the migration uses, 2..KVMIG_MAX_STREAMS: @sock_fd and the
 *	@nr_streams - 1 sockets at @streams_ptr; otherwise 0 (one, @sock_fd)
 * @streams_ptr: in: with KVMIG_XFER_SETUP_STREAMS, user address of an
 *	array of @nr_streams - 1 __u32 socket fds, connected TCP sockets as
 *	@sock_fd, in the same order at both ends; otherwise 0
 * @priority: in: source: KVMIG_PRIORITY_*, its weight in the host's
 *	bandwidth budget; destination: 0
 * @pad: must be 0
 * @reserved: must be 0
 *
 * Starts the session's worker, a kernel thread that runs every transfer
 * call in the VM's address space, and hands it the handshake. Source:
 * from TRACKING to PRECOPY; sends its memslot layout and waits for
 * the destination's answer. Destination: from ATTACHED to RECEIVING;
 * receives the layout and refuses it unless every memslot (id, base gfn,
 * size, read-only) matches its own. Either way no page moves before both
 * ends agree.
 *
 * With several streams, both ends must name as many, in the same order;
 * @sock_fd carries the control records and each connection its share of
 * the pages, a share fixed by guest address, so that a page's newer copy
 * always follows its older one on the same connection. The handshake
 * checks that every stream belongs to the same migration, in its place;
 * any connection failing fails the migration.
 *
 * A source's round 0 waits for its turn when the host already runs the
 * module's max_outgoing sources (KVMIG_F0_HOST): sources leave the queue
 * in the order their round 0 was called, and each running one holds its
 * place until it is DONE, FAILED or IN_DOUBT. While it waits, it keeps
 * every stream alive for the destination. Running sources share the
 * module's max_bandwidth (bytes per second, 0: none) in proportion to
 * their priority's weight (KVMIG_PRIORITY_STANDARD 1, KVMIG_PRIORITY_HIGH
 * the module's high_weight); @bandwidth caps the session below its share.
 *
 * With KVMIG_XFER_SETUP_RDMA, at both ends, @sock_fd only sets up an RDMA
 * connection and is then let go: the destination listens (rdma_cm) on the
 * socket's local address, in the socket's network namespace, on a port
 * it tells the source over the socket; the source connects to it from
 * the socket's local address; the destination takes that connection only
 * from the socket's peer address. Everything then goes over the RDMA
 * connection: the source writes guest pages straight into the
 * destination guest's pages (RDMA WRITE), which the destination exposes
 * run by run, for one run at a time, and invalidates before it takes the
 * next record. One connection: not with KVMIG_XFER_SETUP_STREAMS.
 *
 * The handshake runs the pre-check (KVMIG_F0_CHECK, struct
 * kvmig_check_setup): the destination compares, answers and sends its
 * findings, which both ends then read with KVMIG_GET_CHECK. An error
 * among them refuses the migration before any page moves: the call fails
 * with -ECONNREFUSED and the session is FAILED (KVMIG_FAIL_CHECK); a
 * memslot layout that differs still fails with -EPROTO
 * (KVMIG_FAIL_LAYOUT), and is a finding too. With
 * KVMIG_XFER_SETUP_DRY_RUN (source only) the handshake is all that runs:
 * both sessions end in KVMIG_STATE_CHECKED, no page is sent, and the call
 * returns 0, or -ECONNREFUSED if a finding is an error; the destination
 * learns of the dry run from the source. A CHECKED session can only be
 * read and closed: a migration after a dry run takes new sessions.
 *
 * Errors: -EFAULT; -EINVAL for an unknown flag, a nonzero reserved field,
 * KVMIG_XFER_SETUP_DRY_RUN at a destination, an unknown @priority or one
 * at a destination, a socket that is not a connected TCP socket, the same socket twice,
 * @nr_streams or @streams_ptr without KVMIG_XFER_SETUP_STREAMS, or
 * @nr_streams out of range, KVMIG_XFER_SETUP_RDMA with
 * KVMIG_XFER_SETUP_STREAMS, or an @event_fd that is not an eventfd;
 * -EOPNOTSUPP for KVMIG_XFER_SETUP_RDMA from a module without RDMA;
 * -ENOTSOCK; -EBADF; -EBUSY in the wrong state; -ESRCH if the VMM's
 * address space is gone; -ECONNREFUSED if the pre-check refused the
 * migration (see above); -EPROTO (the session FAILED) if the peer's
 * layout, version or number of streams differs, a stream is not in its
 * place, or the peer sent garbage; -ETIMEDOUT,
 * -ECONNRESET, -EPIPE (FAILED) for connection trouble.
 *
 * KVMIG_XFER_SETUP, _ROUND, _FINAL and _RECV hand their work to the worker
 * and wait for it, interruptibly, without holding anything a vCPU thread
 * needs. A signal makes the call return -EINTR (or restart it, with
 * SA_RESTART) while the work goes on: calling the same ioctl again waits
 * for that same work and returns its result; it never starts a second
 * round. Another transfer call meanwhile gets -EBUSY.
 */
struct kvmig_xfer_setup {
	__u32 sock_fd;
	__u32 flags;
	__u32 max_rounds;
	__u32 io_timeout_ms;
	__u64 downtime_ns;
	__u64 bandwidth;
	__u64 timeout_ms;
	__u32 event_fd;
	__u32 nr_streams;
	__u64 streams_ptr;
	__u32 priority;
	__u32 pad;
	__u64 reserved;
};

/* struct kvmig_xfer_setup.priority */
#define KVMIG_PRIORITY_STANDARD	0	/* weight 1 */
#define KVMIG_PRIORITY_HIGH	1	/* weight: the module's high_weight */

/* struct kvmig_xfer_setup.flags */
#define KVMIG_XFER_SETUP_EVENTFD	_BITUL(0)	/* @event_fd is set */
#define KVMIG_XFER_SETUP_STREAMS	_BITUL(1)	/* @nr_streams, @streams_ptr */
#define KVMIG_XFER_SETUP_RDMA		_BITUL(2)	/* over RDMA, see above */
#define KVMIG_XFER_SETUP_DRY_RUN	_BITUL(3)	/* source: pre-check only */
#define KVMIG_XFER_SETUP_FLAGS		(KVMIG_XFER_SETUP_EVENTFD | \
					 KVMIG_XFER_SETUP_STREAMS | \
					 KVMIG_XFER_SETUP_RDMA | \
					 KVMIG_XFER_SETUP_DRY_RUN)

#define KVMIG_MAX_STREAMS	16

#define KVMIG_XFER_SETUP	_IOW(KVMIG_IO, 0x30, struct kvmig_xfer_setup)

/* struct kvmig_round.status */
#define KVMIG_ROUND_SENT	0	/* a round went out; call again */
#define KVMIG_ROUND_CONVERGED	1	/* the rest fits the downtime budget */
#define KVMIG_ROUND_MAX_ROUNDS	2	/* max_rounds reached */
#define KVMIG_ROUND_TIMEOUT	3	/* timeout_ms reached */

/**
 * struct kvmig_round - one pre-copy round (source)
 * @flags: in: must be 0
 * @status: out: KVMIG_ROUND_*
 * @round: out: number of this round (0 sends all memory)
 * @pages_sent: out: pages sent with contents in this round
 * @zero_pages: out: pages found zero and sent as such (round 0)
 * @remaining: out: pages pending after this round's harvest
 * @expected_downtime_ns: out: @remaining at the measured throughput;
 *	U64_MAX in round 0, before any throughput was measured
 * @hole_pages: out: of @zero_pages, those never populated in the VMM's
 *	mapping, found so without touching them (KVMIG_F0_HOLES)
 * @reserved: must be 0
 *
 * Round 0 sends every page of every memslot, zero pages as markers only.
 * Ranges the VMM's mapping never populated (no page table entry in
 * private anonymous memory, no page-cache or swap entry in shmem or
 * memfd memory) go as zero markers without being faulted in, so round 0
 * costs in proportion to the memory the guest has used, and a sparse
 * guest's memory is not allocated by migrating it.
 * Each later round harvests, then either sends what was dirtied or, if
 * what is dirty now fits the downtime budget (or a limit is reached), sends
 * nothing and says so: the VMM then pauses its vCPUs and calls
 * KVMIG_XFER_FINAL. poll() on the session reports EPOLLIN from that moment.
 * The guest keeps running during rounds; kvmig never stops it.
 *
 * While a round runs, KVMIG_DIRTY_HARVEST and KVMIG_DIRTY_MARK go on
 * working: they wait at most for one batch of pages to be taken from the
 * pending set, never for the network.
 *
 * Errors: -EINVAL, -EFAULT, -EBUSY (not PRECOPY, or another transfer call
 * running), -EINTR; -ECANCELED, -ETIMEDOUT, -ECONNRESET, -EPIPE, -EPROTO
 * (the session FAILED: the source VM is untouched and keeps running).
 */
struct kvmig_round {
	__u32 flags;
	__u32 status;
	__u64 round;
	__u64 pages_sent;
	__u64 zero_pages;
	__u64 remaining;
	__u64 expected_downtime_ns;
	__u64 hole_pages;
	__u64 reserved[3];
};

#define KVMIG_XFER_ROUND	_IOWR(KVMIG_IO, 0x31, struct kvmig_round)

/**
 * struct kvmig_final - switchover (source; the VMM has paused all vCPUs)
 * @flags: in: must be 0
 * @state_len: in: bytes of device and vCPU state at @state_ptr (opaque to
 *	kvmig, at most 16 MiB)
 * @state_ptr: in: user address of the state
 * @pages_sent: out: pages sent in this final pass
 * @downtime_ns: out: from this call to the destination's confirmation
 * @reserved: must be 0
 *
 * Harvests a last time, sends the last pages, the state and the end
 * marker, waits until the destination says it has everything (PREPARED),
 * then sends COMMIT and waits for its acknowledgment. Valid only after
 * round 0 went out (-EBUSY before: pages would be missing).
 *
 * Outcomes, which the VMM must follow:
 *  - 0: DONE. The destination has committed; stop the source VM for good.
 *  - -EINPROGRESS: IN_DOUBT. COMMIT was sent but not acknowledged: the
 *    destination may or may not be running the guest. Do not resume; the
 *    orchestrator settles it (KVMIG_XFER_RESOLVE).
 *  - any other error: FAILED, before COMMIT left. The destination cannot
 *    run the guest; resume the source VM, which is intact. (-EFAULT or
 *    -EINVAL on @state_ptr fail before anything is sent and leave the
 *    session in PRECOPY.)
 */
struct kvmig_final {
	__u32 flags;
	__u32 state_len;
	__u64 state_ptr;
	__u64 pages_sent;
	__u64 downtime_ns;
	__u64 reserved[4];
};

#define KVMIG_XFER_FINAL	_IOWR(KVMIG_IO, 0x32, struct kvmig_final)

/**
 * struct kvmig_recv - receive a migration (destination)
 * @flags: in: must be 0
 * @state_len: out: bytes of device state written to @state_ptr
 * @state_ptr: in: user buffer for the source's device state
 * @state_cap: in: its size
 * @pad: must be 0
 * @pages_received: out: pages written into the guest
 * @zero_pages: out: pages received as zero
 * @rounds: out: passes the source sent, its final pass included
 * @reserved: must be 0
 *
 * Blocks until the source's end marker (or an error), writing each page
 * straight into the destination guest's memory, answers PREPARED and
 * waits for the source's COMMIT, which it acknowledges. The destination's
 * guest RAM must be fresh (zero) anonymous memory, as KVM VMMs allocate it.
 *
 * Outcomes, which the VMM must follow:
 *  - 0: DONE. Load the state and resume the guest.
 *  - -EINPROGRESS: IN_DOUBT. Everything arrived (the state and this struct
 *    are written out as on success) but COMMIT did not: keep the VM and
 *    the state, do not run it; the orchestrator settles it
 *    (KVMIG_XFER_RESOLVE: COMMIT, then resume; ABORT, then discard).
 *  - any other error: FAILED. The guest's memory holds a partial image
 *    that the VMM must discard with the VM.
 *
 * Errors: -EINVAL, -EFAULT, -EBUSY (not RECEIVING, or another transfer call
 * running), -EINTR; -ENOSPC if the state does not fit @state_cap; -EPROTO
 * for a malformed stream (logged), -ECANCELED, -ETIMEDOUT, -ECONNRESET,
 * -EPIPE (all FAILED).
 */
struct kvmig_recv {
	__u32 flags;
	__u32 state_len;
	__u64 state_ptr;
	__u32 state_cap;
	__u32 pad;
	__u64 pages_received;
	__u64 zero_pages;
	__u64 rounds;
	__u64 reserved[4];
};

#define KVMIG_XFER_RECV		_IOWR(KVMIG_IO, 0x33, struct kvmig_recv)

/*
 * Cancel a transfer from any thread, at any moment: blocked sends and
 * receives return, the call in progress fails with -ECANCELED and the
 * session is FAILED; between calls, the session is FAILED at once. The
 * source VM is left running and intact. Once the switchover has passed
 * the point where the outcome can be known (COMMIT sent, or PREPARED
 * answered), cancel cannot make anybody resume: the session ends IN_DOUBT.
 * Returns 0, or -EBUSY if the session has no transfer or has ended.
 */
#define KVMIG_XFER_CANCEL	_IO(KVMIG_IO, 0x34)

/* struct kvmig_resolve.decision */
#define KVMIG_RESOLVE_COMMIT	1	/* the destination runs the guest */
#define KVMIG_RESOLVE_ABORT	2	/* the source runs the guest */

/**
 * struct kvmig_resolve - settle a session that is IN_DOUBT (KVMIG_F0_COMMIT)
 * @decision: in: KVMIG_RESOLVE_COMMIT or KVMIG_RESOLVE_ABORT
 * @flags: in: must be 0
 * @reserved: must be 0
 *
 * The orchestrator's call, made on both hosts with the same decision, as
 * libvirt's Finish and Confirm phases do. It may COMMIT only if the source
 * is DONE or IN_DOUBT, and must ABORT if either side is FAILED. COMMIT:
 * the session is DONE (source: stop the VM; destination: resume it).
 * ABORT: FAILED with KVMIG_FAIL_ABORTED (source: resume; destination:
 * discard).
 *
 * Errors: -EFAULT; -EINVAL for a bad decision, flag or reserved field;
 * -EBUSY if the session is not IN_DOUBT.
 */
struct kvmig_resolve {
	__u32 decision;
	__u32 flags;
	__u64 reserved[3];
};

#define KVMIG_XFER_RESOLVE	_IOW(KVMIG_IO, 0x35, struct kvmig_resolve)

#endif /* _UAPI_KVMIG_H */
