/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_peer.h: a source written by hand over RDMA (librdmacm, libibverbs),
 * for the destination's side of kvmig's RDMA transport under a peer that
 * breaks the rules: writes past what it was granted, with a key already
 * invalidated, or sends messages out of turn. It speaks what
 * module/xfer/rdma.c does: the bootstrap over the TCP socket, then
 * SENDs of at most 4096 bytes, each a 24-byte message header (DATA,
 * GRANT, WRITTEN) and, for DATA, that many bytes of the record stream.
 * Completions are polled with a deadline: a test never waits forever.
 */
#ifndef KVMIG_RDMA_PEER_H
#define KVMIG_RDMA_PEER_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <rdma/rdma_cma.h>
#include <rdma/rdma_verbs.h>

#define RP_BUF		4096	/* KVMIG_RDMA_BUF */
#define RP_RX		16	/* receives kept posted */
#define RP_PAGES	8	/* pages a WRITE may take */

enum { RP_DATA = 1, RP_GRANT, RP_WRITTEN };

/* struct kvmig_rdma_msg, little-endian as x86 is. */
struct rp_msg {
	uint32_t type, len;
	uint64_t addr;
	uint32_t rkey, npages;
};

/* struct kvmig_rdma_boot. */
struct rp_boot {
	uint32_t magic;
	uint16_t version;
	uint16_t port;		/* big-endian */
	uint32_t flags, reserved;
};

struct rpeer {
	struct rdma_cm_id *id;
	struct ibv_mr *rx_mr, *tx_mr, *pg_mr;
	uint8_t rx[RP_RX][RP_BUF];
	uint8_t tx[RP_BUF];
	uint8_t pages[RP_PAGES][4096];
};

static inline uint64_t rp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/* One completion from @cq within @ms: its status, or -ETIME. */
static inline int rp_poll(struct ibv_cq *cq, struct ibv_wc *wc,
			  unsigned int ms)
{
	uint64_t end = rp_now_ms() + ms;
	int n;

	do {
		n = ibv_poll_cq(cq, 1, wc);
		if (n < 0)
			return -EIO;
		if (n)
			return wc->status;
		usleep(1000);
	} while (rp_now_ms() < end);
	return -ETIME;
}

/*
 * The bootstrap over @sock (a TCP socket connected to the destination's),
 * then the RDMA connection to the port it answers with, at @addr; 0 or
 * a negative errno.
 */
static inline int rpeer_connect(struct rpeer *p, int sock, const char *addr)
{
	struct rp_boot b = { 0x524d564b, 1, 0, 0, 0 };
	struct rdma_addrinfo hints = { .ai_port_space = RDMA_PS_TCP }, *res;
	struct ibv_qp_init_attr qa = {
		.cap = { .max_send_wr = 16, .max_recv_wr = RP_RX,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.qp_type = IBV_QPT_RC, .sq_sig_all = 1,
	};
	struct rdma_conn_param cp = { .retry_count = 7, .rnr_retry_count = 7 };
	char port[8];
	unsigned int i;

	if (write(sock, &b, sizeof(b)) != sizeof(b) ||
	    read(sock, &b, sizeof(b)) != sizeof(b))
		return -EIO;
	if (b.magic != 0x524d564b || b.version != 1 || !b.port)
		return -EPROTO;
	snprintf(port, sizeof(port), "%u", ntohs(b.port));
	if (rdma_getaddrinfo(addr, port, &hints, &res))
		return -errno;
	if (rdma_create_ep(&p->id, res, NULL, &qa)) {
		rdma_freeaddrinfo(res);
		return -errno;
	}
	rdma_freeaddrinfo(res);
	p->rx_mr = rdma_reg_msgs(p->id, p->rx, sizeof(p->rx));
	p->tx_mr = rdma_reg_msgs(p->id, p->tx, sizeof(p->tx));
	p->pg_mr = rdma_reg_msgs(p->id, p->pages, sizeof(p->pages));
	if (!p->rx_mr || !p->tx_mr || !p->pg_mr)
		return -ENOMEM;
	for (i = 0; i < RP_RX; i++)
		if (rdma_post_recv(p->id, (void *)(uintptr_t)i, p->rx[i],
				   RP_BUF, p->rx_mr))
			return -errno;
	return rdma_connect(p->id, &cp) ? -errno : 0;
}

/*
 * No rdma_disconnect(): on an id without an event channel it waits for
 * the DISCONNECTED event, which a destination that failed may never
 * answer before the CM's retries run out (over a minute under TCG).
 * Destroying the id disconnects it without waiting.
 */
static inline void rpeer_close(struct rpeer *p)
{
	if (!p->id)
		return;
	if (p->pg_mr)
		rdma_dereg_mr(p->pg_mr);
	if (p->tx_mr)
		rdma_dereg_mr(p->tx_mr);
	if (p->rx_mr)
		rdma_dereg_mr(p->rx_mr);
	rdma_destroy_ep(p->id);
	p->id = NULL;
}

/*
 * Post a SEND of a message of @type with @len payload bytes from @data
 * (DATA), or @addr, @rkey, @npages (GRANT, WRITTEN), and not wait: for
 * the last message to a destination that fails on it, whose ACK may
 * never come (its QP goes to error first). 0 or -errno.
 */
static inline int rpeer_post(struct rpeer *p, uint32_t type, const void *data,
			     uint32_t len, uint64_t addr, uint32_t rkey,
			     uint32_t npages)
{
	struct rp_msg m = { type, len, addr, rkey, npages };
	uint32_t n = len > RP_BUF - sizeof(m) ? RP_BUF - sizeof(m) : len;

	memcpy(p->tx, &m, sizeof(m));
	if (data)
		memcpy(p->tx + sizeof(m), data, n);
	return rdma_post_send(p->id, NULL, p->tx, sizeof(m) + (data ? n : 0),
			      p->tx_mr, 0) ? -errno : 0;
}

/* The same, waiting for its completion: its status, or -ETIME. */
static inline int rpeer_send(struct rpeer *p, uint32_t type, const void *data,
			     uint32_t len, uint64_t addr, uint32_t rkey,
			     uint32_t npages)
{
	struct ibv_wc wc;
	int ret;

	ret = rpeer_post(p, type, data, len, addr, rkey, npages);
	return ret ?: rp_poll(p->id->send_cq, &wc, 10000);
}

/* @len bytes of the record stream, as DATA messages; 0 or an error. */
static inline int rpeer_data(struct rpeer *p, const void *buf, uint32_t len)
{
	uint32_t n;
	int ret;

	while (len) {
		n = len > RP_BUF - sizeof(struct rp_msg) ?
			RP_BUF - sizeof(struct rp_msg) : len;
		ret = rpeer_send(p, RP_DATA, buf, n, 0, 0, 0);
		if (ret)
			return ret;
		buf = (const uint8_t *)buf + n;
		len -= n;
	}
	return 0;
}

/*
 * The next message received within @ms, its payload (at most @cap bytes)
 * to @data; its receive is posted again. 0, the completion's status, or
 * -ETIME.
 */
static inline int rpeer_recv(struct rpeer *p, struct rp_msg *m, void *data,
			     uint32_t cap, unsigned int ms)
{
	struct ibv_wc wc;
	unsigned int i;
	int ret;

	ret = rp_poll(p->id->recv_cq, &wc, ms);
	if (ret)
		return ret;
	i = wc.wr_id;
	memcpy(m, p->rx[i], sizeof(*m));
	if (data)
		memcpy(data, p->rx[i] + sizeof(*m),
		       m->len < cap ? m->len : cap);
	return rdma_post_recv(p->id, (void *)(uintptr_t)i, p->rx[i], RP_BUF,
			      p->rx_mr) ? -errno : 0;
}

/* RDMA WRITE @npages of p->pages to @addr, @rkey; the completion's status. */
static inline int rpeer_write(struct rpeer *p, uint32_t npages, uint64_t addr,
			      uint32_t rkey)
{
	struct ibv_wc wc;

	if (rdma_post_write(p->id, NULL, p->pages, npages * 4096, p->pg_mr, 0,
			    addr, rkey))
		return -errno;
	return rp_poll(p->id->send_cq, &wc, 10000);
}

#endif
