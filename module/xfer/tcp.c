// SPDX-License-Identifier: GPL-2.0
/*
 * TCP transport: a connected socket handed in by the VMM, the way NBD takes
 * its socket, so it works in any network namespace (and later over kTLS).
 * Guest pages go out without a copy on the sender (MSG_SPLICE_PAGES, or
 * ->sendpage before 6.5) and come in straight into the destination
 * guest's pinned pages (no bounce buffer).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bvec.h>
#include <linux/jiffies.h>
#include <linux/net.h>
#include <linux/socket.h>
#include <linux/uio.h>
#include <net/sock.h>
#include <net/tcp.h>

#include "xfer.h"

static int kvmig_tcp_sendmsg_all(struct socket *sock, struct msghdr *msg)
{
	int ret;

	while (msg_data_left(msg)) {
		ret = sock_sendmsg(sock, msg);
		if (ret == -EAGAIN)
			return -ETIMEDOUT;	/* sk_sndtimeo ran out */
		if (ret <= 0)
			return ret ? ret : -EPIPE;
	}
	return 0;
}

static int kvmig_tcp_send(struct kvmig_xfer *x, const void *buf, size_t len,
			  bool more)
{
	struct kvec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = {
		.msg_flags = MSG_NOSIGNAL | (more ? MSG_MORE : 0),
	};

	iov_iter_kvec(&msg.msg_iter, ITER_SOURCE, &iov, 1, len);
	return kvmig_tcp_sendmsg_all(x->sock, &msg);
}

#if KVMIG_HAVE_SPLICE_PAGES
static int kvmig_tcp_send_pages(struct kvmig_xfer *x, struct page **pages,
				u32 n, bool more, u32 *spliced)
{
	struct bio_vec *bv = x->bvec;
	struct msghdr msg = {
		.msg_flags = MSG_NOSIGNAL | (more ? MSG_MORE : 0),
	};
	bool splice = true;
	u32 i;

	for (i = 0; i < n; i++) {
		bvec_set_page(&bv[i], pages[i], PAGE_SIZE, 0);
		splice &= sendpage_ok(pages[i]);
	}
	/* The socket takes its own page references for what it splices. */
	if (splice) {
		msg.msg_flags |= MSG_SPLICE_PAGES;
		*spliced += n;
	}
	iov_iter_bvec(&msg.msg_iter, ITER_SOURCE, bv, n, (size_t)n * PAGE_SIZE);
	return kvmig_tcp_sendmsg_all(x->sock, &msg);
}
#else
/*
 * Before 6.5, TCP's sendmsg() copies even from a bvec: zero-copy is
 * ->sendpage, a page per call, flagged as splice's pipe_to_sendpage()
 * does (MSG_SENDPAGE_NOTLAST: more pages follow, do not push yet).
 * kernel_sendpage() would give TCP a page that is not sendpage_ok() all
 * the same, with a warning: such a page goes through sock_no_sendpage(),
 * a copy, as in nvme-tcp. Errors as kvmig_tcp_sendmsg_all()'s.
 */
static int kvmig_tcp_send_page(struct socket *sock, struct page *page,
			       bool zc, int flags)
{
	size_t off = 0;
	int ret;

	while (off < PAGE_SIZE) {
		if (zc)
			ret = kernel_sendpage(sock, page, off, PAGE_SIZE - off,
					      flags);
		else
			ret = sock_no_sendpage(sock, page, off, PAGE_SIZE - off,
					       flags);
		if (ret == -EAGAIN)
			return -ETIMEDOUT;	/* sk_sndtimeo ran out */
		if (ret <= 0)
			return ret ? ret : -EPIPE;
		off += ret;
	}
	return 0;
}

static int kvmig_tcp_send_pages(struct kvmig_xfer *x, struct page **pages,
				u32 n, bool more, u32 *spliced)
{
	int flags, ret;
	bool zc;
	u32 i;

	for (i = 0; i < n; i++) {
		flags = MSG_NOSIGNAL;
		if (i + 1 < n)
			flags |= MSG_MORE | MSG_SENDPAGE_NOTLAST;
		else if (more)
			flags |= MSG_MORE;
		/* Counted as handed over, as a spliced batch is. */
		zc = sendpage_ok(pages[i]);
		if (zc)
			(*spliced)++;
		ret = kvmig_tcp_send_page(x->sock, pages[i], zc, flags);
		if (ret)
			return ret;
	}
	return 0;
}
#endif

static int kvmig_tcp_recvmsg_all(struct socket *sock, struct msghdr *msg)
{
	int ret;

	while (msg_data_left(msg)) {
		ret = sock_recvmsg(sock, msg, MSG_WAITALL);
		if (ret < 0)
			return ret == -EAGAIN ? -ETIMEDOUT : ret;
		if (!ret)
			return -ECONNRESET;	/* the peer closed */
	}
	return 0;
}

static int kvmig_tcp_recv(struct kvmig_xfer *x, void *buf, size_t len)
{
	struct kvec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = {};

	iov_iter_kvec(&msg.msg_iter, ITER_DEST, &iov, 1, len);
	return kvmig_tcp_recvmsg_all(x->sock, &msg);
}

static int kvmig_tcp_recv_pages(struct kvmig_xfer *x, struct page **pages, u32 n)
{
	struct bio_vec *bv = x->bvec;
	struct msghdr msg = {};
	u32 i;

	for (i = 0; i < n; i++)
		bvec_set_page(&bv[i], pages[i], PAGE_SIZE, 0);
	iov_iter_bvec(&msg.msg_iter, ITER_DEST, bv, n, (size_t)n * PAGE_SIZE);
	return kvmig_tcp_recvmsg_all(x->sock, &msg);
}

static void kvmig_tcp_shutdown(struct kvmig_xfer *x)
{
	struct socket *sock;

	spin_lock(&x->sock_lock);
	sock = x->sock;
	if (sock)
		get_file(sock->file);
	spin_unlock(&x->sock_lock);
	if (sock) {
		kernel_sock_shutdown(sock, SHUT_RDWR);
		fput(sock->file);
	}
}

static void kvmig_tcp_release(struct kvmig_xfer *x)
{
	struct socket *sock;

	spin_lock(&x->sock_lock);
	sock = x->sock;
	x->sock = NULL;
	spin_unlock(&x->sock_lock);
	if (sock)
		sockfd_put(sock);
}

const struct kvmig_transport_ops kvmig_tcp_ops = {
	.name		= "tcp",
	.send		= kvmig_tcp_send,
	.send_pages	= kvmig_tcp_send_pages,
	.recv		= kvmig_tcp_recv,
	.recv_pages	= kvmig_tcp_recv_pages,
	.shutdown	= kvmig_tcp_shutdown,
	.release	= kvmig_tcp_release,
};

/* Take a connected TCP socket from the caller's fd table. */
int kvmig_tcp_attach(struct kvmig_xfer *x, int fd, u32 io_timeout_ms)
{
	struct socket *sock;
	struct sock *sk;
	long timeo;
	int err;

	sock = sockfd_lookup(fd, &err);
	if (!sock)
		return err;
	sk = sock->sk;
	if (sock->type != SOCK_STREAM || !sk || sk->sk_protocol != IPPROTO_TCP ||
	    (sk->sk_family != AF_INET && sk->sk_family != AF_INET6) ||
	    READ_ONCE(sk->sk_state) != TCP_ESTABLISHED) {
		sockfd_put(sock);
		return -EINVAL;
	}

	timeo = msecs_to_jiffies(io_timeout_ms);
	lock_sock(sk);
	WRITE_ONCE(sk->sk_sndtimeo, timeo);
	WRITE_ONCE(sk->sk_rcvtimeo, timeo);
	release_sock(sk);
	tcp_sock_set_nodelay(sk);

	spin_lock(&x->sock_lock);
	x->sock = sock;
	spin_unlock(&x->sock_lock);
	x->ops = &kvmig_tcp_ops;
	return 0;
}
