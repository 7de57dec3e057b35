// SPDX-License-Identifier: GPL-2.0
/*
 * TCP transport: a connected socket handed in by the VMM, the way NBD takes
 * its socket, so it works in any network namespace, and over kTLS: the VMM
 * makes the TLS handshake and installs the keys (TCP_ULP "tls", SOL_TLS)
 * before it hands the socket in, and records go through it unchanged.
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
#include <net/inet_connection_sock.h>
#include <net/sock.h>
#include <net/tcp.h>

#include "xfer.h"

/**
 * struct kvmig_tcp - a TCP stream's state
 * @lock: protects @sock against a shutdown from another thread
 * @sock: the connection, with a file reference; NULL once released
 */
struct kvmig_tcp {
	spinlock_t lock; /* see above */
	struct socket *sock;
};

/* The socket, for the stream's owner (nobody else releases it). */
static struct socket *tcp_sock(struct kvmig_stream *s)
{
	return ((struct kvmig_tcp *)s->conn)->sock;
}

/*
 * Does the socket copy what it is handed all the same? A ULP does: kTLS
 * takes the pages by reference but encrypts them into records of its
 * own, a copy, so they are not counted as zero-copy.
 */
static bool tcp_copies(struct socket *sock)
{
	return READ_ONCE(inet_csk(sock->sk)->icsk_ulp_ops);
}

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

static int kvmig_tcp_send(struct kvmig_stream *s, const void *buf, size_t len,
			  bool more)
{
	struct kvec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = {
		.msg_flags = MSG_NOSIGNAL | (more ? MSG_MORE : 0),
	};

	iov_iter_kvec(&msg.msg_iter, ITER_SOURCE, &iov, 1, len);
	return kvmig_tcp_sendmsg_all(tcp_sock(s), &msg);
}

#if KVMIG_HAVE_SPLICE_PAGES
static int kvmig_tcp_send_pages(struct kvmig_stream *s, struct page **pages,
				u32 n, bool more, u32 *spliced)
{
	struct bio_vec *bv = s->bvec;
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
		if (!tcp_copies(tcp_sock(s)))
			*spliced += n;
	}
	iov_iter_bvec(&msg.msg_iter, ITER_SOURCE, bv, n, (size_t)n * PAGE_SIZE);
	return kvmig_tcp_sendmsg_all(tcp_sock(s), &msg);
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

static int kvmig_tcp_send_pages(struct kvmig_stream *s, struct page **pages,
				u32 n, bool more, u32 *spliced)
{
	bool zc, copies = tcp_copies(tcp_sock(s));
	int flags, ret;
	u32 i;

	for (i = 0; i < n; i++) {
		flags = MSG_NOSIGNAL;
		if (i + 1 < n)
			flags |= MSG_MORE | MSG_SENDPAGE_NOTLAST;
		else if (more)
			flags |= MSG_MORE;
		/* Counted as handed over, as a spliced batch is. */
		zc = sendpage_ok(pages[i]);
		if (zc && !copies)
			(*spliced)++;
		ret = kvmig_tcp_send_page(tcp_sock(s), pages[i], zc, flags);
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

static int kvmig_tcp_recv(struct kvmig_stream *s, void *buf, size_t len)
{
	struct kvec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = {};

	iov_iter_kvec(&msg.msg_iter, ITER_DEST, &iov, 1, len);
	return kvmig_tcp_recvmsg_all(tcp_sock(s), &msg);
}

static int kvmig_tcp_recv_pages(struct kvmig_stream *s, struct page **pages,
				u32 n)
{
	struct bio_vec *bv = s->bvec;
	struct msghdr msg = {};
	u32 i;

	for (i = 0; i < n; i++)
		bvec_set_page(&bv[i], pages[i], PAGE_SIZE, 0);
	iov_iter_bvec(&msg.msg_iter, ITER_DEST, bv, n, (size_t)n * PAGE_SIZE);
	return kvmig_tcp_recvmsg_all(tcp_sock(s), &msg);
}

/*
 * MSG_MORE holds back the tail of a pass: TCP's last partial segment, and
 * kTLS's open record, which nothing else would close before the next pass.
 * splice_eof (6.5+) pushes both; before it, TCP sends its tail once an ACK
 * comes, and kTLS's waits for the next pass.
 */
static void kvmig_tcp_flush(struct kvmig_stream *s)
{
#if KVMIG_HAVE_SPLICE_PAGES
	struct socket *sock = tcp_sock(s);

	if (sock->ops->splice_eof)
		sock->ops->splice_eof(sock);
#endif
}

static void kvmig_tcp_shutdown(struct kvmig_stream *s, bool recv_only)
{
	struct kvmig_tcp *t = s->conn;
	struct socket *sock;

	spin_lock(&t->lock);
	sock = t->sock;
	if (sock)
		get_file(sock->file);
	spin_unlock(&t->lock);
	if (sock) {
		kernel_sock_shutdown(sock, recv_only ? SHUT_RD : SHUT_RDWR);
		fput(sock->file);
	}
}

static void kvmig_tcp_release(struct kvmig_stream *s)
{
	struct kvmig_tcp *t = s->conn;
	struct socket *sock;

	spin_lock(&t->lock);
	sock = t->sock;
	t->sock = NULL;
	spin_unlock(&t->lock);
	if (sock)
		sockfd_put(sock);
	kfree(t);
	s->conn = NULL;
}

static const struct kvmig_transport_ops kvmig_tcp_ops = {
	.name		= "tcp",
	.send		= kvmig_tcp_send,
	.send_pages	= kvmig_tcp_send_pages,
	.recv		= kvmig_tcp_recv,
	.recv_pages	= kvmig_tcp_recv_pages,
	.flush		= kvmig_tcp_flush,
	.shutdown	= kvmig_tcp_shutdown,
	.release	= kvmig_tcp_release,
};

/*
 * The connected IPv4 or IPv6 TCP socket at @fd in the caller's fd table,
 * with a file reference, its send and receive timeouts set to
 * @io_timeout_ms: for the TCP transport, and to set up RDMA. -EINVAL for
 * any other socket.
 */
struct socket *kvmig_tcp_lookup(int fd, u32 io_timeout_ms)
{
	struct socket *sock;
	struct sock *sk;
	long timeo;
	int err;

	sock = sockfd_lookup(fd, &err);
	if (!sock)
		return ERR_PTR(err);
	sk = sock->sk;
	if (sock->type != SOCK_STREAM || !sk || sk->sk_protocol != IPPROTO_TCP ||
	    (sk->sk_family != AF_INET && sk->sk_family != AF_INET6) ||
	    READ_ONCE(sk->sk_state) != TCP_ESTABLISHED) {
		sockfd_put(sock);
		return ERR_PTR(-EINVAL);
	}
	timeo = msecs_to_jiffies(io_timeout_ms);
	lock_sock(sk);
	WRITE_ONCE(sk->sk_sndtimeo, timeo);
	WRITE_ONCE(sk->sk_rcvtimeo, timeo);
	release_sock(sk);
	return sock;
}

/*
 * Take a connected TCP socket from the caller's fd table for stream @s,
 * after the transfer's streams before it: the same socket twice would
 * interleave two streams' records.
 */
int kvmig_tcp_attach(struct kvmig_stream *s, int fd, u32 io_timeout_ms)
{
	struct kvmig_tcp *t;
	struct socket *sock;
	int err;
	u32 i;

	sock = kvmig_tcp_lookup(fd, io_timeout_ms);
	if (IS_ERR(sock))
		return PTR_ERR(sock);
	err = -EINVAL;
	for (i = 0; i < s->index; i++)
		if (tcp_sock(&s->x->streams[i]) == sock)
			goto err_put;
	err = -ENOMEM;
	t = kzalloc(sizeof(*t), GFP_KERNEL_ACCOUNT);
	if (!t)
		goto err_put;
	tcp_sock_set_nodelay(sock->sk);

	spin_lock_init(&t->lock);
	t->sock = sock;
	s->conn = t;
	s->ops = &kvmig_tcp_ops;
	return 0;

err_put:
	sockfd_put(sock);
	return err;
}
