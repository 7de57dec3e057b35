/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmig internal interfaces shared by the parts of the module.
 */
#ifndef _KVMIG_CORE_H
#define _KVMIG_CORE_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/seqlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <kunit/visibility.h>

#include <kvmig.h>

struct file;
struct kvm;
struct pid;

#include "dirty/dirty.h"
#include "xfer/xfer.h"

/**
 * struct kvmig_session - one open file of /dev/kvmig
 * @lock: serialises the session's ioctls and protects every field below.
 * @state: KVMIG_STATE_*, the diagram is in uapi/kvmig.h.
 * @vm_file: the VM's file, with our own reference (fget) from ATTACHED on.
 * @kvm: the VM, with a kvm_get_kvm() reference from ATTACHED on.
 * @role: KVMIG_ROLE_*, valid from ATTACHED on.
 * @dirty_mode: KVMIG_DIRTY_RING or _BITMAP for a source, _AUTO for a
 *	destination; valid from ATTACHED on.
 * @fail_reason: KVMIG_FAIL_*, set when entering FAILED.
 * @dirty: the dirty-page tracker (a source's) or memslot layout (a
 *	destination's), from TRACKING or RECEIVING on.
 * @xfer: the transfer, from PRECOPY or RECEIVING on; published with
 *	release semantics for KVMIG_XFER_CANCEL, which reads it without @lock.
 *	Freed only by the file's release.
 * @converged: a source's last round found the rest fits the budget.
 * @wq: poll() waiters: woken on convergence, completion and failure.
 * @id: never changes: the session's id, unique while the module is loaded.
 * @pid: never changes: the opener's thread group, with a reference.
 * @node: in the list of sessions, under kvmig_sessions_lock.
 * @snap_seq: write side under @lock; readers (GET_STATS, LIST) take
 *	neither lock and retry.
 * @snap: what KVMIG_GET_STATS reports, published by kvmig_session_publish()
 *	under @snap_seq.
 *
 * Allocated by open(), freed by the file's release: its lifetime is exactly
 * the file's, and so is every reference it holds.
 */
struct kvmig_session {
	struct mutex lock; /* see above */
	u32 state;
	struct file *vm_file;
	struct kvm *kvm;
	u32 role;
	u32 dirty_mode;
	u32 fail_reason;
	struct kvmig_dirty *dirty;
	struct kvmig_xfer *xfer;
	bool converged;
	wait_queue_head_t wq;
	u64 id;
	struct pid *pid;
	struct list_head node;
	seqcount_t snap_seq;
	struct kvmig_stats snap;
};

int kvmig_dev_init(void);
void kvmig_dev_exit(void);

struct kvmig_session *kvmig_session_create(void);
void kvmig_session_destroy(struct kvmig_session *s);
long kvmig_session_attach(struct kvmig_session *s,
			  struct kvmig_attach __user *argp);
long kvmig_session_dirty_start(struct kvmig_session *s,
			       struct kvmig_dirty_start __user *argp);
long kvmig_session_harvest(struct kvmig_session *s,
			   struct kvmig_harvest __user *argp);
long kvmig_session_dirty_read(struct kvmig_session *s,
			      struct kvmig_dirty_read __user *argp);
long kvmig_session_stats(struct kvmig_session *s,
			 struct kvmig_stats __user *argp);
long kvmig_session_xfer_setup(struct kvmig_session *s,
			      struct kvmig_xfer_setup __user *argp);
long kvmig_session_round(struct kvmig_session *s,
			 struct kvmig_round __user *argp);
long kvmig_session_final(struct kvmig_session *s,
			 struct kvmig_final __user *argp);
long kvmig_session_recv(struct kvmig_session *s,
			struct kvmig_recv __user *argp);
long kvmig_session_cancel(struct kvmig_session *s);
long kvmig_session_dirty_mark(struct kvmig_session *s,
			      struct kvmig_dirty_mark __user *argp);
long kvmig_session_list(struct kvmig_session *self,
			struct kvmig_list __user *argp);
__poll_t kvmig_session_poll(struct kvmig_session *s, struct file *file,
			    poll_table *wait);

#if IS_ENABLED(CONFIG_KUNIT)
int kvmig_api_check(const struct kvmig_api *api);
void kvmig_api_fill(struct kvmig_api *api, u32 nr_words);
int kvmig_attach_check(const struct kvmig_attach *a);
int kvmig_dirty_mode_resolve(u32 role, u32 mode, u32 ring_size,
			     bool manual_protect, u32 *out);
#endif

#endif /* _KVMIG_CORE_H */
