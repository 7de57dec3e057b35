// SPDX-License-Identifier: GPL-2.0
/*
 * Sessions: one per open file of /dev/kvmig, and attaching a KVM VM.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/file.h>
#include <linux/kvm_host.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "core.h"

struct kvmig_session *kvmig_session_create(void)
{
	struct kvmig_session *s;

	s = kzalloc(sizeof(*s), GFP_KERNEL_ACCOUNT);
	if (!s)
		return NULL;
	mutex_init(&s->lock);
	s->state = KVMIG_STATE_IDLE;
	return s;
}

/* Called from the file's release: nobody else can reach @s any more. */
void kvmig_session_destroy(struct kvmig_session *s)
{
	if (s->state >= KVMIG_STATE_ATTACHED) {
		kvm_put_kvm(s->kvm);
		fput(s->vm_file);
	}
	mutex_destroy(&s->lock);
	kfree(s);
}

/* The checks that need no VM: one rule per line. */
VISIBLE_IF_KUNIT int kvmig_attach_check(const struct kvmig_attach *a)
{
	if (a->flags)
		return -EINVAL;
	if (memchr_inv(a->reserved, 0, sizeof(a->reserved)))
		return -EINVAL;
	if (a->role != KVMIG_ROLE_SOURCE && a->role != KVMIG_ROLE_DEST)
		return -EINVAL;
	if (a->dirty_mode > KVMIG_DIRTY_BITMAP)
		return -EINVAL;
	if (a->role == KVMIG_ROLE_DEST && a->dirty_mode != KVMIG_DIRTY_AUTO)
		return -EINVAL;
	if (a->vm_fd > INT_MAX)
		return -EBADF;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_attach_check);

/*
 * Pick the tracker a source will use on a VM set up with @ring_size bytes
 * of dirty ring per vCPU (0: none) and manual dirty-log protection or not.
 * With rings, KVM refuses KVM_GET_DIRTY_LOG, so bitmap mode needs a VM
 * without them.
 */
VISIBLE_IF_KUNIT int kvmig_dirty_mode_resolve(u32 role, u32 mode,
					      u32 ring_size,
					      bool manual_protect, u32 *out)
{
	if (role == KVMIG_ROLE_DEST) {
		*out = KVMIG_DIRTY_AUTO;
		return 0;
	}
	if (mode == KVMIG_DIRTY_AUTO)
		mode = ring_size ? KVMIG_DIRTY_RING : KVMIG_DIRTY_BITMAP;
	if (mode == KVMIG_DIRTY_RING && !ring_size)
		return -EINVAL;
	if (mode == KVMIG_DIRTY_BITMAP && (ring_size || !manual_protect))
		return -EINVAL;
	*out = mode;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_dirty_mode_resolve);

static int __attach(struct kvmig_session *s, struct kvmig_attach *a)
{
	struct file *file;
	struct kvm *kvm;
	u32 mode;
	int ret;

	lockdep_assert_held(&s->lock);

	if (s->state != KVMIG_STATE_IDLE)
		return -EBUSY;

	file = fget(a->vm_fd);
	if (!file)
		return -EBADF;
	ret = -EINVAL;
	if (!file_is_kvm(file))
		goto err_fput;
	kvm = file->private_data;
	ret = -EPERM;
	if (kvm->mm != current->mm)
		goto err_fput;
	/* Both are set under kvm->lock before vCPUs exist; re-checked later. */
	ret = kvmig_dirty_mode_resolve(a->role, a->dirty_mode,
				       READ_ONCE(kvm->dirty_ring_size),
				       READ_ONCE(kvm->manual_dirty_log_protect) &
				       KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
				       &mode);
	if (ret)
		goto err_fput;

	kvm_get_kvm(kvm);
	s->vm_file = file;
	s->kvm = kvm;
	s->role = a->role;
	s->dirty_mode = mode;
	s->state = KVMIG_STATE_ATTACHED;
	a->dirty_mode = mode;
	return 0;

err_fput:
	fput(file);
	return ret;
}

long kvmig_session_attach(struct kvmig_session *s,
			  struct kvmig_attach __user *argp)
{
	struct kvmig_attach a;
	int ret;

	if (copy_from_user(&a, argp, sizeof(a)))
		return -EFAULT;
	ret = kvmig_attach_check(&a);
	if (ret)
		return ret;
	/* Fail before attaching if the answer could not be written back. */
	if (put_user(a.dirty_mode, &argp->dirty_mode))
		return -EFAULT;

	mutex_lock(&s->lock);
	ret = __attach(s, &a);
	mutex_unlock(&s->lock);
	if (ret)
		return ret;

	if (put_user(a.dirty_mode, &argp->dirty_mode))
		return -EFAULT;
	return 0;
}
