// SPDX-License-Identifier: GPL-2.0
/*
 * Harvest cost: kvmig's in-kernel trackers against the standard userspace
 * paths, on the same guest and the same dirty sets.
 *
 *   kvmig-ring    KVMIG_DIRTY_HARVEST on a VM with dirty rings
 *   user-ring     rings reaped from the VMM's mmap + KVM_RESET_DIRTY_RINGS,
 *                 as QEMU's kvm_dirty_ring_reap() does
 *   kvmig-bitmap  KVMIG_DIRTY_HARVEST on a VM with manual protect
 *   user-bitmap   KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG from the VMM
 *
 * Each harvest ends with the dirty set in a per-page bitmap: kvmig's
 * pending set in the kernel, the VMM's own bitmap for the userspace paths
 * (what QEMU merges into its RAMBlock bitmaps). The "+read" column adds
 * KVMIG_DIRTY_READ, which hands kvmig's set to userspace as runs; the
 * in-kernel transfer engine does not need it.
 *
 * For each dirty fraction, the guest writes every k-th page of one data
 * slot, then the harvest is timed; each measurement is checked against
 * the number of pages written. Reported: median over the repetitions.
 * Timing only, no assertion: this is not a test.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "kvmig.h"
#include "vmm.h"

#define STR(x)	#x
#define XSTR(x)	STR(x)

/*
 * Guest: %esi = mailbox { u32 gpa, count, stride }: stores to count
 * addresses from gpa, stride apart, then OUT, and again when run again.
 */
asm(".pushsection .rodata.guest, \"a\"\n"
    ".global guest_sweep, guest_sweep_end\n"
    ".code32\n"
    "guest_sweep:\n"
    "1:	movl (%esi), %eax\n"
    "	movl 4(%esi), %ecx\n"
    "	jecxz 3f\n"
    "2:	movl %ecx, (%eax)\n"
    "	addl 8(%esi), %eax\n"
    "	loop 2b\n"
    "3:	outb %al, $" XSTR(VMM_PORT_DONE) "\n"
    "	jmp 1b\n"
    "guest_sweep_end:\n"
    ".code64\n"
    ".popsection\n");
extern const char guest_sweep[], guest_sweep_end[];

enum method { KVMIG_RING, USER_RING, KVMIG_BITMAP, USER_BITMAP, NR_METHODS };

static const char *const method_name[] = {
	"kvmig-ring", "user-ring", "kvmig-bitmap", "user-bitmap",
};

static const double fractions[] = { 0, 0.001, 0.01, 0.1, 0.5, 1 };
#define NR_FRACTIONS	(sizeof(fractions) / sizeof(fractions[0]))
#define MAX_REPS	15

struct bench {
	enum method m;
	struct vmm vmm;
	int dev;
	uint64_t *bitmap;	/* the VMM's own dirty bitmap (user paths) */
	uint64_t npages;
	long found;		/* pages found by ring-full harvests */
	double ring_full_ns;	/* time in them */
};

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void set_page(void *arg, uint32_t slot, uint64_t offset)
{
	struct bench *b = arg;

	if (offset < b->npages)
		b->bitmap[offset / 64] |= 1ULL << (offset % 64);
}

/* One harvest by the method; returns the pages it found, or -errno. */
static long harvest(struct bench *b)
{
	struct kvmig_harvest h;

	switch (b->m) {
	case KVMIG_RING:
	case KVMIG_BITMAP:
		memset(&h, 0, sizeof(h));
		if (ioctl(b->dev, KVMIG_DIRTY_HARVEST, &h))
			return -errno;
		return h.found;
	case USER_RING:
		return vmm_harvest_ring(&b->vmm, set_page, b);
	case USER_BITMAP:
		return vmm_harvest_bitmap(&b->vmm, set_page, b);
	default:
		return -EINVAL;
	}
}

/* KVM_EXIT_DIRTY_RING_FULL mid-round: harvest, and count its time. */
static int ring_full(struct vmm *vmm, void *arg)
{
	struct bench *b = arg;
	double t0 = now_ns();
	long n = harvest(b);

	if (n < 0)
		return n;
	b->found += n;
	b->ring_full_ns += now_ns() - t0;
	return 0;
}

/* Hand kvmig's pending set out as runs (the "+read" column). */
static long drain(struct bench *b)
{
	static struct kvmig_dirty_run runs[65536];
	struct kvmig_dirty_read r;
	long pages = 0;

	do {
		memset(&r, 0, sizeof(r));
		r.nr_runs = 65536;
		r.runs_ptr = (uintptr_t)runs;
		if (ioctl(b->dev, KVMIG_DIRTY_READ, &r))
			return -errno;
		pages += r.pages;
	} while (r.pending);
	return pages;
}

static int setup(struct bench *b, enum method m, uint64_t slot_size)
{
	struct vmm_config cfg = {
		.dirty = m == KVMIG_RING || m == USER_RING ?
			 VMM_DIRTY_RING : VMM_DIRTY_BITMAP,
		.nr_vcpus = 1,
		.nr_slots = 1,
		.slot_size = slot_size,
		.ring_bytes = 1 << 20,	/* 65536 entries, KVM's largest */
	};
	struct kvmig_attach a = { .role = KVMIG_ROLE_SOURCE };
	struct kvmig_dirty_start st = {};
	int ret;

	memset(b, 0, sizeof(*b));
	b->m = m;
	b->dev = -1;
	b->npages = slot_size / 4096;
	ret = vmm_create(&b->vmm, &cfg);
	if (ret)
		return ret;
	vmm_load(&b->vmm, guest_sweep, guest_sweep_end - guest_sweep);
	b->vmm.ring_full = ring_full;
	b->vmm.ring_full_arg = b;
	b->bitmap = calloc(b->npages / 64 + 1, sizeof(uint64_t));
	if (!b->bitmap)
		return -ENOMEM;
	if (m == USER_RING || m == USER_BITMAP)
		return 0;

	b->dev = open("/dev/kvmig", O_RDWR | O_CLOEXEC);
	if (b->dev < 0)
		return -errno;
	a.vm_fd = b->vmm.vm;
	a.dirty_mode = m == KVMIG_RING ? KVMIG_DIRTY_RING : KVMIG_DIRTY_BITMAP;
	if (ioctl(b->dev, KVMIG_ATTACH_VM, &a) ||
	    ioctl(b->dev, KVMIG_DIRTY_START, &st))
		return -errno;
	return 0;
}

static void teardown(struct bench *b)
{
	if (b->dev >= 0)
		close(b->dev);
	vmm_destroy(&b->vmm);
	free(b->bitmap);
}

/* The guest writes every @stride-th page (0: none), then we harvest. */
static int measure(struct bench *b, uint64_t stride, double *ns,
		   double *read_ns)
{
	uint32_t *mbox = vmm_mbox(&b->vmm, 0);
	uint64_t want = stride ? (b->npages + stride - 1) / stride : 0;
	double t0;
	long n, r = 0;
	int ret;

	mbox[0] = b->vmm.slots[0].gpa;
	mbox[1] = want;
	mbox[2] = stride * 4096;
	b->found = 0;
	b->ring_full_ns = 0;
	ret = vmm_run(&b->vmm);
	if (ret)
		return ret;

	t0 = now_ns();
	n = harvest(b);
	*ns = now_ns() - t0 + b->ring_full_ns;
	if (n < 0)
		return n;
	n += b->found;
	*read_ns = 0;
	if (b->dev >= 0) {
		t0 = now_ns();
		r = drain(b);
		*read_ns = now_ns() - t0;
		if (r < 0)
			return r;
	} else {
		uint64_t i;

		for (i = 0; i < b->npages / 64 + 1; i++)
			r += __builtin_popcountll(b->bitmap[i]);
		memset(b->bitmap, 0, (b->npages / 64 + 1) * sizeof(uint64_t));
	}
	/*
	 * A page can be found twice: a ring-full exit lands between a write's
	 * fault and its retry, which faults again after the reset. The set
	 * of distinct pages must be exact.
	 */
	if ((uint64_t)n < want || (uint64_t)r != want) {
		fprintf(stderr, "%s: stride %llu: wrote %llu pages, found %ld, distinct %ld\n",
			method_name[b->m], (unsigned long long)stride,
			(unsigned long long)want, n, r);
		return -EIO;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	uint64_t slot_mib = argc > 1 ? strtoull(argv[1], NULL, 0) : 256;
	int reps = argc > 2 ? atoi(argv[2]) : 5;
	double res[NR_METHODS][NR_FRACTIONS], rd[NR_METHODS][NR_FRACTIONS];
	double gib = slot_mib / 1024.0, t[MAX_REPS], tr[MAX_REPS], ns, rns;
	uint64_t npages = slot_mib << 8;
	struct bench b;
	unsigned int f;
	int m, i, ret;

	if (reps < 1 || reps > MAX_REPS || !slot_mib || slot_mib > 512) {
		fprintf(stderr, "usage: %s [slot MiB <= 512] [repetitions <= %d]\n",
			argv[0], MAX_REPS);
		return 2;
	}

	for (m = 0; m < NR_METHODS; m++) {
		ret = setup(&b, m, slot_mib << 20);
		if (ret) {
			fprintf(stderr, "%s: setup: %s\n", method_name[m],
				strerror(-ret));
			return 1;
		}
		/* Fault every page in once; not measured. */
		ret = measure(&b, 1, &ns, &rns);
		for (f = 0; f < NR_FRACTIONS && !ret; f++) {
			uint64_t stride = fractions[f] ?
					  (uint64_t)(1 / fractions[f] + 0.5) : 0;

			for (i = 0; i < reps && !ret; i++)
				ret = measure(&b, stride, &t[i], &tr[i]);
			res[m][f] = median(t, reps);
			rd[m][f] = median(tr, reps);
		}
		teardown(&b);
		if (ret) {
			fprintf(stderr, "%s: %s\n", method_name[m],
				strerror(-ret));
			return 1;
		}
	}

	printf("harvest cost, guest of %llu MiB (%llu pages), 1 vCPU, median of %d\n",
	       (unsigned long long)slot_mib, (unsigned long long)npages, reps);
	printf("%-8s %8s | %-12s %10s %9s %10s %9s | %10s %6s\n",
	       "dirty", "pages", "method", "harvest us", "ns/page", "us/GiB",
	       "+read us", "userspace", "ratio");
	for (f = 0; f < NR_FRACTIONS; f++) {
		uint64_t stride = fractions[f] ?
				  (uint64_t)(1 / fractions[f] + 0.5) : 0;
		uint64_t pages = stride ? (npages + stride - 1) / stride : 0;

		for (m = 0; m < NR_METHODS; m += 2) {
			double k = res[m][f], u = res[m + 1][f];
			char ppn[16] = "-";

			if (pages)
				snprintf(ppn, sizeof(ppn), "%.1f", k / pages);
			printf("%7.1f%% %8llu | %-12s %10.1f %9s %10.1f %9.1f | %10.1f %5.2fx\n",
			       fractions[f] * 100, (unsigned long long)pages,
			       method_name[m], k / 1e3, ppn, k / 1e3 / gib,
			       (k + rd[m][f]) / 1e3, u / 1e3, u / k);
		}
	}
	printf("ratio = userspace time / kvmig time (above 1: kvmig is faster)\n");
	return 0;
}
