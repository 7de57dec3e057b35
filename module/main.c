// SPDX-License-Identifier: GPL-2.0
/*
 * kvmig: in-kernel live migration of KVM guest memory.
 *
 * Each part has an init and an exit; they are called here in order and
 * unwound in exact reverse.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>

#include "core.h"

static int __init kvmig_init(void)
{
	int ret;

	ret = kvmig_dev_init();
	if (ret)
		return ret;

	pr_info("API version %u\n", KVMIG_API_VERSION);
	return 0;
}

static void __exit kvmig_exit(void)
{
	kvmig_dev_exit();
}

module_init(kvmig_init);
module_exit(kvmig_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("In-kernel live migration of KVM guest memory");
MODULE_AUTHOR("The kvmig developers");
