// SPDX-License-Identifier: GPL-2.0
/*
 * Ring tracker: walk every vCPU's dirty ring in the kernel, the way a
 * userspace harvester walks its mmap of it, then KVM_RESET_DIRTY_RINGS.
 *
 * A ring entry belongs to KVM until it carries KVM_DIRTY_GFN_F_DIRTY
 * (published with release semantics after slot and offset); the harvester
 * reads it with acquire semantics, takes slot and offset, and hands it
 * back by storing KVM_DIRTY_GFN_F_RESET with release semantics. The reset
 * ioctl then re-protects the pages of all handed-back entries and moves
 * the ring's reset_index past them.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kvm_host.h>
#include <linux/slab.h>
#include <kunit/visibility.h>

#include "dirty.h"

/*
 * The walk, inlined into each caller so that @fn is a direct call: one
 * per dirty page, and an indirect call costs a retpoline on most hosts.
 */
static __always_inline int ring_collect(struct kvm_dirty_gfn *gfns, u32 size,
					u32 reset_index, u32 *fetch,
					kvmig_ring_fn fn, void *arg)
{
	struct kvm_dirty_gfn *e;
	u32 flags, n;
	int ret;

	/* Entries we never saw were reset: another harvester took them. */
	if ((s32)(reset_index - *fetch) > 0)
		return -EBUSY;

	for (n = 0; n < size; n++) {
		e = &gfns[*fetch & (size - 1)];
		/* Pairs with KVM's smp_wmb() before it sets the flag. */
		flags = smp_load_acquire(&e->flags);
		if (flags & KVM_DIRTY_GFN_F_RESET)
			return -EBUSY;
		if (!(flags & KVM_DIRTY_GFN_F_DIRTY))
			break;
		ret = fn(arg, READ_ONCE(e->slot), READ_ONCE(e->offset));
		if (ret)
			return ret;
		/* Our reads of the entry are done before KVM may reuse it. */
		smp_store_release(&e->flags, KVM_DIRTY_GFN_F_RESET);
		(*fetch)++;
	}
	return n;
}

/**
 * kvmig_ring_collect - collect the published entries of one dirty ring
 * @gfns: the ring, @size entries (a power of two)
 * @size: entries in the ring
 * @reset_index: the ring's reset_index, as KVM last left it
 * @fetch: in/out: free-running index of the next entry to collect
 * @fn: called for each entry's slot and offset; an error stops the walk,
 *	leaving that entry uncollected
 * @arg: for @fn
 *
 * Return: entries collected, or -EBUSY if some were collected by somebody
 * else (the VMM reaping its own ring), or the error of @fn.
 */
int kvmig_ring_collect(struct kvm_dirty_gfn *gfns, u32 size, u32 reset_index,
		       u32 *fetch, kvmig_ring_fn fn, void *arg)
{
	return ring_collect(gfns, size, reset_index, fetch, fn, arg);
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_ring_collect);

/* Validate one ring entry against the recorded layout and mark it. */
static int ring_mark(void *arg, u32 slot, u64 offset)
{
	struct kvmig_dirty *d = arg;
	struct kvmig_slot *ks;

	/* Consecutive entries are mostly in the same memslot. */
	ks = d->last_slot;
	if (ks->id != slot)
		ks = (slot >> 16) ? NULL : kvmig_dirty_slot(d, slot);
	if (!ks || offset >= ks->npages) {
		d->fail_reason = KVMIG_FAIL_MEMSLOTS;
		return -ESTALE;
	}
	if (!__test_and_set_bit(offset, ks->pending))
		d->pages_pending++;
	d->last_slot = ks;
	return 0;
}

static int ring_start(struct kvmig_dirty *d)
{
	struct kvm_vcpu *vcpu;
	unsigned long i;
	long ret;

	lockdep_assert_held(&d->lock);

	if (!READ_ONCE(d->kvm->dirty_ring_size))
		return -EINVAL;
	d->last_slot = &d->slots[0];
	d->nr_fetch = d->kvm->max_vcpus;
	d->fetch = kvcalloc(d->nr_fetch, sizeof(*d->fetch), GFP_KERNEL_ACCOUNT);
	if (!d->fetch)
		return -ENOMEM;

	/*
	 * Let KVM take back whatever the VMM collected before handing the VM
	 * over, then go on from where each ring was reset to: entries
	 * published since are this session's to collect.
	 */
	ret = kvmig_vm_ioctl(d, KVM_RESET_DIRTY_RINGS, 0);
	if (!ret)
		ret = kvmig_throttle_start(d);
	if (ret < 0) {
		kvfree(d->fetch);
		d->fetch = NULL;
		return ret;
	}
	kvm_for_each_vcpu(i, vcpu, d->kvm) {
		if (i < d->nr_fetch)
			d->fetch[i] = READ_ONCE(vcpu->dirty_ring.reset_index);
	}
	return 0;
}

static int ring_harvest(struct kvmig_dirty *d, u64 *found)
{
	struct kvm_dirty_ring *ring;
	struct kvm_vcpu *vcpu;
	unsigned long i;
	u64 total = 0, now;
	long ret;
	int idx;

	lockdep_assert_held(&d->lock);

	now = ktime_get_ns();
	idx = srcu_read_lock(&d->kvm->srcu);
	ret = kvmig_dirty_check_layout(d);
	srcu_read_unlock(&d->kvm->srcu, idx);
	if (ret)
		return ret;

	kvm_for_each_vcpu(i, vcpu, d->kvm) {
		ring = &vcpu->dirty_ring;
		if (i >= d->nr_fetch || !ring->size)
			continue;
		ret = ring_collect(ring->dirty_gfns, ring->size,
				   READ_ONCE(ring->reset_index), &d->fetch[i],
				   ring_mark, d);
		if (ret == -EBUSY) {
			d->fail_reason = KVMIG_FAIL_RING_STOLEN;
			ret = -ESTALE;
		}
		if (ret < 0)
			break;
		if (ret)
			kvmig_throttle_charge(d, i, ret, now);
		total += ret;
	}
	*found += total;
	if (ret < 0)
		return ret;
	if (!total)
		return 0;

	/* Re-protect what was collected; the pages are pending already. */
	ret = kvmig_vm_ioctl(d, KVM_RESET_DIRTY_RINGS, 0);
	return ret < 0 ? ret : 0;
}

static void ring_stop(struct kvmig_dirty *d)
{
	kvmig_throttle_stop(d);
	kvfree(d->fetch);
	d->fetch = NULL;
}

const struct kvmig_tracker_ops kvmig_ring_ops = {
	.name		= "ring",
	.start		= ring_start,
	.harvest	= ring_harvest,
	.stop		= ring_stop,
};
