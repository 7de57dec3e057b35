/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Dirty-page harvesting: two trackers (dirty ring, bitmap with manual
 * protect) behind one ops table, feeding one pending set per memslot.
 */
#ifndef _KVMIG_DIRTY_H
#define _KVMIG_DIRTY_H

#include <linux/mutex.h>
#include <linux/types.h>
#include <linux/wait.h>

#include <kvmig.h>
#include "../compat.h"

struct file;
struct kvm;
struct kvm_dirty_gfn;
struct kvmig_dirty;

/**
 * struct kvmig_tracker_ops - one way of harvesting KVM's dirty tracking
 * @name: for messages
 * @start: check the VM's setup and prepare; undone by @stop
 * @harvest: collect what KVM logged into the pending set, add the number
 *	of pages collected to *@found, re-protect them; -ESTALE (with
 *	kvmig_dirty.fail_reason set) if the session must fail
 * @stop: release what @start set up
 *
 * All three run with the tracker's lock held, in the VM's mm (the VMM's
 * own thread, or the session's worker that adopted the mm).
 */
struct kvmig_tracker_ops {
	const char *name;
	int (*start)(struct kvmig_dirty *d);
	int (*harvest)(struct kvmig_dirty *d, u64 *found);
	void (*stop)(struct kvmig_dirty *d);
};

extern const struct kvmig_tracker_ops kvmig_ring_ops;
extern const struct kvmig_tracker_ops kvmig_bitmap_ops;
extern const struct kvmig_tracker_ops kvmig_none_ops;

/**
 * struct kvmig_slot - a memslot as recorded at KVMIG_DIRTY_START, or a
 *	region of a region session (KVMIG_ATTACH_REGIONS)
 * @id: memslot id (address space 0), or region id
 * @flags: the memslot's flags (KVM_MEM_*); 0 for a region
 * @base_gfn: first gfn; 0 for a region, whose pages are numbered from 0
 * @npages: size in pages
 * @userspace_addr: where the VMM maps it
 * @pending: bit per page: harvested and not yet consumed
 */
struct kvmig_slot {
	u32 id;
	u32 flags;
	u64 base_gfn;
	u64 npages;
	u64 userspace_addr;
	unsigned long *pending;
};

/**
 * struct kvmig_dirty - a session's dirty-page tracker
 * @lock: protects everything below but the fields set at creation (@kvm,
 *	@vm_file, @ops, @nr_slots, the slots' geometry, @guest_pages). Taken
 *	by vCPU threads (KVMIG_DIRTY_HARVEST on a full ring, DIRTY_MARK) and
 *	by the worker for one harvest or one batch at a time: never held
 *	across network I/O. Nests inside the session's lock, never around it.
 * @kvm: the VM (the session holds the reference)
 * @vm_file: the VM's file (the session holds the reference)
 * @ops: the tracker in use
 * @regions: set at creation: @slots are the VMM's RAM regions, and the
 *	memslots that map them are looked up at every harvest
 * @generation: memslot generation the layout was last checked at
 * @nr_slots: entries in @slots
 * @slots: the layout recorded at start, sorted by id
 * @guest_pages: pages in @slots
 * @pages_pending: bits set over all kvmig_slot.pending
 * @cur_slot: the pass's cursor: index in @slots
 * @cur_pos: the pass's cursor: next bit of that slot's pending bitmap
 * @rounds: harvests done
 * @pages_harvested: pages collected over all harvests
 * @pages_read: pages consumed through KVMIG_DIRTY_READ
 * @harvest_ns: time spent harvesting
 * @fail_reason: KVMIG_FAIL_*, when a harvest returned -ESTALE
 * @last_slot: ring mode: the memslot of the last entry collected
 * @fetch: ring mode: per vCPU index, the next ring entry to collect
 * @nr_fetch: ring mode: entries in @fetch (the VM's max_vcpus)
 * @bits: bitmap mode: one harvest's bits of one memslot
 * @maps: region bitmap mode: the memslots (as_id << 16 | id) that map
 *	region memory, as one harvest found them
 * @nr_maps: entries in @maps
 * @maps_cap: room in @maps
 * @uscratch: bitmap mode: user address of the scratch area in the VM's mm
 * @uscratch_len: bitmap mode: its length
 * @id: set at creation: the session's id, for the tracepoints
 * @pages_dirtied: pages that harvests newly added to the pending set
 * @thr: the throttle's setting (KVMIG_SET_THROTTLE)
 * @thr_pct: its share of vCPU time now, see struct kvmig_stats
 * @thr_high: AUTO: worker harvests in a row that found the guest too fast
 * @thr_ns: time vCPU threads slept in the throttle
 * @thr_ns_seen: @thr_ns at the worker's last harvest
 * @thr_vcpu: ring mode: per vCPU index (@nr_fetch), its account
 * @thr_gen: bumped (WRITE_ONCE, no lock) whenever sleeping vCPU threads
 *	must wake: a new setting, or the session left pre-copy
 * @thr_wq: where they sleep
 */
struct kvmig_dirty {
	struct mutex lock; /* see above */
	struct kvm *kvm;
	struct file *vm_file;
	const struct kvmig_tracker_ops *ops;
	bool regions;
	u64 generation;
	u32 nr_slots;
	struct kvmig_slot *slots;
	u64 guest_pages;
	u64 pages_pending;
	u32 cur_slot;
	unsigned long cur_pos;
	u64 rounds;
	u64 pages_harvested;
	u64 pages_read;
	u64 harvest_ns;
	u32 fail_reason;
	struct kvmig_slot *last_slot;
	u32 *fetch;
	u32 nr_fetch;
	unsigned long *bits;
	u32 *maps;
	u32 nr_maps;
	u32 maps_cap;
	unsigned long uscratch;
	unsigned long uscratch_len;
	u64 id;
	u64 pages_dirtied;
	struct kvmig_throttle thr;
	u32 thr_pct;
	u32 thr_high;
	u64 thr_ns;
	u64 thr_ns_seen;
	struct kvmig_throttle_vcpu *thr_vcpu;
	u32 thr_gen;
	wait_queue_head_t thr_wq;
};

/**
 * struct kvmig_throttle_vcpu - one vCPU's account with the throttle
 * @paid_ns: RATE: the time up to which its pages are paid for
 * @woke_ns: AUTO: when it last went back to the guest from a harvest
 */
struct kvmig_throttle_vcpu {
	u64 paid_ns;
	u64 woke_ns;
};

/**
 * struct kvmig_dirty_counters - a consistent copy of a tracker's figures
 */
struct kvmig_dirty_counters {
	u64 pages_pending;
	u64 rounds;
	u64 pages_harvested;
	u64 pages_read;
	u64 harvest_ns;
	u64 pages_dirtied;
	u32 thr_policy;
	u32 thr_pct;
	u64 thr_ns;
};

struct kvmig_dirty *kvmig_dirty_create(struct kvm *kvm, struct file *vm_file,
				       u32 mode,
				       const struct kvmig_region *regions,
				       u32 nr_regions);
int kvmig_regions_check(const struct kvmig_region *regions, u32 nr);
void kvmig_dirty_destroy(struct kvmig_dirty *d);
int kvmig_dirty_harvest(struct kvmig_dirty *d, u64 *found,
			struct kvmig_dirty_counters *c);
void kvmig_dirty_counters(struct kvmig_dirty *d,
			  struct kvmig_dirty_counters *c);
void kvmig_dirty_fill(struct kvmig_dirty *d);
void kvmig_dirty_rewind(struct kvmig_dirty *d);
u32 kvmig_dirty_take(struct kvmig_dirty *d, struct kvmig_dirty_run *runs,
		     u32 max, u64 *pages, u64 *pending);
u32 kvmig_dirty_collect_runs(struct kvmig_dirty *d,
			     struct kvmig_dirty_run *runs, u32 max,
			     u64 *pages);
void kvmig_dirty_consume(struct kvmig_dirty *d,
			 const struct kvmig_dirty_run *runs, u32 nr);
int kvmig_dirty_mark(struct kvmig_dirty *d, const struct kvmig_dirty_run *runs,
		     u32 nr);

/* Shared by the trackers. */
struct kvmig_slot *kvmig_dirty_slot(struct kvmig_dirty *d, u32 id);
int kvmig_dirty_check_layout(struct kvmig_dirty *d);
long kvmig_vm_ioctl(struct kvmig_dirty *d, unsigned int cmd,
		    unsigned long arg);

/* The throttle (throttle.c). */
int kvmig_throttle_check(const struct kvmig_throttle *t);
int kvmig_throttle_start(struct kvmig_dirty *d);
void kvmig_throttle_stop(struct kvmig_dirty *d);
void kvmig_throttle_set(struct kvmig_dirty *d, const struct kvmig_throttle *t);
void kvmig_throttle_charge(struct kvmig_dirty *d, u32 idx, u64 pages, u64 now);
void kvmig_throttle_vcpu(struct kvmig_dirty *d);
void kvmig_throttle_wake(struct kvmig_dirty *d);
void kvmig_throttle_update(struct kvmig_dirty *d, u64 dirtied, u64 rate,
			   u64 sent, u64 interval_ns);
u64 kvmig_throttle_cost(u64 pages, u32 nr_vcpus, u64 rate);
u64 kvmig_throttle_auto_ns(u64 run_ns, u32 pct);
u32 kvmig_throttle_rate_pct(u64 measured, u32 pct, u64 target, u32 max_pct);

/* Region sessions (region.c). */
int kvmig_regions_record(struct kvmig_dirty *d,
			 const struct kvmig_region *regions, u32 nr,
			 bool need_log);

/**
 * struct kvmig_overlap - the part of a memslot that lies in a region
 * @first: first page of the part, counted in the memslot
 * @end: the page after its last, counted in the memslot
 * @roff: the region's page that @first maps
 */
struct kvmig_overlap {
	u64 first;
	u64 end;
	u64 roff;
};

/* Pure helpers, tested by KUnit. */
bool kvmig_overlap(u64 slot_addr, u64 slot_pages, u64 region_addr,
		   u64 region_pages, struct kvmig_overlap *o);
typedef int (*kvmig_ring_fn)(void *arg, u32 slot, u64 offset);
int kvmig_ring_collect(struct kvm_dirty_gfn *gfns, u32 size, u32 reset_index,
		       u32 *fetch, kvmig_ring_fn fn, void *arg);
u32 kvmig_bitmap_runs(const unsigned long *bm, unsigned long nbits,
		      unsigned long *pos, u64 base_gfn, u32 slot,
		      struct kvmig_dirty_run *runs, u32 max, u64 *pages);

#endif /* _KVMIG_DIRTY_H */
