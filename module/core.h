/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmig internal interfaces shared by the parts of the module.
 */
#ifndef _KVMIG_CORE_H
#define _KVMIG_CORE_H

#include <linux/mutex.h>
#include <kunit/visibility.h>

#include <kvmig.h>

/**
 * struct kvmig_session - one open file of /dev/kvmig
 * @lock: serialises the session's ioctls. Everything a later part adds to
 *	the session is protected by it unless its own comment says otherwise.
 *
 * Allocated by open(), freed by the file's release: its lifetime is exactly
 * the file's.
 */
struct kvmig_session {
	struct mutex lock; /* see above */
};

int kvmig_dev_init(void);
void kvmig_dev_exit(void);

#if IS_ENABLED(CONFIG_KUNIT)
int kvmig_api_check(const struct kvmig_api *api);
void kvmig_api_fill(struct kvmig_api *api, u32 nr_words);
#endif

#endif /* _KVMIG_CORE_H */
