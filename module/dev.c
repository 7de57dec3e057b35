// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/kvmig: the misc device, its sessions and the ioctl dispatcher.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "core.h"
#include "xfer/xfer.h"

/*
 * Feature words this module implements; see KVMIG_F_ALL_* in the UAPI.
 * RDMA only where the kernel has it.
 */
static const u64 kvmig_features[KVMIG_NR_FEATURE_WORDS] = {
	KVMIG_F_ALL_0 & ~(KVMIG_HAVE_RDMA ? 0 : KVMIG_F0_RDMA),
};

VISIBLE_IF_KUNIT int kvmig_api_check(const struct kvmig_api *api)
{
	if (api->flags)
		return -EINVAL;
	if (api->pad)
		return -EINVAL;
	if (memchr_inv(api->reserved, 0, sizeof(api->reserved)))
		return -EINVAL;
	if (api->nr_features && !api->features_ptr)
		return -EINVAL;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_api_check);

/*
 * Fill the output fields; @api->nr_features still holds the caller's
 * buffer size on entry and the module's word count on return.
 */
VISIBLE_IF_KUNIT void kvmig_api_fill(struct kvmig_api *api, u32 nr_words)
{
	api->api_version = KVMIG_API_VERSION;
	api->nr_features = nr_words;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_api_fill);

static long kvmig_get_api(void __user *argp)
{
	struct kvmig_api api;
	u32 n;
	int ret;

	if (copy_from_user(&api, argp, sizeof(api)))
		return -EFAULT;
	ret = kvmig_api_check(&api);
	if (ret)
		return ret;

	n = min_t(u32, api.nr_features, ARRAY_SIZE(kvmig_features));
	if (n && copy_to_user(u64_to_user_ptr(api.features_ptr),
			      kvmig_features, n * sizeof(u64)))
		return -EFAULT;

	kvmig_api_fill(&api, ARRAY_SIZE(kvmig_features));
	if (copy_to_user(argp, &api, sizeof(api)))
		return -EFAULT;
	return 0;
}

static long kvmig_ioctl(struct file *file, unsigned int cmd,
			unsigned long arg)
{
	struct kvmig_session *s = file->private_data;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case KVMIG_GET_API:
		return kvmig_get_api(argp);
	case KVMIG_ATTACH_VM:
		return kvmig_session_attach(s, argp);
	case KVMIG_DIRTY_START:
		return kvmig_session_dirty_start(s, argp);
	case KVMIG_DIRTY_HARVEST:
		return kvmig_session_harvest(s, argp);
	case KVMIG_DIRTY_READ:
		return kvmig_session_dirty_read(s, argp);
	case KVMIG_DIRTY_MARK:
		return kvmig_session_dirty_mark(s, argp);
	case KVMIG_SET_THROTTLE:
		return kvmig_session_throttle(s, argp);
	case KVMIG_GET_STATS:
		return kvmig_session_stats(s, argp);
	case KVMIG_LIST_SESSIONS:
		return kvmig_session_list(s, argp);
	case KVMIG_SET_CHECK:
		return kvmig_session_set_check(s, argp);
	case KVMIG_GET_CHECK:
		return kvmig_session_get_check(s, argp);
	case KVMIG_XFER_SETUP:
		return kvmig_session_xfer_setup(s, argp);
	case KVMIG_XFER_ROUND:
		return kvmig_session_round(s, argp);
	case KVMIG_XFER_FINAL:
		return kvmig_session_final(s, argp);
	case KVMIG_XFER_RECV:
		return kvmig_session_recv(s, argp);
	case KVMIG_XFER_CANCEL:
		return kvmig_session_cancel(s);
	case KVMIG_XFER_RESOLVE:
		return kvmig_session_resolve(s, argp);
	default:
		return -ENOTTY;
	}
}

static __poll_t kvmig_poll(struct file *file, poll_table *wait)
{
	return kvmig_session_poll(file->private_data, file, wait);
}

static int kvmig_open(struct inode *inode, struct file *file)
{
	struct kvmig_session *s;

	s = kvmig_session_create();
	if (!s)
		return -ENOMEM;
	file->private_data = s;
	return stream_open(inode, file);
}

static int kvmig_release(struct inode *inode, struct file *file)
{
	kvmig_session_destroy(file->private_data);
	return 0;
}

static const struct file_operations kvmig_fops = {
	.owner		= THIS_MODULE,
	.open		= kvmig_open,
	.release	= kvmig_release,
	.unlocked_ioctl	= kvmig_ioctl,
	.poll		= kvmig_poll,
	.compat_ioctl	= compat_ptr_ioctl,
};

static struct miscdevice kvmig_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "kvmig",
	.fops	= &kvmig_fops,
	.mode	= 0600,
};

int kvmig_dev_init(void)
{
	return misc_register(&kvmig_misc);
}

void kvmig_dev_exit(void)
{
	misc_deregister(&kvmig_misc);
}
