// SPDX-License-Identifier: GPL-2.0
/*
 * Region sessions (KVMIG_ATTACH_REGIONS): the unit of migration is a range
 * of the VMM's memory that holds guest RAM, not a memslot. A VMM such as
 * QEMU maps windows of its RAM blocks into the guest as memslots, in both
 * address spaces (SMRAM in address space 1), and changes them with the
 * guest's configuration; until the device state is loaded, a destination's
 * memslots need not match the source's. A page is named by its region and
 * its offset there, which both ends agree on, and the memslots are only how
 * the source finds out what the guest wrote: the bitmap tracker looks them
 * up again at every harvest (bitmap.c).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kvm_host.h>
#include <linux/slab.h>

#include <kunit/visibility.h>

#include "dirty.h"

/**
 * kvmig_regions_check - validate the regions of KVMIG_ATTACH_VM
 * @regions: as copied from the caller
 * @nr: their number, 1..KVMIG_MAX_REGIONS (checked by the caller)
 *
 * One rule per line; pairs are compared exhaustively (@nr is small).
 * Return: 0 or -EINVAL.
 */
int kvmig_regions_check(const struct kvmig_region *regions, u32 nr)
{
	const struct kvmig_region *r, *q;
	u32 i, j;

	for (i = 0; i < nr; i++) {
		r = &regions[i];
		if (r->flags || r->reserved)
			return -EINVAL;
		if (!PAGE_ALIGNED(r->userspace_addr) || !PAGE_ALIGNED(r->size))
			return -EINVAL;
		if (!r->size)
			return -EINVAL;
		/* Written so that the sum cannot wrap. */
		if (r->size > TASK_SIZE_MAX ||
		    r->userspace_addr > TASK_SIZE_MAX - r->size)
			return -EINVAL;
		for (j = 0; j < i; j++) {
			q = &regions[j];
			if (q->id == r->id)
				return -EINVAL;
			if (q->userspace_addr < r->userspace_addr + r->size &&
			    r->userspace_addr < q->userspace_addr + q->size)
				return -EINVAL;
		}
	}
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_regions_check);

/**
 * kvmig_overlap - the part of a memslot that maps a region, if any
 * @slot_addr: the memslot's userspace_addr (page aligned, as KVM checks)
 * @slot_pages: its size in pages
 * @region_addr: the region's start (page aligned)
 * @region_pages: its size in pages
 * @o: out, if they overlap
 *
 * Both ranges lie below TASK_SIZE (KVM's access_ok() and
 * kvmig_regions_check()), so no end computed here can wrap.
 * Return: whether they overlap.
 */
bool kvmig_overlap(u64 slot_addr, u64 slot_pages, u64 region_addr,
		   u64 region_pages, struct kvmig_overlap *o)
{
	u64 slot_end = slot_addr + (slot_pages << PAGE_SHIFT);
	u64 region_end = region_addr + (region_pages << PAGE_SHIFT);
	u64 lo = max(slot_addr, region_addr);
	u64 hi = min(slot_end, region_end);

	if (lo >= hi)
		return false;
	o->first = (lo - slot_addr) >> PAGE_SHIFT;
	o->end = (hi - slot_addr) >> PAGE_SHIFT;
	o->roff = (lo - region_addr) >> PAGE_SHIFT;
	return true;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_overlap);

/* Is @ms a memslot that userspace created (not one of KVM's own)? */
static bool user_slot(const struct kvm_memory_slot *ms)
{
	return ms->id < KVM_USER_MEM_SLOTS;
}

/*
 * Check the memslots that map region @ks, in every address space, under
 * kvm->srcu: at least one must, and a source (@need_log) must log every
 * writable one. Return: 0, -EINVAL or -EOPNOTSUPP.
 */
static int check_region_slots(struct kvmig_dirty *d, struct kvmig_slot *ks,
			      bool need_log)
{
	struct kvm_memory_slot *ms;
	struct kvmig_overlap o;
	bool mapped = false;
	int as, bkt;

	for (as = 0; as < KVM_MAX_NR_ADDRESS_SPACES; as++) {
		kvm_for_each_memslot(ms, bkt, __kvm_memslots(d->kvm, as)) {
			if (!user_slot(ms) ||
			    !kvmig_overlap(ms->userspace_addr, ms->npages,
					   ks->userspace_addr, ks->npages, &o))
				continue;
			if (ms->flags & KVM_MEM_GUEST_MEMFD)
				return -EOPNOTSUPP;
			if (need_log &&
			    !(ms->flags & (KVM_MEM_LOG_DIRTY_PAGES |
					   KVM_MEM_READONLY)))
				return -EINVAL;
			mapped = true;
		}
	}
	return mapped ? 0 : -EINVAL;
}

/**
 * kvmig_regions_record - make the regions the session's layout
 * @d: the tracker being created
 * @regions: checked by kvmig_regions_check()
 * @nr: their number
 * @need_log: a source: every writable memslot that maps a region must log
 *
 * Each region becomes a struct kvmig_slot numbered from page 0. Return: 0,
 * -ENOMEM, -EINVAL (a region no memslot maps, or an unlogged one) or
 * -EOPNOTSUPP (a guest_memfd memslot).
 */
int kvmig_regions_record(struct kvmig_dirty *d,
			 const struct kvmig_region *regions, u32 nr,
			 bool need_log)
{
	struct kvmig_slot *ks;
	int idx, ret = 0;
	u32 i;

	d->slots = kvcalloc(nr, sizeof(*d->slots), GFP_KERNEL_ACCOUNT);
	if (!d->slots)
		return -ENOMEM;
	for (i = 0; i < nr; i++) {
		ks = &d->slots[i];
		ks->id = regions[i].id;
		ks->npages = regions[i].size >> PAGE_SHIFT;
		ks->userspace_addr = regions[i].userspace_addr;
	}
	d->nr_slots = nr;

	idx = srcu_read_lock(&d->kvm->srcu);
	for (i = 0; i < nr && !ret; i++)
		ret = check_region_slots(d, &d->slots[i], need_log);
	srcu_read_unlock(&d->kvm->srcu, idx);
	return ret;
}
