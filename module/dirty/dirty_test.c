// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for the pure parts of dirty harvesting: pending bitmaps to
 * runs, and the walk of a dirty ring, on synthetic rings that wrap.
 */
#include <kunit/test.h>
#include <kunit/visibility.h>
#include <linux/bitmap.h>
#include <linux/kvm.h>
#include <linux/math64.h>
#include <linux/timekeeping.h>

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
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_stats, throttle_policy),
			176);
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_stats, throttle_ns), 184);
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_stats, hole_pages), 192);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_throttle), 64);
	KUNIT_EXPECT_EQ(test, _IOC_SIZE(KVMIG_SET_THROTTLE),
			sizeof(struct kvmig_throttle));
	KUNIT_EXPECT_EQ(test, _IOC_DIR(KVMIG_SET_THROTTLE), _IOC_WRITE);
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

/* A tracker without a VM: two memslots and their pending bitmaps. */
static struct kvmig_dirty *fake_tracker(struct kunit *test, u64 npages0,
					u64 npages1)
{
	struct kvmig_dirty *d = kunit_kzalloc(test, sizeof(*d), GFP_KERNEL);
	u64 np[2] = { npages0, npages1 };
	u32 i;

	KUNIT_ASSERT_NOT_NULL(test, d);
	mutex_init(&d->lock);
	d->nr_slots = 2;
	d->slots = kunit_kcalloc(test, 2, sizeof(*d->slots), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, d->slots);
	for (i = 0; i < 2; i++) {
		d->slots[i].id = 2 * i + 1;
		d->slots[i].base_gfn = 0x100000ULL * (i + 1);
		d->slots[i].npages = np[i];
		d->slots[i].pending = kunit_kcalloc(test, BITS_TO_LONGS(np[i]),
						    sizeof(long), GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(test, d->slots[i].pending);
		d->guest_pages += np[i];
	}
	return d;
}

static int mark_one(struct kvmig_dirty *d, u32 slot, u64 gfn, u32 n)
{
	struct kvmig_dirty_run r = { .gfn = gfn, .npages = n, .slot = slot };

	return kvmig_dirty_mark(d, &r, 1);
}

/*
 * A pass takes runs from a cursor: pages marked behind it wait for the
 * next pass, pages marked ahead of it go in this one, and what was taken
 * is pending again only if marked again.
 */
static void take_cursor_test(struct kunit *test)
{
	struct kvmig_dirty *d = fake_tracker(test, 200, 100);
	struct kvmig_dirty_run r[2];
	u64 pages, pending;

	KUNIT_ASSERT_EQ(test, mark_one(d, 1, 0x100000 + 10, 5), 0);
	KUNIT_ASSERT_EQ(test, mark_one(d, 1, 0x100000 + 100, 1), 0);
	KUNIT_ASSERT_EQ(test, mark_one(d, 1, 0x100000 + 150, 2), 0);
	KUNIT_ASSERT_EQ(test, mark_one(d, 3, 0x200000 + 99, 1), 0);
	KUNIT_EXPECT_EQ(test, d->pages_pending, 9);

	kvmig_dirty_rewind(d);
	KUNIT_ASSERT_EQ(test, kvmig_dirty_take(d, r, 2, &pages, &pending), 2);
	KUNIT_EXPECT_EQ(test, r[0].gfn, 0x100000 + 10);
	KUNIT_EXPECT_EQ(test, r[0].npages, 5);
	KUNIT_EXPECT_EQ(test, r[1].gfn, 0x100000 + 100);
	KUNIT_EXPECT_EQ(test, pages, 6);
	KUNIT_EXPECT_EQ(test, pending, 3);

	/* Behind the cursor: next pass. Ahead of it: this pass. */
	KUNIT_ASSERT_EQ(test, mark_one(d, 1, 0x100000 + 10, 1), 0);
	KUNIT_ASSERT_EQ(test, mark_one(d, 3, 0x200000, 1), 0);
	KUNIT_ASSERT_EQ(test, kvmig_dirty_take(d, r, 2, &pages, &pending), 2);
	KUNIT_EXPECT_EQ(test, r[0].gfn, 0x100000 + 150);
	KUNIT_EXPECT_EQ(test, r[0].slot, 1);
	KUNIT_EXPECT_EQ(test, r[1].gfn, 0x200000);
	KUNIT_EXPECT_EQ(test, r[1].slot, 3);
	KUNIT_ASSERT_EQ(test, kvmig_dirty_take(d, r, 2, &pages, &pending), 1);
	KUNIT_EXPECT_EQ(test, r[0].gfn, 0x200000 + 99);
	KUNIT_EXPECT_EQ(test, pending, 1);
	KUNIT_EXPECT_EQ(test, kvmig_dirty_take(d, r, 2, &pages, &pending), 0);

	kvmig_dirty_rewind(d);
	KUNIT_ASSERT_EQ(test, kvmig_dirty_take(d, r, 2, &pages, &pending), 1);
	KUNIT_EXPECT_EQ(test, r[0].gfn, 0x100000 + 10);
	KUNIT_EXPECT_EQ(test, pending, 0);
	KUNIT_EXPECT_EQ(test, d->pages_pending, 0);
}

/* DIRTY_MARK is all or nothing, and counts only pages not yet pending. */
static void mark_all_or_nothing_test(struct kunit *test)
{
	struct kvmig_dirty *d = fake_tracker(test, 200, 100);
	struct kvmig_dirty_run runs[] = {
		{ .gfn = 0x100000, .npages = 70, .slot = 1 },
		{ .gfn = 0x200000 + 90, .npages = 11, .slot = 3 }, /* past the end */
	};

	KUNIT_EXPECT_EQ(test, kvmig_dirty_mark(d, runs, 2), -EINVAL);
	KUNIT_EXPECT_EQ(test, d->pages_pending, 0);
	KUNIT_EXPECT_EQ(test, d->pages_dirtied, 0);
	KUNIT_EXPECT_TRUE(test, bitmap_empty(d->slots[0].pending, 200));
	runs[1].npages = 10;
	KUNIT_EXPECT_EQ(test, kvmig_dirty_mark(d, runs, 2), 0);
	KUNIT_EXPECT_EQ(test, d->pages_pending, 80);
	KUNIT_EXPECT_EQ(test, d->pages_dirtied, 80);
	runs[0].npages = 100;	/* 70 of them pending already */
	KUNIT_EXPECT_EQ(test, kvmig_dirty_mark(d, runs, 1), 0);
	KUNIT_EXPECT_EQ(test, d->pages_pending, 110);
	/* the dirty rate counts distinct pages: 30 more */
	KUNIT_EXPECT_EQ(test, d->pages_dirtied, 110);
	KUNIT_EXPECT_EQ(test, bitmap_weight(d->slots[0].pending, 200), 100);
}

#define MILLION_RUNS	BIT(20)

/* Take a whole pass of 256-run batches; rescan: from the start each time. */
static u64 pass_ns(struct kunit *test, struct kvmig_dirty *d,
		   struct kvmig_dirty_run *r, bool rescan)
{
	u64 t0 = ktime_get_ns(), pages, pending, total = 0, nr = 0;
	u32 n;

	kvmig_dirty_rewind(d);
	for (;;) {
		if (rescan)
			kvmig_dirty_rewind(d);
		n = kvmig_dirty_take(d, r, 256, &pages, &pending);
		if (!n)
			break;
		nr += n;
		total += pages;
		cond_resched();
	}
	t0 = ktime_get_ns() - t0;
	KUNIT_EXPECT_EQ(test, nr, MILLION_RUNS);
	KUNIT_EXPECT_EQ(test, total, MILLION_RUNS);
	KUNIT_EXPECT_EQ(test, d->pages_pending, 0);
	return t0;
}

/*
 * A round over a million scattered runs (every other page of 8 GiB): the
 * cursor makes a pass linear. The rescan from the start of every batch,
 * which is what the engine did before, is measured on the same set for
 * comparison. Times are logged, never asserted.
 */
static void million_runs_test(struct kunit *test)
{
	struct kvmig_dirty *d = fake_tracker(test, 2ULL * MILLION_RUNS, 64);
	struct kvmig_dirty_run *r = kunit_kcalloc(test, 256, sizeof(*r),
						  GFP_KERNEL);
	u64 cursor, rescan;
	u32 i;

	KUNIT_ASSERT_NOT_NULL(test, r);
	for (i = 0; i < MILLION_RUNS; i++)
		__set_bit(2 * i, d->slots[0].pending);
	d->pages_pending = MILLION_RUNS;
	cursor = pass_ns(test, d, r, false);

	for (i = 0; i < MILLION_RUNS; i++)
		__set_bit(2 * i, d->slots[0].pending);
	d->pages_pending = MILLION_RUNS;
	rescan = pass_ns(test, d, r, true);
	kunit_info(test, "one pass over %lu scattered runs: cursor %llu us, rescan from the start %llu us (%llux)\n",
		   MILLION_RUNS, cursor / 1000, rescan / 1000,
		   div64_u64(rescan, cursor ?: 1));
}

#define TiB	BIT_ULL(40)
#define R(a, sz, i)	{ .userspace_addr = (a), .size = (sz), .id = (i) }

struct regions_case {
	const char *name;
	struct kvmig_region r[3];
	u32 nr;
	int ret;
};

static const struct regions_case regions_cases[] = {
	{ "one page", { R(0x1000, 0x1000, 0) }, 1, 0 },
	{ "two adjacent", { R(0x10000, 0x1000, 1), R(0x11000, 0x1000, 0) }, 2, 0 },
	{ "4 TiB at 64 TiB", { R(64 * TiB, 4 * TiB, 7) }, 1, 0 },
	{ "wraps", { R(~0ULL & PAGE_MASK, 0x2000, 0) }, 1, -EINVAL },
	{ "size 0", { R(0x1000, 0, 0) }, 1, -EINVAL },
	{ "address not aligned", { R(0x1800, 0x1000, 0) }, 1, -EINVAL },
	{ "size not aligned", { R(0x1000, 0x1800, 0) }, 1, -EINVAL },
	{ "flags", { { .userspace_addr = 0x1000, .size = 0x1000, .flags = 1 } },
	  1, -EINVAL },
	{ "reserved", { { .userspace_addr = 0x1000, .size = 0x1000,
			  .reserved = 1 } }, 1, -EINVAL },
	{ "same id", { R(0x10000, 0x1000, 3), R(0x20000, 0x1000, 3) }, 2,
	  -EINVAL },
	{ "overlap by a page", { R(0x10000, 0x2000, 1), R(0x11000, 0x1000, 2) },
	  2, -EINVAL },
	{ "inside another", { R(0x10000, 0x10000, 1), R(0x20000, 0x1000, 2),
			      R(0x14000, 0x1000, 3) }, 3, -EINVAL },
	{ "terabyte regions overlap", { R(TiB, 2 * TiB, 1), R(2 * TiB, TiB, 2) },
	  2, -EINVAL },
};

static void regions_case_desc(const struct regions_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(regions, regions_cases, regions_case_desc);

static void regions_check_test(struct kunit *test)
{
	const struct regions_case *c = test->param_value;

	KUNIT_EXPECT_EQ(test, kvmig_regions_check(c->r, c->nr), c->ret);
}

/* TASK_SIZE_MAX depends on the paging mode found at boot. */
static void regions_task_size_test(struct kunit *test)
{
	struct kvmig_region r = R(TASK_SIZE_MAX - 2 * TiB, 2 * TiB, 0);

	KUNIT_EXPECT_EQ(test, kvmig_regions_check(&r, 1), 0);
	r.size += PAGE_SIZE;
	KUNIT_EXPECT_EQ(test, kvmig_regions_check(&r, 1), -EINVAL);
	r = (struct kvmig_region)R(PAGE_SIZE, TASK_SIZE_MAX & PAGE_MASK, 0);
	KUNIT_EXPECT_EQ(test, kvmig_regions_check(&r, 1), -EINVAL);
}

/* Memslot pages against region pages, at terabyte scale. */
static void overlap_test(struct kunit *test)
{
	u64 tib_pages = TiB >> PAGE_SHIFT;
	struct kvmig_overlap o;

	/* Disjoint, and touching ends: no overlap. */
	KUNIT_EXPECT_FALSE(test, kvmig_overlap(0x100000, 16, 0x200000, 16, &o));
	KUNIT_EXPECT_FALSE(test, kvmig_overlap(0x100000, 16, 0x110000, 16, &o));
	KUNIT_EXPECT_FALSE(test, kvmig_overlap(0x110000, 16, 0x100000, 16, &o));

	/* A 4 TiB region mapped by a memslot that starts 3 TiB into it and
	 * runs 2 TiB past its end (QEMU's above-4G slot of a huge guest).
	 */
	KUNIT_ASSERT_TRUE(test, kvmig_overlap(64 * TiB + 3 * TiB, 3 * tib_pages,
					      64 * TiB, 4 * tib_pages, &o));
	KUNIT_EXPECT_EQ(test, o.first, 0);
	KUNIT_EXPECT_EQ(test, o.end, tib_pages);
	KUNIT_EXPECT_EQ(test, o.roff, 3 * tib_pages);

	/* The memslot begins before the region: skip its first pages. */
	KUNIT_ASSERT_TRUE(test, kvmig_overlap(TiB - 0x3000, 8, TiB, tib_pages,
					      &o));
	KUNIT_EXPECT_EQ(test, o.first, 3);
	KUNIT_EXPECT_EQ(test, o.end, 8);
	KUNIT_EXPECT_EQ(test, o.roff, 0);

	/* SMRAM: 128 KiB of a region mapped at its 640 KiB offset. */
	KUNIT_ASSERT_TRUE(test, kvmig_overlap(0x7f0000000000 + 0xa0000, 32,
					      0x7f0000000000, 0x8000, &o));
	KUNIT_EXPECT_EQ(test, o.first, 0);
	KUNIT_EXPECT_EQ(test, o.end, 32);
	KUNIT_EXPECT_EQ(test, o.roff, 0xa0);

	/* Ending exactly at TASK_SIZE_MAX. */
	KUNIT_ASSERT_TRUE(test, kvmig_overlap(TASK_SIZE_MAX - TiB, tib_pages,
					      TASK_SIZE_MAX - 2 * TiB,
					      2 * tib_pages, &o));
	KUNIT_EXPECT_EQ(test, o.end - o.first, tib_pages);
	KUNIT_EXPECT_EQ(test, o.roff, tib_pages);
}

/* RATE: what pages cost a vCPU, from one page to a terabyte guest's. */
static void throttle_cost_test(struct kunit *test)
{
	/* 1000 pages/s between 4 vCPUs: 250 each, 4 ms a page */
	KUNIT_EXPECT_EQ(test, kvmig_throttle_cost(1, 4, 1000), 4000000);
	KUNIT_EXPECT_EQ(test, kvmig_throttle_cost(192, 1, 1000), 192000000);
	KUNIT_EXPECT_EQ(test, kvmig_throttle_cost(5, 0, 1000), 5000000);
	KUNIT_EXPECT_EQ(test, kvmig_throttle_cost(5, 1, 0), 0);
	/* 1 TiB of 4 KiB pages, 2^28, at 2^20 pages/s: 256 s */
	KUNIT_EXPECT_EQ(test, kvmig_throttle_cost(1ULL << 28, 1, 1ULL << 20),
			256ULL * NSEC_PER_SEC);
	/* 2^28 pages * 4096 vCPUs at 2^30 pages/s: 1024 s, no overflow */
	KUNIT_EXPECT_EQ(test, kvmig_throttle_cost(1ULL << 28, 4096,
						  1ULL << 30),
			1024ULL * NSEC_PER_SEC);
	/* Saturates at an hour instead of wrapping */
	KUNIT_EXPECT_EQ(test, kvmig_throttle_cost(1ULL << 40, 4096, 1),
			3600ULL * NSEC_PER_SEC);
	KUNIT_EXPECT_EQ(test, kvmig_throttle_cost(U64_MAX, 4096, 1),
			3600ULL * NSEC_PER_SEC);
	KUNIT_EXPECT_EQ(test, kvmig_throttle_cost(U64_MAX, 1, U64_MAX),
			NSEC_PER_SEC);
}

/* AUTO: the sleep that takes a share of the time the vCPU ran. */
static void throttle_auto_test(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, kvmig_throttle_auto_ns(10000000, 0), 0);
	/* 50 %: as long as it ran */
	KUNIT_EXPECT_EQ(test, kvmig_throttle_auto_ns(10000000, 50), 10000000);
	/* 20 %: a quarter */
	KUNIT_EXPECT_EQ(test, kvmig_throttle_auto_ns(8000000, 20), 2000000);
	/* 99 % of 10 ms: 990 ms */
	KUNIT_EXPECT_EQ(test, kvmig_throttle_auto_ns(10000000, 99), 990000000);
	/* the run counted is 100 ms at most, the sleep five seconds */
	KUNIT_EXPECT_EQ(test, kvmig_throttle_auto_ns(U64_MAX, 50), 100000000);
	KUNIT_EXPECT_EQ(test, kvmig_throttle_auto_ns(U64_MAX, 99),
			5 * NSEC_PER_SEC);
	KUNIT_EXPECT_EQ(test, kvmig_throttle_auto_ns(U64_MAX, 200),
			5 * NSEC_PER_SEC);
}

/* RATE in bitmap mode: the share asked of the VMM. */
static void throttle_rate_pct_test(struct kunit *test)
{
	/* under the target: nothing */
	KUNIT_EXPECT_EQ(test, kvmig_throttle_rate_pct(500, 0, 1000, 99), 0);
	KUNIT_EXPECT_EQ(test, kvmig_throttle_rate_pct(0, 40, 1000, 99), 0);
	/* four times the target: take three quarters */
	KUNIT_EXPECT_EQ(test, kvmig_throttle_rate_pct(4000, 0, 1000, 99), 75);
	/* at 75 % it dirties 1000 = the target: stay there */
	KUNIT_EXPECT_EQ(test, kvmig_throttle_rate_pct(1000, 75, 1000, 99), 75);
	/* the cap holds */
	KUNIT_EXPECT_EQ(test, kvmig_throttle_rate_pct(1000000, 0, 1, 90), 90);
	/* terabyte-scale rates neither wrap nor trap */
	KUNIT_EXPECT_EQ(test, kvmig_throttle_rate_pct(U64_MAX, 99, 1, 99), 99);
	KUNIT_EXPECT_EQ(test, kvmig_throttle_rate_pct(1ULL << 40, 50,
						      1ULL << 40, 99), 50);
}

static void throttle_check_test(struct kunit *test)
{
	struct kvmig_throttle t = { .policy = KVMIG_THROTTLE_OFF };

	KUNIT_EXPECT_EQ(test, kvmig_throttle_check(&t), 0);
	t = (struct kvmig_throttle){ .policy = KVMIG_THROTTLE_AUTO,
		.initial_pct = 20, .step_pct = 10, .max_pct = 99 };
	KUNIT_EXPECT_EQ(test, kvmig_throttle_check(&t), 0);
	t.max_pct = 0;
	KUNIT_EXPECT_EQ(test, kvmig_throttle_check(&t), -EINVAL);
	t = (struct kvmig_throttle){ .policy = KVMIG_THROTTLE_RATE,
		.dirty_rate = U64_MAX, .max_pct = 1 };
	KUNIT_EXPECT_EQ(test, kvmig_throttle_check(&t), 0);
	t.policy = 7;
	KUNIT_EXPECT_EQ(test, kvmig_throttle_check(&t), -EINVAL);
}

static struct kunit_case kvmig_dirty_cases[] = {
	KUNIT_CASE(throttle_cost_test),
	KUNIT_CASE(throttle_auto_test),
	KUNIT_CASE(throttle_rate_pct_test),
	KUNIT_CASE(throttle_check_test),
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
	KUNIT_CASE(take_cursor_test),
	KUNIT_CASE(mark_all_or_nothing_test),
	KUNIT_CASE_PARAM(regions_check_test, regions_gen_params),
	KUNIT_CASE(regions_task_size_test),
	KUNIT_CASE(overlap_test),
	KUNIT_CASE_SLOW(million_runs_test),
	{}
};

static struct kunit_suite kvmig_dirty_suite = {
	.name = "kvmig_dirty",
	.test_cases = kvmig_dirty_cases,
};

kunit_test_suites(&kvmig_dirty_suite);
