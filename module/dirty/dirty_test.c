// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for the pure parts of dirty harvesting: pending bitmaps to
 * runs, and the walk of a dirty ring, on synthetic rings that wrap.
 */
#include <kunit/test.h>
#include <kunit/visibility.h>
#include <linux/bitmap.h>
#include <linux/kvm.h>

#include "dirty.h"

#define NBITS	200	/* not a multiple of BITS_PER_LONG */

static void runs_empty_test(struct kunit *test)
{
	DECLARE_BITMAP(bm, NBITS) = {};
	struct kvmig_dirty_run r[4];
	unsigned long pos = 0;
	u64 pages = 0;

	KUNIT_EXPECT_EQ(test, kvmig_bitmap_runs(bm, NBITS, &pos, 0, 0, r, 4,
						&pages), 0);
	KUNIT_EXPECT_EQ(test, pos, NBITS);
	KUNIT_EXPECT_EQ(test, pages, 0);
}

static void runs_shapes_test(struct kunit *test)
{
	DECLARE_BITMAP(bm, NBITS) = {};
	DECLARE_BITMAP(copy, NBITS);
	struct kvmig_dirty_run r[8];
	unsigned long pos = 0;
	u64 pages = 0;
	u32 n;

	__set_bit(0, bm);		/* first bit */
	bitmap_set(bm, 60, 10);		/* across a word boundary */
	__set_bit(128, bm);		/* a word's first bit */
	bitmap_set(bm, 190, 10);	/* up to the last bit */
	bitmap_copy(copy, bm, NBITS);

	n = kvmig_bitmap_runs(bm, NBITS, &pos, 1000, 7, r, 8, &pages);
	KUNIT_ASSERT_EQ(test, n, 4);
	KUNIT_EXPECT_EQ(test, r[0].gfn, 1000);
	KUNIT_EXPECT_EQ(test, r[0].npages, 1);
	KUNIT_EXPECT_EQ(test, r[1].gfn, 1060);
	KUNIT_EXPECT_EQ(test, r[1].npages, 10);
	KUNIT_EXPECT_EQ(test, r[2].gfn, 1128);
	KUNIT_EXPECT_EQ(test, r[2].npages, 1);
	KUNIT_EXPECT_EQ(test, r[3].gfn, 1190);
	KUNIT_EXPECT_EQ(test, r[3].npages, 10);
	KUNIT_EXPECT_EQ(test, r[3].slot, 7);
	KUNIT_EXPECT_EQ(test, pages, 22);
	KUNIT_EXPECT_EQ(test, pos, NBITS);
	/* The bitmap itself is left alone. */
	KUNIT_EXPECT_TRUE(test, bitmap_equal(bm, copy, NBITS));
}

/* A full output array stops the walk; the next call goes on from there. */
static void runs_resume_test(struct kunit *test)
{
	DECLARE_BITMAP(bm, NBITS) = {};
	struct kvmig_dirty_run r[2];
	unsigned long pos = 0;
	u64 pages = 0, total = 0;
	u32 n, runs = 0, i;

	for (i = 0; i < NBITS; i += 3)
		__set_bit(i, bm);
	do {
		n = kvmig_bitmap_runs(bm, NBITS, &pos, 0, 0, r, 2, &pages);
		for (i = 0; i < n; i++) {
			KUNIT_EXPECT_EQ(test, r[i].gfn, (u64)(runs + i) * 3);
			KUNIT_EXPECT_EQ(test, r[i].npages, 1);
			total += r[i].npages;
		}
		runs += n;
	} while (n == 2);
	KUNIT_EXPECT_EQ(test, runs, DIV_ROUND_UP(NBITS, 3));
	KUNIT_EXPECT_EQ(test, total, runs);
	KUNIT_EXPECT_EQ(test, pages, runs);
}

static void runs_full_test(struct kunit *test)
{
	DECLARE_BITMAP(bm, NBITS);
	struct kvmig_dirty_run r[2];
	unsigned long pos = 0;
	u64 pages = 0;

	bitmap_fill(bm, NBITS);
	KUNIT_ASSERT_EQ(test, kvmig_bitmap_runs(bm, NBITS, &pos, 5, 1, r, 2,
						&pages), 1);
	KUNIT_EXPECT_EQ(test, r[0].gfn, 5);
	KUNIT_EXPECT_EQ(test, r[0].npages, NBITS);
	KUNIT_EXPECT_EQ(test, pages, NBITS);
}

#define RING	8

struct ring_sink {
	u32 n;
	u32 slot[2 * RING];
	u64 offset[2 * RING];
	u32 fail_at;	/* return -ESTALE for this call (1-based), 0: never */
};

static int sink_fn(void *arg, u32 slot, u64 offset)
{
	struct ring_sink *s = arg;

	if (s->fail_at && s->n + 1 == s->fail_at)
		return -ESTALE;
	s->slot[s->n] = slot;
	s->offset[s->n] = offset;
	s->n++;
	return 0;
}

/* Publish @n entries from free-running index @idx, as KVM does. */
static void ring_push(struct kvm_dirty_gfn *g, u32 idx, u32 n)
{
	u32 i;

	for (i = 0; i < n; i++, idx++) {
		g[idx & (RING - 1)].slot = 3;
		g[idx & (RING - 1)].offset = idx;
		g[idx & (RING - 1)].flags = KVM_DIRTY_GFN_F_DIRTY;
	}
}

static void ring_wrap_test(struct kunit *test)
{
	struct kvm_dirty_gfn g[RING] = {};
	struct ring_sink sink = {};
	u32 fetch = U32_MAX - 2, i;	/* the index wraps, the ring too */

	ring_push(g, fetch, 6);
	KUNIT_ASSERT_EQ(test, kvmig_ring_collect(g, RING, fetch, &fetch,
						 sink_fn, &sink), 6);
	KUNIT_EXPECT_EQ(test, fetch, 3);
	for (i = 0; i < 6; i++) {
		KUNIT_EXPECT_EQ(test, sink.slot[i], 3);
		KUNIT_EXPECT_EQ(test, sink.offset[i], (u64)(u32)(U32_MAX - 2 + i));
	}
	/* Collected entries are handed back, the others untouched. */
	for (i = 0; i < RING; i++)
		KUNIT_EXPECT_EQ(test, g[i].flags,
				i == 3 || i == 4 ? 0 : KVM_DIRTY_GFN_F_RESET);
}

static void ring_empty_and_full_test(struct kunit *test)
{
	struct kvm_dirty_gfn g[RING] = {};
	struct ring_sink sink = {};
	u32 fetch = 5;

	KUNIT_EXPECT_EQ(test, kvmig_ring_collect(g, RING, 5, &fetch, sink_fn,
						 &sink), 0);
	KUNIT_EXPECT_EQ(test, fetch, 5);

	ring_push(g, 5, RING);
	KUNIT_EXPECT_EQ(test, kvmig_ring_collect(g, RING, 5, &fetch, sink_fn,
						 &sink), RING);
	KUNIT_EXPECT_EQ(test, fetch, 5 + RING);
	KUNIT_EXPECT_EQ(test, sink.n, RING);
}

/* Entries handed back but not yet reset by KVM are not collected twice. */
static void ring_stolen_flag_test(struct kunit *test)
{
	struct kvm_dirty_gfn g[RING] = {};
	struct ring_sink sink = {};
	u32 fetch = 0;

	ring_push(g, 0, 3);
	g[0].flags = KVM_DIRTY_GFN_F_RESET;	/* the VMM reaped it */
	KUNIT_EXPECT_EQ(test, kvmig_ring_collect(g, RING, 0, &fetch, sink_fn,
						 &sink), -EBUSY);
	KUNIT_EXPECT_EQ(test, sink.n, 0);
}

static void ring_stolen_reset_test(struct kunit *test)
{
	struct kvm_dirty_gfn g[RING] = {};
	struct ring_sink sink = {};
	u32 fetch = U32_MAX;

	/* KVM reset entries this harvester never saw, across the wrap. */
	KUNIT_EXPECT_EQ(test, kvmig_ring_collect(g, RING, 1, &fetch, sink_fn,
						 &sink), -EBUSY);
	KUNIT_EXPECT_EQ(test, fetch, U32_MAX);
}

static void ring_fn_error_test(struct kunit *test)
{
	struct kvm_dirty_gfn g[RING] = {};
	struct ring_sink sink = { .fail_at = 3 };
	u32 fetch = 0;

	ring_push(g, 0, 4);
	KUNIT_EXPECT_EQ(test, kvmig_ring_collect(g, RING, 0, &fetch, sink_fn,
						 &sink), -ESTALE);
	KUNIT_EXPECT_EQ(test, fetch, 2);
	KUNIT_EXPECT_EQ(test, g[2].flags, KVM_DIRTY_GFN_F_DIRTY);
}

static void dirty_layout_test(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_dirty_start), 64);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_harvest), 64);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_dirty_run), 16);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_dirty_read), 64);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_stats), 200);
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_stats, id), 168);
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_stats, reserved), 176);
	KUNIT_EXPECT_EQ(test, _IOC_SIZE(KVMIG_DIRTY_START),
			sizeof(struct kvmig_dirty_start));
	KUNIT_EXPECT_EQ(test, _IOC_SIZE(KVMIG_DIRTY_HARVEST),
			sizeof(struct kvmig_harvest));
	KUNIT_EXPECT_EQ(test, _IOC_SIZE(KVMIG_DIRTY_READ),
			sizeof(struct kvmig_dirty_read));
	KUNIT_EXPECT_EQ(test, _IOC_SIZE(KVMIG_GET_STATS),
			sizeof(struct kvmig_stats));
	KUNIT_EXPECT_EQ(test, _IOC_DIR(KVMIG_DIRTY_HARVEST),
			_IOC_READ | _IOC_WRITE);
}

static struct kunit_case kvmig_dirty_cases[] = {
	KUNIT_CASE(runs_empty_test),
	KUNIT_CASE(runs_shapes_test),
	KUNIT_CASE(runs_resume_test),
	KUNIT_CASE(runs_full_test),
	KUNIT_CASE(ring_wrap_test),
	KUNIT_CASE(ring_empty_and_full_test),
	KUNIT_CASE(ring_stolen_flag_test),
	KUNIT_CASE(ring_stolen_reset_test),
	KUNIT_CASE(ring_fn_error_test),
	KUNIT_CASE(dirty_layout_test),
	{}
};

static struct kunit_suite kvmig_dirty_suite = {
	.name = "kvmig_dirty",
	.test_cases = kvmig_dirty_cases,
};

kunit_test_suites(&kvmig_dirty_suite);
