// SPDX-License-Identifier: GPL-2.0
/*
 * The dirty-page tracker of a source session: records the memslot layout
 * at start, keeps one pending bitmap per memslot, and runs the chosen
 * tracker (ring.c or bitmap.c) on each harvest.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/bsearch.h>
#include <linux/kvm_host.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/timekeeping.h>

#include <kunit/visibility.h>

#include "dirty.h"

static int slot_cmp(const void *a, const void *b)
{
	const struct kvmig_slot *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

struct kvmig_slot *kvmig_dirty_slot(struct kvmig_dirty *d, u32 id)
{
	struct kvmig_slot key = { .id = id };

	return bsearch(&key, d->slots, d->nr_slots, sizeof(key), slot_cmp);
}

/* Is @ms a memslot that userspace created (not one of KVM's own)? */
static bool user_slot(const struct kvm_memory_slot *ms)
{
	return ms->id < KVM_USER_MEM_SLOTS;
}

static void record_slot(struct kvmig_slot *ks, const struct kvm_memory_slot *ms)
{
	ks->id = ms->id;
	ks->flags = ms->flags;
	ks->base_gfn = ms->base_gfn;
	ks->npages = ms->npages;
	ks->userspace_addr = ms->userspace_addr;
}

static bool same_slot(const struct kvmig_slot *ks,
		      const struct kvm_memory_slot *ms)
{
	return ks->flags == ms->flags && ks->base_gfn == ms->base_gfn &&
	       ks->npages == ms->npages &&
	       ks->userspace_addr == ms->userspace_addr;
}

/*
 * Record the user memslots of address space 0; the caller holds srcu.
 * A source (@need_log) must log every RAM memslot.
 */
static int record_layout(struct kvmig_dirty *d, bool need_log)
{
	struct kvm_memslots *slots;
	struct kvm_memory_slot *ms;
	u32 n = 0;
	int as, bkt;

	for (as = 1; as < KVM_MAX_NR_ADDRESS_SPACES; as++) {
		kvm_for_each_memslot(ms, bkt, __kvm_memslots(d->kvm, as))
			if (user_slot(ms))
				return -EOPNOTSUPP;
	}

	slots = kvm_memslots(d->kvm);
	kvm_for_each_memslot(ms, bkt, slots) {
		if (!user_slot(ms))
			continue;
		if (ms->flags & KVM_MEM_GUEST_MEMFD)
			return -EOPNOTSUPP;
		if (need_log &&
		    !(ms->flags & (KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY)))
			return -EINVAL;
		n++;
	}
	if (!n)
		return -EINVAL;

	d->slots = kvcalloc(n, sizeof(*d->slots), GFP_KERNEL_ACCOUNT);
	if (!d->slots)
		return -ENOMEM;
	kvm_for_each_memslot(ms, bkt, slots) {
		if (user_slot(ms))
			record_slot(&d->slots[d->nr_slots++], ms);
	}
	d->generation = slots->generation;
	return 0;
}

/**
 * kvmig_dirty_check_layout - has the memslot layout changed since start?
 * @d: the tracker
 *
 * Called under kvm->srcu. Any user memslot added, deleted, moved, resized
 * or with changed flags fails the session: -ESTALE, with fail_reason set.
 */
int kvmig_dirty_check_layout(struct kvmig_dirty *d)
{
	struct kvm_memslots *slots = kvm_memslots(d->kvm);
	struct kvm_memory_slot *ms;
	struct kvmig_slot *ks;
	u32 n = 0;
	int bkt;

	lockdep_assert_held(&d->lock);

	/* Regions are the VMM's memory, whatever memslots map them. */
	if (d->regions)
		return 0;
	if (slots->generation == d->generation)
		return 0;
	kvm_for_each_memslot(ms, bkt, slots) {
		if (!user_slot(ms))
			continue;
		ks = kvmig_dirty_slot(d, ms->id);
		if (!ks || !same_slot(ks, ms))
			goto changed;
		n++;
	}
	if (n != d->nr_slots)
		goto changed;
	d->generation = slots->generation;
	return 0;

changed:
	d->fail_reason = KVMIG_FAIL_MEMSLOTS;
	return -ESTALE;
}

/* Call one of the VM's own ioctls; the caller runs in the VM's mm. */
long kvmig_vm_ioctl(struct kvmig_dirty *d, unsigned int cmd,
		    unsigned long arg)
{
	lockdep_assert_held(&d->lock);
	return d->vm_file->f_op->unlocked_ioctl(d->vm_file, cmd, arg);
}

static void free_slots(struct kvmig_dirty *d)
{
	u32 i;

	for (i = 0; i < d->nr_slots; i++)
		kvfree(d->slots[i].pending);
	kvfree(d->slots);
}

/**
 * kvmig_dirty_create - start tracking a VM's dirty pages
 * @kvm: the VM; the session holds a reference
 * @vm_file: the VM's file; the session holds a reference
 * @mode: KVMIG_DIRTY_RING or KVMIG_DIRTY_BITMAP; KVMIG_DIRTY_AUTO for a
 *	destination, which only needs the layout
 * @regions: the VMM's RAM regions, checked by kvmig_regions_check(), or
 *	NULL to migrate the memslots of address space 0
 * @nr_regions: entries in @regions
 *
 * Runs in the VM's mm. Return: the tracker, or an ERR_PTR.
 */
struct kvmig_dirty *kvmig_dirty_create(struct kvm *kvm, struct file *vm_file,
				       u32 mode,
				       const struct kvmig_region *regions,
				       u32 nr_regions)
{
	struct kvmig_dirty *d;
	int idx, ret;
	u32 i;

	d = kzalloc(sizeof(*d), GFP_KERNEL_ACCOUNT);
	if (!d)
		return ERR_PTR(-ENOMEM);
	mutex_init(&d->lock);
	init_waitqueue_head(&d->thr_wq);
	d->kvm = kvm;
	d->vm_file = vm_file;
	if (mode == KVMIG_DIRTY_RING)
		d->ops = &kvmig_ring_ops;
	else if (mode == KVMIG_DIRTY_BITMAP)
		d->ops = &kvmig_bitmap_ops;
	else
		d->ops = &kvmig_none_ops;

	if (regions) {
		d->regions = true;
		ret = kvmig_regions_record(d, regions, nr_regions,
					   d->ops != &kvmig_none_ops);
	} else {
		idx = srcu_read_lock(&kvm->srcu);
		ret = record_layout(d, d->ops != &kvmig_none_ops);
		srcu_read_unlock(&kvm->srcu, idx);
	}
	if (ret)
		goto err_slots;

	sort(d->slots, d->nr_slots, sizeof(*d->slots), slot_cmp, NULL);
	for (i = 0; i < d->nr_slots; i++) {
		d->slots[i].pending = kvcalloc(BITS_TO_LONGS(d->slots[i].npages),
					       sizeof(long),
					       GFP_KERNEL_ACCOUNT);
		if (!d->slots[i].pending) {
			ret = -ENOMEM;
			goto err_slots;
		}
		d->guest_pages += d->slots[i].npages;
	}

	mutex_lock(&d->lock);
	ret = d->ops->start(d);
	mutex_unlock(&d->lock);
	if (ret)
		goto err_slots;
	return d;

err_slots:
	free_slots(d);
	mutex_destroy(&d->lock);
	kfree(d);
	return ERR_PTR(ret);
}

/* Nobody else can reach @d any more: the session's last reference went. */
void kvmig_dirty_destroy(struct kvmig_dirty *d)
{
	d->ops->stop(d);
	free_slots(d);
	mutex_destroy(&d->lock);
	kfree(d);
}

static void __counters(struct kvmig_dirty *d, struct kvmig_dirty_counters *c)
{
	lockdep_assert_held(&d->lock);

	c->pages_pending = d->pages_pending;
	c->rounds = d->rounds;
	c->pages_harvested = d->pages_harvested;
	c->pages_read = d->pages_read;
	c->harvest_ns = d->harvest_ns;
	c->pages_dirtied = d->pages_dirtied;
	c->thr_policy = d->thr.policy;
	c->thr_pct = d->thr_pct;
	c->thr_ns = d->thr_ns;
}

/**
 * kvmig_dirty_harvest - collect what KVM logged into the pending set
 * @d: the tracker
 * @found: out: pages this harvest collected
 * @c: out: the tracker's figures after it (may be NULL)
 *
 * Runs in the VM's mm. Holds the tracker's lock for the harvest only.
 * Return: 0, -ESTALE if the session must fail (d->fail_reason says why),
 * or an error of KVM's ioctls (what was collected stays pending).
 */
int kvmig_dirty_harvest(struct kvmig_dirty *d, u64 *found,
			struct kvmig_dirty_counters *c)
{
	u64 t0 = ktime_get_ns(), before;
	int ret;

	mutex_lock(&d->lock);
	*found = 0;
	before = d->pages_pending;
	ret = d->ops->harvest(d, found);
	/* A harvest only adds to the pending set. */
	d->pages_dirtied += d->pages_pending - before;
	d->rounds++;
	d->pages_harvested += *found;
	d->harvest_ns += ktime_get_ns() - t0;
	if (c)
		__counters(d, c);
	mutex_unlock(&d->lock);
	return ret;
}

void kvmig_dirty_counters(struct kvmig_dirty *d, struct kvmig_dirty_counters *c)
{
	mutex_lock(&d->lock);
	__counters(d, c);
	mutex_unlock(&d->lock);
}

/* Round 0: every page of every memslot is pending. */
void kvmig_dirty_fill(struct kvmig_dirty *d)
{
	u32 i;

	mutex_lock(&d->lock);
	for (i = 0; i < d->nr_slots; i++)
		bitmap_fill(d->slots[i].pending, d->slots[i].npages);
	d->pages_pending = d->guest_pages;
	mutex_unlock(&d->lock);
}

/* Start a pass over the pending set from the first memslot's first page. */
void kvmig_dirty_rewind(struct kvmig_dirty *d)
{
	mutex_lock(&d->lock);
	d->cur_slot = 0;
	d->cur_pos = 0;
	mutex_unlock(&d->lock);
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_dirty_rewind);

/* Remove runs found in the pending set from it. */
static void __consume(struct kvmig_dirty *d, const struct kvmig_dirty_run *runs,
		      u32 nr)
{
	struct kvmig_slot *ks;
	u32 i;

	lockdep_assert_held(&d->lock);

	for (i = 0; i < nr; i++) {
		ks = kvmig_dirty_slot(d, runs[i].slot);
		if (WARN_ON_ONCE(!ks))
			continue;
		bitmap_clear(ks->pending, runs[i].gfn - ks->base_gfn,
			     runs[i].npages);
		d->pages_pending -= runs[i].npages;
	}
}

/**
 * kvmig_dirty_take - take the next runs of the pass out of the pending set
 * @d: the tracker
 * @runs: output, @max entries
 * @max: at most this many runs
 * @pages: out: pages in the runs taken
 * @pending: out: pages still pending
 *
 * Goes on from the cursor where the previous call stopped, so that a pass
 * costs O(pending pages + bitmap words), whatever the batch size. What is
 * taken is no longer pending: a page dirtied again after this call is
 * pending again, and sent again, even while its first copy is in flight.
 * Pages that become pending behind the cursor wait for the next pass.
 * Return: runs taken; 0 once the pass reached the end.
 */
u32 kvmig_dirty_take(struct kvmig_dirty *d, struct kvmig_dirty_run *runs,
		     u32 max, u64 *pages, u64 *pending)
{
	struct kvmig_slot *ks;
	u32 n = 0;

	mutex_lock(&d->lock);
	*pages = 0;
	while (n < max && d->cur_slot < d->nr_slots) {
		ks = &d->slots[d->cur_slot];
		n += kvmig_bitmap_runs(ks->pending, ks->npages, &d->cur_pos,
				       ks->base_gfn, ks->id, runs + n, max - n,
				       pages);
		if (d->cur_pos >= ks->npages) {
			d->cur_slot++;
			d->cur_pos = 0;
		}
	}
	__consume(d, runs, n);
	*pending = d->pages_pending;
	mutex_unlock(&d->lock);
	return n;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_dirty_take);

/* Up to @max runs of pending pages, by slot id then gfn; nothing changes. */
u32 kvmig_dirty_collect_runs(struct kvmig_dirty *d,
			     struct kvmig_dirty_run *runs, u32 max,
			     u64 *pages)
{
	struct kvmig_slot *ks;
	unsigned long pos;
	u32 i, n = 0;

	lockdep_assert_held(&d->lock);

	*pages = 0;
	for (i = 0; i < d->nr_slots && n < max; i++) {
		ks = &d->slots[i];
		pos = 0;
		n += kvmig_bitmap_runs(ks->pending, ks->npages, &pos,
				       ks->base_gfn, ks->id, runs + n,
				       max - n, pages);
	}
	return n;
}

/* KVMIG_DIRTY_READ: remove runs returned by kvmig_dirty_collect_runs(). */
void kvmig_dirty_consume(struct kvmig_dirty *d,
			 const struct kvmig_dirty_run *runs, u32 nr)
{
	u64 pages = 0;
	u32 i;

	lockdep_assert_held(&d->lock);

	__consume(d, runs, nr);
	for (i = 0; i < nr; i++)
		pages += runs[i].npages;
	d->pages_read += pages;
}

static int none_start(struct kvmig_dirty *d)
{
	return 0;
}

static int none_harvest(struct kvmig_dirty *d, u64 *found)
{
	return 0;
}

static void none_stop(struct kvmig_dirty *d)
{
}

/* A destination's: the layout without tracking. */
const struct kvmig_tracker_ops kvmig_none_ops = {
	.name		= "none",
	.start		= none_start,
	.harvest	= none_harvest,
	.stop		= none_stop,
};

#define KVMIG_MARK_CHUNK	65536

static unsigned long weight_range(const unsigned long *bm, unsigned long start,
				  unsigned long n)
{
	unsigned long bit = start, w = 0;

	for_each_set_bit_from(bit, bm, start + n)
		w++;
	return w;
}

/**
 * kvmig_dirty_mark - add pages the VMM wrote to the pending set
 * @d: the tracker
 * @runs: runs, checked here against the layout
 * @nr: their number
 *
 * All or nothing: every run is checked before any is marked. Takes the
 * tracker's lock for at most KVMIG_MARK_CHUNK pages at a time, so that a vCPU thread waiting for it
 * (a full dirty ring) waits for one chunk at most, not for the whole call.
 * Return: 0, or -EINVAL (nothing marked) if a run is empty or not inside
 * one recorded memslot.
 */
int kvmig_dirty_mark(struct kvmig_dirty *d, const struct kvmig_dirty_run *runs,
		     u32 nr)
{
	struct kvmig_slot *ks;
	unsigned long off;
	u32 i, n, left, added;

	/* The layout never changes after creation: no lock needed here. */
	for (i = 0; i < nr; i++) {
		ks = kvmig_dirty_slot(d, runs[i].slot);
		if (!ks || !runs[i].npages || runs[i].gfn < ks->base_gfn ||
		    runs[i].gfn - ks->base_gfn >= ks->npages ||
		    runs[i].npages > ks->npages - (runs[i].gfn - ks->base_gfn))
			return -EINVAL;
	}
	for (i = 0; i < nr; i++) {
		ks = kvmig_dirty_slot(d, runs[i].slot);
		off = runs[i].gfn - ks->base_gfn;
		for (left = runs[i].npages; left; left -= n, off += n) {
			n = min_t(u32, left, KVMIG_MARK_CHUNK);
			mutex_lock(&d->lock);
			/*
			 * Only pages not pending yet are new: they count in
			 * the dirty rate as a harvest's do (a VMM that syncs
			 * KVM's log itself, as QEMU does, marks what the
			 * guest wrote before kvmig's harvest sees it).
			 */
			added = n - weight_range(ks->pending, off, n);
			d->pages_pending += added;
			d->pages_dirtied += added;
			bitmap_set(ks->pending, off, n);
			mutex_unlock(&d->lock);
			cond_resched();
		}
	}
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_dirty_mark);
