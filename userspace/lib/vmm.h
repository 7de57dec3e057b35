/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small VMM for kvmig's tests, benchmarks and demo.
 *
 * It builds a KVM VM with one read-only control memslot (guest code and
 * one mailbox per vCPU) and one or more data memslots backed by anonymous
 * memory, with dirty logging on, in one of KVM's dirty-tracking setups.
 * vCPUs run in 32-bit protected mode with flat segments and no paging, so
 * a guest address is a guest physical address below 4 GiB.
 *
 * A guest program is position-independent code, copied to VMM_CODE_GPA;
 * each vCPU starts there with %esi = its mailbox's gpa, and ends each of
 * its rounds with an OUT to VMM_PORT_DONE. vmm_run() runs every vCPU, in a
 * thread each, until all of them have done so.
 */
#ifndef KVMIG_VMM_H
#define KVMIG_VMM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define VMM_MAX_VCPUS		8
#define VMM_MAX_SLOTS		4	/* data slots */

#define VMM_CTRL_SLOT		0
#define VMM_CODE_GPA		0x1000
#define VMM_MBOX_GPA		0x10000
#define VMM_MBOX_SIZE		0x4000
#define VMM_CTRL_SIZE		(VMM_MBOX_GPA + VMM_MAX_VCPUS * VMM_MBOX_SIZE)
#define VMM_DATA_GPA		0x20000000ULL	/* data slot i at (i + 1) * this */
#define VMM_DATA_MAX		0x20000000ULL	/* largest of several data slots */
#define VMM_DATA_MAX_ONE	(64ULL << 30)	/* largest single data slot */

#define VMM_PORT_DONE		0x10

enum vmm_dirty {
	VMM_DIRTY_BITMAP,	/* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 */
	VMM_DIRTY_RING,		/* KVM_CAP_DIRTY_LOG_RING(_ACQ_REL) */
};

struct vmm_config {
	enum vmm_dirty dirty;
	unsigned int nr_vcpus;
	unsigned int nr_slots;		/* data slots */
	uint64_t slot_size;		/* bytes per data slot */
	uint32_t ring_bytes;		/* per vCPU, ring mode; 0: 64 KiB */
	/*
	 * Bitmap mode: KVM_DIRTY_LOG_INITIALLY_SET, as QEMU enables it: a
	 * memslot that starts logging has every bit set and nothing
	 * write-protected until the first KVM_CLEAR_DIRTY_LOG.
	 */
	bool initially_set;
	bool memfd;			/* data slots in a memfd, MAP_SHARED */
	/* KVM_SET_CPUID2 on every vCPU, before it first runs; NULL: none. */
	const struct kvm_cpuid2 *cpuid;
};

struct vmm;

struct vmm_slot {
	uint32_t id;			/* KVM memslot id */
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
};

struct vmm_vcpu {
	struct vmm *vmm;
	unsigned int index;
	int fd;
	struct kvm_run *run;
	struct kvm_dirty_gfn *ring;	/* ring mode: mmap of the vCPU's ring */
	uint32_t ring_fetch;		/* next entry a userspace reaper takes */
	pthread_t thread;
	int err;			/* of the last vmm_run(), -errno */
	/*
	 * The throttle applier's view (vmm_throttle_start). Under
	 * vmm->thr.lock: in_run says a thread, runner, is in this vCPU's
	 * run loop now; only such a thread is ever sent VMM_KICK_SIGNAL.
	 */
	pthread_t runner;
	bool in_run;
	bool thr_due;			/* atomic: the ticker asks for a sleep */
	uint64_t throttle_slept_ns;	/* atomic: this vCPU's throttle sleeps */
};

/*
 * The throttle applier, for a kvmig source session in bitmap mode, where
 * kvmig cannot stop a vCPU itself and publishes in struct
 * kvmig_stats.throttle_pct the share of each vCPU's time to take away.
 * As QEMU's cpu-throttle does: every VMM_THROTTLE_SLICE_NS of run time
 * at p percent, a ticker kicks each vCPU out of KVM_RUN with
 * VMM_KICK_SIGNAL, and each vCPU thread sleeps p / (100 - p) slices
 * before it goes back into the guest.
 */
#define VMM_THROTTLE_SLICE_NS	10000000ULL
#define VMM_KICK_SIGNAL		SIGUSR2

struct vmm_throttle {
	pthread_t ticker;
	bool running;		/* the owner's: vmm_throttle_start/_stop */
	int fd;			/* the kvmig session, the owner's */
	int err;		/* the ticker's, -errno; read after the join */
	uint32_t pct;		/* atomic: the share last read */
	uint64_t kick_ns;	/* atomic: when the ticker read it */
	pthread_mutex_t lock;	/* guards stop and each vCPU's in_run/runner */
	pthread_cond_t wake;	/* broadcast when stop is set */
	bool stop;		/* ends the ticker's wait and every sleep */
};

/*
 * Called from a vCPU thread on KVM_EXIT_DIRTY_RING_FULL; must harvest (or
 * have kvmig harvest) the rings before returning 0. Callbacks run one at a
 * time under ring_lock, unless ring_full_parallel is set.
 */
typedef int (*vmm_ring_full_fn)(struct vmm *vmm, void *arg);

struct vmm {
	struct vmm_config cfg;
	int kvm;
	int vm;
	unsigned int page_size;
	size_t run_size;
	uint32_t ring_entries;
	uint8_t *ctrl;			/* control slot, VMM_CTRL_SIZE bytes */
	struct vmm_slot slots[VMM_MAX_SLOTS];
	uint64_t *bitmaps[VMM_MAX_SLOTS];	/* bitmap mode: harvest buffers */
	struct vmm_vcpu vcpus[VMM_MAX_VCPUS];
	vmm_ring_full_fn ring_full;
	void *ring_full_arg;
	bool ring_full_parallel;	/* callbacks without ring_lock */
	pthread_mutex_t ring_lock;	/* serialises ring_full callbacks */
	unsigned long ring_full_exits;	/* atomic */
	/*
	 * Optional, set by the caller: for each ring-full exit (in the order
	 * of ring_full_exits, the first ring_stall_cap of them), how long
	 * the vCPU stayed out of the guest, from KVM_RUN's return to the
	 * next KVM_RUN, in nanoseconds.
	 */
	uint64_t *ring_stall_ns;
	unsigned long ring_stall_cap;
	struct vmm_throttle thr;
	uint64_t throttle_slept_ns;	/* atomic: every vCPU's throttle sleeps */
};

/* Every call returns 0 or -errno, and says why on stderr. */
int vmm_create(struct vmm *vmm, const struct vmm_config *cfg);
/*
 * What this host's KVM offers a guest (KVM_GET_SUPPORTED_CPUID), malloc'd;
 * NULL with errno set.
 */
struct kvm_cpuid2 *vmm_supported_cpuid(void);
void vmm_destroy(struct vmm *vmm);
int vmm_load(struct vmm *vmm, const void *code, size_t len);
void *vmm_mbox(struct vmm *vmm, unsigned int vcpu);
int vmm_run(struct vmm *vmm);

/*
 * Apply the throttle of the bitmap-mode source session @kvmig_fd to this
 * VM's vCPUs, from a thread, until vmm_throttle_stop() (or vmm_destroy());
 * stop it before closing @kvmig_fd. It installs a handler for
 * VMM_KICK_SIGNAL, for good. Its sleeps add up in throttle_slept_ns.
 * vmm_throttle_stop() ends every sleep at once and returns the ticker's
 * error (a failed KVMIG_GET_STATS ends it), or 0.
 */
int vmm_throttle_start(struct vmm *vmm, int kvmig_fd);
int vmm_throttle_stop(struct vmm *vmm);

/* The slot holding @gpa, or NULL. */
struct vmm_slot *vmm_slot_of(struct vmm *vmm, uint64_t gpa);

/*
 * The standard userspace harvest paths, as a VMM without kvmig does it:
 * each calls @fn(arg, slot id, offset in pages) per dirty page and
 * re-protects what it reported. Return: pages reported, or -errno.
 */
typedef void (*vmm_dirty_fn)(void *arg, uint32_t slot, uint64_t offset);
long vmm_harvest_bitmap(struct vmm *vmm, vmm_dirty_fn fn, void *arg);
long vmm_harvest_ring(struct vmm *vmm, vmm_dirty_fn fn, void *arg);

/*
 * Take the dirty rings back from another harvester (kvmig, once its
 * session has failed): hand every published entry of every ring back to
 * KVM, whatever this VMM's own position, and go on from there, so that a
 * vCPU whose ring is full can run. The pages are not reported: no
 * migration is left to send them. Return: entries handed back, or -errno.
 */
long vmm_reclaim_rings(struct vmm *vmm);

#endif /* KVMIG_VMM_H */
