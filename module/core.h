/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmig internal interfaces shared by the parts of the module.
 */
#ifndef _KVMIG_CORE_H
#define _KVMIG_CORE_H

#include <linux/bits.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/seqlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <kunit/visibility.h>

#include <kvmig.h>
#include "compat.h"

struct eventfd_ctx;
struct file;
struct kvm;
struct mm_struct;
struct pid;
struct task_struct;

#include "dirty/dirty.h"
#include "xfer/xfer.h"

/* The transfer calls the worker runs (struct kvmig_op.kind). */
enum {
	KVMIG_OP_NONE,
	KVMIG_OP_HANDSHAKE,
	KVMIG_OP_ROUND,
	KVMIG_OP_FINAL,
	KVMIG_OP_RECV,
};

/**
 * struct kvmig_op - the transfer call handed to the worker
 * @kind: KVMIG_OP_*
 * @seq: its number, from kvmig_session.op_seq
 * @running: handed to the worker and not finished
 * @collected: a caller returned its result
 * @ret: its result, once finished
 * @state: in, FINAL: the device state, copied from the caller
 * @state_len: in, FINAL: its length
 * @state_cap: in, RECV: room for the source's state
 * @out: out: what the call reports
 *
 * Written under the session's lock while not @running; while @running,
 * the worker alone writes @ret and @out, and clears @running under the
 * lock when it is done.
 */
struct kvmig_op {
	u32 kind;
	u64 seq;
	bool running;
	bool collected;
	int ret;
	void *state;
	u32 state_len;
	u32 state_cap;
	union {
		struct kvmig_round round;
		struct kvmig_final final;
		struct kvmig_recv recv;
	} out;
};

/**
 * struct kvmig_session - one open file of /dev/kvmig
 * @lock: serialises the session's control calls and protects the fields
 *	below up to @op_seq. Held for short steps only: never across network
 *	I/O, never while waiting for the worker, and never by the dirty
 *	tracking calls a vCPU thread makes (they take the tracker's lock).
 *	Nests outside the tracker's lock and kvmig_sessions_lock.
 * @state: KVMIG_STATE_*, the diagram is in uapi/kvmig.h; written with
 *	WRITE_ONCE() under @lock, read locklessly by poll() and the dirty
 *	tracking calls
 * @vm_file: the VM's file, with our own reference (fget) from ATTACHED on.
 * @kvm: the VM, with a kvm_get_kvm() reference from ATTACHED on; also
 *	written under kvmig_sessions_lock, which checks one VM, one session.
 * @role: KVMIG_ROLE_*, valid from ATTACHED on.
 * @dirty_mode: KVMIG_DIRTY_RING or _BITMAP for a source, _AUTO for a
 *	destination; valid from ATTACHED on.
 * @fail_reason: KVMIG_FAIL_*, set when entering FAILED.
 * @regions: KVMIG_ATTACH_REGIONS: the VMM's RAM regions, checked by
 *	kvmig_regions_check(); NULL for a memslot session. Set at ATTACHED,
 *	never changes after, freed by the file's release.
 * @nr_regions: entries in @regions
 * @dirty: the dirty-page tracker (a source's) or memslot layout (a
 *	destination's), from TRACKING or RECEIVING on; never changes after.
 * @xfer: the transfer, from PRECOPY or RECEIVING on; see struct kvmig_xfer
 *	for who may touch it when. Freed only by the file's release.
 * @converged: a source's last round found the rest fits the budget.
 * @worker: the transfer's kernel thread, from PRECOPY or RECEIVING on
 * @mm: the VM's mm, with an mmget() reference for @worker
 * @event: the eventfd given to KVMIG_XFER_SETUP, or NULL
 * @op: the call handed to @worker
 * @op_seq: calls handed to @worker so far
 * @op_done_seq: the last call finished; written under @lock, read by
 *	waiters without it
 * @op_kick: @op waits for @worker; set under @lock, cleared by @worker
 * @wq: poll() and callers waiting for @op: woken on every call's end,
 *	convergence, completion and failure.
 * @work_wq: @worker waits here for @op_kick
 * @id: never changes: the session's id, unique while the module is loaded.
 * @pid: never changes: the opener's thread group, with a reference.
 * @node: in the list of sessions, under kvmig_sessions_lock.
 * @snap_lock: writers of @snap serialise on it; readers (GET_STATS, LIST)
 *	take no lock and retry.
 * @snap: what KVMIG_GET_STATS reports. Each part is published by whoever
 *	owns it: the state under @lock, the tracker's figures under its lock,
 *	the transfer's by the worker (kvmig_session_publish()).
 * @snap_host: what KVMIG_LIST_SESSIONS reports of the host's queue, as
 *	@snap: published with the transfer's figures, under @snap_lock.
 * @check: the pre-check's settings (KVMIG_SET_CHECK), under @lock; fixed
 *	once @xfer exists, which reads them during its handshake.
 * @checked: the handshake has ended: @findings, @nr_findings and
 *	@check_status are final. The worker writes them once, under @lock,
 *	then sets @checked (release); they never change after, so readers
 *	that see @checked (acquire) need no lock, as KVMIG_GET_CHECK of
 *	another session, under kvmig_sessions_lock, does.
 * @findings: the pre-check's findings, errors first
 * @nr_findings: how many
 * @check_status: KVMIG_CHECK_*
 *
 * Allocated by open(), freed by the file's release: its lifetime is exactly
 * the file's, and so is every reference it holds.
 */
/* A session's place in the host's queue, as listed (struct kvmig_session_info). */
struct kvmig_snap_host {
	u32 flags;		/* KVMIG_SESSION_QUEUED or 0 */
	u32 priority;
	u32 queue_pos;
	u64 wait_ns;
};

struct kvmig_session {
	struct mutex lock; /* see above */
	u32 state;
	struct file *vm_file;
	struct kvm *kvm;
	u32 role;
	u32 dirty_mode;
	u32 fail_reason;
	struct kvmig_region *regions;
	u32 nr_regions;
	struct kvmig_dirty *dirty;
	struct kvmig_xfer *xfer;
	bool converged;
	struct task_struct *worker;
	struct mm_struct *mm;
	struct eventfd_ctx *event;
	struct kvmig_op op;
	u64 op_seq;
	u64 op_done_seq;
	bool op_kick;
	wait_queue_head_t wq;
	wait_queue_head_t work_wq;
	u64 id;
	struct pid *pid;
	struct list_head node;
	seqlock_t snap_lock; /* see above */
	struct kvmig_stats snap;
	struct kvmig_snap_host snap_host;
	struct kvmig_check_cfg check;
	bool checked;
	struct kvmig_finding findings[KVMIG_MAX_FINDINGS];
	u32 nr_findings;
	u32 check_status;
};

/* What kvmig_session_publish() copies into the snapshot. */
#define KVMIG_PUB_STATE		BIT(0)	/* under the session's lock */
#define KVMIG_PUB_DIRTY		BIT(1)	/* takes the tracker's lock */
#define KVMIG_PUB_XFER		BIT(2)	/* by the worker, or with no call running */

void kvmig_session_publish(struct kvmig_session *s, unsigned int what);
void kvmig_session_notify(struct kvmig_session *s);
void kvmig_session_run_op(struct kvmig_session *s);
int kvmig_worker_start(struct kvmig_session *s);
void kvmig_worker_stop(struct kvmig_session *s);
int kvmig_op_submit(struct kvmig_session *s, u32 kind, u64 *seq);
void kvmig_op_kick(struct kvmig_session *s);
int kvmig_op_wait(struct kvmig_session *s, u64 seq);

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
long kvmig_session_throttle(struct kvmig_session *s,
			    struct kvmig_throttle __user *argp);
long kvmig_session_dirty_read(struct kvmig_session *s,
			      struct kvmig_dirty_read __user *argp);
long kvmig_session_stats(struct kvmig_session *s,
			 struct kvmig_stats __user *argp);
long kvmig_session_set_check(struct kvmig_session *s,
			     struct kvmig_check_setup __user *argp);
long kvmig_session_get_check(struct kvmig_session *s,
			     struct kvmig_check __user *argp);
long kvmig_session_xfer_setup(struct kvmig_session *s,
			      struct kvmig_xfer_setup __user *argp);
long kvmig_session_round(struct kvmig_session *s,
			 struct kvmig_round __user *argp);
long kvmig_session_final(struct kvmig_session *s,
			 struct kvmig_final __user *argp);
long kvmig_session_recv(struct kvmig_session *s,
			struct kvmig_recv __user *argp);
long kvmig_session_cancel(struct kvmig_session *s);
long kvmig_session_resolve(struct kvmig_session *s,
			   struct kvmig_resolve __user *argp);
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
int kvmig_check_setup_check(const struct kvmig_check_setup *c, u32 role);
int kvmig_dirty_mode_resolve(u32 role, u32 mode, u32 ring_size,
			     bool manual_protect, u32 *out);
#endif

#endif /* _KVMIG_CORE_H */
