// SPDX-License-Identifier: GPL-2.0
/*
 * Live migration through kvmig against a userspace migrator that uses only
 * the standard KVM ABI, as QEMU's pre-copy does: the same guest, the same
 * dirty rate, the same TCP link (loopback), the same wire format and the
 * same convergence rule (what is pending fits the downtime budget at the
 * last round's throughput; at most 30 rounds).
 *
 *   kvmig   KVMIG_XFER_* on both ends: harvest, zero-copy splice of pinned
 *           guest pages, receive straight into the destination's pages
 *   user    the VMM reaps the dirty rings from its mmap, send()s from its
 *           mapping of guest memory, recv()s into the destination's mapping
 *
 * CPU time is that of the migration thread on each end (user + system,
 * RUSAGE_THREAD): kvmig's work runs inside its ioctls, so it is counted.
 * The guest's own vCPU thread is not counted on either side.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kvmig.h"
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

struct result {
	int ok, converged;
	unsigned int rounds;
	double total_s, downtime_ms, src_cpu, dst_cpu, guest_rate;
	uint64_t bytes;
	unsigned long ring_full;	/* KVM_EXIT_DIRTY_RING_FULL exits */
	double ring_wait_s;		/* the vCPU's time in their handler */
};

/* One end of the link and its VM. */
struct side {
	struct vmm vmm;
	int sock, dev;
	uint64_t *bitmap;	/* user migrator: pending pages of slot 0 */
	uint64_t npages;
	double cpu;
	uint64_t bytes;
	int err;
};

/* The guest, paced at @rate pages/s by its vCPU thread. */
struct runner {
	struct vmm *vmm;
	double rate, t0;
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
		atomic_fetch_add(&r->pages, BATCH);
		if (r->rate > 0) {
			double d = r->t0 + atomic_load(&r->pages) / r->rate - now();

			if (d > 0)
				usleep(d * 1e6);
		}
	}
	return NULL;
}

static int tcp_pair(int *a, int *b)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int l, one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (void *)&sa, sizeof(sa)) || listen(l, 1) ||
	    getsockname(l, (void *)&sa, &len))
		return -errno;
	*a = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(*a, (void *)&sa, sizeof(sa)))
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

static int send_rec(struct side *s, uint32_t type, uint32_t slot, uint64_t gfn,
		    uint32_t n, uint32_t len)
{
	struct kvmig_wire_rec w;

	kvmig_wire_encode_rec(&w, type, slot, gfn, n, len);
	s->bytes += sizeof(w);
	return send_all(s->sock, &w, sizeof(w), 1);
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
		s->bitmap[off / 64] |= 1ULL << (off % 64);
}

static uint64_t count_pending(struct side *s)
{
	uint64_t n = 0, i;

	for (i = 0; i < (s->npages + 63) / 64; i++)
		n += __builtin_popcountll(s->bitmap[i]);
	return n;
}

/* Send pending pages of slot 0, in runs of at most 64; zero check in round 0. */
static int user_send_pending(struct side *s, int round0, uint64_t *pages)
{
	struct vmm_slot *sl = &s->vmm.slots[0];
	uint64_t p = 0, base = sl->gpa / 4096;
	int ret;

	while (p < s->npages) {
		uint64_t q;
		int zero;

		if (!(s->bitmap[p / 64] & (1ULL << (p % 64)))) {
			p++;
			continue;
		}
		zero = round0 && is_zero(sl->hva + p * 4096);
		for (q = p + 1; q < s->npages && q - p < 64 &&
		     (s->bitmap[q / 64] & (1ULL << (q % 64))) &&
		     (round0 && is_zero(sl->hva + q * 4096)) == zero; q++)
			;
		ret = send_rec(s, zero ? KVMIG_REC_ZERO : KVMIG_REC_PAGES,
			       sl->id, base + p, q - p, 0);
		if (!ret && !zero) {
			ret = send_all(s->sock, sl->hva + p * 4096,
				       (q - p) * 4096, 1);
			s->bytes += (q - p) * 4096;
			*pages += q - p;
		}
		if (ret)
			return ret;
		for (; p < q; p++)
			s->bitmap[p / 64] &= ~(1ULL << (p % 64));
	}
	return 0;
}

static void *user_dest(void *arg)
{
	struct side *s = arg;
	struct vmm_slot *sl = &s->vmm.slots[0];
	uint64_t base = sl->gpa / 4096, pages = 0;
	struct kvmig_wire_rec w;
	uint32_t reply[4] = { KVMIG_WIRE_MAGIC, 0 };
	char state[4096];
	double c0 = thread_cpu();

	for (;;) {
		uint32_t type, n;
		uint64_t gfn;

		if (recv_all(s->sock, &w, sizeof(w)))
			goto fail;
		type = le16_to_cpu(w.type);
		gfn = le64_to_cpu(w.gfn);
		n = le32_to_cpu(w.npages);
		if ((type == KVMIG_REC_PAGES || type == KVMIG_REC_ZERO) &&
		    (gfn < base || gfn - base + n > s->npages))
			goto fail;
		if (type == KVMIG_REC_PAGES) {
			if (recv_all(s->sock, sl->hva + (gfn - base) * 4096,
				     (size_t)n * 4096))
				goto fail;
			pages += n;
		} else if (type == KVMIG_REC_ZERO) {
			for (uint32_t i = 0; i < n; i++) {
				uint8_t *p = sl->hva + (gfn - base + i) * 4096;

				if (!is_zero(p))
					memset(p, 0, 4096);
			}
		} else if (type == KVMIG_REC_STATE) {
			if (le32_to_cpu(w.len) > sizeof(state) ||
			    recv_all(s->sock, state, le32_to_cpu(w.len)))
				goto fail;
		} else if (type == KVMIG_REC_END) {
			break;
		}
	}
	memcpy(&reply[2], &pages, 8);
	send_all(s->sock, reply, 16, 0);
	s->cpu = thread_cpu() - c0;
	return NULL;
fail:
	s->err = -EIO;
	s->cpu = thread_cpu() - c0;
	return NULL;
}

/* ---- kvmig on both ends ---- */

static void *kvmig_dest(void *arg)
{
	struct side *s = arg;
	struct kvmig_xfer_setup su = { .sock_fd = s->sock };
	char state[4096];
	struct kvmig_recv rv = { .state_ptr = (uintptr_t)state,
				 .state_cap = sizeof(state) };
	double c0 = thread_cpu();

	if (ioctl(s->dev, KVMIG_XFER_SETUP, &su) ||
	    ioctl(s->dev, KVMIG_XFER_RECV, &rv))
		s->err = -errno;
	s->cpu = thread_cpu() - c0;
	return NULL;
}

/* Time the (only) vCPU spent answering ring-full exits, in this run. */
static double ring_wait_s;

static int ring_full_kvmig(struct vmm *vmm, void *arg)
{
	struct kvmig_harvest h = {};
	double t = now();
	int ret;

	ret = ioctl(*(int *)arg, KVMIG_DIRTY_HARVEST, &h) ? -errno : 0;
	ring_wait_s += now() - t;
	return ret;
}

static int ring_full_user(struct vmm *vmm, void *arg)
{
	double t = now();
	int ret;

	ret = vmm_harvest_ring(vmm, mark, arg) < 0 ? -EIO : 0;
	ring_wait_s += now() - t;
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

static int migrate(int use_kvmig, unsigned long mib, double rate,
		   struct result *res)
{
	struct vmm_config cfg = {
		.dirty = VMM_DIRTY_RING, .nr_vcpus = 1, .nr_slots = 1,
		.slot_size = mib << 20, .ring_bytes = 1 << 20,
	};
	struct side src = { .dev = -1 }, dst = { .dev = -1 };
	struct runner run = { .rate = rate };
	struct kvmig_dirty_start ds = {};
	struct kvmig_stats st;
	pthread_t gt, dt;
	uint32_t *mbox;
	double t0, c0, tp, thr = 0;
	char state[1024] = "vcpu state";
	int ret = -EIO;

	ring_wait_s = 0;

	memset(res, 0, sizeof(*res));
	if (vmm_create(&src.vmm, &cfg) || vmm_create(&dst.vmm, &cfg))
		return -EIO;
	src.npages = dst.npages = cfg.slot_size / 4096;
	src.bitmap = calloc(src.npages / 64 + 1, 8);
	vmm_load(&src.vmm, guest_sweep2, guest_sweep2_end - guest_sweep2);
	mbox = vmm_mbox(&src.vmm, 0);
	mbox[0] = src.vmm.slots[0].gpa;
	mbox[1] = src.npages;
	mbox[2] = BATCH;
	if (tcp_pair(&src.sock, &dst.sock))
		goto out;

	if (use_kvmig) {
		src.dev = session(&src.vmm, KVMIG_ROLE_SOURCE, KVMIG_DIRTY_RING);
		dst.dev = session(&dst.vmm, KVMIG_ROLE_DEST, KVMIG_DIRTY_AUTO);
		if (src.dev < 0 || dst.dev < 0 ||
		    ioctl(src.dev, KVMIG_DIRTY_START, &ds))
			goto out;
		src.vmm.ring_full = ring_full_kvmig;
		src.vmm.ring_full_arg = &src.dev;
	} else {
		src.vmm.ring_full = ring_full_user;
		src.vmm.ring_full_arg = &src;
	}

	/* The guest stamps all its memory once, then keeps going. */
	run.vmm = &src.vmm;
	pthread_create(&gt, NULL, run_guest, &run);
	while (atomic_load(&run.pages) < src.npages && !run.err)
		usleep(10000);
	pthread_create(&dt, NULL, use_kvmig ? kvmig_dest : user_dest, &dst);

	t0 = now();
	c0 = thread_cpu();
	if (use_kvmig) {
		struct kvmig_xfer_setup su = {
			.sock_fd = src.sock, .downtime_ns = DOWNTIME_NS,
			.max_rounds = MAX_ROUNDS,
		};
		struct kvmig_round r;
		struct kvmig_final f = { .state_ptr = (uintptr_t)state,
					 .state_len = sizeof(state) };

		if (ioctl(src.dev, KVMIG_XFER_SETUP, &su))
			goto stop;
		do {
			memset(&r, 0, sizeof(r));
			if (ioctl(src.dev, KVMIG_XFER_ROUND, &r))
				goto stop;
		} while (r.status == KVMIG_ROUND_SENT);
		res->converged = r.status == KVMIG_ROUND_CONVERGED;
		res->rounds = r.round;
		tp = now();
		atomic_store(&run.stop, true);
		pthread_join(gt, NULL);
		if (ioctl(src.dev, KVMIG_XFER_FINAL, &f))
			goto stopped;
		res->downtime_ms = (now() - tp) * 1e3;
		memset(&st, 0, sizeof(st));
		ioctl(src.dev, KVMIG_GET_STATS, &st);
		res->bytes = st.bytes_sent;
	} else {
		uint64_t pages = 0, b0, pending, round;
		double rt;
		uint32_t reply[4];

		/* Round 0: everything; the log so far is moot. */
		vmm_harvest_ring(&src.vmm, mark, &src);
		memset(src.bitmap, 0xff, (src.npages / 64) * 8);
		for (round = 0;; round++) {
			if (round) {
				vmm_harvest_ring(&src.vmm, mark, &src);
				pending = count_pending(&src);
				if (thr && pending * 4096.0 / thr * 1e9 <= DOWNTIME_NS) {
					res->converged = 1;
					break;
				}
				if (round >= MAX_ROUNDS)
					break;
			}
			rt = now();
			b0 = src.bytes;
			if (send_rec(&src, KVMIG_REC_ROUND, 0, round, 0, 0) ||
			    user_send_pending(&src, !round, &pages))
				goto stop;
			thr = (src.bytes - b0) / (now() - rt);
		}
		res->rounds = round;
		tp = now();
		atomic_store(&run.stop, true);
		pthread_join(gt, NULL);
		vmm_harvest_ring(&src.vmm, mark, &src);
		if (user_send_pending(&src, 0, &pages) ||
		    send_rec(&src, KVMIG_REC_STATE, 0, 0, 0, sizeof(state)) ||
		    send_all(src.sock, state, sizeof(state), 1) ||
		    send_rec(&src, KVMIG_REC_END, 0, 0, 0, 0) ||
		    recv_all(src.sock, reply, 16))
			goto stopped;
		res->downtime_ms = (now() - tp) * 1e3;
		res->bytes = src.bytes + sizeof(state);
	}
	res->total_s = now() - t0;
	res->src_cpu = thread_cpu() - c0;
	res->guest_rate = atomic_load(&run.pages) / (tp - run.t0);
	res->ring_full = src.vmm.ring_full_exits;	/* the vCPU is paused */
	res->ring_wait_s = ring_wait_s;
	pthread_join(dt, NULL);
	res->dst_cpu = dst.cpu;
	res->ok = !dst.err &&
		  !memcmp(src.vmm.slots[0].hva, dst.vmm.slots[0].hva,
			  cfg.slot_size);
	if (!res->ok)
		fprintf(stderr, "%s: destination memory differs or failed\n",
			use_kvmig ? "kvmig" : "user");
	ret = 0;
	goto out;
stop:
	atomic_store(&run.stop, true);
	pthread_join(gt, NULL);
stopped:
	perror(use_kvmig ? "kvmig migration" : "user migration");
	shutdown(src.sock, SHUT_RDWR);
	pthread_join(dt, NULL);
out:
	if (src.dev >= 0)
		close(src.dev);
	if (dst.dev >= 0)
		close(dst.dev);
	close(src.sock);
	close(dst.sock);
	vmm_destroy(&src.vmm);
	vmm_destroy(&dst.vmm);
	free(src.bitmap);
	return ret;
}

int main(int argc, char **argv)
{
	static const double rates[] = { 5000, 20000, 50000, 100000, 0 };
	unsigned long mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 128;
	struct result r[2];
	double gib;
	unsigned int i;
	int m;

	if (!mib || mib > 512) {
		fprintf(stderr, "usage: %s [guest MiB <= 512]\n", argv[0]);
		return 2;
	}
	printf("live migration, %lu MiB guest, 1 vCPU, loopback TCP, downtime budget 300 ms, max %d rounds\n",
	       mib, MAX_ROUNDS);
	printf("%-10s %-6s %9s %6s %6s %8s %9s %9s %8s %8s %9s %8s\n",
	       "rate cap", "path", "guest pg/s", "conv", "rounds", "total s",
	       "downtime", "MiB sent", "src s/GiB", "dst s/GiB", "ring full",
	       "wait s");
	for (i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		for (m = 1; m >= 0; m--) {
			if (migrate(m, mib, rates[i], &r[m]) || !r[m].ok)
				return 1;
			gib = r[m].bytes / 1073741824.0;
			printf("%-10.0f %-6s %9.0f %6s %6u %8.2f %7.1fms %9.1f %8.2f %8.2f %9lu %8.2f\n",
			       rates[i], m ? "kvmig" : "user", r[m].guest_rate,
			       r[m].converged ? "yes" : "no", r[m].rounds,
			       r[m].total_s, r[m].downtime_ms,
			       r[m].bytes / 1048576.0, r[m].src_cpu / gib,
			       r[m].dst_cpu / gib, r[m].ring_full,
			       r[m].ring_wait_s);
			fflush(stdout);
		}
		printf("%-10s ratios user/kvmig: total time %.2fx, downtime %.2fx, source CPU/GiB %.2fx, destination CPU/GiB %.2fx\n",
		       "", r[0].total_s / r[1].total_s,
		       r[0].downtime_ms / r[1].downtime_ms,
		       (r[0].src_cpu / r[0].bytes) / (r[1].src_cpu / r[1].bytes),
		       (r[0].dst_cpu / r[0].bytes) / (r[1].dst_cpu / r[1].bytes));
	}
	printf("rate cap 0 = the guest writes as fast as it can\n");
	return 0;
}
