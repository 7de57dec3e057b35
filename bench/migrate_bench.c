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
 *
 * With --ring-stall, the same two migrations measure instead what a vCPU
 * pays when its dirty ring fills during pre-copy: for each ring size, the
 * time from each KVM_EXIT_DIRTY_RING_FULL to the vCPU's next KVM_RUN
 * (p50, p99), with several vCPUs writing faster than the link, capped,
 * sends. kvmig's vCPU thread answers the exit with KVMIG_DIRTY_HARVEST
 * while kvmig's worker runs the round; the userspace migrator's vCPU
 * thread reaps every ring itself, as QEMU's kvm_dirty_ring_reap() does,
 * under the lock its migration thread also takes to reap them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
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
#define STALL_CAP	(1UL << 20)	/* ring-full exits timed per run */

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
};

struct result {
	int ok, converged;
	unsigned int rounds;
	double total_s, downtime_ms, src_cpu, dst_cpu, guest_rate;
	uint64_t bytes;
	unsigned long ring_full;	/* KVM_EXIT_DIRTY_RING_FULL exits */
	double ring_wait_s;		/* the vCPUs' time in their handler */
	/*
	 * Exits taken during pre-copy (from the first round to the last),
	 * and where their stall times start in params.stall_ns.
	 */
	unsigned long precopy_exits, stall_first;
};

/* One end of the link and its VM. */
struct side {
	struct vmm vmm;
	int sock, dev;
	/*
	 * User migrator: pending pages of slot 0. Set by whichever thread
	 * reaps the rings (the migration thread, or a vCPU thread whose ring
	 * is full), cleared by the migration thread before it reads a page:
	 * atomic bit operations, so that no mark is lost.
	 */
	uint64_t *bitmap;
	uint64_t npages;
	uint64_t bandwidth;	/* bytes/s, 0: no cap */
	double cpu;
	uint64_t bytes;
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
		__atomic_fetch_or(&s->bitmap[off / 64], 1ULL << (off % 64),
				  __ATOMIC_RELAXED);
}

static int pending_bit(struct side *s, uint64_t p)
{
	return !!(__atomic_load_n(&s->bitmap[p / 64], __ATOMIC_RELAXED) &
		  (1ULL << (p % 64)));
}

static uint64_t count_pending(struct side *s)
{
	uint64_t n = 0, i;

	for (i = 0; i < (s->npages + 63) / 64; i++)
		n += __builtin_popcountll(__atomic_load_n(&s->bitmap[i],
							  __ATOMIC_RELAXED));
	return n;
}

/* Pages [@p, @q) are no longer pending; at most two words. */
static void clear_run(struct side *s, uint64_t p, uint64_t q)
{
	while (p < q) {
		uint64_t w = p / 64, n = q - p < 64 - p % 64 ? q - p : 64 - p % 64;
		uint64_t m = n == 64 ? ~0ULL : ((1ULL << n) - 1) << (p % 64);

		__atomic_fetch_and(&s->bitmap[w], ~m, __ATOMIC_SEQ_CST);
		p += n;
	}
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
static void throttle(struct side *s, double t0, uint64_t bytes)
{
	double d;

	if (!s->bandwidth)
		return;
	d = t0 + (double)bytes / s->bandwidth - now();
	if (d > 0)
		usleep(d * 1e6);
}

/* Send pending pages of slot 0, in runs of at most 64; zero check in round 0. */
static int user_send_pending(struct side *s, int round0, uint64_t *pages)
{
	struct vmm_slot *sl = &s->vmm.slots[0];
	uint64_t p = 0, base = sl->gpa / 4096, b0 = s->bytes;
	double t0 = now();
	int ret;

	while (p < s->npages) {
		uint64_t q;
		int zero;

		if (!pending_bit(s, p)) {
			p++;
			continue;
		}
		zero = round0 && is_zero(sl->hva + p * 4096);
		for (q = p + 1; q < s->npages && q - p < 64 &&
		     pending_bit(s, q) &&
		     (round0 && is_zero(sl->hva + q * 4096)) == zero; q++)
			;
		/*
		 * Not pending before it is read: a page a reaper marks from
		 * now on goes again, even if this copy already has it.
		 */
		clear_run(s, p, q);
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
		throttle(s, t0, s->bytes - b0);
		p = q;
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
	struct side src = { .dev = -1, .sock = -1 };
	struct side dst = { .dev = -1, .sock = -1 };
	struct runner run = { .rate = pm->rate,
			      .step = (unsigned long)pm->batch * pm->vcpus };
	struct kvmig_dirty_start ds = {};
	struct kvmig_stats st;
	pthread_t gt, dt;
	uint64_t part;
	unsigned long e0 = 0, e1 = 0;
	unsigned int i;
	double t0, c0, tp, thr = 0;
	char state[1024] = "vcpu state";
	int ret;

	atomic_store(&ring_wait_ns, 0);
	memset(res, 0, sizeof(*res));
	ret = vmm_create(&src.vmm, &cfg);
	if (ret) {
		vmm_destroy(&src.vmm);
		return ret;
	}
	ret = vmm_create(&dst.vmm, &cfg);
	if (ret) {
		vmm_destroy(&dst.vmm);
		vmm_destroy(&src.vmm);
		return ret;
	}
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
	pthread_create(&dt, NULL, use_kvmig ? kvmig_dest : user_dest, &dst);

	t0 = now();
	c0 = thread_cpu();
	e0 = __atomic_load_n(&src.vmm.ring_full_exits, __ATOMIC_RELAXED);
	if (use_kvmig) {
		struct kvmig_xfer_setup su = {
			.sock_fd = src.sock, .downtime_ns = DOWNTIME_NS,
			.max_rounds = MAX_ROUNDS, .bandwidth = pm->bandwidth,
		};
		struct kvmig_round r = { .status = KVMIG_ROUND_SENT };
		struct kvmig_final f = { .state_ptr = (uintptr_t)state,
					 .state_len = sizeof(state) };

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
		/* The worker's share, counted below with this thread's. */
		c0 -= worker_cpu(src.dev);
	} else {
		uint64_t pages = 0, b0, pending, round;
		double rt;
		uint32_t reply[4];

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
			b0 = src.bytes;
			if (send_rec(&src, KVMIG_REC_ROUND, 0, round, 0, 0) ||
			    user_send_pending(&src, !round, &pages))
				goto stop;
			thr = (src.bytes - b0) / (now() - rt);
		}
		res->rounds = round;
		tp = now();
		e1 = __atomic_load_n(&src.vmm.ring_full_exits, __ATOMIC_RELAXED);
		atomic_store(&run.stop, true);
		pthread_join(gt, NULL);
		if (run.err || user_harvest(&src) < 0 ||
		    user_send_pending(&src, 0, &pages) ||
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
	res->ring_full = src.vmm.ring_full_exits;	/* the vCPUs are paused */
	res->ring_wait_s = atomic_load(&ring_wait_ns) / 1e9;
	res->stall_first = e0;
	res->precopy_exits = e1 - e0;
	pthread_join(dt, NULL);
	res->dst_cpu = dst.cpu;
	res->ok = !run.err && !dst.err &&
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
	if (src.sock >= 0)
		close(src.sock);
	if (dst.sock >= 0)
		close(dst.sock);
	vmm_destroy(&src.vmm);
	vmm_destroy(&dst.vmm);
	free(src.bitmap);
	return ret;
}

/* Live migration at several dirty rates: the table make bench started with. */
static int rate_table(unsigned long mib)
{
	static const double rates[] = { 5000, 20000, 50000, 100000, 0 };
	struct params pm = {
		.mib = mib, .vcpus = 1, .batch = BATCH, .ring_bytes = 1 << 20,
	};
	struct result r[2];
	double gib;
	unsigned int i;
	int m;

	printf("live migration, %lu MiB guest, 1 vCPU, loopback TCP, downtime budget 300 ms, max %d rounds\n",
	       mib, MAX_ROUNDS);
	printf("%-10s %-6s %9s %6s %6s %8s %9s %9s %8s %8s %9s %8s\n",
	       "rate cap", "path", "guest pg/s", "conv", "rounds", "total s",
	       "downtime", "MiB sent", "src s/GiB", "dst s/GiB", "ring full",
	       "wait s");
	for (i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		pm.rate = rates[i];
		for (m = 1; m >= 0; m--) {
			if (migrate(m, &pm, &r[m]) || !r[m].ok)
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
		.bandwidth = bw_mib << 20, .precopy_s = secs,
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
		"usage: %s [guest MiB <= 512]\n"
		"       %s --ring-stall [-m MiB] [-v vCPUs] [-s seconds] [-b MiB/s] [ring entries...]\n",
		argv0, argv0);
}

int main(int argc, char **argv)
{
	static const unsigned int def_entries[] = { 64, 256, 1024, 4096 };
	unsigned int entries[16], nr = 0, vcpus = 2;
	unsigned long mib = 64, bw = 16;
	double secs = 20;
	int i;

	if (argc < 2 || strcmp(argv[1], "--ring-stall")) {
		mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 128;
		if (argc > 2 || !mib || mib > 512) {
			usage(argv[0]);
			return 2;
		}
		return rate_table(mib);
	}
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
