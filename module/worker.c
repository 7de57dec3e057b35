// SPDX-License-Identifier: GPL-2.0
/*
 * The session's worker: one kernel thread per transfer that adopts the
 * VM's mm, as vhost's worker does, and runs the transfer calls there.
 *
 * The ioctls only configure, hand a call to the worker and wait for its
 * result. The wait is interruptible and holds no lock: a signal to the
 * VMM interrupts the wait, not the transfer, and calling the same ioctl
 * again joins the call still running (or collects the result it left).
 * Because the worker runs in the VM's mm, the KVM ioctls it makes and the
 * guest pages it pins are the VM's whoever called; so the caller need not
 * be the VMM process.
 *
 *   ioctl (any thread)            worker (kthread, VM's mm)
 *   lock; submit or join op;
 *   unlock; wake worker  ------>  runs op, no session lock held
 *   wait (interruptible)          lock; state change; op done; unlock
 *                        <------  wake waiters, signal the eventfd
 *   lock; copy result; unlock
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/eventfd.h>
#include <linux/kthread.h>
#include <linux/kvm_host.h>
#include <linux/sched/mm.h>

#include "core.h"

/* Wake every waiter of the session: poll(), callers, the eventfd. */
void kvmig_session_notify(struct kvmig_session *s)
{
	wake_up_interruptible_all(&s->wq);
	if (s->event)
		eventfd_signal(s->event);
}

static int worker_fn(void *arg)
{
	struct kvmig_session *s = arg;

	kthread_use_mm(s->mm);
	for (;;) {
		wait_event_idle(s->work_wq, READ_ONCE(s->op_kick) ||
				kthread_should_stop());
		if (kthread_should_stop())
			break;
		WRITE_ONCE(s->op_kick, false);
		kvmig_session_run_op(s);
	}
	kthread_unuse_mm(s->mm);
	return 0;
}

/**
 * kvmig_worker_start - give the session its worker
 * @s: the session, locked, attached
 *
 * Return: 0, -ESRCH if the VM's mm has no users left (the VMM is gone),
 * or the error of kthread_create().
 */
int kvmig_worker_start(struct kvmig_session *s)
{
	struct task_struct *t;

	lockdep_assert_held(&s->lock);

	if (!mmget_not_zero(s->kvm->mm))
		return -ESRCH;
	s->mm = s->kvm->mm;
	t = kthread_create(worker_fn, s, "kvmig-%llu", s->id);
	if (IS_ERR(t)) {
		mmput(s->mm);
		s->mm = NULL;
		return PTR_ERR(t);
	}
	s->worker = t;
	wake_up_process(t);
	return 0;
}

/*
 * From the file's release: make the call in progress, if any, give up
 * (the transfer is cancelled and its socket shut down), then stop the
 * thread and let the mm go. Undoes kvmig_worker_start().
 */
void kvmig_worker_stop(struct kvmig_session *s)
{
	if (!s->worker)
		return;
	kvmig_xfer_cancel(s->xfer);
	kthread_stop(s->worker);
	s->worker = NULL;
	mmput(s->mm);
	s->mm = NULL;
}

/**
 * kvmig_op_submit - hand a call to the worker, or join the same one
 * @s: the session, locked, with a worker
 * @kind: KVMIG_OP_*
 * @seq: out: the call to wait for
 *
 * A call of @kind that is still running, or whose result nobody collected
 * yet, is joined: that is what makes an interrupted ioctl restartable.
 * Return: 1 if a new call was submitted (the caller fills in its input
 * before unlocking), 0 if joined, -EBUSY if another call runs.
 */
int kvmig_op_submit(struct kvmig_session *s, u32 kind, u64 *seq)
{
	struct kvmig_op *op = &s->op;

	lockdep_assert_held(&s->lock);

	if (op->kind == kind && (op->running || !op->collected)) {
		*seq = op->seq;
		return 0;
	}
	if (op->running)
		return -EBUSY;
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->seq = ++s->op_seq;
	op->running = true;
	*seq = op->seq;
	return 1;
}

/* Start the call kvmig_op_submit() set up; the session lock is held. */
void kvmig_op_kick(struct kvmig_session *s)
{
	lockdep_assert_held(&s->lock);

	WRITE_ONCE(s->op_kick, true);
	wake_up(&s->work_wq);
}

/**
 * kvmig_op_wait - wait for a call to finish
 * @s: the session, not locked
 * @seq: from kvmig_op_submit()
 *
 * Return: 0 once it finished, or -ERESTARTSYS on a signal: the call goes
 * on and the same ioctl, made again, joins it.
 */
int kvmig_op_wait(struct kvmig_session *s, u64 seq)
{
	return wait_event_interruptible(s->wq,
					READ_ONCE(s->op_done_seq) >= seq);
}
