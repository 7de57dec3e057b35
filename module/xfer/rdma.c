// SPDX-License-Identifier: GPL-2.0
/*
 * RDMA transport: one reliable connection (rdma_cm, RC), set up through
 * the TCP socket the VMM hands in. The destination listens at the
 * socket's local address, in the socket's network namespace, tells the
 * source its port over the socket and takes one connection, from the
 * socket's peer address only; the socket is then let go.
 *
 * Records travel as SENDs of at most KVMIG_RDMA_BUF bytes, each with a
 * struct kvmig_rdma_msg in front; the receiver keeps KVMIG_RDMA_RX
 * receives posted and the sender retries while none is free (RNR retry),
 * bounded by the I/O timeout. A run of pages goes without a copy at
 * either end: the destination registers the run's pages, already checked
 * and pinned by the engine, as an FRWR MR and SENDs a GRANT (address,
 * rkey); the source RDMA WRITEs the guest pages from its own pinned pages
 * and SENDs WRITTEN, which on a reliable connection arrives after the
 * data; the destination invalidates the MR before it takes the next
 * record. Only one run is ever exposed, for writing only, and on any
 * error the destination drains its queue pair before it lets the pages
 * go, so no write lands after the engine moved on.
 *
 * A run costs a round trip (GRANT, then WRITTEN): the price of never
 * exposing more of the guest than the run in hand.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/in.h>
#include <linux/in6.h>
#include <linux/jiffies.h>
#include <linux/lockdep.h>
#include <linux/mutex.h>
#include <linux/net.h>
#include <linux/rwsem.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/socket.h>
#include <linux/uio.h>
#include <net/net_namespace.h>
#include <net/sock.h>
#include <rdma/ib_verbs.h>
#include <rdma/rdma_cm.h>

#include "xfer.h"

#define KVMIG_RDMA_RX		32	/* receives kept posted */
#define KVMIG_RDMA_TX		16	/* SENDs in flight at most */

struct kvmig_rdma;

/* A SEND or receive buffer, mapped for the device while the QP lives. */
struct kvmig_rdma_buf {
	struct ib_cqe cqe;
	struct kvmig_rdma *r;
	void *data;
	u64 dma;
	u32 len;
};

/* A work request the owner waits for. */
struct kvmig_rdma_op {
	struct ib_cqe cqe;
	struct kvmig_rdma *r;
	bool done;
};

enum {
	KVMIG_RDMA_CM_NONE,
	KVMIG_RDMA_CM_ADDR,
	KVMIG_RDMA_CM_ROUTE,
	KVMIG_RDMA_CM_UP,
};

/**
 * struct kvmig_rdma - an RDMA stream's state
 * @role: KVMIG_ROLE_*
 * @timeo: the I/O timeout, in jiffies
 * @net: the socket's network namespace (a reference)
 * @local: the socket's local address
 * @peer: the socket's peer address
 * @sock: the bootstrap socket, with a file reference, until connected
 * @dev_sem: the device's resources (@pd, @cq, @qp, @mr, the buffers'
 *	mappings) and @up: the owner holds it for reading across every
 *	call once connected; taking them down holds it for writing, so no
 *	call is inside: the CM handler when the device goes away, and the
 *	teardown. Order: the RDMA CM's handler mutex, @dev_sem, @conn_lock,
 *	@lock
 * @conn_lock: protects @id and @sock against a shutdown from another
 *	thread; the owner (or the CM handler, when the device goes away)
 *	sets and clears them under it
 * @id: the connection's cm_id, once connected
 * @listen: destination, during the bootstrap: the listening cm_id
 * @child: destination: the connection taken by the CM handler
 * @pd: @id's protection domain
 * @cq: its completion queue (softirq)
 * @qp: its queue pair
 * @mr: destination: the MR that exposes one run
 * @max_sge: SGEs per RDMA WRITE
 * @up: connected; before, after a failed connect, and once the device
 *	went away, every call fails. Under @dev_sem
 * @drained: the QP is drained (in error, nothing more lands)
 * @rx: receive buffers, reposted in order as they are consumed
 * @tx: SEND buffers, used in order
 * @rx_next: owner: receives consumed
 * @rx_off: owner: bytes of the current DATA taken
 * @tx_posted: owner: SENDs posted
 * @wr: owner: the WRITEs of one run
 * @sge: owner: their SGEs
 * @sg: owner: the run's pages, mapped
 * @write: source: the last WRITE of a run
 * @reg: destination: the MR's registration
 * @inv: destination: its invalidation
 * @lock: protects what follows, written by completions (softirq) and by
 *	the CM handler, read by the owner
 * @wq: where the owner waits for them
 * @rx_done: receives completed, in order
 * @tx_done: SENDs completed, in order
 * @cm: KVMIG_RDMA_CM_*: how far the connection got
 * @err: the first error; the stream is broken
 * @rx_shut: a receive-only shutdown: receives fail
 */
struct kvmig_rdma {
	u32 role;
	long timeo;
	struct net *net;
	struct sockaddr_storage local;
	struct sockaddr_storage peer;
	struct mutex conn_lock; /* see above */
	struct socket *sock;
	struct rw_semaphore dev_sem; /* see above */
	struct rdma_cm_id *id;
	struct rdma_cm_id *listen;
	struct rdma_cm_id *child;
	struct ib_pd *pd;
	struct ib_cq *cq;
	struct ib_qp *qp;
	struct ib_mr *mr;
	u32 max_sge;
	bool up;
	bool drained;
	struct kvmig_rdma_buf rx[KVMIG_RDMA_RX];
	struct kvmig_rdma_buf tx[KVMIG_RDMA_TX];
	u32 rx_next;
	u32 rx_off;
	u32 tx_posted;
	struct ib_rdma_wr wr[KVMIG_WIRE_MAX_RUN];
	struct ib_sge sge[KVMIG_WIRE_MAX_RUN];
	struct scatterlist sg[KVMIG_WIRE_MAX_RUN];
	struct kvmig_rdma_op write;
	struct kvmig_rdma_op reg;
	struct kvmig_rdma_op inv;
	spinlock_t lock; /* see above */
	wait_queue_head_t wq;
	u32 rx_done;
	u32 tx_done;
	int cm;
	int err;
	bool rx_shut;
};

static void rdma_fail(struct kvmig_rdma *r, int err)
{
	unsigned long flags;

	spin_lock_irqsave(&r->lock, flags);
	if (!r->err)
		r->err = err;
	spin_unlock_irqrestore(&r->lock, flags);
	wake_up(&r->wq);
}

static int rdma_err(struct kvmig_rdma *r)
{
	unsigned long flags;
	int err;

	spin_lock_irqsave(&r->lock, flags);
	err = r->err;
	spin_unlock_irqrestore(&r->lock, flags);
	return err;
}

/*
 * Why posting a work request failed: the connection's error, when it
 * broke (a queue pair in error refuses requests), else -EIO.
 */
static int rdma_post_failed(struct kvmig_rdma *r)
{
	return rdma_err(r) ?: -EIO;
}

/*
 * Wait until @cond (evaluated under @r->lock) holds or the stream broke;
 * 0, the stream's error, or -ETIMEDOUT. An idle wait: the I/O timeout may
 * be longer than the hung-task detector's.
 */
#define rdma_wait(r, cond)						\
({									\
	struct kvmig_rdma *__r = (r);					\
	unsigned long __f;						\
	bool __ok = false;						\
	int __err = 0;							\
	long __t = wait_event_idle_timeout(__r->wq, ({			\
		spin_lock_irqsave(&__r->lock, __f);			\
		__ok = (cond);						\
		__err = __r->err;					\
		spin_unlock_irqrestore(&__r->lock, __f);		\
		__ok || __err; }), __r->timeo);				\
	__ok ? 0 : __err ?: (__t ? 0 : -ETIMEDOUT);			\
})

/* Completions: softirq. A flushed request only confirms the error. */
static void rdma_rx_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct kvmig_rdma_buf *b = container_of(wc->wr_cqe,
						struct kvmig_rdma_buf, cqe);
	struct kvmig_rdma *r = b->r;
	unsigned long flags;

	if (wc->status != IB_WC_SUCCESS) {
		rdma_fail(r, -ECONNRESET);
		return;
	}
	spin_lock_irqsave(&r->lock, flags);
	b->len = wc->byte_len;
	r->rx_done++;
	spin_unlock_irqrestore(&r->lock, flags);
	wake_up(&r->wq);
}

static void rdma_tx_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct kvmig_rdma_buf *b = container_of(wc->wr_cqe,
						struct kvmig_rdma_buf, cqe);
	struct kvmig_rdma *r = b->r;
	unsigned long flags;

	if (wc->status != IB_WC_SUCCESS) {
		rdma_fail(r, -ECONNRESET);
		return;
	}
	spin_lock_irqsave(&r->lock, flags);
	r->tx_done++;
	spin_unlock_irqrestore(&r->lock, flags);
	wake_up(&r->wq);
}

static void rdma_op_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct kvmig_rdma_op *op = container_of(wc->wr_cqe,
						struct kvmig_rdma_op, cqe);
	struct kvmig_rdma *r = op->r;
	unsigned long flags;

	if (wc->status != IB_WC_SUCCESS) {
		rdma_fail(r, -ECONNRESET);
		return;
	}
	spin_lock_irqsave(&r->lock, flags);
	op->done = true;
	spin_unlock_irqrestore(&r->lock, flags);
	wake_up(&r->wq);
}

static int rdma_post_rx(struct kvmig_rdma *r, struct kvmig_rdma_buf *b)
{
	struct ib_sge sge = {
		.addr = b->dma, .length = KVMIG_RDMA_BUF,
		.lkey = r->pd->local_dma_lkey,
	};
	struct ib_recv_wr wr = { .wr_cqe = &b->cqe, .sg_list = &sge,
				 .num_sge = 1 };

	ib_dma_sync_single_for_device(r->pd->device, b->dma, KVMIG_RDMA_BUF,
				      DMA_FROM_DEVICE);
	return ib_post_recv(r->qp, &wr, NULL) ? rdma_post_failed(r) : 0;
}

/* Drain the QP once: it is in error and nothing more lands or leaves. */
static void rdma_drain(struct kvmig_rdma *r)
{
	if (!r->drained && r->qp) {
		ib_drain_qp(r->qp);
		r->drained = true;
	}
}

static void rdma_bufs_free(struct kvmig_rdma *r, struct kvmig_rdma_buf *b,
			   u32 n, enum dma_data_direction dir)
{
	u32 i;

	for (i = 0; i < n; i++) {
		if (!b[i].data)
			continue;
		if (b[i].dma)
			ib_dma_unmap_single(r->pd->device, b[i].dma,
					    KVMIG_RDMA_BUF, dir);
		kfree(b[i].data);
		b[i].data = NULL;
		b[i].dma = 0;
	}
}

static int rdma_bufs_alloc(struct kvmig_rdma *r, struct kvmig_rdma_buf *b,
			   u32 n, enum dma_data_direction dir,
			   void (*done)(struct ib_cq *, struct ib_wc *))
{
	struct ib_device *dev = r->pd->device;
	u32 i;

	for (i = 0; i < n; i++) {
		b[i].r = r;
		b[i].cqe.done = done;
		b[i].data = kmalloc(KVMIG_RDMA_BUF, GFP_KERNEL);
		if (!b[i].data)
			return -ENOMEM;
		b[i].dma = ib_dma_map_single(dev, b[i].data, KVMIG_RDMA_BUF,
					     dir);
		if (ib_dma_mapping_error(dev, b[i].dma)) {
			b[i].dma = 0;
			return -ENOMEM;
		}
	}
	return 0;
}

/* Undo rdma_queues_create(), after the QP was drained. */
static void rdma_queues_destroy(struct kvmig_rdma *r, struct rdma_cm_id *id)
{
	rdma_drain(r);
	rdma_bufs_free(r, r->tx, KVMIG_RDMA_TX, DMA_TO_DEVICE);
	rdma_bufs_free(r, r->rx, KVMIG_RDMA_RX, DMA_FROM_DEVICE);
	if (r->mr)
		ib_dereg_mr(r->mr);
	r->mr = NULL;
	if (id->qp)
		rdma_destroy_qp(id);
	r->qp = NULL;
	if (r->cq)
		ib_free_cq(r->cq);
	r->cq = NULL;
	if (r->pd)
		ib_dealloc_pd(r->pd);
	r->pd = NULL;
}

/*
 * PD, CQ, QP and buffers on @id's device, receives posted; the MR that
 * exposes a run at the destination. Runs on the owner (source) or in the
 * CM handler (destination), before the connection is up.
 */
static int rdma_queues_create(struct kvmig_rdma *r, struct rdma_cm_id *id)
{
	struct ib_device *dev = id->device;
	struct ib_qp_init_attr qpa = {};
	u32 nr_send, nr_recv, i;
	int ret;

	if (!(dev->attrs.device_cap_flags & IB_DEVICE_MEM_MGT_EXTENSIONS) ||
	    dev->attrs.max_fast_reg_page_list_len < KVMIG_WIRE_MAX_RUN) {
		pr_warn_ratelimited("%s: no fast registration of %u pages\n",
				    dev_name(&dev->dev), KVMIG_WIRE_MAX_RUN);
		return -EOPNOTSUPP;
	}
	r->max_sge = min_t(u32, dev->attrs.max_send_sge, KVMIG_WIRE_MAX_RUN);
	/* SENDs, a run's WRITEs, REG_MR and LOCAL_INV; and ib_drain_qp()'s. */
	nr_send = KVMIG_RDMA_TX + KVMIG_WIRE_MAX_RUN + 2 + 1;
	nr_recv = KVMIG_RDMA_RX + 1;

	r->pd = ib_alloc_pd(dev, 0);
	if (IS_ERR(r->pd)) {
		ret = PTR_ERR(r->pd);
		r->pd = NULL;
		return ret;
	}
	r->cq = ib_alloc_cq(dev, r, nr_send + nr_recv, 0, IB_POLL_SOFTIRQ);
	if (IS_ERR(r->cq)) {
		ret = PTR_ERR(r->cq);
		r->cq = NULL;
		goto err;
	}
	qpa.send_cq = r->cq;
	qpa.recv_cq = r->cq;
	qpa.qp_type = IB_QPT_RC;
	qpa.sq_sig_type = IB_SIGNAL_REQ_WR;
	qpa.cap.max_send_wr = nr_send;
	qpa.cap.max_recv_wr = nr_recv;
	qpa.cap.max_send_sge = r->max_sge;
	qpa.cap.max_recv_sge = 1;
	ret = rdma_create_qp(id, r->pd, &qpa);
	if (ret)
		goto err;
	r->qp = id->qp;
	if (r->role == KVMIG_ROLE_DEST) {
		r->mr = ib_alloc_mr(r->pd, IB_MR_TYPE_MEM_REG,
				    KVMIG_WIRE_MAX_RUN);
		if (IS_ERR(r->mr)) {
			ret = PTR_ERR(r->mr);
			r->mr = NULL;
			goto err;
		}
	}
	ret = rdma_bufs_alloc(r, r->rx, KVMIG_RDMA_RX, DMA_FROM_DEVICE,
			      rdma_rx_done);
	if (!ret)
		ret = rdma_bufs_alloc(r, r->tx, KVMIG_RDMA_TX, DMA_TO_DEVICE,
				      rdma_tx_done);
	for (i = 0; i < KVMIG_RDMA_RX && !ret; i++)
		ret = rdma_post_rx(r, &r->rx[i]);
	if (ret)
		goto err;
	r->write = (struct kvmig_rdma_op){ .cqe.done = rdma_op_done, .r = r };
	r->reg = r->write;
	r->inv = r->write;
	return 0;

err:
	rdma_queues_destroy(r, id);
	return ret;
}

/*
 * The owner's way into a call: with @r->dev_sem held for reading and the
 * connection up, 0; else, without it, the stream's error (-ENODEV once
 * the device went away) or -ENOTCONN.
 */
static int rdma_enter(struct kvmig_rdma *r)
{
	down_read(&r->dev_sem);
	if (r->up)
		return 0;
	up_read(&r->dev_sem);
	return rdma_err(r) ?: -ENOTCONN;
}

static void rdma_leave(struct kvmig_rdma *r)
{
	up_read(&r->dev_sem);
}

/* SEND @len bytes (header and payload, at @b->data), in order. */
static int rdma_post_send(struct kvmig_rdma *r, struct kvmig_rdma_buf *b,
			  u32 len)
{
	struct ib_sge sge = {
		.addr = b->dma, .length = len, .lkey = r->pd->local_dma_lkey,
	};
	struct ib_send_wr wr = {
		.wr_cqe = &b->cqe, .sg_list = &sge, .num_sge = 1,
		.opcode = IB_WR_SEND, .send_flags = IB_SEND_SIGNALED,
	};

	ib_dma_sync_single_for_device(r->pd->device, b->dma, len,
				      DMA_TO_DEVICE);
	if (ib_post_send(r->qp, &wr, NULL))
		return rdma_post_failed(r);
	r->tx_posted++;
	return 0;
}

/* The next free SEND buffer, once the SENDs in flight leave one. */
static int rdma_tx_get(struct kvmig_rdma *r, struct kvmig_rdma_buf **b)
{
	int ret;

	ret = rdma_wait(r, r->tx_posted - r->tx_done < KVMIG_RDMA_TX);
	if (ret)
		return ret;
	*b = &r->tx[r->tx_posted % KVMIG_RDMA_TX];
	return 0;
}

static int rdma_send_msg(struct kvmig_rdma *r, u32 type, u64 addr, u32 rkey,
			 u32 npages)
{
	struct kvmig_rdma_buf *b;
	struct kvmig_rdma_msg *m;
	int ret;

	ret = rdma_tx_get(r, &b);
	if (ret)
		return ret;
	m = b->data;
	*m = (struct kvmig_rdma_msg){
		.type = cpu_to_le32(type), .addr = cpu_to_le64(addr),
		.rkey = cpu_to_le32(rkey), .npages = cpu_to_le32(npages),
	};
	return rdma_post_send(r, b, sizeof(*m));
}

/*
 * The next message received, once checked to be one of @type (for
 * @npages pages: GRANT, WRITTEN). Messages that arrived before an error
 * are still taken.
 */
static int rdma_rx_get(struct kvmig_rdma *r, u32 type, u32 npages,
		       struct kvmig_rdma_buf **bp, struct kvmig_rdma_msg *m)
{
	struct kvmig_rdma_buf *b;
	int ret;

	ret = rdma_wait(r, r->rx_shut || r->rx_done != r->rx_next);
	if (!ret && READ_ONCE(r->rx_shut))
		ret = -ECONNRESET;
	if (ret)
		return ret;
	b = &r->rx[r->rx_next % KVMIG_RDMA_RX];
	ib_dma_sync_single_for_cpu(r->pd->device, b->dma, KVMIG_RDMA_BUF,
				   DMA_FROM_DEVICE);
	memcpy(m, b->data, min_t(u32, b->len, sizeof(*m)));
	if (kvmig_wire_check_rdma_msg(m, b->len, type, npages)) {
		pr_warn_ratelimited("malformed or unexpected RDMA message from the peer\n");
		return -EPROTO;
	}
	*bp = b;
	return 0;
}

/* Done with the current message: its buffer takes the next one. */
static int rdma_rx_put(struct kvmig_rdma *r, struct kvmig_rdma_buf *b)
{
	r->rx_next++;
	r->rx_off = 0;
	return rdma_post_rx(r, b);
}

/* A control message of @type for a run of @n pages, and nothing else. */
static int rdma_rx_ctl(struct kvmig_rdma *r, u32 type, u32 n,
		       struct kvmig_rdma_msg *m)
{
	struct kvmig_rdma_buf *b;
	int ret;

	ret = rdma_rx_get(r, type, n, &b, m);
	return ret ?: rdma_rx_put(r, b);
}

/* Bytes of a record, as DATA messages. */
static int rdma_send_data(struct kvmig_rdma *r, const void *buf, size_t len)
{
	struct kvmig_rdma_buf *b;
	struct kvmig_rdma_msg *m;
	size_t n;
	int ret;

	lockdep_assert_held(&r->dev_sem);

	while (len) {
		ret = rdma_tx_get(r, &b);
		if (ret)
			return ret;
		n = min_t(size_t, len, KVMIG_RDMA_DATA_MAX);
		m = b->data;
		*m = (struct kvmig_rdma_msg){
			.type = cpu_to_le32(KVMIG_RDMA_DATA),
			.len = cpu_to_le32(n),
		};
		memcpy(m + 1, buf, n);
		ret = rdma_post_send(r, b, sizeof(*m) + n);
		if (ret)
			return ret;
		buf += n;
		len -= n;
	}
	return 0;
}

static int rdma_recv_data(struct kvmig_rdma *r, void *buf, size_t len)
{
	struct kvmig_rdma_buf *b;
	struct kvmig_rdma_msg m;
	size_t n;
	int ret;

	lockdep_assert_held(&r->dev_sem);

	while (len) {
		ret = rdma_rx_get(r, KVMIG_RDMA_DATA, 0, &b, &m);
		if (ret)
			return ret;
		n = min_t(size_t, len, le32_to_cpu(m.len) - r->rx_off);
		memcpy(buf, b->data + sizeof(m) + r->rx_off, n);
		r->rx_off += n;
		buf += n;
		len -= n;
		if (r->rx_off == le32_to_cpu(m.len)) {
			ret = rdma_rx_put(r, b);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* Map @n pages into @r->sg for the device; the number of entries, or 0. */
static int rdma_map_pages(struct kvmig_rdma *r, struct page **pages, u32 n,
			  enum dma_data_direction dir)
{
	u32 i;

	sg_init_table(r->sg, n);
	for (i = 0; i < n; i++)
		sg_set_page(&r->sg[i], pages[i], PAGE_SIZE, 0);
	return ib_dma_map_sg(r->pd->device, r->sg, n, dir);
}

/*
 * Source: wait for the destination's GRANT of the run, WRITE the pages
 * into it, then SEND WRITTEN. The pages stay mapped until the WRITEs
 * completed, or, on an error, until the QP is drained.
 */
static int rdma_write_run(struct kvmig_rdma *r, struct page **pages, u32 n,
			  u32 *spliced)
{
	struct kvmig_rdma_msg m;
	struct scatterlist *sg;
	u32 i, w = 0, k = 0;
	u64 raddr;
	int nents, ret;

	lockdep_assert_held(&r->dev_sem);

	ret = rdma_rx_ctl(r, KVMIG_RDMA_GRANT, n, &m);
	if (ret)
		return ret;
	nents = rdma_map_pages(r, pages, n, DMA_TO_DEVICE);
	if (!nents)
		return -EIO;
	raddr = le64_to_cpu(m.addr);
	for_each_sg(r->sg, sg, nents, i) {
		struct ib_rdma_wr *wr = &r->wr[w];

		if (!k) {
			*wr = (struct ib_rdma_wr){
				.wr.opcode = IB_WR_RDMA_WRITE,
				.wr.wr_cqe = &r->write.cqe,
				.wr.sg_list = &r->sge[i],
				.remote_addr = raddr,
				.rkey = le32_to_cpu(m.rkey),
			};
			if (w)
				r->wr[w - 1].wr.next = &wr->wr;
		}
		r->sge[i] = (struct ib_sge){
			.addr = sg_dma_address(sg), .length = sg_dma_len(sg),
			.lkey = r->pd->local_dma_lkey,
		};
		wr->wr.num_sge = ++k;
		raddr += sg_dma_len(sg);
		if (k == r->max_sge) {
			k = 0;
			w++;
		}
	}
	if (k)
		w++;
	r->wr[w - 1].wr.send_flags = IB_SEND_SIGNALED;
	r->write.done = false;
	if (ib_post_send(r->qp, &r->wr[0].wr, NULL))
		ret = rdma_post_failed(r);
	if (!ret)
		ret = rdma_send_msg(r, KVMIG_RDMA_WRITTEN, 0, 0, n);
	if (!ret)
		ret = rdma_wait(r, r->write.done);
	if (ret) {
		rdma_fail(r, ret);
		rdma_drain(r);
	}
	ib_dma_unmap_sg(r->pd->device, r->sg, n, DMA_TO_DEVICE);
	if (!ret)
		*spliced += n;
	return ret;
}

/*
 * Destination: expose the run's pages (checked and pinned by the engine)
 * as the MR, GRANT it, wait for WRITTEN, then invalidate the MR. On an
 * error the QP is drained before the pages go: nothing lands in them
 * after this returns.
 */
static int rdma_grant_run(struct kvmig_rdma *r, struct page **pages, u32 n)
{
	struct ib_reg_wr reg = {};
	struct ib_send_wr inv = {};
	struct kvmig_rdma_msg m;
	int nents, ret;

	lockdep_assert_held(&r->dev_sem);

	nents = rdma_map_pages(r, pages, n, DMA_FROM_DEVICE);
	if (!nents)
		return -EIO;
	ib_update_fast_reg_key(r->mr, ib_inc_rkey(r->mr->rkey));
	ret = ib_map_mr_sg(r->mr, r->sg, nents, NULL, PAGE_SIZE);
	if (ret != nents) {
		ib_dma_unmap_sg(r->pd->device, r->sg, n, DMA_FROM_DEVICE);
		return ret < 0 ? ret : -EIO;
	}
	reg.wr.opcode = IB_WR_REG_MR;
	reg.wr.wr_cqe = &r->reg.cqe;
	reg.mr = r->mr;
	reg.key = r->mr->rkey;
	reg.access = IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_WRITE;
	ret = ib_post_send(r->qp, &reg.wr, NULL) ? rdma_post_failed(r) : 0;
	if (!ret)
		ret = rdma_send_msg(r, KVMIG_RDMA_GRANT, r->mr->iova,
				    r->mr->rkey, n);
	if (!ret)
		ret = rdma_rx_ctl(r, KVMIG_RDMA_WRITTEN, n, &m);
	if (!ret) {
		inv.opcode = IB_WR_LOCAL_INV;
		inv.wr_cqe = &r->inv.cqe;
		inv.send_flags = IB_SEND_SIGNALED;
		inv.ex.invalidate_rkey = r->mr->rkey;
		r->inv.done = false;
		ret = ib_post_send(r->qp, &inv, NULL) ? rdma_post_failed(r) : 0;
	}
	if (!ret)
		ret = rdma_wait(r, r->inv.done);
	if (ret) {
		rdma_fail(r, ret);
		rdma_drain(r);
	}
	ib_dma_unmap_sg(r->pd->device, r->sg, n, DMA_FROM_DEVICE);
	return ret;
}

/* The transport's calls, on the stream's owner. */
static int kvmig_rdma_send(struct kvmig_stream *s, const void *buf,
			   size_t len, bool more)
{
	struct kvmig_rdma *r = s->conn;
	int ret;

	ret = rdma_enter(r);
	if (ret)
		return ret;
	ret = rdma_send_data(r, buf, len);
	rdma_leave(r);
	return ret;
}

static int kvmig_rdma_recv(struct kvmig_stream *s, void *buf, size_t len)
{
	struct kvmig_rdma *r = s->conn;
	int ret;

	ret = rdma_enter(r);
	if (ret)
		return ret;
	ret = rdma_recv_data(r, buf, len);
	rdma_leave(r);
	return ret;
}

static int kvmig_rdma_send_pages(struct kvmig_stream *s, struct page **pages,
				 u32 n, bool more, u32 *spliced)
{
	struct kvmig_rdma *r = s->conn;
	int ret;

	ret = rdma_enter(r);
	if (ret)
		return ret;
	ret = rdma_write_run(r, pages, n, spliced);
	rdma_leave(r);
	return ret;
}

static int kvmig_rdma_recv_pages(struct kvmig_stream *s, struct page **pages,
				 u32 n)
{
	struct kvmig_rdma *r = s->conn;
	int ret;

	ret = rdma_enter(r);
	if (ret)
		return ret;
	ret = rdma_grant_run(r, pages, n);
	rdma_leave(r);
	return ret;
}

/* Every SEND is posted at once: nothing is held back. */
static void kvmig_rdma_flush(struct kvmig_stream *s)
{
}

static void rdma_cm_step(struct kvmig_rdma *r, int step)
{
	unsigned long flags;

	spin_lock_irqsave(&r->lock, flags);
	r->cm = max(r->cm, step);
	spin_unlock_irqrestore(&r->lock, flags);
	wake_up(&r->wq);
}

/* The address the bootstrap socket's peer has, port aside. */
static bool rdma_from_peer(struct kvmig_rdma *r, const struct sockaddr *a)
{
	const struct sockaddr *p = (const struct sockaddr *)&r->peer;

	if (a->sa_family != p->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)p)->sin_addr.s_addr;
	return ipv6_addr_equal(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)p)->sin6_addr);
}

/*
 * Destination, in the CM handler of a connection request (the listening
 * cm_id's handler mutex held): take one connection, from the bootstrap
 * socket's peer, and accept it. Returning an error makes the RDMA CM
 * reject and destroy @id.
 */
static int rdma_on_request(struct kvmig_rdma *r, struct rdma_cm_id *id,
			   struct rdma_cm_event *ev)
{
	struct rdma_conn_param param = {
		.retry_count = 7, .rnr_retry_count = 7,
	};
	unsigned long flags;
	bool take;
	int ret;

	spin_lock_irqsave(&r->lock, flags);
	take = !r->child && !r->err &&
	       rdma_from_peer(r, (struct sockaddr *)&id->route.addr.dst_addr);
	if (take)
		r->child = id;
	spin_unlock_irqrestore(&r->lock, flags);
	if (!take) {
		pr_warn_ratelimited("refused an RDMA connection that is not the migration's\n");
		return -ECONNREFUSED;
	}
	ret = rdma_queues_create(r, id);
	if (!ret)
		ret = rdma_accept(id, &param);
	if (ret) {
		if (r->qp)
			rdma_queues_destroy(r, id);
		spin_lock_irqsave(&r->lock, flags);
		r->child = NULL;
		spin_unlock_irqrestore(&r->lock, flags);
		rdma_fail(r, ret);
	}
	return ret;
}

/*
 * The device is going away, and waits until every cm_id on it is
 * destroyed. While connecting, the owner fails and destroys its cm_ids
 * itself. Once up, the connection is taken down here, with no call
 * inside (each sees the error and returns), and the RDMA CM destroys
 * @id when this returns non-zero; the stream stays failed with -ENODEV.
 */
static int rdma_on_removal(struct kvmig_rdma *r, struct rdma_cm_id *id)
{
	bool mine;

	rdma_fail(r, -ENODEV);
	down_write(&r->dev_sem);
	mutex_lock(&r->conn_lock);
	mine = r->up && r->id == id;
	if (mine)
		r->id = NULL;
	mutex_unlock(&r->conn_lock);
	if (mine) {
		r->up = false;
		rdma_queues_destroy(r, id);
		pr_warn_ratelimited("%s went away: the migration fails\n",
				    dev_name(&id->device->dev));
	}
	up_write(&r->dev_sem);
	return mine;
}

static int rdma_cm_handler(struct rdma_cm_id *id, struct rdma_cm_event *ev)
{
	struct kvmig_rdma *r = id->context;

	switch (ev->event) {
	case RDMA_CM_EVENT_ADDR_RESOLVED:
		rdma_cm_step(r, KVMIG_RDMA_CM_ADDR);
		break;
	case RDMA_CM_EVENT_ROUTE_RESOLVED:
		rdma_cm_step(r, KVMIG_RDMA_CM_ROUTE);
		break;
	case RDMA_CM_EVENT_CONNECT_REQUEST:
		return rdma_on_request(r, id, ev);
	case RDMA_CM_EVENT_ESTABLISHED:
		rdma_cm_step(r, KVMIG_RDMA_CM_UP);
		break;
	case RDMA_CM_EVENT_ADDR_ERROR:
	case RDMA_CM_EVENT_ROUTE_ERROR:
	case RDMA_CM_EVENT_UNREACHABLE:
		rdma_fail(r, -EHOSTUNREACH);
		break;
	case RDMA_CM_EVENT_CONNECT_ERROR:
	case RDMA_CM_EVENT_REJECTED:
		rdma_fail(r, -ECONNREFUSED);
		break;
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		return rdma_on_removal(r, id);
	case RDMA_CM_EVENT_DISCONNECTED:
	case RDMA_CM_EVENT_ADDR_CHANGE:
		rdma_fail(r, -ECONNRESET);
		break;
	default:
		break;
	}
	return 0;
}

/* The bootstrap: exactly @len bytes over the TCP socket. */
static int rdma_boot_io(struct kvmig_rdma *r, struct kvmig_rdma_boot *b,
			bool send)
{
	struct kvec iov = { .iov_base = b, .iov_len = sizeof(*b) };
	struct msghdr msg = { .msg_flags = MSG_NOSIGNAL };
	int ret;

	iov_iter_kvec(&msg.msg_iter, send ? ITER_SOURCE : ITER_DEST, &iov, 1,
		      sizeof(*b));
	while (msg_data_left(&msg)) {
		ret = send ? sock_sendmsg(r->sock, &msg) :
			     sock_recvmsg(r->sock, &msg, MSG_WAITALL);
		if (ret == -EAGAIN)
			return -ETIMEDOUT;
		if (ret < 0)
			return ret;
		if (!ret)
			return -ECONNRESET;
	}
	return 0;
}

static int rdma_boot_check(const struct kvmig_rdma_boot *b)
{
	if (kvmig_wire_check_rdma_boot(b)) {
		pr_warn_ratelimited("the peer does not set up RDMA (or another version)\n");
		return -EPROTO;
	}
	return 0;
}

static void rdma_set_port(struct sockaddr_storage *ss, __be16 port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = port;
	else
		((struct sockaddr_in6 *)ss)->sin6_port = port;
}

static __be16 rdma_get_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_port;
	return ((const struct sockaddr_in6 *)ss)->sin6_port;
}

/* Publish @id for a shutdown, or take it back (NULL). */
static void rdma_set_id(struct kvmig_rdma *r, struct rdma_cm_id *id)
{
	mutex_lock(&r->conn_lock);
	r->id = id;
	mutex_unlock(&r->conn_lock);
}

static int rdma_connect_source(struct kvmig_rdma *r)
{
	struct rdma_conn_param param = {
		.retry_count = 7, .rnr_retry_count = 7,
	};
	struct kvmig_rdma_boot b = {
		.magic = cpu_to_le32(KVMIG_RDMA_MAGIC),
		.version = cpu_to_le16(KVMIG_RDMA_VERSION),
	};
	u32 ms = jiffies_to_msecs(r->timeo);
	struct sockaddr_storage dst = r->peer, src = r->local;
	struct rdma_cm_id *id;
	int ret;

	ret = rdma_boot_io(r, &b, true);
	if (!ret)
		ret = rdma_boot_io(r, &b, false);
	if (!ret)
		ret = rdma_boot_check(&b);
	if (!ret && !b.port)
		ret = -EPROTO;
	if (ret)
		return ret;
	rdma_set_port(&dst, b.port);
	rdma_set_port(&src, 0);

	id = rdma_create_id(r->net, rdma_cm_handler, r, RDMA_PS_TCP,
			    IB_QPT_RC);
	if (IS_ERR(id))
		return PTR_ERR(id);
	rdma_set_id(r, id);
	ret = rdma_resolve_addr(id, (struct sockaddr *)&src,
				(struct sockaddr *)&dst, ms);
	if (!ret)
		ret = rdma_wait(r, r->cm >= KVMIG_RDMA_CM_ADDR);
	if (!ret)
		ret = rdma_resolve_route(id, ms);
	if (!ret)
		ret = rdma_wait(r, r->cm >= KVMIG_RDMA_CM_ROUTE);
	if (!ret)
		ret = rdma_queues_create(r, id);
	if (!ret)
		ret = rdma_connect(id, &param);
	if (!ret)
		ret = rdma_wait(r, r->cm >= KVMIG_RDMA_CM_UP);
	if (ret) {
		rdma_set_id(r, NULL);
		rdma_disconnect(id);
		if (r->qp)
			rdma_queues_destroy(r, id);
		rdma_destroy_id(id);
	}
	return ret;
}

static int rdma_connect_dest(struct kvmig_rdma *r)
{
	struct sockaddr_storage addr = r->local;
	struct kvmig_rdma_boot b;
	struct rdma_cm_id *id, *child;
	int ret;

	id = rdma_create_id(r->net, rdma_cm_handler, r, RDMA_PS_TCP,
			    IB_QPT_RC);
	if (IS_ERR(id))
		return PTR_ERR(id);
	rdma_set_port(&addr, 0);
	ret = rdma_bind_addr(id, (struct sockaddr *)&addr);
	if (!ret)
		ret = rdma_listen(id, 1);
	if (!ret)
		ret = rdma_boot_io(r, &b, false);
	if (!ret)
		ret = rdma_boot_check(&b);
	if (!ret) {
		b.port = rdma_get_port(&id->route.addr.src_addr);
		ret = rdma_boot_io(r, &b, true);
	}
	if (!ret)
		ret = rdma_wait(r, r->child && r->cm >= KVMIG_RDMA_CM_UP);
	/* No connection request is handled once the listener is gone. */
	rdma_destroy_id(id);
	child = r->child;
	if (ret && child) {
		rdma_disconnect(child);
		rdma_queues_destroy(r, child);
		rdma_destroy_id(child);
	}
	if (!ret)
		rdma_set_id(r, child);
	return ret;
}

/*
 * Take the connection down, if it is still there: no call is inside, and
 * the CM handler finds it gone.
 */
static void rdma_teardown(struct kvmig_rdma *r)
{
	struct rdma_cm_id *id;

	down_write(&r->dev_sem);
	mutex_lock(&r->conn_lock);
	id = r->id;
	r->id = NULL;
	mutex_unlock(&r->conn_lock);
	r->up = false;
	if (id) {
		rdma_disconnect(id);
		rdma_queues_destroy(r, id);
	}
	up_write(&r->dev_sem);
	/* Waits for a CM handler on @id, which then finds nothing to do. */
	if (id)
		rdma_destroy_id(id);
}

/* Finish the connection, on the worker, before the handshake. */
static int kvmig_rdma_connect(struct kvmig_stream *s)
{
	struct kvmig_rdma *r = s->conn;
	struct socket *sock;
	int ret;

	ret = r->role == KVMIG_ROLE_SOURCE ? rdma_connect_source(r) :
					     rdma_connect_dest(r);
	/* A device that went away since is seen here, or by the handler. */
	down_write(&r->dev_sem);
	if (!ret)
		ret = rdma_err(r);
	r->up = !ret;
	up_write(&r->dev_sem);
	if (ret)
		rdma_teardown(r);
	mutex_lock(&r->conn_lock);
	sock = r->sock;
	r->sock = NULL;
	mutex_unlock(&r->conn_lock);
	if (sock)
		sockfd_put(sock);
	return ret;
}

static void kvmig_rdma_shutdown(struct kvmig_stream *s, bool recv_only)
{
	struct kvmig_rdma *r = s->conn;
	unsigned long flags;

	if (recv_only) {
		spin_lock_irqsave(&r->lock, flags);
		r->rx_shut = true;
		spin_unlock_irqrestore(&r->lock, flags);
		wake_up(&r->wq);
		return;
	}
	rdma_fail(r, -ECONNRESET);
	mutex_lock(&r->conn_lock);
	if (r->sock)
		kernel_sock_shutdown(r->sock, SHUT_RDWR);
	if (r->id)
		rdma_disconnect(r->id);
	mutex_unlock(&r->conn_lock);
}

static void kvmig_rdma_release(struct kvmig_stream *s)
{
	struct kvmig_rdma *r = s->conn;

	rdma_teardown(r);
	if (r->sock)
		sockfd_put(r->sock);
	put_net(r->net);
	kfree(r);
	s->conn = NULL;
}

static const struct kvmig_transport_ops kvmig_rdma_ops = {
	.name		= "rdma",
	.connect	= kvmig_rdma_connect,
	.send		= kvmig_rdma_send,
	.send_pages	= kvmig_rdma_send_pages,
	.recv		= kvmig_rdma_recv,
	.recv_pages	= kvmig_rdma_recv_pages,
	.flush		= kvmig_rdma_flush,
	.shutdown	= kvmig_rdma_shutdown,
	.release	= kvmig_rdma_release,
};

/*
 * Take the bootstrap socket, a connected TCP socket, from the caller's fd
 * table: where it leads names the RDMA connection's ends, and its
 * network namespace the RDMA CM's.
 */
int kvmig_rdma_attach(struct kvmig_stream *s, int fd, u32 io_timeout_ms)
{
	struct kvmig_rdma *r;
	struct socket *sock;
	int err;

	sock = kvmig_tcp_lookup(fd, io_timeout_ms);
	if (IS_ERR(sock))
		return PTR_ERR(sock);
	err = -ENOMEM;
	r = kzalloc(sizeof(*r), GFP_KERNEL_ACCOUNT);
	if (!r)
		goto err_put;
	err = kernel_getsockname(sock, (struct sockaddr *)&r->local);
	if (err >= 0)
		err = kernel_getpeername(sock, (struct sockaddr *)&r->peer);
	if (err < 0) {
		kfree(r);
		goto err_put;
	}
	r->role = s->x->role;
	r->timeo = msecs_to_jiffies(io_timeout_ms);
	r->net = get_net(sock_net(sock->sk));
	r->sock = sock;
	init_rwsem(&r->dev_sem);
	mutex_init(&r->conn_lock);
	spin_lock_init(&r->lock);
	init_waitqueue_head(&r->wq);
	s->conn = r;
	s->ops = &kvmig_rdma_ops;
	return 0;

err_put:
	sockfd_put(sock);
	return err;
}
