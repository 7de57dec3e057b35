// SPDX-License-Identifier: GPL-2.0
/*
 * kvmig-demo: a small VMM that live-migrates its guest through kvmig.
 *
 *   kvmig-demo dest   --listen ADDR:PORT [--mem MIB] [--io-timeout MS]
 *                     [--streams N] [--tls-psk FILE] [--rdma]
 *   kvmig-demo source --connect ADDR:PORT [--mem MIB] [--touch MIB]
 *                     [--rate PAGES/S]
 *                     [--downtime MS] [--max-rounds N] [--bandwidth MB/S]
 *                     [--io-timeout MS] [--dirty ring|bitmap]
 *                     [--throttle off|auto|rate=PAGES/S] [--streams N]
 *                     [--tls-psk FILE] [--rdma] [--priority high|standard]
 *
 * If the migration fails, the source resumes its guest and shows it runs;
 * the destination discards its partial VM. If its outcome is in doubt (the
 * switchover's COMMIT or its acknowledgement was lost, see
 * KVMIG_XFER_FINAL and _RECV), neither end resumes or discards on its own:
 * only an orchestrator that asks both hosts may settle it, through
 * KVMIG_XFER_RESOLVE on the sessions. This demo has no orchestrator to
 * wait for: it says so and exits with status 3, without running the guest.
 *
 * Exit status: 0 migrated, 1 failed (the source guest resumed, the
 * destination's discarded), 2 bad usage, 3 outcome in doubt.
 *
 * The guest sweeps its memory for ever, stamping each page with the sweep
 * number and the page's index (its counters live in %ebp and %edi). The
 * source VMM keeps it running at --rate pages per second while kvmig
 * pre-copies; when the rest fits the downtime budget it pauses the guest,
 * checksums its memory, and hands kvmig its vCPU state for the final pass.
 * The destination receives, checksums, restores the vCPU and resumes the
 * guest, which carries on counting. Both print what they measured; times
 * are CLOCK_MONOTONIC, shared by both ends on one host.
 *
 * --throttle sets kvmig's throttle on the source session (KVMIG_SET_THROTTLE),
 * for a guest that writes faster than the link drains: auto as QEMU's
 * auto-converge defaults (20 %, steps of 10 %, at most 99 %), or a dirty
 * rate target. With --dirty ring kvmig makes the vCPU thread sleep
 * itself; with --dirty bitmap it publishes the share of vCPU time to take
 * away, and this VMM applies it (vmm_throttle_start()).
 *
 * --streams N (both ends, the same N; default 1) migrates over N TCP
 * connections (KVMIG_XFER_SETUP_STREAMS when N > 1). The source opens them
 * one after the other, each connect() done before the next starts; the
 * destination listens with a backlog of N and accepts them in turn, so
 * that both ends name them in the same order. Should they still arrive
 * out of order (a lost ACK lets a later connection be queued first), the
 * handshake says so: the session fails with KVMIG_FAIL_STREAMS.
 *
 * --tls-psk FILE (both ends, the same key) encrypts every connection with
 * kTLS: FILE holds a pre-shared key in hex, 32 to 128 bytes (openssl rand
 * -hex 32). Once all connections are up, each in turn gets its own TLS 1.3
 * handshake (lib/ktls.c: the source is the client, the key authenticates
 * both ends, an (EC)DHE exchange makes each connection's keys), and its
 * keys go into the kernel (TCP_ULP "tls") before KVMIG_XFER_SETUP hands
 * the connections to kvmig, which sends and receives through kTLS as
 * through plain TCP.
 *
 * --rdma (both ends) migrates over RDMA (KVMIG_XFER_SETUP_RDMA, the
 * module's KVMIG_F0_RDMA): the TCP connection is made as without it, and
 * kvmig sets up through it one RDMA connection (rdma_cm, reliably
 * connected) between the two ends' addresses on that connection, then
 * lets it go. The RDMA device must carry those addresses: --listen and
 * --connect name an IPv4 address of its netdev (on soft-RoCE, rxe, of the
 * netdev it was added on). One connection, in clear: not with --streams
 * more than 1, nor with --tls-psk.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kvmig.h"
#include "ktls.h"
#include "names.h"
#include "tcpinfo.h"
#include "vmm.h"

#define STR(x)	#x
#define XSTR(x)	STR(x)

/*
 * Guest: %esi = mailbox { u32 base gpa, u32 pages, u32 batch }. Stamps
 * batch pages (sweep number at +0, page index at +4), then OUT.
 */
asm(".pushsection .rodata.guest, \"a\"\n"
    ".global guest_sweeper, guest_sweeper_end\n"
    ".code32\n"
    "guest_sweeper:\n"
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
    "guest_sweeper_end:\n"
    ".code64\n"
    ".popsection\n");
extern const char guest_sweeper[], guest_sweeper_end[];

#define BATCH		64
#define STATE_MAGIC	0x6b766d67
#define EXIT_IN_DOUBT	3

/* --tls-psk: the pre-shared key; len 0, no TLS. */
struct psk {
	unsigned char key[KTLS_PSK_MAX];
	int len;
};

struct state {
	uint32_t magic;
	uint32_t pad;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "kvmig-demo: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Guest pages populated (mincore) and this process's page tables, in kB. */
static void print_memory(const char *who, struct vmm *vmm)
{
	unsigned long long res = 0, all = 0, pte = 0;
	unsigned char *vec;
	char line[128];
	unsigned int i;
	size_t n, j;
	FILE *f;

	for (i = 0; i < vmm->cfg.nr_slots; i++) {
		n = vmm->slots[i].size / 4096;
		vec = malloc(n);
		if (!vec || mincore(vmm->slots[i].hva, vmm->slots[i].size, vec))
			die("mincore");
		for (j = 0; j < n; j++)
			res += vec[j] & 1;
		all += n;
		free(vec);
	}
	f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPTE: %llu", &pte) == 1)
			break;
	if (f)
		fclose(f);
	printf("%s: guest memory populated: %llu of %llu pages, page tables %llu kB\n",
	       who, res, all, pte);
}

/*
 * FNV-1a over guest memory, 64-bit words, of the pages that are not zero,
 * each with its index: so that a sparse guest's holes, which mincore()
 * shows are not populated and so read as zero, are neither read nor
 * faulted in, and the two ends agree whatever each has populated.
 */
static uint64_t checksum(struct vmm *vmm)
{
	uint64_t h = 0xcbf29ce484222325ULL, page;
	unsigned char *vec;
	unsigned int i;
	size_t j, n;

	for (i = 0; i < vmm->cfg.nr_slots; i++) {
		const uint64_t *p = (const uint64_t *)vmm->slots[i].hva;

		n = vmm->slots[i].size / 4096;
		vec = malloc(n);
		if (!vec || mincore(vmm->slots[i].hva, vmm->slots[i].size, vec))
			die("mincore");
		for (page = 0; page < n; page++, p += 512) {
			if (!(vec[page] & 1))
				continue;
			for (j = 0; j < 512 && !p[j]; j++)
				;
			if (j == 512)
				continue;
			h = (h ^ (page + ((uint64_t)i << 40))) * 0x100000001b3ULL;
			for (j = 0; j < 512; j++)
				h = (h ^ p[j]) * 0x100000001b3ULL;
		}
		free(vec);
	}
	return h;
}

/*
 * A transfer call. Interrupted by a signal, it is called again: that waits
 * for the same work, which went on meanwhile, and returns its result.
 */
static int xfer(int dev, unsigned long req, void *arg)
{
	int ret;

	do
		ret = ioctl(dev, req, arg);
	while (ret && errno == EINTR);
	return ret;
}

static int session(struct vmm *vmm, uint32_t role, uint32_t mode)
{
	struct kvmig_attach a = { .vm_fd = vmm->vm, .role = role,
				  .dirty_mode = mode };
	int dev = open("/dev/kvmig", O_RDWR | O_CLOEXEC);

	if (dev < 0)
		die("/dev/kvmig");
	if (ioctl(dev, KVMIG_ATTACH_VM, &a))
		die("KVMIG_ATTACH_VM");
	return dev;
}

static void parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');

	if (!colon || colon - s >= (long)sizeof(host)) {
		fprintf(stderr, "kvmig-demo: address must be ADDR:PORT\n");
		exit(2);
	}
	memcpy(host, s, colon - s);
	host[colon - s] = 0;
	sa->sin_family = AF_INET;
	sa->sin_port = htons(atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
		fprintf(stderr, "kvmig-demo: bad address %s\n", host);
		exit(2);
	}
}

/* Whether the module has feature bit @bit of word 0 (KVMIG_F0_*). */
static bool has_feature(int dev, uint64_t bit)
{
	uint64_t feat = 0;
	struct kvmig_api api = { .nr_features = 1,
				 .features_ptr = (uintptr_t)&feat };

	return !ioctl(dev, KVMIG_GET_API, &api) && (feat & bit);
}

/*
 * --streams: more than one connection needs KVMIG_F0_STREAMS. Checked
 * before any connection is made, so that the peer is not left waiting.
 */
static void check_streams(int dev, unsigned int nr)
{
	if (nr > 1 && !has_feature(dev, KVMIG_F0_STREAMS)) {
		fprintf(stderr, "kvmig-demo: --streams %u: this kvmig module migrates over one connection only (no KVMIG_F0_STREAMS)\n",
			nr);
		exit(2);
	}
}

/*
 * --rdma needs KVMIG_F0_RDMA: a module built where the kernel has the RDMA
 * CM. Checked, as --streams is, before any connection is made.
 */
static void check_rdma(int dev, bool rdma)
{
	if (rdma && !has_feature(dev, KVMIG_F0_RDMA)) {
		fprintf(stderr, "kvmig-demo: --rdma: this kvmig module cannot migrate over RDMA (no KVMIG_F0_RDMA)\n");
		exit(2);
	}
}

/*
 * The connections @socks[0..@nr) into @su: the first as @sock_fd, the
 * others, with KVMIG_XFER_SETUP_STREAMS, in @fds, in order. One
 * connection: no flag, as before streams.
 */
static void set_streams(struct kvmig_xfer_setup *su, const int *socks,
			unsigned int nr, uint32_t *fds)
{
	unsigned int i;

	su->sock_fd = socks[0];
	if (nr < 2)
		return;
	for (i = 1; i < nr; i++)
		fds[i - 1] = socks[i];
	su->flags |= KVMIG_XFER_SETUP_STREAMS;
	su->nr_streams = nr;
	su->streams_ptr = (uintptr_t)fds;
}

/*
 * --tls-psk: a TLS 1.3 handshake on each connection, in the order both
 * ends name them, the source as the client; then kTLS on it. Before
 * KVMIG_XFER_SETUP: from then on the kernel alone reads and writes them.
 */
static void tls_streams(const char *who, const struct psk *psk,
			const int *socks, unsigned int nr, uint32_t io_ms)
{
	struct ktls_opts o = { .timeout_ms = io_ms };
	bool server = !strcmp(who, "dest");
	double t0 = now();
	char err[512];
	unsigned int i;
	int ret;

	for (i = 0; i < nr; i++) {
		ret = ktls_handshake_opts(socks[i], server, psk->key, psk->len,
					  &o, err, sizeof(err));
		if (!ret)
			continue;
		fprintf(stderr, "kvmig-demo: %s: ", who);
		if (nr > 1)
			fprintf(stderr, "connection %u of %u: ", i + 1, nr);
		fprintf(stderr, "%s%s\n", err, ret == -ENOENT ? "" :
			"; both ends need --tls-psk, with the same key");
		exit(1);
	}
	printf("%s: tls: " KTLS_DESCRIPTION ", %u handshake%s (pre-shared key) in %.1f ms\n",
	       who, nr, nr == 1 ? "" : "s", (now() - t0) * 1e3);
}

/*
 * What TCP counted on the connections (payload bytes, retransmissions
 * too), for setting beside kvmig's bytes sent and a capture's: @prefix
 * starts the line.
 */
static void print_tcp(const char *prefix, const int *socks, unsigned int nr)
{
	struct tcp_counts c = {};
	unsigned int i;

	for (i = 0; i < nr; i++)
		if (tcp_counts_add(socks[i], &c))
			return;
	printf("%s sent %llu bytes (%llu retransmitted, %llu segments), %llu acked, received %llu\n",
	       prefix, c.bytes_sent, c.bytes_retrans, c.segs_retrans,
	       c.bytes_acked, c.bytes_received);
}

static void close_streams(const int *socks, unsigned int nr)
{
	unsigned int i;

	for (i = 0; i < nr; i++)
		close(socks[i]);
}

struct runner {
	struct vmm *vmm;
	double rate;
	atomic_bool pause;
	atomic_ulong pages;
	unsigned long warm;	/* pages written unpaced first (--touch) */
	int err;
};

/*
 * The guest's vCPU thread, paced at rate pages per second; with --touch,
 * after a first pass at full speed over what it touches.
 */
static void *run_guest(void *arg)
{
	struct runner *r = arg;
	double t0 = now();
	unsigned long base = 0;

	while (!atomic_load(&r->pause)) {
		r->err = vmm_run(r->vmm);
		if (r->err)
			break;
		atomic_fetch_add(&r->pages, BATCH);
		if (r->warm && !base) {
			if (atomic_load(&r->pages) < r->warm)
				continue;
			base = atomic_load(&r->pages);
			t0 = now();
		}
		if (r->rate > 0) {
			double due = t0 + (atomic_load(&r->pages) - base) / r->rate;
			double d = due - now();

			if (d > 0)
				usleep(d * 1e6);
		}
	}
	return NULL;
}

/* KVM_EXIT_DIRTY_RING_FULL on the source: kvmig harvests the rings. */
static int ring_full(struct vmm *vmm, void *arg)
{
	struct kvmig_harvest h = {};
	long ret;

	if (!ioctl(*(int *)arg, KVMIG_DIRTY_HARVEST, &h))
		return 0;
	if (errno != ESTALE)
		return -errno;
	/*
	 * The session failed (the link broke, the migration was cancelled):
	 * kvmig harvests no more. The guest runs on here, so this VMM takes
	 * its rings back, or a vCPU with a full ring could never run again.
	 */
	ret = vmm_reclaim_rings(vmm);
	return ret < 0 ? ret : 0;
}

static struct vmm_config config(unsigned long mib, enum vmm_dirty mode)
{
	static struct kvm_cpuid2 *cpuid;
	struct vmm_config cfg = {
		.dirty = mode, .nr_vcpus = 1, .nr_slots = 1,
		.slot_size = mib << 20,
	};

	/* As a VMM's "-cpu host": what this host's KVM offers. */
	if (!cpuid)
		cpuid = vmm_supported_cpuid();
	if (!cpuid)
		die("KVM_GET_SUPPORTED_CPUID");
	cfg.cpuid = cpuid;
	return cfg;
}

/* --throttle off, auto or rate=PAGES/S; false if it is none of them. */
static bool parse_throttle(const char *s, struct kvmig_throttle *t)
{
	char *end;

	memset(t, 0, sizeof(*t));
	if (!strcmp(s, "off")) {
		t->policy = KVMIG_THROTTLE_OFF;
		return true;
	}
	if (!strcmp(s, "auto")) {
		/* QEMU's cpu-throttle-initial, -increment and max-cpu-throttle */
		t->policy = KVMIG_THROTTLE_AUTO;
		t->initial_pct = 20;
		t->step_pct = 10;
		t->max_pct = 99;
		return true;
	}
	if (strncmp(s, "rate=", 5))
		return false;
	t->policy = KVMIG_THROTTLE_RATE;
	t->dirty_rate = strtoull(s + 5, &end, 0);
	t->max_pct = 99;
	return s[5] && !*end && t->dirty_rate;
}

/* --priority: the source's weight in the host's bandwidth budget. */
static uint32_t priority = KVMIG_PRIORITY_STANDARD;

/* How long this session waited under the host's max_outgoing, in s. */
static double queue_wait(void)
{
	struct kvmig_session_info info[64];
	struct kvmig_list l = { .nr_sessions = 64,
				.sessions_ptr = (uintptr_t)info };
	int fd = open("/dev/kvmig", O_RDWR | O_CLOEXEC);
	double wait = -1;
	unsigned int i;

	/* Any fd lists; ours is the process's only session (by pid). */
	if (fd < 0)
		return -1;
	if (!ioctl(fd, KVMIG_LIST_SESSIONS, &l))
		for (i = 0; i < l.nr_filled; i++)
			if (info[i].pid == (uint32_t)getpid() &&
			    info[i].stats.role == KVMIG_ROLE_SOURCE)
				wait = info[i].wait_ns / 1e9;
	close(fd);
	return wait;
}

/* --uuid and --dry-run: the pre-check (KVMIG_SET_CHECK). */
static bool has_uuid, dry_run;
static uint8_t uuid[16];

/* "6b766d69-6700-...": 32 hex digits, dashes anywhere. */
static bool parse_uuid(const char *s, uint8_t *out)
{
	unsigned int n = 0, v;

	for (; *s; s++) {
		if (*s == '-')
			continue;
		if (n == 32 || sscanf((char[2]){ *s, 0 }, "%1x", &v) != 1)
			return false;
		out[n / 2] = (out[n / 2] << 4) | v;
		n++;
	}
	return n == 32;
}

/*
 * What the pre-check compares: the identity, if given; at the destination
 * also what this host's KVM offers a guest.
 */
static void set_check(int dev, bool dest)
{
	struct kvmig_check_setup c = {};
	struct kvm_cpuid2 *cpuid = NULL;

	if (has_uuid) {
		c.flags |= KVMIG_CHECK_UUID;
		memcpy(c.uuid, uuid, sizeof(uuid));
	}
	if (dest) {
		cpuid = vmm_supported_cpuid();
		if (!cpuid)
			die("KVM_GET_SUPPORTED_CPUID");
		c.flags |= KVMIG_CHECK_CPUID;
		c.nr_cpuid = cpuid->nent;
		c.cpuid_ptr = (uintptr_t)cpuid->entries;
	}
	if (ioctl(dev, KVMIG_SET_CHECK, &c))
		die("KVMIG_SET_CHECK");
	free(cpuid);
}

/* The pre-check's findings, as kvmigctl check prints them. */
static void print_check(const char *who, int dev)
{
	struct kvmig_finding f[KVMIG_MAX_FINDINGS];
	struct kvmig_check c = { .nr_findings = KVMIG_MAX_FINDINGS,
				 .findings_ptr = (uintptr_t)f };
	char text[256];
	uint32_t i;

	if (ioctl(dev, KVMIG_GET_CHECK, &c))
		die("KVMIG_GET_CHECK");
	printf("%s: pre-check %s, %u finding%s\n", who,
	       kvmig_check_status_name(c.status), c.nr_filled,
	       c.nr_filled == 1 ? "" : "s");
	for (i = 0; i < c.nr_filled; i++) {
		kvmig_finding_text(&f[i], text, sizeof(text));
		printf("%s:   %-7s %-18s %s\n", who,
		       f[i].severity == KVMIG_CHECK_ERROR ? "error" : "warning",
		       kvmig_finding_name(f[i].code), text);
	}
}

static int dest(const char *addr, unsigned long mib, uint32_t io_ms,
		unsigned int nr_streams, const struct psk *psk, bool rdma)
{
	struct vmm_config cfg = config(mib, VMM_DIRTY_BITMAP);
	struct sockaddr_in sa;
	struct kvmig_xfer_setup su = {};
	struct kvmig_recv rv = {};
	struct kvmig_stats st = {};
	struct state state;
	struct runner run = {};
	struct vmm vmm;
	int socks[KVMIG_MAX_STREAMS] = {};
	uint32_t fds[KVMIG_MAX_STREAMS - 1];
	int l, dev, one = 1, ret, err;
	unsigned int i;
	double t_resume;
	uint32_t ebp, edi;

	parse_addr(addr, &sa);
	ret = vmm_create(&vmm, &cfg);
	if (ret) {
		errno = -ret;
		die("creating the destination VM");
	}
	dev = session(&vmm, KVMIG_ROLE_DEST, KVMIG_DIRTY_AUTO);
	check_streams(dev, nr_streams);
	check_rdma(dev, rdma);
	set_check(dev, true);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* A backlog of all of them: the source connects without waiting. */
	if (l < 0 || bind(l, (void *)&sa, sizeof(sa)) || listen(l, nr_streams))
		die("listen");
	if (nr_streams > 1)
		printf("dest: listening on %s, %lu MiB guest, %u TCP connections\n",
		       addr, mib, nr_streams);
	else if (rdma)
		printf("dest: listening on %s, %lu MiB guest, over RDMA set up through TCP\n",
		       addr, mib);
	else
		printf("dest: listening on %s, %lu MiB guest\n", addr, mib);
	fflush(stdout);
	for (i = 0; i < nr_streams; i++) {
		/*
		 * The first may come any time; each other follows at once
		 * from a source with as many, so waiting longer than the
		 * I/O timeout for it means the source opens fewer.
		 */
		struct pollfd pfd = { .fd = l, .events = POLLIN };

		if (i) {
			ret = poll(&pfd, 1, io_ms ?: 10000);
			if (ret < 0)
				die("poll");
			if (!ret) {
				fprintf(stderr, "kvmig-demo: dest: %u of %u connections came in %u ms: does the source use --streams %u?\n",
					i, nr_streams, io_ms ?: 10000,
					nr_streams);
				exit(1);
			}
		}
		socks[i] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (socks[i] < 0)
			die("accept");
	}
	/* A source with more connections is refused, not left queued. */
	close(l);
	if (psk->len)
		tls_streams("dest", psk, socks, nr_streams, io_ms);
	set_streams(&su, socks, nr_streams, fds);
	if (rdma)
		su.flags |= KVMIG_XFER_SETUP_RDMA;
	su.io_timeout_ms = io_ms;
	err = xfer(dev, KVMIG_XFER_SETUP, &su) ? errno : 0;
	print_check("dest", dev);
	ioctl(dev, KVMIG_GET_STATS, &st);
	if (st.state == KVMIG_STATE_CHECKED) {
		printf("dest: dry run over, no page moved: %s\n",
		       err ? "the migration would be refused" :
		       "the migration may go ahead");
		return err ? 1 : 0;
	}
	if (err) {
		errno = err;
		die("KVMIG_XFER_SETUP");
	}
	rv.state_ptr = (uintptr_t)&state;
	rv.state_cap = sizeof(state);
	err = xfer(dev, KVMIG_XFER_RECV, &rv) ? errno : 0;
	if (err == EINPROGRESS) {
		/*
		 * Everything arrived, COMMIT did not: the source may be
		 * running the guest, or may be about to. Running it here too
		 * could make two; discarding it could make none.
		 */
		printf("dest: KVMIG_XFER_RECV: outcome in doubt: received %llu pages and the state, but no COMMIT\n",
		       (unsigned long long)rv.pages_received);
		printf("dest: outcome in doubt: not resuming and not discarding, the orchestrator must settle it (KVMIG_XFER_RESOLVE through this VMM)\n");
		return EXIT_IN_DOUBT;
	}
	if (err) {
		ioctl(dev, KVMIG_GET_STATS, &st);
		printf("dest: KVMIG_XFER_RECV failed: %s (reason %u, %s); discarding the partial VM\n",
		       strerror(err), st.fail_reason,
		       kvmig_fail_name(st.fail_reason));
		vmm_destroy(&vmm);
		return 1;
	}
	if (rv.state_len != sizeof(state) || state.magic != STATE_MAGIC) {
		fprintf(stderr, "kvmig-demo: bad device state\n");
		return 1;
	}
	printf("dest: received %llu pages, %llu zero pages, %llu rounds\n",
	       (unsigned long long)rv.pages_received,
	       (unsigned long long)rv.zero_pages,
	       (unsigned long long)rv.rounds);
	print_memory("dest", &vmm);
	if (ioctl(vmm.vcpus[0].fd, KVM_SET_SREGS, &state.sregs) ||
	    ioctl(vmm.vcpus[0].fd, KVM_SET_REGS, &state.regs))
		die("restoring the vCPU");
	t_resume = now();
	/* Before the guest runs again: the memory it resumes with. */
	printf("dest: memory checksum at resume %016llx\n",
	       (unsigned long long)checksum(&vmm));
	printf("dest: resumed at %.6f, guest counters sweep %llu page %llu\n",
	       t_resume, (unsigned long long)state.regs.rbp,
	       (unsigned long long)state.regs.rdi);
	fflush(stdout);

	/* Let the guest carry on for a while, then look at its counters. */
	run.vmm = &vmm;
	for (int i = 0; i < 50; i++)
		if (vmm_run(&vmm))
			die("running the migrated guest");
	if (ioctl(vmm.vcpus[0].fd, KVM_GET_REGS, &state.regs))
		die("KVM_GET_REGS");
	memcpy(&ebp, vmm.slots[0].hva + ((state.regs.rdi + cfg.slot_size / 4096 - 1) %
					  (cfg.slot_size / 4096)) * 4096, 4);
	memcpy(&edi, vmm.slots[0].hva + ((state.regs.rdi + cfg.slot_size / 4096 - 1) %
					  (cfg.slot_size / 4096)) * 4096 + 4, 4);
	printf("dest: guest carried on: sweep %llu page %llu (last page stamped: sweep %u page %u)\n",
	       (unsigned long long)state.regs.rbp,
	       (unsigned long long)state.regs.rdi, ebp, edi);
	if (!rdma)
		print_tcp("dest: tcp (TCP_INFO):", socks, nr_streams);
	ioctl(dev, KVMIG_GET_STATS, &st);
	close(dev);
	close_streams(socks, nr_streams);
	vmm_destroy(&vmm);
	(void)run;
	return 0;
}

/*
 * The migration failed: the source guest is intact, so resume it (if it
 * was paused) and show that it runs on.
 */
static int source_failed(struct runner *run, pthread_t *t, int dev,
			 const char *what)
{
	struct kvmig_stats st = {};
	struct kvm_regs regs;
	int err = errno;

	ioctl(dev, KVMIG_GET_STATS, &st);
	printf("source: %s failed: %s (session state %u, reason %u, %s)\n",
	       what, strerror(err), st.state, st.fail_reason,
	       kvmig_fail_name(st.fail_reason));
	/* No migration left to converge: the guest runs at full speed. */
	vmm_throttle_stop(run->vmm);
	if (atomic_load(&run->pause)) {
		atomic_store(&run->pause, false);
		pthread_create(t, NULL, run_guest, run);
	}
	usleep(500000);
	atomic_store(&run->pause, true);
	pthread_join(*t, NULL);
	ioctl(run->vmm->vcpus[0].fd, KVM_GET_REGS, &regs);
	printf("source: guest resumed and running: sweep %llu page %llu (%s)\n",
	       (unsigned long long)regs.rbp, (unsigned long long)regs.rdi,
	       run->err ? "guest error" : "ok");
	return 1;
}

/*
 * COMMIT went out and was not acknowledged: the destination may be
 * running the guest already. Resuming here could make two of it, so the
 * guest stays paused until the orchestrator, which can ask both hosts,
 * settles the session.
 */
static int source_in_doubt(int dev)
{
	struct kvmig_stats st = {};

	ioctl(dev, KVMIG_GET_STATS, &st);
	printf("source: KVMIG_XFER_FINAL: COMMIT sent, not acknowledged (session state %u)\n",
	       st.state);
	printf("source: outcome in doubt: not resuming, the orchestrator must settle it (KVMIG_XFER_RESOLVE through this VMM)\n");
	return EXIT_IN_DOUBT;
}

static int source(const char *addr, unsigned long mib, unsigned long touch,
		  double rate,
		  uint64_t downtime_ms, uint32_t max_rounds, uint64_t bw,
		  uint32_t io_ms, enum vmm_dirty mode,
		  const struct kvmig_throttle *thr, unsigned int nr_streams,
		  const struct psk *psk, bool rdma)
{
	struct vmm_config cfg = config(mib, mode);
	struct kvmig_xfer_setup su = {};
	struct kvmig_dirty_start ds = {};
	struct kvmig_final f = {};
	struct kvmig_round r;
	struct kvmig_stats st = {};
	struct runner run = { .rate = rate, .warm = touch << 8 };
	struct sockaddr_in sa;
	struct state state = { .magic = STATE_MAGIC };
	struct vmm vmm;
	uint32_t *mbox;
	pthread_t t;
	double t0, t_pause, t_done, t_round0 = 0, wait = 0;
	uint64_t sum, slept_ns, pages = (touch ?: mib) << 8;
	int socks[KVMIG_MAX_STREAMS] = {};
	uint32_t fds[KVMIG_MAX_STREAMS - 1];
	int dev, one = 1, ret, tries;
	unsigned int i;

	parse_addr(addr, &sa);
	/*
	 * 4096 entries, the size QEMU's documentation suggests: smaller than
	 * what the guest dirties in a round, so that its ring fills, and
	 * kvmig's throttle, which acts when it does, can pace it.
	 */
	if (mode == VMM_DIRTY_RING)
		cfg.ring_bytes = 4096 * sizeof(struct kvm_dirty_gfn);
	ret = vmm_create(&vmm, &cfg);
	if (ret) {
		errno = -ret;
		die("creating the source VM");
	}
	vmm_load(&vmm, guest_sweeper, guest_sweeper_end - guest_sweeper);
	mbox = vmm_mbox(&vmm, 0);
	mbox[0] = vmm.slots[0].gpa;
	mbox[1] = pages;	/* --touch: the rest is never populated */
	mbox[2] = BATCH;
	dev = session(&vmm, KVMIG_ROLE_SOURCE, mode == VMM_DIRTY_RING ?
		      KVMIG_DIRTY_RING : KVMIG_DIRTY_BITMAP);
	check_streams(dev, nr_streams);
	check_rdma(dev, rdma);
	if (ioctl(dev, KVMIG_DIRTY_START, &ds))
		die("KVMIG_DIRTY_START");
	set_check(dev, false);
	if (thr) {
		if (ioctl(dev, KVMIG_SET_THROTTLE, thr))
			die("KVMIG_SET_THROTTLE");
		/* In bitmap mode kvmig only says how much: the VMM acts. */
		ret = 0;
		if (mode == VMM_DIRTY_BITMAP && thr->policy != KVMIG_THROTTLE_OFF)
			ret = vmm_throttle_start(&vmm, dev);
		if (ret) {
			errno = -ret;
			die("starting the throttle");
		}
	}

	run.vmm = &vmm;
	if (mode == VMM_DIRTY_RING) {
		vmm.ring_full = ring_full;
		vmm.ring_full_arg = &dev;
	}
	pthread_create(&t, NULL, run_guest, &run);
	if (rate > 0)
		printf("source: guest running, %lu MiB, writing %.0f pages/s",
		       mib, rate);
	else
		printf("source: guest running, %lu MiB, writing as fast as it can",
		       mib);
	printf(", %s dirty tracking, throttle %s\n",
	       mode == VMM_DIRTY_RING ? "ring" : "bitmap",
	       thr ? kvmig_throttle_name(thr->policy) : "not set");
	/* Let the guest stamp all its memory once before migrating. */
	while (atomic_load(&run.pages) < pages && !run.err)
		usleep(10000);
	printf("source: guest has written %llu of %lu pages once, migrating\n",
	       (unsigned long long)pages, cfg.slot_size / 4096);

	/*
	 * One connection after the other, each connected before the next
	 * starts, so that the destination accepts them in this order. The
	 * destination may not be listening yet when the first is tried; once
	 * it accepted that one, it listens for all of them.
	 */
	for (i = 0; i < nr_streams; i++) {
		socks[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (socks[i] < 0)
			die("socket");
		setsockopt(socks[i], IPPROTO_TCP, TCP_NODELAY, &one,
			   sizeof(one));
		for (tries = 0; connect(socks[i], (void *)&sa, sizeof(sa));
		     tries++) {
			if (i) {
				fprintf(stderr, "kvmig-demo: connection %u of %u: %s: does the destination use --streams %u?\n",
					i + 1, nr_streams, strerror(errno),
					nr_streams);
				exit(1);
			}
			if (tries > 50)
				die("connect");
			usleep(100000);
		}
	}
	if (psk->len)
		tls_streams("source", psk, socks, nr_streams, io_ms);
	set_streams(&su, socks, nr_streams, fds);
	if (rdma)
		su.flags |= KVMIG_XFER_SETUP_RDMA;
	su.downtime_ns = downtime_ms * 1000000ULL;
	su.max_rounds = max_rounds;
	su.bandwidth = bw;
	su.io_timeout_ms = io_ms;
	su.priority = priority;
	if (dry_run)
		su.flags |= KVMIG_XFER_SETUP_DRY_RUN;
	ret = xfer(dev, KVMIG_XFER_SETUP, &su) ? errno : 0;
	print_check("source", dev);
	if (dry_run) {
		printf("source: dry run over, no page moved: %s\n",
		       ret ? "the migration would be refused" :
		       "the migration may go ahead");
		errno = ret;
		if (ret && ret != ECONNREFUSED)
			return source_failed(&run, &t, dev, "KVMIG_XFER_SETUP");
		atomic_store(&run.pause, true);
		pthread_join(t, NULL);
		return ret ? 1 : 0;
	}
	errno = ret;
	if (ret)
		return source_failed(&run, &t, dev, "KVMIG_XFER_SETUP");
	t0 = now();
	if (nr_streams > 1)
		printf("source: connected to %s over %u TCP connections, memslot layout accepted\n",
		       addr, nr_streams);
	else if (rdma)
		printf("source: connected to %s over RDMA, memslot layout accepted\n",
		       addr);
	else
		printf("source: connected to %s, memslot layout accepted\n",
		       addr);
	printf("source: round     sent    zero  remaining  dirty pg/s   MB/s  thr%%  expected downtime\n");
	for (;;) {
		memset(&r, 0, sizeof(r));
		if (xfer(dev, KVMIG_XFER_ROUND, &r))
			return source_failed(&run, &t, dev, "KVMIG_XFER_ROUND");
		if (!r.round) {
			t_round0 = now() - t0;
			wait = queue_wait();
			if (wait > 0)
				printf("source: waited %.3f s for its turn (the host's max_outgoing)\n",
				       wait);
		}
		memset(&st, 0, sizeof(st));
		ioctl(dev, KVMIG_GET_STATS, &st);
		printf("source: %5llu %8llu %7llu %10llu %11llu %6.1f  %4u  ",
		       (unsigned long long)r.round,
		       (unsigned long long)r.pages_sent,
		       (unsigned long long)r.zero_pages,
		       (unsigned long long)r.remaining,
		       (unsigned long long)st.dirty_rate,
		       st.throughput / 1e6, st.throttle_pct);
		if (r.expected_downtime_ns == UINT64_MAX)
			printf("-\n");
		else
			printf("%.1f ms\n", r.expected_downtime_ns / 1e6);
		fflush(stdout);
		if (r.status != KVMIG_ROUND_SENT)
			break;
	}
	printf("source: %s after %llu rounds\n",
	       r.status == KVMIG_ROUND_CONVERGED ? "converged" :
	       r.status == KVMIG_ROUND_MAX_ROUNDS ? "max rounds reached" :
	       "timed out", (unsigned long long)r.round);

	/*
	 * Switchover: pause the guest, checksum, hand over its vCPU. A
	 * throttle sleep would delay the pause: the applier's stop ends it.
	 */
	t_pause = now();
	vmm_throttle_stop(&vmm);
	atomic_store(&run.pause, true);
	pthread_join(t, NULL);
	if (run.err) {
		fprintf(stderr, "kvmig-demo: guest failed\n");
		return 1;
	}
	if (ioctl(vmm.vcpus[0].fd, KVM_GET_REGS, &state.regs) ||
	    ioctl(vmm.vcpus[0].fd, KVM_GET_SREGS, &state.sregs))
		die("saving the vCPU");
	f.state_ptr = (uintptr_t)&state;
	f.state_len = sizeof(state);
	if (xfer(dev, KVMIG_XFER_FINAL, &f)) {
		if (errno == EINPROGRESS)
			return source_in_doubt(dev);
		return source_failed(&run, &t, dev, "KVMIG_XFER_FINAL");
	}
	t_done = now();
	/* Still paused: the memory is what was sent. */
	sum = checksum(&vmm);
	printf("source: paused at %.6f, guest counters sweep %llu page %llu\n",
	       t_pause, (unsigned long long)state.regs.rbp,
	       (unsigned long long)state.regs.rdi);
	printf("source: memory checksum at pause  %016llx\n",
	       (unsigned long long)sum);
	print_memory("source", &vmm);
	memset(&st, 0, sizeof(st));
	ioctl(dev, KVMIG_GET_STATS, &st);
	printf("\nsource: migration report\n");
	if (rdma)
		printf("  transport           RDMA (KVMIG_XFER_SETUP_RDMA), 1 connection\n");
	else
		printf("  streams             %u TCP connection%s%s\n", nr_streams,
		       nr_streams == 1 ? "" : "s",
		       nr_streams == 1 ? "" : " (KVMIG_XFER_SETUP_STREAMS)");
	if (psk->len)
		printf("  tls                 " KTLS_DESCRIPTION ", a handshake per connection (pre-shared key)\n");
	printf("  rounds              %llu pre-copy + final\n",
	       (unsigned long long)st.xfer_round);
	printf("  pages sent          %llu (%llu spliced zero-copy, %llu copied), %llu zero pages skipped (%llu never populated)\n",
	       (unsigned long long)st.pages_sent,
	       (unsigned long long)st.pages_spliced,
	       (unsigned long long)st.pages_copied,
	       (unsigned long long)st.zero_pages,
	       (unsigned long long)st.hole_pages);
	printf("  round 0             %.3f s (%.3f s of it waiting for its turn), %llu pages never populated passed over\n",
	       t_round0, wait > 0 ? wait : 0, (unsigned long long)st.hole_pages);
	printf("  priority            %s\n",
	       priority == KVMIG_PRIORITY_HIGH ? "high" : "standard");
	printf("  bytes sent          %llu (%.1f MiB)\n",
	       (unsigned long long)st.bytes_sent, st.bytes_sent / 1048576.0);
	printf("  total time          %.3f s, throughput %.1f MB/s\n",
	       t_done - t0, st.bytes_sent / (t_done - t0) / 1e6);
	if (!rdma)
		print_tcp("  tcp (TCP_INFO)     ", socks, nr_streams);
	printf("  final pass          %llu pages in %.1f ms (kvmig downtime)\n",
	       (unsigned long long)f.pages_sent, f.downtime_ns / 1e6);
	printf("  pause to done       %.1f ms\n", (t_done - t_pause) * 1e3);
	/* Ring mode: kvmig slept the vCPU; bitmap mode: this VMM did. */
	slept_ns = mode == VMM_DIRTY_RING ? st.throttle_ns :
		   __atomic_load_n(&vmm.throttle_slept_ns, __ATOMIC_RELAXED);
	if (thr)
		printf("  throttle            %s, last at %u %%, the vCPU slept %.1f ms (%s)\n",
		       kvmig_throttle_name(st.throttle_policy), st.throttle_pct,
		       slept_ns / 1e6, mode == VMM_DIRTY_RING ?
		       "in kvmig" : "in this VMM");
	close(dev);
	close_streams(socks, nr_streams);
	vmm_destroy(&vmm);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "connect", required_argument, NULL, 'c' },
		{ "mem", required_argument, NULL, 'm' },
		{ "touch", required_argument, NULL, 'u' },
		{ "rate", required_argument, NULL, 'r' },
		{ "downtime", required_argument, NULL, 'd' },
		{ "max-rounds", required_argument, NULL, 'n' },
		{ "bandwidth", required_argument, NULL, 'b' },
		{ "io-timeout", required_argument, NULL, 't' },
		{ "dirty", required_argument, NULL, 'D' },
		{ "throttle", required_argument, NULL, 'T' },
		{ "streams", required_argument, NULL, 's' },
		{ "tls-psk", required_argument, NULL, 'K' },
		{ "rdma", no_argument, NULL, 'R' },
		{ "uuid", required_argument, NULL, 'U' },
		{ "dry-run", no_argument, NULL, 'N' },
		{ "priority", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *addr = NULL;
	unsigned long mib = 128, touch = 0;
	double rate = 10000;
	uint64_t downtime = 300, bw = 0;
	uint32_t rounds = 30, io_ms = 0;
	enum vmm_dirty mode = VMM_DIRTY_RING;
	struct kvmig_throttle thr;
	bool throttle = false, rdma = false;
	unsigned long streams = 1;
	static struct psk psk;
	char *end, err[512];
	int c;

	/* Line by line even into a file: tests and scripts follow progress. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	while ((c = getopt_long(argc, argv, "l:c:m:u:r:d:n:b:t:D:T:s:hK:RU:NP:", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
		case 'c':
			addr = optarg;
			break;
		case 'm':
			mib = strtoul(optarg, NULL, 0);
			break;
		case 'u':
			touch = strtoul(optarg, NULL, 0);
			break;
		case 'r':
			rate = atof(optarg);
			break;
		case 'd':
			downtime = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			rounds = strtoul(optarg, NULL, 0);
			break;
		case 'b':
			bw = strtoull(optarg, NULL, 0) * 1000000ULL;
			break;
		case 't':
			io_ms = strtoul(optarg, NULL, 0);
			break;
		case 'D':
			if (!strcmp(optarg, "ring")) {
				mode = VMM_DIRTY_RING;
			} else if (!strcmp(optarg, "bitmap")) {
				mode = VMM_DIRTY_BITMAP;
			} else {
				fprintf(stderr, "kvmig-demo: --dirty ring or bitmap\n");
				return 2;
			}
			break;
		case 'T':
			throttle = parse_throttle(optarg, &thr);
			if (!throttle) {
				fprintf(stderr, "kvmig-demo: --throttle off, auto or rate=PAGES/S\n");
				return 2;
			}
			break;
		case 's':
			errno = 0;
			streams = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || streams < 1 ||
			    streams > KVMIG_MAX_STREAMS) {
				fprintf(stderr, "kvmig-demo: --streams takes 1 to %d TCP connections, not '%s'\n",
					KVMIG_MAX_STREAMS, optarg);
				return 2;
			}
			break;
		case 'K':
			psk.len = ktls_read_psk(optarg, psk.key, err,
						sizeof(err));
			if (psk.len < 0) {
				fprintf(stderr, "kvmig-demo: --tls-psk %s\n", err);
				return 2;
			}
			break;
		case 'R':
			rdma = true;
			break;
		case 'U':
			has_uuid = parse_uuid(optarg, uuid);
			if (!has_uuid || !memcmp(uuid, (uint8_t[16]){ 0 }, 16)) {
				fprintf(stderr, "kvmig-demo: --uuid takes a VM's UUID, 32 hex digits, not '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'N':
			dry_run = true;
			break;
		case 'P':
			if (!strcmp(optarg, "high")) {
				priority = KVMIG_PRIORITY_HIGH;
			} else if (!strcmp(optarg, "standard")) {
				priority = KVMIG_PRIORITY_STANDARD;
			} else {
				fprintf(stderr, "kvmig-demo: --priority high or standard\n");
				return 2;
			}
			break;
		case 'h':
			printf("usage: kvmig-demo dest --listen ADDR:PORT [--mem MIB] [--io-timeout MS] [--streams N]\n"
			       "                  [--tls-psk FILE] [--rdma] [--uuid UUID]\n"
			       "       kvmig-demo source --connect ADDR:PORT [--mem MIB] [--touch MIB] [--rate PAGES/S]\n"
			       "                  [--downtime MS] [--max-rounds N] [--bandwidth MB/S]\n"
			       "                  [--io-timeout MS] [--dirty ring|bitmap]\n"
			       "                  [--throttle off|auto|rate=PAGES/S] [--streams N]\n"
			       "                  [--tls-psk FILE] [--rdma] [--uuid UUID] [--dry-run]\n"
			       "                  [--priority high|standard]\n"
			       "\n"
			       "--mem: guest RAM, up to 65536 MiB (reserved, populated as written)\n"
			       "--touch: the guest writes only its first MIB (up to 3072): a sparse guest\n"
			       "--rate 0: the guest writes as fast as it can\n"
			       "--dirty: how the source tracks dirty pages (default ring)\n"
			       "--throttle: slow down a guest that outruns the link\n"
			       "  auto         QEMU's auto-converge: 20 %% of vCPU time, +10 %% a step, at most 99 %%\n"
			       "  rate=N       hold the guest at N dirty pages/s (at most 99 %% of vCPU time)\n"
			       "  off          never (kvmig's default)\n"
			       "  In ring mode kvmig sleeps the vCPU thread; in bitmap mode this VMM does.\n"
			       "--streams: migrate over N TCP connections, 1 to %d (default 1); both ends\n"
			       "  must give the same N\n"
			       "--tls-psk: encrypt every connection with kTLS after a TLS 1.3 handshake\n"
			       "  authenticated by the pre-shared key in FILE, in hex, %d to %d bytes\n"
			       "  (openssl rand -hex %d > FILE); both ends must give the same key\n"
			       "--rdma: migrate over RDMA, set up through the TCP connection, whose\n"
			       "  addresses an RDMA device must carry (KVMIG_XFER_SETUP_RDMA); both ends;\n"
			       "  one connection, not with --streams above 1 or --tls-psk\n"
			       "--uuid: the VM's identity; the pre-check refuses a peer that names another\n"
			       "--dry-run: the pre-check alone, both ends then exit (0: it would go ahead,\n"
			       "  1: refused); no page moves. The destination passes this host's\n"
			       "  KVM_GET_SUPPORTED_CPUID, against which the guest's CPUID is checked\n"
			       "--priority: the source's share of the host's max_bandwidth (kvmig's\n"
			       "  high_weight against 1); beyond max_outgoing, round 0 waits its turn\n",
			       KVMIG_MAX_STREAMS, KTLS_PSK_MIN, KTLS_PSK_MAX,
			       KTLS_PSK_MIN);
			return 0;
		default:
			return 2;
		}
	}
	/* The guest is 32-bit: what it writes stays below 4 GiB. */
	if (optind != argc - 1 || !addr || !mib || mib > 65536 ||
	    touch > mib || touch > 3072) {
		fprintf(stderr, "kvmig-demo: see --help\n");
		return 2;
	}
	/* RDMA is one connection of its own, and is not encrypted by kTLS. */
	if (rdma && (streams > 1 || psk.len)) {
		fprintf(stderr, "kvmig-demo: --rdma migrates over one RDMA connection: not with %s\n",
			streams > 1 ? "--streams above 1" :
			"--tls-psk (kTLS cannot cover RDMA)");
		return 2;
	}
	/* Before any connection: the peer is not left waiting. */
	if (psk.len && !ktls_available()) {
		fprintf(stderr, "kvmig-demo: --tls-psk: this kernel has no kTLS (modprobe tls)\n");
		return 1;
	}
	if (!strcmp(argv[optind], "dest"))
		return dest(addr, mib, io_ms, streams, &psk, rdma);
	if (!strcmp(argv[optind], "source"))
		return source(addr, mib, touch, rate, downtime, rounds, bw, io_ms,
			      mode, throttle ? &thr : NULL, streams, &psk,
			      rdma);
	fprintf(stderr, "kvmig-demo: dest or source?\n");
	return 2;
}
