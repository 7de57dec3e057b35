// SPDX-License-Identifier: GPL-2.0
/*
 * The pre-check's view of a VM: what the source tells the destination
 * about its guest (vCPUs, dirty logging, CPUID as KVM gives it to the
 * vCPUs), and what the destination compares it with. The comparison is
 * in wire.c, kvmig_wire_check_eval().
 */
#include <linux/kvm_host.h>
#include <linux/mutex.h>

#include "xfer.h"

#ifdef CONFIG_X86
/*
 * A vCPU's CPUID entries. Once the vCPU has entered the guest, KVM never
 * replaces the array (KVM_SET_CPUID2 must then pass the same entries, and
 * KVM keeps its own), and writes only the bits that follow CR4 and
 * MSRs, which the pre-check ignores; before that, KVM_SET_CPUID2 swaps
 * it under vcpu->mutex, which a vCPU thread may hold for a long time in
 * KVM_RUN: then the vCPU is reported unread instead of waited for.
 * Return: false if the vCPU could not be read.
 */
static bool vcpu_features(struct kvm_vcpu *vcpu, u32 *bits, u32 *max_basic,
			  u32 *max_ext)
{
	const struct kvmig_cpuid_entry *e, *f;
	const struct kvmig_feature_reg *r;
	bool locked = false;
	u32 i, nent;

	BUILD_BUG_ON(sizeof(struct kvmig_cpuid_entry) !=
		     sizeof(struct kvm_cpuid_entry2));
	if (READ_ONCE(vcpu->arch.last_vmentry_cpu) == -1) {
		if (!mutex_trylock(&vcpu->mutex))
			return false;
		locked = true;
	}
	/* Pairs with the vCPU's first entry, after its last KVM_SET_CPUID2. */
	smp_rmb();
	e = (const struct kvmig_cpuid_entry *)READ_ONCE(vcpu->arch.cpuid_entries);
	nent = READ_ONCE(vcpu->arch.cpuid_nent);
	for (i = 0; i < KVMIG_NR_FEATURE_REGS; i++) {
		r = &kvmig_feature_regs[i];
		f = kvmig_cpuid_find(e, nent, r->function, r->index,
				     r->indexed);
		/*
		 * KVM may flip a run-time bit meanwhile (OSXSAVE on a CR4
		 * write): a racy read, of bits dropped here.
		 */
		bits[i] = f ? data_race(kvmig_cpuid_reg(f, r->reg)) &
			      ~r->ignore : 0;
	}
	f = kvmig_cpuid_find(e, nent, 0, 0, false);
	*max_basic = f ? f->eax : 0;
	f = kvmig_cpuid_find(e, nent, 0x80000000, 0, false);
	*max_ext = f ? f->eax : 0;
	if (locked)
		mutex_unlock(&vcpu->mutex);
	return true;
}
#else
static bool vcpu_features(struct kvm_vcpu *vcpu, u32 *bits, u32 *max_basic,
			  u32 *max_ext)
{
	return false;
}
#endif

/*
 * Source: describe @kvm into @c and @f (room for KVMIG_NR_FEATURE_REGS),
 * the union of every vCPU's feature registers; @uuid: NULL or the VM's
 * identity. Never waits for a vCPU.
 */
void kvmig_check_describe(struct kvm *kvm, const u8 *uuid, bool dry_run,
			  struct kvmig_wire_check *c,
			  struct kvmig_wire_feature *f)
{
	u32 bits[KVMIG_NR_FEATURE_REGS], first[KVMIG_NR_FEATURE_REGS];
	u32 flags = 0, max_basic = 0, max_ext = 0, b, e, i;
	u32 differs = 0, unread = 0;
	struct kvm_vcpu *vcpu;
	unsigned long v;
	bool read_one = false;

	memset(c, 0, sizeof(*c));
	memset(first, 0, sizeof(first));
	memset(f, 0, KVMIG_NR_FEATURE_REGS * sizeof(*f));
	kvm_for_each_vcpu(v, vcpu, kvm) {
		if (!vcpu_features(vcpu, bits, &b, &e)) {
			if (!(flags & KVMIG_WIRE_CHECK_UNREAD))
				unread = v;
			flags |= KVMIG_WIRE_CHECK_UNREAD;
			continue;
		}
		if (!read_one) {
			memcpy(first, bits, sizeof(first));
			read_one = true;
		} else if (memcmp(first, bits, sizeof(first)) &&
			   !(flags & KVMIG_WIRE_CHECK_DIFFERS)) {
			differs = v;
			flags |= KVMIG_WIRE_CHECK_DIFFERS;
		}
		for (i = 0; i < KVMIG_NR_FEATURE_REGS; i++)
			f[i].bits = cpu_to_le32(le32_to_cpu(f[i].bits) |
						bits[i]);
		max_basic = max(max_basic, b);
		max_ext = max(max_ext, e);
	}
	for (i = 0; i < KVMIG_NR_FEATURE_REGS; i++) {
		f[i].function = cpu_to_le32(kvmig_feature_regs[i].function);
		f[i].index = cpu_to_le32(kvmig_feature_regs[i].index);
		f[i].reg = cpu_to_le32(kvmig_feature_regs[i].reg);
	}
	if (uuid) {
		flags |= KVMIG_WIRE_CHECK_UUID;
		memcpy(c->uuid, uuid, sizeof(c->uuid));
	}
	if (dry_run)
		flags |= KVMIG_WIRE_CHECK_DRY_RUN;
	if (READ_ONCE(kvm->manual_dirty_log_protect) &
	    KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE)
		flags |= KVMIG_WIRE_CHECK_MANUAL;
	c->flags = cpu_to_le32(flags);
	c->nr_vcpus = cpu_to_le32(atomic_read(&kvm->online_vcpus));
	c->dirty_ring = cpu_to_le32(READ_ONCE(kvm->dirty_ring_size));
	c->max_basic = cpu_to_le32(max_basic);
	c->max_ext = cpu_to_le32(max_ext);
	c->vcpu_differs = cpu_to_le32(differs);
	c->vcpu_unread = cpu_to_le32(unread);
	c->nr_features = cpu_to_le32(KVMIG_NR_FEATURE_REGS);
}

/* Destination: its own side of the comparison, but for the layout. */
void kvmig_check_local(struct kvm *kvm, struct kvmig_check_local *l)
{
	l->nr_vcpus = atomic_read(&kvm->online_vcpus);
	l->dirty_ring = READ_ONCE(kvm->dirty_ring_size);
	l->manual = READ_ONCE(kvm->manual_dirty_log_protect) &
		    KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
}
