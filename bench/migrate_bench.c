// SPDX-License-Identifier: GPL-2.0
/*
 * Live migration through kvmig against a userspace migrator that uses only
 * the standard KVM ABI, as QEMU's pre-copy with multifd does: the same
 * guest, the same dirty rate, the same TCP link (loopback), the same wire
 * format and the same convergence rule (what is pending fits the downtime
 * budget at the last round's throughput; at most 30 rounds).
 *
 *   kvmig   KVMIG_XFER_* on both ends: harvest, zero-copy splice of pinned
 *           guest pages, receive straight into the destination's pages
 *   user    the VMM reaps the dirty rings from its mmap into a bitmap; each
 *           round splits the bitmap's words into -t stripes of about as
 *           many pending pages, one per sender thread and TCP connection
 *           (multifd's channels), which walks its stripe a 64-bit word at
 *           a time and send()s runs of pages from its mapping of guest
 *           memory (with --zerocopy, MSG_ZEROCOPY, completions reaped from
 *           the error queue); the migration thread waits for all of them
 *           before it decides on the next round. One receiver thread per
 *           connection recv()s into the destination's mapping; receivers
 *           meet at each round's boundary (as multifd's sync does), since
 *           a page may travel on another connection in the next round.
 *
 * CPU, two ways:
 *
 * - per thread: the migration thread on each end (user + system,
 *   RUSAGE_THREAD), plus the user migrator's sender and receiver threads
 *   and kvmig's per-session worker ("src s/GiB", "dst s/GiB");
 * - system-wide, from the first line of /proc/stat around each migration:
 *   all but idle and iowait ("system s/GiB"), the same without the time
 *   spent in guest mode ("host s/GiB"), and softirq alone, where loopback
 *   TCP's receive side runs. Both ends, the guest and this program all run
 *   on this one kernel, so these count everything: the guest's vCPU thread
 *   too (its time in guest mode, its exits, its ring reaps), and whatever
 *   else the machine was doing.
 *
 * Each point runs -n times (3 by default) per path; the table gives min /
 * median / max of the time, downtime and system CPU, medians elsewhere, and
 * the ratios are those of medians.
 *
 * kvmig migrates over one TCP connection, or with -s N over N of them
 * (KVMIG_XFER_SETUP_STREAMS; the path is then named kvmig-N). -s takes a
 * list, one kvmig path per count, run in turn with the others: -s 1,4
 * --kvmig-only compares one connection with four. -r picks the rates.
 *
 * --ktls runs each kvmig path twice, over plain TCP and over kTLS (path
 * kvmig-ktls, kvmig-N-ktls), side by side: every connection gets random
 * AES-128-GCM keys at both ends (TLS 1.3, a key per direction), installed
 * with TCP_ULP "tls" and SOL_TLS, as a VMM does after its handshake; no
 * handshake here, since this measures the data path, what encrypting and
 * decrypting each page costs the CPU next to plain TCP.
 *
 * --rdma runs kvmig's one-connection path twice, over TCP and over RDMA
 * (KVMIG_XFER_SETUP_RDMA, path kvmig-rdma), side by side: the TCP
 * connection between the two ends then only sets up kvmig's RDMA
 * connection (rdma_cm, reliably connected), over which the source RDMA
 * WRITEs guest pages straight into the destination's. Both ends are on
 * this host, so they share one RDMA device, in loopback: on soft-RoCE
 * (rxe) a dummy netdev with an IPv4 address and an rxe device on it, in
 * the initial network namespace (kvmig_rdma_test.sh, lab-bench.sh).
 * --addr (or KVMIG_RDMA_ADDR) names that address: every connection of the
 * run, TCP or not, kvmig's or the user migrator's, is made at it instead
 * of 127.0.0.1, so that kvmig over TCP and over RDMA compare on the same
 * address (TCP to a local address still goes through the kernel's
 * loopback).
 *
 * With --ring-stall, the same two migrations (the user migrator with one
 * sender thread) measure instead what a vCPU pays when its dirty ring fills
 * during pre-copy: for each ring size, the time from each
 * KVM_EXIT_DIRTY_RING_FULL to the vCPU's next KVM_RUN (p50, p99), with
 * several vCPUs writing faster than the link, capped, sends. kvmig's vCPU
 * thread answers the exit with KVMIG_DIRTY_HARVEST while kvmig's worker
 * runs the round; the userspace migrator's vCPU thread reaps every ring
 * itself, as QEMU's kvm_dirty_ring_reap() does, under the lock its
 * migration thread also takes to reap them.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "kvmig.h"
#include "ktls.h"
#include "vmm.h"
#include "../module/xfer/wire.h"

#define STR(x)	#x
#define XSTR(x)	STR(x)

/* The demo's sweeper: %esi = { base gpa, pages, batch }; %edi, %ebp count. */
asm(".pushsection .rodata.guest, \"a\"\n"
    ".global guest_sweep2, guest_sweep2_end\n"
    ".code32\n"
    "guest_sweep2:\n"
    "1:	movl 8(%esi), %ecx\n"
    "2:	movl %edi, %eax\n"
    "	shll $12, %eax\n"
    "	addl (%esi), %eax\n"
    "	movl %ebp, (%eax)\n"
    "	movl %edi, 4(%eax)\n"
    "	incl %edi\n"
    "	cmpl 4(%esi), %edi\n"
    "	jb 3f\n"
    "	xorl %edi, %edi\n"
    "	incl %ebp\n"
    "3:	loop 2b\n"
    "	outb %al, $" XSTR(VMM_PORT_DONE) "\n"
    "	jmp 1b\n"
    "guest_sweep2_end:\n"
    ".code64\n"
    ".popsection\n");
extern const char guest_sweep2[], guest_sweep2_end[];

#define BATCH		64
#define MAX_ROUNDS	30
#define DOWNTIME_NS	300000000ULL
#define STALL_CAP	(1UL << 20)	/* ring-full exits timed per run */
#define MAX_CHANNELS	8		/* the user migrator's sender threads */
#define MAX_CONNS	KVMIG_MAX_STREAMS	/* connections of one end */
#define MAX_KVMIG_PATHS	4		/* -s counts */
/*
 * each kvmig path also over kTLS (--ktls) and over RDMA (--rdma, one
 * connection only), and the user migrator
 */
#define MAX_PATHS	(3 * MAX_KVMIG_PATHS + 1)
#define MAX_RATES	8		/* -r rates */
_Static_assert(MAX_CHANNELS <= MAX_CONNS, "struct side's ch[] holds both");
#define MAX_RUNS	15		/* migrations per point and path */
#define ZC_REAP		64		/* MSG_ZEROCOPY sends between reaps */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double thread_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/*
 * CPU time of the session's kernel worker ("kvmig-<id>"), which does the
 * transfer's work since the engine moved there: a thread's own rusage
 * would miss it. Read while the session is open; 0 if none is found.
 */
static double worker_cpu(int dev)
{
	struct kvmig_stats st = {};
	char path[64], comm[32], name[32], buf[1024], *p;
	unsigned long utime, stime;
	struct dirent *de;
	double cpu = 0;
	DIR *dir;
	FILE *f;

	if (ioctl(dev, KVMIG_GET_STATS, &st))
		return 0;
	snprintf(name, sizeof(name), "kvmig-%llu\n", (unsigned long long)st.id);
	dir = opendir("/proc");
	while (dir && (de = readdir(dir))) {
		snprintf(path, sizeof(path), "/proc/%.20s/comm", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(comm, sizeof(comm), f) || strcmp(comm, name)) {
			fclose(f);
			continue;
		}
		fclose(f);
		snprintf(path, sizeof(path), "/proc/%.20s/stat", de->d_name);
		f = fopen(path, "r");
		if (f && fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) &&
		    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			   &utime, &stime) == 2)
			cpu = (double)(utime + stime) / sysconf(_SC_CLK_TCK);
		if (f)
			fclose(f);
		break;
	}
	if (dir)
		closedir(dir);
	return cpu;
}

/*
 * System-wide CPU from /proc/stat's "cpu" line, in seconds: busy (all but
 * idle and iowait), guest mode (counted in user too) and softirq.
 */
struct sys_cpu {
	double busy, guest, softirq;
};

static void sys_cpu(struct sys_cpu *c)
{
	unsigned long long us, ni, sy, id, io, irq, si, st, g, gn;
	double hz = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/stat", "r");

	memset(c, 0, sizeof(*c));
	if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
			&us, &ni, &sy, &id, &io, &irq, &si, &st, &g, &gn) == 10) {
		c->busy = (us + ni + sy + irq + si + st) / hz;
		c->guest = (g + gn) / hz;
		c->softirq = si / hz;
	}
	if (f)
		fclose(f);
}

/* One migration's setup; the rate table varies only @rate. */
struct params {
	unsigned long mib;	/* guest memory, one data slot */
	double rate;		/* pages/s the guest is paced at; 0: no pacing */
	unsigned int vcpus;	/* each writes its own part of the slot */
	unsigned int batch;	/* pages each vCPU writes per vmm_run() */
	uint32_t ring_bytes;	/* per vCPU */
	uint64_t bandwidth;	/* bytes/s cap on the sender; 0: none */
	double precopy_s;	/* no round starts after this; 0: no limit */
	uint64_t *stall_ns;	/* STALL_CAP entries, or NULL */
	unsigned int threads;	/* user migrator: sender threads, connections */
	bool zerocopy;		/* user migrator: MSG_ZEROCOPY */
	unsigned int streams;	/* kvmig: TCP connections (0: 1) */
	bool ktls;		/* kvmig: every connection kTLS */
	bool rdma;		/* kvmig: over RDMA, set up through TCP */
};

struct result {
	int ok, converged;
	unsigned int rounds;
	double total_s, downtime_ms, src_cpu, dst_cpu, guest_rate;
	struct sys_cpu sys;	/* system-wide, during the migration */
	uint64_t bytes;
	unsigned long ring_full;	/* KVM_EXIT_DIRTY_RING_FULL exits */
	double ring_wait_s;		/* the vCPUs' time in their handler */
	/*
	 * Exits taken during pre-copy (from the first round to the last),
	 * and where their stall times start in params.stall_ns.
	 */
	unsigned long precopy_exits, stall_first;
	/* MSG_ZEROCOPY sends, and those the kernel says it copied */
	unsigned long zc_sends, zc_copied;
	/* kvmig: pages sent, of them spliced and copied (KVMIG_GET_STATS) */
	unsigned long pages_sent, pages_spliced, pages_copied;
};

struct side;

/* One TCP connection and the thread that drives it, on either end. */
struct chan {
	struct side *s;
	int sock;
	pthread_t thread;
	/* Sender: this round's stripe, bitmap words [w0, w1). */
	uint64_t w0, w1, round;
	bool zero_check;	/* round 0 sends zero pages as ZERO */
	double t0;		/* the round's start, for the cap */
	uint64_t b0;		/* bytes at the round's start */
	uint64_t bytes, pages;
	double cpu;		/* this channel's threads' */
	int err;
	/* MSG_ZEROCOPY sends, their completions, completions copied */
	uint32_t zc_sent, zc_done;
	unsigned long zc_copied;
};

/* The destination's receivers meet at each round's boundary. */
struct sync {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int arrived;
	unsigned long gen;
	bool broken;		/* a receiver failed: nobody waits any more */
};

/* One end of the link and its VM. */
struct side {
	struct vmm vmm;
	bool has_vmm;		/* vmm_create() was called: destroy it */
	int dev;
	/* kvmig: ch[0], or with streams ch[0..nr_ch), sockets only */
	struct chan ch[MAX_CONNS];
	unsigned int nr_ch;
	bool zerocopy;
	struct sync sync;
	/*
	 * User migrator: pending pages of slot 0. Set by whichever thread
	 * reaps the rings (the migration thread, or a vCPU thread whose ring
	 * is full), cleared by a sender thread before it reads a page:
	 * atomic operations, so that no mark is lost.
	 */
	uint64_t *bitmap;
	uint64_t npages;
	uint64_t bandwidth;	/* bytes/s, 0: no cap; all channels together */
	bool rdma;		/* kvmig: KVMIG_XFER_SETUP_RDMA */
	double cpu;
	int err;
};

/* The guest, paced at @rate pages/s by the thread that runs its vCPUs. */
struct runner {
	struct vmm *vmm;
	double rate, t0;
	unsigned long step;	/* pages per vmm_run(), all vCPUs */
	atomic_bool stop;
	atomic_ulong pages;
	int err;
};

static void *run_guest(void *arg)
{
	struct runner *r = arg;

	r->t0 = now();
	while (!atomic_load(&r->stop)) {
		r->err = vmm_run(r->vmm);
		if (r->err)
			break;
		atomic_fetch_add(&r->pages, r->step);
		if (r->rate > 0) {
			double d = r->t0 + atomic_load(&r->pages) / r->rate - now();

			if (d > 0)
				usleep(d * 1e6);
		}
	}
	return NULL;
}

/* Where both ends connect (network order): --addr, or 127.0.0.1. */
static in_addr_t link_addr;

/*
 * A connected pair, both ends at link_addr: the source's socket is bound
 * there too, so that its local address, where kvmig's RDMA connection
 * starts from, is link_addr whatever the routes say.
 */
static int tcp_pair(int *a, int *b)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct sockaddr_in me = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int l, one = 1;

	sa.sin_addr.s_addr = me.sin_addr.s_addr = link_addr;
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (void *)&sa, sizeof(sa)) || listen(l, 1) ||
	    getsockname(l, (void *)&sa, &len))
		return -errno;
	*a = socket(AF_INET, SOCK_STREAM, 0);
	if (*a < 0 || bind(*a, (void *)&me, sizeof(me)) ||
	    connect(*a, (void *)&sa, sizeof(sa)))
		return -errno;
	*b = accept(l, NULL, NULL);
	close(l);
	setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return *b < 0 ? -errno : 0;
}

/* ---- the userspace migrator: standard KVM ABI, send() and recv() ---- */

static int send_all(int fd, const void *p, size_t n, int more)
{
	while (n) {
		ssize_t r = send(fd, p, n, MSG_NOSIGNAL | (more ? MSG_MORE : 0));

		if (r <= 0)
			return -EIO;
		p = (const char *)p + r;
		n -= r;
	}
	return 0;
}

static int recv_all(int fd, void *p, size_t n)
{
	while (n) {
		ssize_t r = recv(fd, p, n, MSG_WAITALL);

		if (r <= 0)
			return -EIO;
		p = (char *)p + r;
		n -= r;
	}
	return 0;
}

/*
 * Reaps MSG_ZEROCOPY completions from the error queue; with @wait, waits
 * for at least one if any is outstanding. Each completion covers a range
 * of sends; the kernel flags those it copied (always, on loopback).
 */
static int zc_reap(struct chan *c, bool wait)
{
	char ctl[CMSG_SPACE(sizeof(struct sock_extended_err) +
			    sizeof(struct sockaddr_in))];

	for (;;) {
		struct msghdr msg = { .msg_control = ctl,
				      .msg_controllen = sizeof(ctl) };
		struct pollfd pfd = { .fd = c->sock };
		struct sock_extended_err *ee;
		struct cmsghdr *cm;
		uint32_t n;

		if (recvmsg(c->sock, &msg, MSG_ERRQUEUE) < 0) {
			if (errno != EAGAIN)
				return -errno;
			if (!wait || c->zc_done == c->zc_sent)
				return 0;
			/* POLLERR: the error queue has something. */
			poll(&pfd, 1, 1000);
			continue;
		}
		for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			if (cm->cmsg_level != SOL_IP ||
			    cm->cmsg_type != IP_RECVERR)
				continue;
			ee = (struct sock_extended_err *)CMSG_DATA(cm);
			if (ee->ee_errno || ee->ee_origin != SO_EE_ORIGIN_ZEROCOPY)
				return -EIO;
			n = ee->ee_data - ee->ee_info + 1;
			c->zc_done += n;
			if (ee->ee_code & SO_EE_CODE_ZEROCOPY_COPIED)
				c->zc_copied += n;
		}
		wait = false;
	}
}

/* All of @iov, in as few sendmsg() calls as the socket takes. */
static int sendv_all(int fd, struct iovec *iov, int cnt)
{
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = cnt };

	while (msg.msg_iovlen) {
		ssize_t r = sendmsg(fd, &msg, MSG_NOSIGNAL);

		if (r <= 0)
			return -EIO;
		while (msg.msg_iovlen && (size_t)r >= msg.msg_iov->iov_len) {
			r -= msg.msg_iov->iov_len;
			msg.msg_iov++;
			msg.msg_iovlen--;
		}
		if (msg.msg_iovlen) {
			msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + r;
			msg.msg_iov->iov_len -= r;
		}
	}
	return 0;
}

/*
 * A record without payload, pushed at once: a ROUND or END that waited for
 * more (MSG_MORE) would hold up the destination's receivers.
 */
static int send_rec(struct chan *c, uint32_t type, uint32_t slot, uint64_t gfn,
		    uint32_t n, uint32_t len)
{
	struct kvmig_wire_rec w;

	kvmig_wire_encode_rec(&w, type, slot, gfn, n, len);
	c->bytes += sizeof(w);
	return send_all(c->sock, &w, sizeof(w), 0);
}

/*
 * With MSG_ZEROCOPY, each send() holds optmem until its completion is
 * reaped: reap now and then, and when the kernel says ENOBUFS. A page the
 * guest writes before the kernel read it is marked dirty, so it goes
 * again; at the switchover the guest is paused.
 */
static int send_zc(struct chan *c, const void *p, size_t n)
{
	while (n) {
		ssize_t r = send(c->sock, p, n, MSG_NOSIGNAL | MSG_ZEROCOPY);

		if (r < 0 && errno == ENOBUFS &&
		    c->zc_done != c->zc_sent) {
			if (zc_reap(c, true))
				return -EIO;
			continue;
		}
		if (r <= 0)
			return -EIO;
		c->zc_sent++;
		p = (const char *)p + r;
		n -= r;
		if (c->zc_sent - c->zc_done >= ZC_REAP && zc_reap(c, false))
			return -EIO;
	}
	return 0;
}

/*
 * A PAGES record and its @n pages from the guest's mapping at @hva: one
 * sendmsg() of both, as multifd sends a packet; or, with MSG_ZEROCOPY, the
 * header copied (its buffer is reused at once) and the pages not.
 */
static int send_pages(struct chan *c, uint32_t slot, uint64_t gfn,
		      uint8_t *hva, uint32_t n)
{
	struct kvmig_wire_rec w;
	struct iovec iov[2] = {
		{ .iov_base = &w, .iov_len = sizeof(w) },
		{ .iov_base = hva, .iov_len = (size_t)n * 4096 },
	};
	int ret;

	kvmig_wire_encode_rec(&w, KVMIG_REC_PAGES, slot, gfn, n, 0);
	if (c->s->zerocopy)
		ret = send_all(c->sock, &w, sizeof(w), 1) ?:
		      send_zc(c, hva, iov[1].iov_len);
	else
		ret = sendv_all(c->sock, iov, 2);
	c->bytes += sizeof(w) + iov[1].iov_len;
	c->pages += n;
	return ret;
}

static int is_zero(const uint8_t *p)
{
	static const uint8_t z[4096];

	return !memcmp(p, z, 4096);
}

static void mark(void *arg, uint32_t slot, uint64_t off)
{
	struct side *s = arg;

	if (slot == s->vmm.slots[0].id && off < s->npages)
		__atomic_fetch_or(&s->bitmap[off / 64], 1ULL << (off % 64),
				  __ATOMIC_RELAXED);
}

static uint64_t bitmap_words(const struct side *s)
{
	return (s->npages + 63) / 64;
}

static uint64_t count_pending(struct side *s)
{
	uint64_t n = 0, i;

	for (i = 0; i < bitmap_words(s); i++)
		n += __builtin_popcountll(__atomic_load_n(&s->bitmap[i],
							  __ATOMIC_RELAXED));
	return n;
}

static uint64_t side_bytes(const struct side *s)
{
	uint64_t n = 0;
	unsigned int i;

	for (i = 0; i < s->nr_ch; i++)
		n += s->ch[i].bytes;
	return n;
}

/*
 * The migration thread's harvest. A vCPU thread whose ring is full reaps
 * the same rings, under ring_lock (the vmm serialises its ring_full
 * callbacks with it): one reaper at a time.
 */
static long user_harvest(struct side *s)
{
	long ret;

	pthread_mutex_lock(&s->vmm.ring_lock);
	ret = vmm_harvest_ring(&s->vmm, mark, s);
	pthread_mutex_unlock(&s->vmm.ring_lock);
	return ret;
}

/* Under the cap: sleep until the round's average fits, as kvmig does. */
static void throttle(struct chan *c)
{
	struct side *s = c->s;
	double d;

	if (!s->bandwidth)
		return;
	d = c->t0 + (double)(c->bytes - c->b0) * s->nr_ch / s->bandwidth -
	    now();
	if (d > 0)
		usleep(d * 1e6);
}

/* Pages [@p, @q) of slot 0, no longer pending: PAGES, or ZERO in round 0. */
static int send_run(struct chan *c, uint64_t p, uint64_t q)
{
	struct vmm_slot *sl = &c->s->vmm.slots[0];
	uint64_t base = sl->gpa / 4096, r;
	int zero, ret;

	while (p < q) {
		zero = c->zero_check && is_zero(sl->hva + p * 4096);
		for (r = p + 1; r < q; r++)
			if ((c->zero_check && is_zero(sl->hva + r * 4096)) != zero)
				break;
		if (zero)
			ret = send_rec(c, KVMIG_REC_ZERO, sl->id, base + p,
				       r - p, 0);
		else
			ret = send_pages(c, sl->id, base + p,
					 sl->hva + p * 4096, r - p);
		if (ret)
			return ret;
		throttle(c);
		p = r;
	}
	return 0;
}

/*
 * A round's boundary, then the pending pages of the stripe, a word of the
 * bitmap at a time: zero words are skipped, and a word's pending bits are
 * taken (cleared) at once before any of its pages is read, so a page a
 * reaper marks from then on goes again, even if this copy already has it.
 * Runs of set bits become records of at most 64 pages.
 */
static int send_stripe(struct chan *c)
{
	uint64_t *bitmap = c->s->bitmap, w, bits, rest;
	unsigned int b, e;
	int ret;

	c->t0 = now();
	c->b0 = c->bytes;
	ret = send_rec(c, KVMIG_REC_ROUND, 0, c->round, 0, 0);
	for (w = c->w0; !ret && w < c->w1; w++) {
		if (!__atomic_load_n(&bitmap[w], __ATOMIC_RELAXED))
			continue;
		bits = __atomic_exchange_n(&bitmap[w], 0, __ATOMIC_SEQ_CST);
		while (!ret && bits) {
			b = __builtin_ctzll(bits);
			rest = ~(bits >> b);
			e = rest ? b + __builtin_ctzll(rest) : 64;
			bits &= e == 64 ? 0 : ~0ULL << e;
			ret = send_run(c, w * 64 + b, w * 64 + e);
		}
	}
	return ret;
}

static void *stripe_thread(void *arg)
{
	struct chan *c = arg;
	double c0 = thread_cpu();

	c->err = send_stripe(c);
	c->cpu += thread_cpu() - c0;
	return NULL;
}

/*
 * The bitmap's words in one stripe per channel, each with about as many
 * pending pages: the guest sweeps its memory, so the dirty set is one
 * block and equal numbers of words would leave channels idle.
 */
static void split_stripes(struct side *s)
{
	uint64_t nw = bitmap_words(s), total = count_pending(s), acc = 0;
	uint64_t w = 0, goal;
	unsigned int i;

	for (i = 0; i < s->nr_ch; i++) {
		goal = i + 1 == s->nr_ch ? total + 1 : total * (i + 1) / s->nr_ch;
		s->ch[i].w0 = w;
		while (w < nw && acc < goal)
			acc += __builtin_popcountll(__atomic_load_n(&s->bitmap[w++],
								    __ATOMIC_RELAXED));
		s->ch[i].w1 = i + 1 == s->nr_ch ? nw : w;
	}
}

/*
 * Round @round (the switchover's rest is one more) on every channel, each
 * by its own sender thread; returns once all have sent.
 */
static int user_round(struct side *s, uint64_t round)
{
	unsigned int i, started;
	int ret = 0;

	split_stripes(s);
	for (started = 0; started < s->nr_ch; started++) {
		s->ch[started].round = round;
		s->ch[started].zero_check = !round;
		if (pthread_create(&s->ch[started].thread, NULL, stripe_thread,
				   &s->ch[started])) {
			ret = -EAGAIN;
			break;
		}
	}
	for (i = 0; i < started; i++) {
		pthread_join(s->ch[i].thread, NULL);
		if (!ret)
			ret = s->ch[i].err;
	}
	return ret;
}

/*
 * The switchover's end: STATE on channel 0, END on every channel, every
 * MSG_ZEROCOPY send completed, then the destination's reply on channel 0.
 */
static int user_finish(struct side *s, const void *state, uint32_t len,
		       struct result *res)
{
	struct kvmig_wire_rec w;
	struct iovec iov[2] = {
		{ .iov_base = &w, .iov_len = sizeof(w) },
		{ .iov_base = (void *)state, .iov_len = len },
	};
	uint32_t reply[4];
	unsigned int i;

	kvmig_wire_encode_rec(&w, KVMIG_REC_STATE, 0, 0, 0, len);
	if (sendv_all(s->ch[0].sock, iov, 2))
		return -EIO;
	s->ch[0].bytes += sizeof(w) + len;
	for (i = 0; i < s->nr_ch; i++)
		if (send_rec(&s->ch[i], KVMIG_REC_END, 0, 0, 0, 0))
			return -EIO;
	for (i = 0; i < s->nr_ch; i++) {
		while (s->ch[i].zc_done != s->ch[i].zc_sent)
			if (zc_reap(&s->ch[i], true))
				return -EIO;
		res->zc_sends += s->ch[i].zc_sent;
		res->zc_copied += s->ch[i].zc_copied;
	}
	return recv_all(s->ch[0].sock, reply, 16);
}

static void shutdown_all(struct side *s)
{
	unsigned int i;

	for (i = 0; i < s->nr_ch; i++)
		shutdown(s->ch[i].sock, SHUT_RDWR);
}

static int sync_wait(struct sync *y, unsigned int n)
{
	unsigned long gen;
	int ret;

	pthread_mutex_lock(&y->lock);
	if (++y->arrived == n) {
		y->arrived = 0;
		y->gen++;
		pthread_cond_broadcast(&y->cond);
	} else {
		gen = y->gen;
		while (gen == y->gen && !y->broken)
			pthread_cond_wait(&y->cond, &y->lock);
	}
	ret = y->broken ? -EIO : 0;
	pthread_mutex_unlock(&y->lock);
	return ret;
}

static void sync_break(struct sync *y)
{
	pthread_mutex_lock(&y->lock);
	y->broken = true;
	pthread_cond_broadcast(&y->cond);
	pthread_mutex_unlock(&y->lock);
}

/* One channel's receiver, writing straight into the destination's mapping. */
static void *user_recv(void *arg)
{
	struct chan *c = arg;
	struct side *s = c->s;
	struct vmm_slot *sl = &s->vmm.slots[0];
	uint64_t base = sl->gpa / 4096;
	struct kvmig_wire_rec w;
	char state[4096];
	double c0 = thread_cpu();

	for (;;) {
		uint32_t type, n;
		uint64_t gfn;

		if (recv_all(c->sock, &w, sizeof(w)))
			goto fail;
		type = le16_to_cpu(w.type);
		gfn = le64_to_cpu(w.gfn);
		n = le32_to_cpu(w.npages);
		if ((type == KVMIG_REC_PAGES || type == KVMIG_REC_ZERO) &&
		    (gfn < base || gfn - base + n > s->npages))
			goto fail;
		if (type == KVMIG_REC_PAGES) {
			if (recv_all(c->sock, sl->hva + (gfn - base) * 4096,
				     (size_t)n * 4096))
				goto fail;
			c->pages += n;
		} else if (type == KVMIG_REC_ZERO) {
			for (uint32_t i = 0; i < n; i++) {
				uint8_t *p = sl->hva + (gfn - base + i) * 4096;

				if (!is_zero(p))
					memset(p, 0, 4096);
			}
		} else if (type == KVMIG_REC_ROUND) {
			/*
			 * A page may come on another channel next round: all
			 * of this round is written before any of the next.
			 */
			if (sync_wait(&s->sync, s->nr_ch))
				goto fail;
		} else if (type == KVMIG_REC_STATE) {
			if (le32_to_cpu(w.len) > sizeof(state) ||
			    recv_all(c->sock, state, le32_to_cpu(w.len)))
				goto fail;
		} else if (type == KVMIG_REC_END) {
			break;
		}
	}
	c->cpu = thread_cpu() - c0;
	return NULL;
fail:
	c->err = -EIO;
	c->cpu = thread_cpu() - c0;
	sync_break(&s->sync);
	shutdown_all(s);
	return NULL;
}

/* The receivers; the reply, on channel 0, once every channel had its END. */
static void *user_dest(void *arg)
{
	struct side *s = arg;
	uint32_t reply[4] = { KVMIG_WIRE_MAGIC, 0 };
	uint64_t pages = 0;
	unsigned int i, started;

	for (started = 0; started < s->nr_ch; started++)
		if (pthread_create(&s->ch[started].thread, NULL, user_recv,
				   &s->ch[started]))
			break;
	if (started < s->nr_ch) {
		s->err = -EAGAIN;
		sync_break(&s->sync);
		shutdown_all(s);
	}
	for (i = 0; i < started; i++) {
		pthread_join(s->ch[i].thread, NULL);
		s->cpu += s->ch[i].cpu;
		pages += s->ch[i].pages;
		if (s->ch[i].err)
			s->err = s->ch[i].err;
	}
	if (!s->err) {
		memcpy(&reply[2], &pages, 8);
		send_all(s->ch[0].sock, reply, 16, 0);
	}
	return NULL;
}

/* ---- kvmig on both ends ---- */

/*
 * The end's connections for KVMIG_XFER_SETUP: ch[0] as sock_fd; with more
 * than one, the others in @fds, in the same order at both ends (ch[i] of
 * the source is connected to ch[i] of the destination). Over RDMA, ch[0]
 * alone, which only sets up the RDMA connection.
 */
static void kvmig_streams(struct kvmig_xfer_setup *su, const struct side *s,
			  __u32 *fds)
{
	unsigned int i;

	su->sock_fd = s->ch[0].sock;
	if (s->rdma)
		su->flags |= KVMIG_XFER_SETUP_RDMA;
	if (s->nr_ch < 2)
		return;
	for (i = 1; i < s->nr_ch; i++)
		fds[i - 1] = s->ch[i].sock;
	su->flags |= KVMIG_XFER_SETUP_STREAMS;
	su->nr_streams = s->nr_ch;
	su->streams_ptr = (uintptr_t)fds;
}

static void *kvmig_dest(void *arg)
{
	struct side *s = arg;
	struct kvmig_xfer_setup su = {};
	__u32 fds[MAX_CONNS - 1];
	char state[4096];
	struct kvmig_recv rv = { .state_ptr = (uintptr_t)state,
				 .state_cap = sizeof(state) };
	double c0 = thread_cpu();

	kvmig_streams(&su, s, fds);
	if (ioctl(s->dev, KVMIG_XFER_SETUP, &su) ||
	    ioctl(s->dev, KVMIG_XFER_RECV, &rv))
		s->err = -errno;
	s->cpu = thread_cpu() - c0 + worker_cpu(s->dev);
	return NULL;
}

/* The vCPUs' time answering ring-full exits, in this run, in ns. */
static atomic_ullong ring_wait_ns;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int ring_full_kvmig(struct vmm *vmm, void *arg)
{
	struct kvmig_harvest h = {};
	uint64_t t = now_ns();
	int ret;

	ret = ioctl(*(int *)arg, KVMIG_DIRTY_HARVEST, &h) ? -errno : 0;
	if (ret)
		fprintf(stderr, "KVMIG_DIRTY_HARVEST on a full ring: %s\n",
			strerror(-ret));
	atomic_fetch_add(&ring_wait_ns, now_ns() - t);
	return ret;
}

static int ring_full_user(struct vmm *vmm, void *arg)
{
	uint64_t t = now_ns();
	int ret;

	ret = vmm_harvest_ring(vmm, mark, arg) < 0 ? -EIO : 0;
	atomic_fetch_add(&ring_wait_ns, now_ns() - t);
	return ret;
}

static int session(struct vmm *vmm, uint32_t role, uint32_t mode)
{
	struct kvmig_attach a = { .vm_fd = vmm->vm, .role = role,
				  .dirty_mode = mode };
	int dev = open("/dev/kvmig", O_RDWR | O_CLOEXEC);

	if (dev < 0 || ioctl(dev, KVMIG_ATTACH_VM, &a))
		return -errno;
	return dev;
}

static int precopy_over(const struct params *pm, double t0)
{
	return pm->precopy_s > 0 && now() - t0 >= pm->precopy_s;
}

/* An end with @nr channels, not connected yet. */
static void side_init(struct side *s, unsigned int nr, bool zerocopy)
{
	unsigned int i;

	memset(s, 0, sizeof(*s));
	s->dev = -1;
	s->nr_ch = nr;
	s->zerocopy = zerocopy;
	pthread_mutex_init(&s->sync.lock, NULL);
	pthread_cond_init(&s->sync.cond, NULL);
	for (i = 0; i < MAX_CONNS; i++) {
		s->ch[i].s = s;
		s->ch[i].sock = -1;
	}
}

static void side_exit(struct side *s)
{
	unsigned int i;

	for (i = 0; i < s->nr_ch; i++)
		if (s->ch[i].sock >= 0)
			close(s->ch[i].sock);
	if (s->dev >= 0)
		close(s->dev);
	if (s->has_vmm)
		vmm_destroy(&s->vmm);
	free(s->bitmap);
	pthread_cond_destroy(&s->sync.cond);
	pthread_mutex_destroy(&s->sync.lock);
}

/*
 * One TCP connection per channel, each its own pair (so ch[i] of one end
 * is always ch[i]'s peer, whatever order connections complete in);
 * SO_ZEROCOPY on the sender's if asked.
 */
static int connect_sides(struct side *src, struct side *dst)
{
	unsigned int i;
	int one = 1;

	for (i = 0; i < src->nr_ch; i++) {
		if (tcp_pair(&src->ch[i].sock, &dst->ch[i].sock))
			return -EIO;
		if (src->zerocopy &&
		    setsockopt(src->ch[i].sock, SOL_SOCKET, SO_ZEROCOPY, &one,
			       sizeof(one))) {
			perror("SO_ZEROCOPY");
			return -errno;
		}
	}
	return 0;
}

/*
 * One live migration of a fresh guest. Returns 0 with @res filled in, or
 * -errno; -EINVAL from vmm_create() means KVM refused the configuration.
 */
static int migrate(int use_kvmig, const struct params *pm, struct result *res)
{
	struct vmm_config cfg = {
		.dirty = VMM_DIRTY_RING, .nr_vcpus = pm->vcpus, .nr_slots = 1,
		.slot_size = pm->mib << 20, .ring_bytes = pm->ring_bytes,
	};
	unsigned int nr = use_kvmig ? (pm->streams ?: 1) : pm->threads;
	struct side src, dst;
	struct runner run = { .rate = pm->rate,
			      .step = (unsigned long)pm->batch * pm->vcpus };
	struct kvmig_dirty_start ds = {};
	struct kvmig_stats st;
	struct sys_cpu y0, y1;
	pthread_t gt, dt;
	uint64_t part;
	unsigned long e0 = 0, e1 = 0;
	unsigned int i;
	double t0, c0, tp, thr = 0;
	char state[1024] = "vcpu state";
	int ret;

	atomic_store(&ring_wait_ns, 0);
	memset(res, 0, sizeof(*res));
	side_init(&src, nr, !use_kvmig && pm->zerocopy);
	side_init(&dst, nr, false);
	src.rdma = dst.rdma = use_kvmig && pm->rdma;
	/* A VM that vmm_create() failed to make is still destroyed. */
	src.has_vmm = true;
	ret = vmm_create(&src.vmm, &cfg);
	if (ret)
		goto out;
	dst.has_vmm = true;
	ret = vmm_create(&dst.vmm, &cfg);
	if (ret)
		goto out;
	ret = -EIO;
	src.npages = dst.npages = cfg.slot_size / 4096;
	src.bandwidth = pm->bandwidth;
	src.bitmap = calloc(src.npages / 64 + 1, 8);
	if (!src.bitmap)
		goto out;
	src.vmm.ring_stall_ns = pm->stall_ns;
	src.vmm.ring_stall_cap = pm->stall_ns ? STALL_CAP : 0;
	/* Each vCPU sweeps its own part of the slot, so all of it is written. */
	vmm_load(&src.vmm, guest_sweep2, guest_sweep2_end - guest_sweep2);
	part = src.npages / pm->vcpus;
	for (i = 0; i < pm->vcpus; i++) {
		uint32_t *mbox = vmm_mbox(&src.vmm, i);

		mbox[0] = src.vmm.slots[0].gpa + i * part * 4096;
		mbox[1] = part;
		mbox[2] = pm->batch;
	}
	if (connect_sides(&src, &dst))
		goto out;
	/* kTLS with random keys: what the VMMs' handshakes would install. */
	for (i = 0; use_kvmig && pm->ktls && i < nr; i++) {
		ret = ktls_random_pair(src.ch[i].sock, dst.ch[i].sock);
		if (ret) {
			fprintf(stderr, "kTLS on connection %u: %s\n", i,
				ret == -ENOENT ? "this kernel has no kTLS (modprobe tls)" :
				strerror(-ret));
			goto out;
		}
	}
	ret = -EIO;

	if (use_kvmig) {
		src.dev = session(&src.vmm, KVMIG_ROLE_SOURCE, KVMIG_DIRTY_RING);
		dst.dev = session(&dst.vmm, KVMIG_ROLE_DEST, KVMIG_DIRTY_AUTO);
		if (src.dev < 0 || dst.dev < 0 ||
		    ioctl(src.dev, KVMIG_DIRTY_START, &ds))
			goto out;
		src.vmm.ring_full = ring_full_kvmig;
		src.vmm.ring_full_arg = &src.dev;
		/* kvmig serialises harvests itself, under the tracker's lock. */
		src.vmm.ring_full_parallel = true;
	} else {
		src.vmm.ring_full = ring_full_user;
		src.vmm.ring_full_arg = &src;
	}

	/* The guest stamps all its memory once, then keeps going. */
	run.vmm = &src.vmm;
	pthread_create(&gt, NULL, run_guest, &run);
	while (atomic_load(&run.pages) < src.npages && !run.err)
		usleep(10000);
	sys_cpu(&y0);
	pthread_create(&dt, NULL, use_kvmig ? kvmig_dest : user_dest, &dst);

	t0 = now();
	c0 = thread_cpu();
	e0 = __atomic_load_n(&src.vmm.ring_full_exits, __ATOMIC_RELAXED);
	if (use_kvmig) {
		struct kvmig_xfer_setup su = {
			.downtime_ns = DOWNTIME_NS,
			.max_rounds = MAX_ROUNDS, .bandwidth = pm->bandwidth,
		};
		__u32 fds[MAX_CONNS - 1];
		struct kvmig_round r = { .status = KVMIG_ROUND_SENT };
		struct kvmig_final f = { .state_ptr = (uintptr_t)state,
					 .state_len = sizeof(state) };

		kvmig_streams(&su, &src, fds);
		if (ioctl(src.dev, KVMIG_XFER_SETUP, &su))
			goto stop;
		do {
			if (res->rounds && precopy_over(pm, t0))
				break;
			memset(&r, 0, sizeof(r));
			if (ioctl(src.dev, KVMIG_XFER_ROUND, &r))
				goto stop;
			if (r.status == KVMIG_ROUND_SENT)
				res->rounds++;
		} while (r.status == KVMIG_ROUND_SENT);
		res->converged = r.status == KVMIG_ROUND_CONVERGED;
		tp = now();
		e1 = __atomic_load_n(&src.vmm.ring_full_exits, __ATOMIC_RELAXED);
		atomic_store(&run.stop, true);
		pthread_join(gt, NULL);
		if (ioctl(src.dev, KVMIG_XFER_FINAL, &f))
			goto stopped;
		res->downtime_ms = (now() - tp) * 1e3;
		memset(&st, 0, sizeof(st));
		ioctl(src.dev, KVMIG_GET_STATS, &st);
		res->bytes = st.bytes_sent;
		res->pages_sent = st.pages_sent;
		res->pages_spliced = st.pages_spliced;
		res->pages_copied = st.pages_copied;
		/* The worker's share, counted below with this thread's. */
		c0 -= worker_cpu(src.dev);
	} else {
		uint64_t b0, pending, round;
		double rt;

		/* Round 0: everything; the log so far is moot. */
		user_harvest(&src);
		memset(src.bitmap, 0xff, (src.npages / 64) * 8);
		for (round = 0;; round++) {
			if (round) {
				if (user_harvest(&src) < 0)
					goto stop;
				pending = count_pending(&src);
				if (thr && pending * 4096.0 / thr * 1e9 <= DOWNTIME_NS) {
					res->converged = 1;
					break;
				}
				if (round >= MAX_ROUNDS || precopy_over(pm, t0))
					break;
			}
			rt = now();
			b0 = side_bytes(&src);
			if (user_round(&src, round))
				goto stop;
			thr = (side_bytes(&src) - b0) / (now() - rt);
		}
		res->rounds = round;
		tp = now();
		e1 = __atomic_load_n(&src.vmm.ring_full_exits, __ATOMIC_RELAXED);
		atomic_store(&run.stop, true);
		pthread_join(gt, NULL);
		if (run.err || user_harvest(&src) < 0 ||
		    user_round(&src, round) ||
		    user_finish(&src, state, sizeof(state), res))
			goto stopped;
		res->downtime_ms = (now() - tp) * 1e3;
		res->bytes = side_bytes(&src);
		/* The sender threads', counted below with this thread's. */
		for (i = 0; i < src.nr_ch; i++)
			c0 -= src.ch[i].cpu;
	}
	res->total_s = now() - t0;
	res->src_cpu = thread_cpu() - c0;
	res->guest_rate = atomic_load(&run.pages) / (tp - run.t0);
	res->ring_full = src.vmm.ring_full_exits;	/* the vCPUs are paused */
	res->ring_wait_s = atomic_load(&ring_wait_ns) / 1e9;
	res->stall_first = e0;
	res->precopy_exits = e1 - e0;
	pthread_join(dt, NULL);
	sys_cpu(&y1);
	res->sys.busy = y1.busy - y0.busy;
	res->sys.guest = y1.guest - y0.guest;
	res->sys.softirq = y1.softirq - y0.softirq;
	res->dst_cpu = dst.cpu;
	res->ok = !run.err && !dst.err &&
		  !memcmp(src.vmm.slots[0].hva, dst.vmm.slots[0].hva,
			  cfg.slot_size);
	if (!res->ok)
		fprintf(stderr, "%s: destination memory differs or failed\n",
			use_kvmig ? pm->rdma ? "kvmig over RDMA" : "kvmig" :
			"user");
	ret = 0;
	goto out;
stop:
	atomic_store(&run.stop, true);
	pthread_join(gt, NULL);
stopped:
	perror(use_kvmig ? pm->rdma ? "kvmig migration over RDMA" :
	       "kvmig migration" : "user migration");
	shutdown_all(&src);
	pthread_join(dt, NULL);
out:
	side_exit(&src);
	side_exit(&dst);
	return ret;
}

/* What the rate table gives of a run, per GiB where it says s/GiB. */
enum {
	M_RATE, M_ROUNDS, M_TOTAL, M_DOWN, M_MIB, M_SRC, M_DST, M_SYS,
	M_HOST, M_SOFTIRQ, M_RING, M_WAIT, NR_METRICS
};

static void metrics(const struct result *r, double *m)
{
	double gib = r->bytes / 1073741824.0;

	m[M_RATE] = r->guest_rate;
	m[M_ROUNDS] = r->rounds;
	m[M_TOTAL] = r->total_s;
	m[M_DOWN] = r->downtime_ms;
	m[M_MIB] = r->bytes / 1048576.0;
	m[M_SRC] = r->src_cpu / gib;
	m[M_DST] = r->dst_cpu / gib;
	m[M_SYS] = r->sys.busy / gib;
	m[M_HOST] = (r->sys.busy - r->sys.guest) / gib;
	m[M_SOFTIRQ] = r->sys.softirq / gib;
	m[M_RING] = r->ring_full;
	m[M_WAIT] = r->ring_wait_s;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* One point's runs of one path: min, median and max of each metric. */
struct spread {
	double min[NR_METRICS], med[NR_METRICS], max[NR_METRICS];
	unsigned int converged;
	unsigned long zc_sends, zc_copied;
	unsigned long pages_sent, pages_spliced, pages_copied;
};

static void spread(const struct result *r, unsigned int n, struct spread *s)
{
	double v[NR_METRICS][MAX_RUNS], m[NR_METRICS];
	unsigned int i, k;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < n; i++) {
		metrics(&r[i], m);
		for (k = 0; k < NR_METRICS; k++)
			v[k][i] = m[k];
		s->converged += r[i].converged;
		s->zc_sends += r[i].zc_sends;
		s->zc_copied += r[i].zc_copied;
		s->pages_sent += r[i].pages_sent;
		s->pages_spliced += r[i].pages_spliced;
		s->pages_copied += r[i].pages_copied;
	}
	for (k = 0; k < NR_METRICS; k++) {
		qsort(v[k], n, sizeof(double), cmp_double);
		s->min[k] = v[k][0];
		s->max[k] = v[k][n - 1];
		s->med[k] = n % 2 ? v[k][n / 2] :
				    (v[k][n / 2 - 1] + v[k][n / 2]) / 2;
	}
}

/* "min/median/max" of a metric, in a buffer of the caller's. */
static const char *mmm(char *buf, size_t len, const struct spread *s, int k,
		       const char *fmt)
{
	char a[16], b[16], c[16];

	snprintf(a, sizeof(a), fmt, s->min[k]);
	snprintf(b, sizeof(b), fmt, s->med[k]);
	snprintf(c, sizeof(c), fmt, s->max[k]);
	snprintf(buf, len, "%s/%s/%s", a, b, c);
	return buf;
}

static void print_spread(double rate, const char *path, int width,
			 const struct spread *s, unsigned int runs)
{
	char t[64], d[64], y[64];

	printf("%-8.0f %-*s %9.0f %3u/%-2u %6.0f %-17s %-17s %8.1f %8.2f %8.2f %-17s %8.2f %8.2f %8.0f %7.2f\n",
	       rate, width, path, s->med[M_RATE], s->converged, runs,
	       s->med[M_ROUNDS], mmm(t, sizeof(t), s, M_TOTAL, "%.2f"),
	       mmm(d, sizeof(d), s, M_DOWN, "%.0f"), s->med[M_MIB],
	       s->med[M_SRC], s->med[M_DST],
	       mmm(y, sizeof(y), s, M_SYS, "%.1f"), s->med[M_HOST],
	       s->med[M_SOFTIRQ], s->med[M_RING], s->med[M_WAIT]);
}

/* "ratios A/B (medians): ..." of two paths' spreads. */
static void print_ratios(const char *a, const struct spread *sa,
			 const char *b, const struct spread *sb)
{
	printf("%-8s ratios %s/%s (medians): total time %.2fx, downtime %.2fx, source CPU/GiB %.2fx, destination CPU/GiB %.2fx, system CPU/GiB %.2fx, host CPU/GiB %.2fx\n",
	       "", a, b, sa->med[M_TOTAL] / sb->med[M_TOTAL],
	       sa->med[M_DOWN] / sb->med[M_DOWN],
	       sa->med[M_SRC] / sb->med[M_SRC],
	       sa->med[M_DST] / sb->med[M_DST],
	       sa->med[M_SYS] / sb->med[M_SYS],
	       sa->med[M_HOST] / sb->med[M_HOST]);
}

/* What the rate table runs: rate_main()'s options. */
struct rate_opts {
	unsigned long mib;
	unsigned int runs;
	unsigned int threads;	/* user migrator */
	bool zerocopy;		/* user migrator */
	bool user;		/* run the user migrator at all */
	bool ktls;		/* each kvmig path also over kTLS */
	bool rdma;		/* kvmig's one-connection path also over RDMA */
	const char *addr;	/* --addr, or NULL: loopback */
	unsigned int streams[MAX_KVMIG_PATHS], nr_streams;	/* kvmig paths */
	double rates[MAX_RATES];
	unsigned int nr_rates;
};

/*
 * One path of the rate table: kvmig over @streams connections, over kTLS
 * if @ktls, over RDMA if @rdma, or user. A kTLS or RDMA path has its
 * plain TCP twin at @twin, -1 for the others.
 */
struct path {
	bool kvmig, ktls, rdma;
	unsigned int streams;
	int twin;
	char name[24];
};

/*
 * Live migration at several dirty rates, the table make bench started
 * with: @runs migrations per path at each rate, each kvmig path's (one per
 * stream count) and the user migrator's in turn.
 */
static int rate_table(const struct rate_opts *o)
{
	struct params pm = {
		.mib = o->mib, .vcpus = 1, .batch = BATCH, .ring_bytes = 1 << 20,
		.threads = o->threads, .zerocopy = o->zerocopy,
	};
	static struct result r[MAX_PATHS][MAX_RUNS];
	struct spread s[MAX_PATHS];
	struct path paths[MAX_PATHS];
	unsigned int i, k, n, p, np = 0, user = MAX_PATHS, plain = 0;
	int width = 6;

	/*
	 * Each stream count's path, and after it its twins: with --ktls over
	 * kTLS, with --rdma (one connection only) over RDMA.
	 */
	for (i = 0; i < o->nr_streams; i++) {
		for (k = 0; k < 3; k++) {
			if ((k == 1 && !o->ktls) ||
			    (k == 2 && (!o->rdma || o->streams[i] != 1)))
				continue;
			paths[np].kvmig = true;
			paths[np].ktls = k == 1;
			paths[np].rdma = k == 2;
			paths[np].streams = o->streams[i];
			if (!k)
				plain = np;
			paths[np].twin = k ? (int)plain : -1;
			if (o->streams[i] == 1)
				snprintf(paths[np].name, sizeof(paths[np].name),
					 "kvmig%s", k == 1 ? "-ktls" :
					 k == 2 ? "-rdma" : "");
			else
				snprintf(paths[np].name, sizeof(paths[np].name),
					 "kvmig-%u%s", o->streams[i],
					 k == 1 ? "-ktls" : "");
			if ((int)strlen(paths[np].name) > width)
				width = strlen(paths[np].name);
			np++;
		}
	}
	if (o->user) {
		user = np;
		paths[np].kvmig = false;
		paths[np].ktls = false;
		paths[np].rdma = false;
		paths[np].streams = 0;
		paths[np].twin = -1;
		snprintf(paths[np].name, sizeof(paths[np].name), "user");
		np++;
	}

	if (o->addr)
		printf("live migration, %lu MiB guest, 1 vCPU, TCP at %s (local: the kernel's loopback), downtime budget 300 ms, max %d rounds, %u runs per path\n",
		       o->mib, o->addr, MAX_ROUNDS, o->runs);
	else
		printf("live migration, %lu MiB guest, 1 vCPU, loopback TCP, downtime budget 300 ms, max %d rounds, %u runs per path\n",
		       o->mib, MAX_ROUNDS, o->runs);
	for (p = 0; p < np; p++)
		if (paths[p].rdma)
			printf("%s: 1 RDMA connection (KVMIG_XFER_SETUP_RDMA: rdma_cm, RC) at %s, set up through a TCP connection, pages by RDMA WRITE\n",
			       paths[p].name, o->addr);
		else if (paths[p].kvmig)
			printf("%s: %u TCP connection%s%s%s\n", paths[p].name,
			       paths[p].streams, paths[p].streams == 1 ? "" : "s",
			       paths[p].streams == 1 ? "" :
			       " (KVMIG_XFER_SETUP_STREAMS)",
			       paths[p].ktls ? ", kTLS: TLS 1.3 AES-128-GCM records, random keys at both ends (no handshake)" :
			       "");
	if (o->user)
		printf("user: %u sender thread%s and TCP connection%s, %s\n",
		       o->threads, o->threads == 1 ? "" : "s",
		       o->threads == 1 ? "" : "s",
		       o->zerocopy ? "MSG_ZEROCOPY" : "send() copies");
	printf("%-8s %-*s %9s %6s %6s %-17s %-17s %8s %8s %8s %-17s %8s %8s %8s %7s\n",
	       "rate cap", width, "path", "guest pg/s", "conv", "rounds",
	       "total s", "downtime ms", "MiB sent", "src s/GiB",
	       "dst s/GiB", "system s/GiB", "host/GiB", "sirq/GiB",
	       "ring full", "wait s");
	for (i = 0; i < o->nr_rates; i++) {
		pm.rate = o->rates[i];
		/* Alternate the paths, so that drift hits all alike. */
		for (n = 0; n < o->runs; n++) {
			for (p = 0; p < np; p++) {
				pm.streams = paths[p].streams;
				pm.ktls = paths[p].ktls;
				pm.rdma = paths[p].rdma;
				if (migrate(paths[p].kvmig, &pm, &r[p][n]) ||
				    !r[p][n].ok)
					return 1;
			}
		}
		for (p = 0; p < np; p++) {
			spread(r[p], o->runs, &s[p]);
			print_spread(o->rates[i], paths[p].name, width, &s[p],
				     o->runs);
		}
		if (o->user && o->zerocopy)
			printf("%-8s user MSG_ZEROCOPY: %lu sends completed, %lu of them copied by the kernel (SO_EE_CODE_ZEROCOPY_COPIED)\n",
			       "", s[user].zc_sends, s[user].zc_copied);
		/* The user migrator against each kvmig path... */
		for (p = 0; o->user && p < user; p++)
			print_ratios("user", &s[user], paths[p].name, &s[p]);
		/* ... the first kvmig path against the other plain ones... */
		for (p = 1; p < np; p++)
			if (paths[p].kvmig && paths[p].twin < 0)
				print_ratios(paths[0].name, &s[0],
					     paths[p].name, &s[p]);
		/* ... and each kTLS or RDMA path against its plain twin. */
		for (p = 1; p < np; p++)
			if (paths[p].twin >= 0)
				print_ratios(paths[p].name, &s[p],
					     paths[paths[p].twin].name,
					     &s[paths[p].twin]);
		for (p = 0; (o->ktls || o->rdma) && p < np; p++)
			if (paths[p].kvmig)
				printf("%-8s %s: %lu pages sent, %lu %s, %lu copied (KVMIG_GET_STATS, all runs)\n",
				       "", paths[p].name, s[p].pages_sent,
				       s[p].pages_spliced, paths[p].rdma ?
				       "written by RDMA WRITE" :
				       "spliced zero-copy", s[p].pages_copied);
		fflush(stdout);
	}
	printf("rate cap 0 = the guest writes as fast as it can; conv: runs that converged; min/median/max where three, medians elsewhere;\n"
	       "system: /proc/stat busy (both ends, the guest, everything), host: the same without guest mode, sirq: softirq\n");
	if (o->nr_streams > 1 || o->streams[0] != 1)
		printf("kvmig-N: kvmig over N TCP connections (KVMIG_XFER_SETUP_STREAMS), kvmig: over one\n");
	if (o->ktls)
		printf("-ktls: the same over kTLS, which encrypts each page into a record of its own (a copy, counted as copied);\n"
		       "ratios X-ktls/X above 1: kTLS took that much more time or CPU\n");
	if (o->rdma)
		printf("kvmig-rdma: kvmig over one RDMA connection, kvmig: over one TCP connection, both at the same address;\n"
		       "ratio kvmig-rdma/kvmig above 1: RDMA took that much more time or CPU\n");
	return 0;
}

/* ---- the vCPU's stall on a full dirty ring ---- */

struct stall {
	unsigned long samples;
	double p50_us, p99_us, max_us;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least @pct % at or below it. */
static double pctl_us(const uint64_t *v, unsigned long n, unsigned int pct)
{
	unsigned long rank = (n * pct + 99) / 100;

	return v[rank ? rank - 1 : 0] / 1e3;
}

static void stall_stats(const struct params *pm, const struct result *res,
			struct stall *s)
{
	unsigned long first = res->stall_first, n = res->precopy_exits;
	uint64_t *v = pm->stall_ns + first;

	memset(s, 0, sizeof(*s));
	if (first >= STALL_CAP)
		return;
	if (n > STALL_CAP - first)
		n = STALL_CAP - first;
	if (!n)
		return;
	qsort(v, n, sizeof(*v), cmp_u64);
	s->samples = n;
	s->p50_us = pctl_us(v, n, 50);
	s->p99_us = pctl_us(v, n, 99);
	s->max_us = v[n - 1] / 1e3;
}

static void print_ratio(const char *what, double user, double kvmig)
{
	if (user > 0 && kvmig > 0)
		printf(" %s %.2fx", what, user / kvmig);
	else
		printf(" %s -", what);
}

/*
 * For each ring size, the same migration through kvmig and through the
 * userspace migrator; the table gives the vCPUs' stall per ring-full exit
 * taken during pre-copy (the rounds), not during the guest's first pass
 * over its memory or the switchover.
 */
static int stall_table(unsigned long mib, unsigned int vcpus, double secs,
		       uint64_t bw_mib, const unsigned int *entries,
		       unsigned int nr)
{
	struct params pm = {
		.mib = mib, .vcpus = vcpus, .batch = 1024,
		.bandwidth = bw_mib << 20, .precopy_s = secs, .threads = 1,
	};
	struct result r[2];
	struct stall s[2];
	unsigned int i;
	int m, ret;

	pm.stall_ns = calloc(STALL_CAP, sizeof(*pm.stall_ns));
	if (!pm.stall_ns)
		return 1;
	printf("vCPU stall per KVM_EXIT_DIRTY_RING_FULL during pre-copy: %lu MiB guest, %u vCPUs each writing its %lu MiB at full speed,\n"
	       "loopback TCP capped at %llu MiB/s on the sender, pre-copy rounds started for %.0f s (then switchover)\n",
	       mib, vcpus, mib / vcpus, (unsigned long long)bw_mib, secs);
	printf("stall = from KVM_RUN's return with the exit to the next KVM_RUN (vmm.c), pre-copy exits only\n");
	printf("%-7s %-6s %9s %6s %6s %7s %9s %9s %9s %8s\n",
	       "entries", "path", "guest pg/s", "rounds", "exits", "samples",
	       "p50 us", "p99 us", "max us", "stall s");
	for (i = 0; i < nr; i++) {
		pm.ring_bytes = entries[i] * sizeof(struct kvm_dirty_gfn);
		for (m = 1; m >= 0; m--) {
			ret = migrate(m, &pm, &r[m]);
			if (ret == -EINVAL) {
				/* Refused by KVM_ENABLE_CAP: say so, go on. */
				printf("%-7u KVM refuses a ring of %u bytes (%s)\n",
				       entries[i], pm.ring_bytes,
				       strerror(-ret));
				break;
			}
			if (ret || !r[m].ok) {
				free(pm.stall_ns);
				return 1;
			}
			stall_stats(&pm, &r[m], &s[m]);
			printf("%-7u %-6s %9.0f %6u %6lu %7lu %9.1f %9.1f %9.1f %8.2f\n",
			       entries[i], m ? "kvmig" : "user",
			       r[m].guest_rate, r[m].rounds,
			       r[m].precopy_exits, s[m].samples, s[m].p50_us,
			       s[m].p99_us, s[m].max_us, r[m].ring_wait_s);
			fflush(stdout);
		}
		if (m >= 0)
			continue;
		printf("%-7s ratios user/kvmig:", "");
		print_ratio("p50", s[0].p50_us, s[1].p50_us);
		print_ratio("p99", s[0].p99_us, s[1].p99_us);
		printf("\n");
		fflush(stdout);
	}
	printf("exits, samples, p50, p99, max: exits taken while pre-copy rounds ran (p99 of fewer than 100 samples is their maximum);\n"
	       "stall s: all ring-full exits' time, the guest's first pass and the switchover included\n");
	free(pm.stall_ns);
	return 0;
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-n runs] [-t threads] [--zerocopy] [-s streams[,streams...]]\n"
		"          [--kvmig-only] [--ktls] [--rdma] [--addr A.B.C.D]\n"
		"          [-r rate[,rate...]] [guest MiB <= 512]\n"
		"       %s --ring-stall [-m MiB] [-v vCPUs] [-s seconds] [-b MiB/s] [ring entries...]\n"
		"  -n, --runs N     migrations per point and path (1..%d, default 3)\n"
		"  -t, --threads N  user migrator's sender threads and TCP connections\n"
		"                   (1..%d, default 2, as QEMU's multifd-channels)\n"
		"  --zerocopy       user migrator sends pages with MSG_ZEROCOPY\n"
		"  -s, --streams N[,N...]\n"
		"                   kvmig's TCP connections (1..%d, default 1); more than\n"
		"                   one: KVMIG_XFER_SETUP_STREAMS, path kvmig-N; a list\n"
		"                   (up to %d counts) runs one kvmig path per count\n"
		"  --kvmig-only     no user migrator: only the kvmig paths\n"
		"  --ktls           each kvmig path also over kTLS, random keys installed\n"
		"                   at both ends (no handshake), path kvmig-ktls, kvmig-N-ktls\n"
		"  --rdma           kvmig's one-connection path also over RDMA\n"
		"                   (KVMIG_XFER_SETUP_RDMA), path kvmig-rdma; needs --addr\n"
		"  --addr A.B.C.D   make every connection at this local IPv4 address, not\n"
		"                   127.0.0.1 (default: $KVMIG_RDMA_ADDR with --rdma); for\n"
		"                   --rdma, an address of an RDMA device's netdev in this\n"
		"                   network namespace, such as a dummy device with soft-RoCE\n"
		"                   (rdma link add NAME type rxe netdev DEV)\n"
		"  -r, --rates R[,R...]\n"
		"                   the guest's rate caps, pages/s, 0: as fast as it can\n"
		"                   (up to %d; default 5000,20000,50000,100000,0)\n",
		argv0, argv0, MAX_RUNS, MAX_CHANNELS, KVMIG_MAX_STREAMS,
		MAX_KVMIG_PATHS, MAX_RATES);
}

/* A comma-separated list of numbers >= 0 into @v; how many, or -1. */
static int parse_list(const char *arg, double *v, unsigned int max)
{
	const char *p = arg;
	unsigned int n = 0;
	char *end;

	for (;;) {
		if (n == max || *p < '0' || *p > '9')
			return -1;
		v[n++] = strtod(p, &end);
		if (end == p)
			return -1;
		if (!*end)
			return n;
		if (*end != ',')
			return -1;
		p = end + 1;
	}
}

/*
 * Whether the loaded module has feature @bit of word 0: KVMIG_F0_STREAMS
 * (several connections), KVMIG_F0_RDMA.
 */
static bool kvmig_has(uint64_t bit)
{
	uint64_t feat = 0;
	struct kvmig_api api = { .nr_features = 1,
				 .features_ptr = (uintptr_t)&feat };
	int fd = open("/dev/kvmig", O_RDWR | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return true;	/* let the migration say what is wrong */
	ok = !ioctl(fd, KVMIG_GET_API, &api) && (feat & bit);
	close(fd);
	return ok;
}

static int rate_main(int argc, char **argv)
{
	static const double def_rates[] = { 5000, 20000, 50000, 100000, 0 };
	static const struct option opts[] = {
		{ "runs", required_argument, NULL, 'n' },
		{ "threads", required_argument, NULL, 't' },
		{ "zerocopy", no_argument, NULL, 'z' },
		{ "streams", required_argument, NULL, 's' },
		{ "kvmig-only", no_argument, NULL, 'k' },
		{ "ktls", no_argument, NULL, 'K' },
		{ "rdma", no_argument, NULL, 'R' },
		{ "addr", required_argument, NULL, 'a' },
		{ "rates", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct rate_opts o = {
		.mib = 128, .runs = 3, .threads = 2, .user = true,
		.streams = { 1 }, .nr_streams = 1,
	};
	unsigned long runs = 3, threads = 2;
	double v[MAX_KVMIG_PATHS];
	unsigned int i;
	bool multi = false;
	int c, n;

	memcpy(o.rates, def_rates, sizeof(def_rates));
	o.nr_rates = sizeof(def_rates) / sizeof(def_rates[0]);
	while ((c = getopt_long(argc, argv, "n:t:s:r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			runs = strtoul(optarg, NULL, 0);
			break;
		case 't':
			threads = strtoul(optarg, NULL, 0);
			break;
		case 'z':
			o.zerocopy = true;
			break;
		case 's':
			n = parse_list(optarg, v, MAX_KVMIG_PATHS);
			for (i = 0; n > 0 && i < (unsigned int)n; i++)
				if (v[i] < 1 || v[i] > KVMIG_MAX_STREAMS ||
				    v[i] != (unsigned int)v[i])
					n = -1;
			if (n < 0) {
				fprintf(stderr, "%s: --streams takes up to %d counts of 1 to %d TCP connections, not '%s'\n",
					argv[0], MAX_KVMIG_PATHS,
					KVMIG_MAX_STREAMS, optarg);
				return 2;
			}
			for (i = 0; i < (unsigned int)n; i++)
				o.streams[i] = v[i];
			o.nr_streams = n;
			break;
		case 'k':
			o.user = false;
			break;
		case 'K':
			o.ktls = true;
			break;
		case 'R':
			o.rdma = true;
			break;
		case 'a':
			o.addr = optarg;
			break;
		case 'r':
			n = parse_list(optarg, o.rates, MAX_RATES);
			if (n < 0) {
				fprintf(stderr, "%s: --rates takes up to %d rates in pages/s, not '%s'\n",
					argv[0], MAX_RATES, optarg);
				return 2;
			}
			o.nr_rates = n;
			break;
		default:
			usage(argv[0]);
			return 2;
		}
	}
	if (optind < argc)
		o.mib = strtoul(argv[optind++], NULL, 0);
	if (optind < argc || !o.mib || o.mib > 512 || !runs ||
	    runs > MAX_RUNS || !threads || threads > MAX_CHANNELS) {
		usage(argv[0]);
		return 2;
	}
	o.runs = runs;
	o.threads = threads;
	for (i = 0; i < o.nr_streams; i++)
		multi |= o.streams[i] > 1;
	if (multi && !kvmig_has(KVMIG_F0_STREAMS)) {
		fprintf(stderr, "%s: --streams: the loaded kvmig module migrates over one connection only (no KVMIG_F0_STREAMS)\n",
			argv[0]);
		return 1;
	}
	if (o.ktls && !ktls_available()) {
		fprintf(stderr, "%s: --ktls: this kernel has no kTLS (modprobe tls)\n",
			argv[0]);
		return 1;
	}
	if (o.rdma && !o.addr)
		o.addr = getenv("KVMIG_RDMA_ADDR");
	if (o.rdma && !o.addr) {
		fprintf(stderr, "%s: --rdma: give --addr A.B.C.D (or KVMIG_RDMA_ADDR), an IPv4 address of an RDMA device's netdev\n",
			argv[0]);
		return 2;
	}
	for (i = 0; o.rdma && i < o.nr_streams && o.streams[i] != 1; i++)
		;
	if (o.rdma && i == o.nr_streams) {
		fprintf(stderr, "%s: --rdma: kvmig over RDMA is one connection: -s must include 1\n",
			argv[0]);
		return 2;
	}
	if (o.addr && inet_pton(AF_INET, o.addr, &link_addr) != 1) {
		fprintf(stderr, "%s: --addr takes an IPv4 address, not '%s'\n",
			argv[0], o.addr);
		return 2;
	}
	if (o.rdma && !kvmig_has(KVMIG_F0_RDMA)) {
		fprintf(stderr, "%s: --rdma: the loaded kvmig module cannot migrate over RDMA (no KVMIG_F0_RDMA)\n",
			argv[0]);
		return 1;
	}
	return rate_table(&o);
}

int main(int argc, char **argv)
{
	static const unsigned int def_entries[] = { 64, 256, 1024, 4096 };
	unsigned int entries[16], nr = 0, vcpus = 2;
	unsigned long mib = 64, bw = 16;
	double secs = 20;
	int i;

	link_addr = htonl(INADDR_LOOPBACK);
	if (argc < 2 || strcmp(argv[1], "--ring-stall"))
		return rate_main(argc, argv);
	for (i = 2; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "-m")) {
			mib = strtoul(argv[++i], NULL, 0);
		} else if (i + 1 < argc && !strcmp(argv[i], "-v")) {
			vcpus = strtoul(argv[++i], NULL, 0);
		} else if (i + 1 < argc && !strcmp(argv[i], "-s")) {
			secs = strtod(argv[++i], NULL);
		} else if (i + 1 < argc && !strcmp(argv[i], "-b")) {
			bw = strtoul(argv[++i], NULL, 0);
		} else if (argv[i][0] != '-' && nr < 16) {
			entries[nr++] = strtoul(argv[i], NULL, 0);
		} else {
			usage(argv[0]);
			return 2;
		}
	}
	if (!nr) {
		memcpy(entries, def_entries, sizeof(def_entries));
		nr = sizeof(def_entries) / sizeof(def_entries[0]);
	}
	if (!mib || mib > 512 || !vcpus || vcpus > VMM_MAX_VCPUS ||
	    secs <= 0 || !bw) {
		usage(argv[0]);
		return 2;
	}
	return stall_table(mib, vcpus, secs, bw, entries, nr);
}
