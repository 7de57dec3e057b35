// SPDX-License-Identifier: GPL-2.0
/*
 * The dirty-page tracker of a source session: records the memslot layout
 * at start, keeps one pending bitmap per memslot, and runs the chosen
 * tracker (ring.c or bitmap.c) on each harvest.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/kvm_host.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/timekeeping.h>

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

	lockdep_assert_held(d->lock);

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
	lockdep_assert_held(d->lock);
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
 * @lock: the session's lock, held by the caller
 * @kvm: the VM; the session holds a reference
 * @vm_file: the VM's file; the session holds a reference
 * @mode: KVMIG_DIRTY_RING or KVMIG_DIRTY_BITMAP; KVMIG_DIRTY_AUTO for a
 *	destination, which only needs the layout
 *
 * Runs in the VM's mm. Return: the tracker, or an ERR_PTR.
 */
struct kvmig_dirty *kvmig_dirty_create(struct mutex *lock, struct kvm *kvm,
				       struct file *vm_file, u32 mode)
{
	struct kvmig_dirty *d;
	int idx, ret;
	u32 i;

	lockdep_assert_held(lock);

	d = kzalloc(sizeof(*d), GFP_KERNEL_ACCOUNT);
	if (!d)
		return ERR_PTR(-ENOMEM);
	d->lock = lock;
	d->kvm = kvm;
	d->vm_file = vm_file;
	if (mode == KVMIG_DIRTY_RING)
		d->ops = &kvmig_ring_ops;
	else if (mode == KVMIG_DIRTY_BITMAP)
		d->ops = &kvmig_bitmap_ops;
	else
		d->ops = &kvmig_none_ops;

	idx = srcu_read_lock(&kvm->srcu);
	ret = record_layout(d, d->ops != &kvmig_none_ops);
	srcu_read_unlock(&kvm->srcu, idx);
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

	ret = d->ops->start(d);
	if (ret)
		goto err_slots;
	return d;

err_slots:
	free_slots(d);
	kfree(d);
	return ERR_PTR(ret);
}

void kvmig_dirty_destroy(struct kvmig_dirty *d)
{
	d->ops->stop(d);
	free_slots(d);
	kfree(d);
}

int kvmig_dirty_harvest(struct kvmig_dirty *d, u64 *found)
{
	u64 t0 = ktime_get_ns();
	int ret;

	lockdep_assert_held(d->lock);

	*found = 0;
	ret = d->ops->harvest(d, found);
	d->rounds++;
	d->pages_harvested += *found;
	d->harvest_ns += ktime_get_ns() - t0;
	return ret;
}

/* Up to @max runs of pending pages, by slot id then gfn; nothing changes. */
u32 kvmig_dirty_collect_runs(struct kvmig_dirty *d,
			     struct kvmig_dirty_run *runs, u32 max,
			     u64 *pages)
{
	struct kvmig_slot *ks;
	unsigned long pos;
	u32 i, n = 0;

	lockdep_assert_held(d->lock);

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

/* Remove runs returned by kvmig_dirty_collect_runs() from the pending set. */
void kvmig_dirty_consume(struct kvmig_dirty *d,
			 const struct kvmig_dirty_run *runs, u32 nr)
{
	struct kvmig_slot *ks;
	u32 i;

	lockdep_assert_held(d->lock);

	for (i = 0; i < nr; i++) {
		ks = kvmig_dirty_slot(d, runs[i].slot);
		if (WARN_ON_ONCE(!ks))
			continue;
		bitmap_clear(ks->pending, runs[i].gfn - ks->base_gfn,
			     runs[i].npages);
		d->pages_pending -= runs[i].npages;
		d->pages_read += runs[i].npages;
	}
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

/**
 * kvmig_dirty_mark - add pages the VMM wrote to the pending set
 * @d: the tracker
 * @runs: runs, checked here against the layout
 * @nr: their number
 *
 * All or nothing: Return: 0, or -EINVAL (nothing marked) if a run is empty
 * or not inside one recorded memslot.
 */
int kvmig_dirty_mark(struct kvmig_dirty *d, const struct kvmig_dirty_run *runs,
		     u32 nr)
{
	struct kvmig_slot *ks;
	u64 off, i, j;

	lockdep_assert_held(d->lock);

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
		for (j = off; j < off + runs[i].npages; j++)
			if (!__test_and_set_bit(j, ks->pending))
				d->pages_pending++;
	}
	return 0;
}
