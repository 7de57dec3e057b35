// SPDX-License-Identifier: GPL-2.0
/*
 * Bitmap tracker, for VMs with KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: read each
 * memslot's dirty bitmap in the kernel, take its bits into the pending set,
 * then hand exactly those bits to KVM_CLEAR_DIRTY_LOG in the VMM's mm,
 * which clears them and write-protects their pages again.
 *
 * With manual protect, KVM_GET_DIRTY_LOG is a plain copy of that same
 * bitmap to user memory; reading it in place saves the copy and cannot
 * overrun a buffer if the memslot changes under us. KVM_CLEAR_DIRTY_LOG
 * only reads user memory (its argument and the bits), bounded by the
 * num_pages we pass, so it needs a scratch area in the VMM's address
 * space: kvmig maps one at start and unmaps it when the VMM closes.
 * A bit set between the read and the clear is not cleared (KVM clears
 * with fetch_andnot of our bits only) and shows up at the next harvest.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kvm_host.h>
#include <linux/mman.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "dirty.h"

/* The struct kvm_clear_dirty_log goes first, the bits after it. */
#define KVMIG_SCRATCH_BITS	64

static int bitmap_start(struct kvmig_dirty *d)
{
	unsigned long words = 0, addr, len;
	u32 i;

	lockdep_assert_held(&d->lock);

	if (READ_ONCE(d->kvm->dirty_ring_size) ||
	    !(READ_ONCE(d->kvm->manual_dirty_log_protect) &
	      KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE))
		return -EINVAL;

	/* A region's part of a memslot may start in the middle of a word. */
	for (i = 0; i < d->nr_slots; i++)
		words = max_t(unsigned long, words,
			      BITS_TO_LONGS(d->slots[i].npages) + d->regions);

	d->bits = kvcalloc(words, sizeof(long), GFP_KERNEL_ACCOUNT);
	if (!d->bits)
		return -ENOMEM;

	len = PAGE_ALIGN(KVMIG_SCRATCH_BITS + words * sizeof(long));
	addr = vm_mmap(NULL, 0, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, 0);
	if (IS_ERR_VALUE(addr)) {
		kvfree(d->bits);
		d->bits = NULL;
		return (int)addr;
	}
	d->uscratch = addr;
	d->uscratch_len = len;
	return 0;
}

/*
 * Take the bits of one memslot into the pending set and into d->bits.
 * Called under kvm->srcu, after the layout check. Return: pages found;
 * [*first, *last] is the range of words holding them.
 */
static u64 bitmap_take(struct kvmig_dirty *d, struct kvmig_slot *ks,
		       const unsigned long *bm, unsigned long *first,
		       unsigned long *last)
{
	unsigned long i, w, fresh, words = BITS_TO_LONGS(ks->npages);
	u64 found = 0;

	*first = words;
	*last = 0;
	for (i = 0; i < words; i++) {
		w = READ_ONCE(bm[i]);
		if (i == words - 1)
			w &= BITMAP_LAST_WORD_MASK(ks->npages);
		d->bits[i] = w;
		if (!w)
			continue;
		fresh = w & ~ks->pending[i];
		ks->pending[i] |= w;
		d->pages_pending += hweight_long(fresh);
		found += hweight_long(w);
		if (i < *first)
			*first = i;
		*last = i;
	}
	return found;
}

/*
 * KVM_CLEAR_DIRTY_LOG on memslot @slot (as_id << 16 | id) of @npages pages
 * for the bits in d->bits, which hold words [first, last] of its bitmap.
 */
static int bitmap_clear_log(struct kvmig_dirty *d, u32 slot, u64 npages,
			    unsigned long first, unsigned long last)
{
	void __user *ubits = (void __user *)(d->uscratch + KVMIG_SCRATCH_BITS);
	struct kvm_clear_dirty_log log = {};
	unsigned long nr = last - first + 1;

	log.slot = slot;
	log.first_page = (u64)first * BITS_PER_LONG;
	log.num_pages = min_t(u64, nr * BITS_PER_LONG,
			      npages - log.first_page);
	log.dirty_bitmap = ubits;
	if (copy_to_user(ubits, d->bits + first, nr * sizeof(long)) ||
	    copy_to_user((void __user *)d->uscratch, &log, sizeof(log)))
		return -EFAULT;
	return kvmig_vm_ioctl(d, KVM_CLEAR_DIRTY_LOG, d->uscratch);
}

static int bitmap_harvest_regions(struct kvmig_dirty *d, u64 *found);

static int bitmap_harvest(struct kvmig_dirty *d, u64 *found)
{
	struct kvm_memory_slot *ms;
	unsigned long first, last;
	struct kvmig_slot *ks;
	u64 n = 0;
	u32 i;
	int idx, ret;

	lockdep_assert_held(&d->lock);

	if (d->regions)
		return bitmap_harvest_regions(d, found);
	for (i = 0; i < d->nr_slots; i++) {
		ks = &d->slots[i];
		if (!(ks->flags & KVM_MEM_LOG_DIRTY_PAGES))
			continue;

		idx = srcu_read_lock(&d->kvm->srcu);
		ret = kvmig_dirty_check_layout(d);
		if (!ret) {
			ms = id_to_memslot(kvm_memslots(d->kvm), ks->id);
			if (ms && ms->dirty_bitmap) {
				n = bitmap_take(d, ks, ms->dirty_bitmap,
						&first, &last);
			} else {
				d->fail_reason = KVMIG_FAIL_MEMSLOTS;
				ret = -ESTALE;
			}
		}
		srcu_read_unlock(&d->kvm->srcu, idx);
		if (ret)
			return ret;
		if (!n)
			continue;
		*found += n;

		/* Not under srcu: KVM takes slots_lock, and memslot updates
		 * wait for srcu readers while holding it.
		 */
		ret = bitmap_clear_log(d, ks->id, ks->npages, first, last);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Region sessions. The memslots are looked up at every harvest, in both
 * address spaces, and may change between two lookups: KVM replaces a
 * memslot (with a new generation) whenever the VMM adds, moves or deletes
 * one or changes its flags, which QEMU does on PAM, SMRAM and BAR changes.
 */

/* Is some region mapped by @ms? Under kvm->srcu. */
static bool maps_region(struct kvmig_dirty *d, const struct kvm_memory_slot *ms)
{
	struct kvmig_overlap o;
	u32 i;

	for (i = 0; i < d->nr_slots; i++)
		if (kvmig_overlap(ms->userspace_addr, ms->npages,
				  d->slots[i].userspace_addr,
				  d->slots[i].npages, &o))
			return true;
	return false;
}

/*
 * Record in d->maps the memslots that map region memory now. A writable
 * one without dirty logging would hide the guest's writes: the session
 * fails (KVMIG_FAIL_MEMSLOTS).
 */
static int snapshot_maps(struct kvmig_dirty *d)
{
	struct kvm_memory_slot *ms;
	int as, bkt, idx, ret;
	u32 n;

again:
	n = 0;
	ret = 0;
	idx = srcu_read_lock(&d->kvm->srcu);
	for (as = 0; as < KVM_MAX_NR_ADDRESS_SPACES && !ret; as++) {
		kvm_for_each_memslot(ms, bkt, __kvm_memslots(d->kvm, as)) {
			if (ms->id >= KVM_USER_MEM_SLOTS || !maps_region(d, ms))
				continue;
			if (!(ms->flags & KVM_MEM_LOG_DIRTY_PAGES)) {
				if (ms->flags & KVM_MEM_READONLY)
					continue;
				ret = -ESTALE;
				break;
			}
			if (n < d->maps_cap)
				d->maps[n] = as << 16 | ms->id;
			n++;
		}
	}
	srcu_read_unlock(&d->kvm->srcu, idx);
	if (ret) {
		pr_warn_ratelimited("a memslot maps region memory without dirty logging\n");
		d->fail_reason = KVMIG_FAIL_MEMSLOTS;
		return ret;
	}
	if (n > d->maps_cap) {
		kvfree(d->maps);
		d->maps_cap = 0;
		d->maps = kvcalloc(n + 8, sizeof(*d->maps), GFP_KERNEL_ACCOUNT);
		if (!d->maps)
			return -ENOMEM;
		d->maps_cap = n + 8;
		goto again;
	}
	d->nr_maps = n;
	return 0;
}

/*
 * Take the bits of bitmap @bm in @o into region @ks's pending set and into
 * d->bits, whose word 0 is the word of @o->first. Under kvm->srcu.
 * Return: pages found; *last is the last word, counted from @o->first's.
 */
static u64 take_overlap(struct kvmig_dirty *d, struct kvmig_slot *ks,
			const unsigned long *bm, const struct kvmig_overlap *o,
			unsigned long *last)
{
	unsigned long first = o->first / BITS_PER_LONG;
	unsigned long i, w, b, end = (o->end - 1) / BITS_PER_LONG;
	u64 page, found = 0;

	for (i = first; i <= end; i++) {
		w = READ_ONCE(bm[i]);
		if (i == first)
			w &= BITMAP_FIRST_WORD_MASK(o->first);
		if (i == end)
			w &= BITMAP_LAST_WORD_MASK(o->end);
		d->bits[i - first] = w;
		for_each_set_bit(b, &w, BITS_PER_LONG) {
			page = o->roff + i * BITS_PER_LONG + b - o->first;
			if (!__test_and_set_bit(page, ks->pending))
				d->pages_pending++;
			found++;
		}
	}
	*last = end - first;
	return found;
}

/* Every page of @o in region @ks is pending. */
static void mark_overlap(struct kvmig_dirty *d, struct kvmig_slot *ks,
			 const struct kvmig_overlap *o)
{
	u64 page;

	for (page = o->roff; page < o->roff + (o->end - o->first); page++)
		if (!__test_and_set_bit(page, ks->pending))
			d->pages_pending++;
}

/*
 * After a KVM_CLEAR_DIRTY_LOG that raced with a memslot change: the clear
 * may have hit the new memslot with that id, whose bits we never took.
 * Its pages in every region are pending: sent once more, never lost.
 */
static void mark_slot(struct kvmig_dirty *d, u32 slot)
{
	struct kvm_memory_slot *ms;
	struct kvmig_overlap o;
	u32 i;

	ms = id_to_memslot(__kvm_memslots(d->kvm, slot >> 16), slot & 0xffff);
	if (!ms)
		return;
	for (i = 0; i < d->nr_slots; i++)
		if (kvmig_overlap(ms->userspace_addr, ms->npages,
				  d->slots[i].userspace_addr,
				  d->slots[i].npages, &o))
			mark_overlap(d, &d->slots[i], &o);
}

/* Harvest what memslot @slot logged in region @ks. */
static int harvest_overlap(struct kvmig_dirty *d, u32 slot,
			   struct kvmig_slot *ks, u64 *found)
{
	struct kvm_memory_slot *ms;
	struct kvm_memslots *slots;
	struct kvmig_overlap o;
	unsigned long last;
	u64 gen, npages, n = 0;
	int idx, ret;

	idx = srcu_read_lock(&d->kvm->srcu);
	slots = __kvm_memslots(d->kvm, slot >> 16);
	gen = slots->generation;
	ms = id_to_memslot(slots, slot & 0xffff);
	if (ms && ms->dirty_bitmap &&
	    kvmig_overlap(ms->userspace_addr, ms->npages, ks->userspace_addr,
			  ks->npages, &o)) {
		npages = ms->npages;
		n = take_overlap(d, ks, ms->dirty_bitmap, &o, &last);
	}
	srcu_read_unlock(&d->kvm->srcu, idx);
	if (!n)
		return 0;
	*found += n;

	/* Not under srcu: KVM takes slots_lock, and memslot updates wait
	 * for srcu readers while holding it.
	 */
	ret = bitmap_clear_log(d, slot, npages, o.first / BITS_PER_LONG,
			       o.first / BITS_PER_LONG + last);

	idx = srcu_read_lock(&d->kvm->srcu);
	if (__kvm_memslots(d->kvm, slot >> 16)->generation != gen) {
		mark_slot(d, slot);
		/* Whatever the clear did, nothing is lost: retry later. */
		ret = 0;
	}
	srcu_read_unlock(&d->kvm->srcu, idx);
	return ret;
}

static int bitmap_harvest_regions(struct kvmig_dirty *d, u64 *found)
{
	u32 i, r;
	int ret;

	ret = snapshot_maps(d);
	for (i = 0; i < d->nr_maps && !ret; i++)
		for (r = 0; r < d->nr_slots && !ret; r++)
			ret = harvest_overlap(d, d->maps[i], &d->slots[r],
					      found);
	return ret;
}

static void bitmap_stop(struct kvmig_dirty *d)
{
	/* Only the VMM's own mm holds the scratch area; if the VMM is
	 * exiting, its mm goes with it.
	 */
	if (d->uscratch && current->mm == d->kvm->mm)
		vm_munmap(d->uscratch, d->uscratch_len);
	d->uscratch = 0;
	kvfree(d->maps);
	d->maps = NULL;
	d->maps_cap = 0;
	kvfree(d->bits);
	d->bits = NULL;
}

const struct kvmig_tracker_ops kvmig_bitmap_ops = {
	.name		= "bitmap",
	.start		= bitmap_start,
	.harvest	= bitmap_harvest,
	.stop		= bitmap_stop,
};
