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

	for (i = 0; i < d->nr_slots; i++)
		words = max_t(unsigned long, words,
			      BITS_TO_LONGS(d->slots[i].npages));

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

static int bitmap_clear_log(struct kvmig_dirty *d, struct kvmig_slot *ks,
			    unsigned long first, unsigned long last)
{
	void __user *ubits = (void __user *)(d->uscratch + KVMIG_SCRATCH_BITS);
	struct kvm_clear_dirty_log log = {};
	unsigned long nr = last - first + 1;

	log.slot = ks->id;
	log.first_page = (u64)first * BITS_PER_LONG;
	log.num_pages = min_t(u64, nr * BITS_PER_LONG,
			      ks->npages - log.first_page);
	log.dirty_bitmap = ubits;
	if (copy_to_user(ubits, d->bits + first, nr * sizeof(long)) ||
	    copy_to_user((void __user *)d->uscratch, &log, sizeof(log)))
		return -EFAULT;
	return kvmig_vm_ioctl(d, KVM_CLEAR_DIRTY_LOG, d->uscratch);
}

static int bitmap_harvest(struct kvmig_dirty *d, u64 *found)
{
	struct kvm_memory_slot *ms;
	unsigned long first, last;
	struct kvmig_slot *ks;
	u64 n = 0;
	u32 i;
	int idx, ret;

	lockdep_assert_held(&d->lock);

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
		ret = bitmap_clear_log(d, ks, first, last);
		if (ret)
			return ret;
	}
	return 0;
}

static void bitmap_stop(struct kvmig_dirty *d)
{
	/* Only the VMM's own mm holds the scratch area; if the VMM is
	 * exiting, its mm goes with it.
	 */
	if (d->uscratch && current->mm == d->kvm->mm)
		vm_munmap(d->uscratch, d->uscratch_len);
	d->uscratch = 0;
	kvfree(d->bits);
	d->bits = NULL;
}

const struct kvmig_tracker_ops kvmig_bitmap_ops = {
	.name		= "bitmap",
	.start		= bitmap_start,
	.harvest	= bitmap_harvest,
	.stop		= bitmap_stop,
};
