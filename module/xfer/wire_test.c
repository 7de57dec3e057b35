// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests of the wire protocol: encode, decode and every check made on
 * what the peer sends.
 */
#include <kunit/test.h>
#include <linux/bits.h>
#include <linux/kvm.h>

#include "wire.h"

static const struct kvmig_wire_layout_slot layout[] = {
	{ .id = 0, .flags = KVM_MEM_READONLY, .base_gfn = 0, .npages = 16 },
	{ .id = 1, .base_gfn = 0x20000, .npages = 1024 },
	{ .id = 3, .base_gfn = 0x40000, .npages = 100 },
	/* 2 TiB at 2 TiB */
	{ .id = 4, .base_gfn = 1ULL << 29, .npages = 1ULL << 29 },
};

#define TIB2	BIT_ULL(29)		/* gfn of 2 TiB */
#define TIB4	BIT_ULL(30)		/* gfn of 4 TiB */
#define ZCAP	KVMIG_WIRE_MAX_ZERO_RUN	/* 2^18 */

struct rec_case {
	const char *name;
	u16 type, flags;
	u32 slot;
	u64 gfn;
	u32 npages, len;
	int ret;
	u32 index;
};

static const struct rec_case rec_cases[] = {
	{ "pages at slot start", KVMIG_REC_PAGES, 0, 1, 0x20000, 64, 0, 0, 1 },
	{ "pages at slot end", KVMIG_REC_PAGES, 0, 3, 0x40000 + 99, 1, 0, 0, 2 },
	{ "pages in read-only slot", KVMIG_REC_PAGES, 0, 0, 4, 2, 0, 0, 0 },
	{ "pages across slot end", KVMIG_REC_PAGES, 0, 3, 0x40000 + 99, 2, 0, -EPROTO },
	{ "pages below slot", KVMIG_REC_PAGES, 0, 1, 0x1ffff, 1, 0, -EPROTO },
	{ "pages past slot", KVMIG_REC_PAGES, 0, 1, 0x20000 + 1024, 1, 0, -EPROTO },
	{ "gfn that wraps", KVMIG_REC_PAGES, 0, 1, U64_MAX, 2, 0, -EPROTO },
	{ "no pages", KVMIG_REC_PAGES, 0, 1, 0x20000, 0, 0, -EPROTO },
	{ "too many pages", KVMIG_REC_PAGES, 0, 1, 0x20000, 65, 0, -EPROTO },
	{ "unknown slot", KVMIG_REC_PAGES, 0, 2, 0x20000, 1, 0, -EPROTO },
	{ "slot of address space 1", KVMIG_REC_PAGES, 0, 0x10001, 0x20000, 1, 0, -EPROTO },
	{ "pages with length", KVMIG_REC_PAGES, 0, 1, 0x20000, 1, 4096, -EPROTO },
	{ "flags", KVMIG_REC_PAGES, 1, 1, 0x20000, 1, 0, -EPROTO },
	{ "zero run of a whole slot", KVMIG_REC_ZERO, 0, 1, 0x20000, 1024, 0, 0, 1 },
	{ "zero run at the cap", KVMIG_REC_ZERO, 0, 4, TIB2, ZCAP, 0, 0, 3 },
	{ "zero run over the cap", KVMIG_REC_ZERO, 0, 4, TIB2, ZCAP + 1, 0, -EPROTO },
	{ "zero run at the end of 4 TiB", KVMIG_REC_ZERO, 0, 4, TIB4 - ZCAP, ZCAP, 0, 0, 3 },
	{ "zero run past 4 TiB", KVMIG_REC_ZERO, 0, 4, TIB4 - ZCAP + 1, ZCAP, 0, -EPROTO },
	{ "pages of the zero cap", KVMIG_REC_PAGES, 0, 4, TIB2, ZCAP, 0, -EPROTO },
	{ "zero run past slot", KVMIG_REC_ZERO, 0, 3, 0x40000 + 99, 2, 0, -EPROTO },
	{ "state", KVMIG_REC_STATE, 0, 0, 0, 0, 1000, 0 },
	{ "state at the limit", KVMIG_REC_STATE, 0, 0, 0, 0, KVMIG_WIRE_MAX_STATE, 0 },
	{ "state over the limit", KVMIG_REC_STATE, 0, 0, 0, 0, KVMIG_WIRE_MAX_STATE + 1, -EPROTO },
	{ "state with pages", KVMIG_REC_STATE, 0, 0, 0, 1, 10, -EPROTO },
	{ "round", KVMIG_REC_ROUND, 0, 0, 7, 0, 0, 0 },
	{ "end", KVMIG_REC_END, 0, 0, 0, 0, 0, 0 },
	{ "end with a slot", KVMIG_REC_END, 0, 1, 0, 0, 0, -EPROTO },
	{ "type 0", 0, 0, 1, 0x20000, 1, 0, -EPROTO },
	{ "commit", KVMIG_REC_COMMIT, 0, 0, 0, 0, 0, 0 },
	{ "commit with pages", KVMIG_REC_COMMIT, 0, 0, 0, 1, 0, -EPROTO },
	{ "commit with a length", KVMIG_REC_COMMIT, 0, 0, 0, 0, 8, -EPROTO },
	{ "type 7", 7, 0, 1, 0x20000, 1, 0, -EPROTO },
};

static void rec_case_desc(const struct rec_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(rec, rec_cases, rec_case_desc);

static void decode_rec_test(struct kunit *test)
{
	const struct rec_case *c = test->param_value;
	struct kvmig_wire_rec w;
	struct kvmig_rec out;
	int ret;

	kvmig_wire_encode_rec(&w, c->type, c->slot, c->gfn, c->npages, c->len);
	w.flags = cpu_to_le16(c->flags);
	ret = kvmig_wire_decode_rec(&w, layout, ARRAY_SIZE(layout), &out);
	KUNIT_EXPECT_EQ(test, ret, c->ret);
	if (ret)
		return;
	KUNIT_EXPECT_EQ(test, out.type, c->type);
	KUNIT_EXPECT_EQ(test, out.gfn, c->gfn);
	KUNIT_EXPECT_EQ(test, out.npages, c->npages);
	KUNIT_EXPECT_EQ(test, out.len, c->len);
	if (c->type == KVMIG_REC_PAGES || c->type == KVMIG_REC_ZERO)
		KUNIT_EXPECT_EQ(test, out.slot_index, c->index);
}

static void hello_test(struct kunit *test)
{
	struct kvmig_wire_hello h = {
		.magic = cpu_to_le32(KVMIG_WIRE_MAGIC),
		.version = cpu_to_le16(KVMIG_WIRE_VERSION),
		.page_shift = cpu_to_le16(12),
		.nr_slots = cpu_to_le32(3),
		.nr_streams = cpu_to_le32(1),
		.token = cpu_to_le64(0x0123456789abcdefULL),
	}, b;

	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&h), 0);
	b = h;
	b.magic = cpu_to_le32(0x12345678);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), KVMIG_WIRE_E_PROTO);
	b = h;
	b.version = cpu_to_le16(KVMIG_WIRE_VERSION + 1);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), KVMIG_WIRE_E_VERSION);
	/* Version 1 had no COMMIT: a v1 source would leave us in doubt. */
	b.version = cpu_to_le16(1);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), KVMIG_WIRE_E_VERSION);
	b = h;
	b.page_shift = cpu_to_le16(16);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), KVMIG_WIRE_E_VERSION);
	b = h;
	b.flags = cpu_to_le32(KVMIG_WIRE_HELLO_REGIONS);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), 0);
	b.flags = cpu_to_le32(2);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), KVMIG_WIRE_E_PROTO);
	b.flags = cpu_to_le32(1U << 31 | KVMIG_WIRE_HELLO_REGIONS);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), KVMIG_WIRE_E_PROTO);
	b = h;
	b.nr_slots = 0;
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), KVMIG_WIRE_E_PROTO);
	b = h;
	b.nr_slots = cpu_to_le32(KVMIG_WIRE_MAX_SLOTS + 1);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), KVMIG_WIRE_E_PROTO);
	b = h;
	b.nr_streams = 0;
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), KVMIG_WIRE_E_PROTO);
	b.nr_streams = cpu_to_le32(16);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), 0);
	b.nr_streams = cpu_to_le32(17);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), KVMIG_WIRE_E_PROTO);
	b.nr_streams = cpu_to_le32(1U << 31 | 1);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), KVMIG_WIRE_E_PROTO);
	b = h;
	b.pad = cpu_to_le32(1);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), KVMIG_WIRE_E_PROTO);
	b.pad = cpu_to_le32(1U << 31);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), KVMIG_WIRE_E_PROTO);
	/* The token is the source's to choose: any number will do. */
	b = h;
	b.token = 0;
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), 0);
	b.token = cpu_to_le64(U64_MAX);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), 0);
}

static void check_stream_test(struct kunit *test)
{
	const u64 token = 0x0123456789abcdefULL;
	struct kvmig_wire_stream w = {
		.magic = cpu_to_le32(KVMIG_WIRE_MAGIC),
		.version = cpu_to_le16(KVMIG_WIRE_VERSION),
		.index = cpu_to_le16(3),
		.token = cpu_to_le64(token),
	}, b;

	KUNIT_EXPECT_EQ(test, kvmig_wire_check_stream(&w, 3, token), 0);
	b = w;
	b.magic = cpu_to_le32(0x12345678);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_stream(&b, 3, token),
			KVMIG_WIRE_E_STREAMS);
	b = w;
	b.version = cpu_to_le16(KVMIG_WIRE_VERSION - 1);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_stream(&b, 3, token),
			KVMIG_WIRE_E_STREAMS);
	b.version = cpu_to_le16(KVMIG_WIRE_VERSION + 1);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_stream(&b, 3, token),
			KVMIG_WIRE_E_STREAMS);
	/* Out of place: stream 3 where 2 or 4 is expected. */
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_stream(&w, 2, token),
			KVMIG_WIRE_E_STREAMS);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_stream(&w, 4, token),
			KVMIG_WIRE_E_STREAMS);
	/* The index is 16 bits on the wire: no truncation may match. */
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_stream(&w, 0x10003, token),
			KVMIG_WIRE_E_STREAMS);
	b = w;
	b.index = cpu_to_le16(0x8003);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_stream(&b, 3, token),
			KVMIG_WIRE_E_STREAMS);
	/* Another migration's stream: tokens differing in one bit. */
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_stream(&w, 3, token ^ 1),
			KVMIG_WIRE_E_STREAMS);
	KUNIT_EXPECT_EQ(test,
			kvmig_wire_check_stream(&w, 3, token ^ BIT_ULL(63)),
			KVMIG_WIRE_E_STREAMS);
	b = w;
	b.token = cpu_to_le64(token ^ BIT_ULL(32));
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_stream(&b, 3, token),
			KVMIG_WIRE_E_STREAMS);
	b.token = cpu_to_le64(token);
	b.index = cpu_to_le16(15);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_stream(&b, 15, token), 0);
}

/* The first gfn past a 52-bit physical address space. */
#define GFN52	BIT_ULL(40)

struct share_case {
	const char *name;
	u32 type;
	u64 gfn;
	u32 npages;
	u32 stream, nr_streams;
	int ret;
};

static const struct share_case share_cases[] = {
	{ "round on stream 0", KVMIG_REC_ROUND, 7, 0, 0, 4, 0 },
	{ "state on stream 0", KVMIG_REC_STATE, 0, 0, 0, 4, 0 },
	{ "commit on stream 0", KVMIG_REC_COMMIT, 0, 0, 0, 4, 0 },
	{ "end on stream 0", KVMIG_REC_END, 0, 0, 0, 4, 0 },
	{ "round on stream 1", KVMIG_REC_ROUND, 7, 0, 1, 4, 0 },
	{ "state on stream 1", KVMIG_REC_STATE, 0, 0, 1, 4, -EPROTO },
	{ "commit on stream 1", KVMIG_REC_COMMIT, 0, 0, 1, 4, -EPROTO },
	{ "end on stream 1", KVMIG_REC_END, 0, 0, 1, 4, 0 },
	{ "end on the last stream", KVMIG_REC_END, 0, 0, 15, 16, 0 },
	{ "pages across a share, one stream", KVMIG_REC_PAGES, 510, 4, 0, 1, 0 },
	{ "pages across a share, two streams", KVMIG_REC_PAGES, 510, 4, 0, 2, -EPROTO },
	{ "pages across a share, its second", KVMIG_REC_PAGES, 510, 4, 1, 2, -EPROTO },
	{ "pages to the end of a share", KVMIG_REC_PAGES, 448, 64, 0, 2, 0 },
	{ "pages on the wrong stream", KVMIG_REC_PAGES, 448, 64, 1, 2, -EPROTO },
	{ "pages of share 1, stream 1", KVMIG_REC_PAGES, 512, 64, 1, 2, 0 },
	{ "pages of share 1, stream 0", KVMIG_REC_PAGES, 512, 64, 0, 2, -EPROTO },
	{ "pages of share 2 of 2 streams", KVMIG_REC_PAGES, 1024, 1, 0, 2, 0 },
	{ "pages of share 5 of 3 streams", KVMIG_REC_PAGES, 5 * 512 + 3, 8, 2, 3, 0 },
	{ "pages of share 5, stream 1 of 3", KVMIG_REC_PAGES, 5 * 512 + 3, 8, 1, 3, -EPROTO },
	{ "zero share, whole", KVMIG_REC_ZERO, 512, 512, 1, 2, 0 },
	{ "zero share and a page", KVMIG_REC_ZERO, 512, 513, 1, 2, -EPROTO },
	{ "zero page before a share", KVMIG_REC_ZERO, 511, 2, 0, 2, -EPROTO },
	{ "zero run at the cap, one stream", KVMIG_REC_ZERO, TIB2, ZCAP, 0, 1, 0 },
	{ "zero run at the cap, two streams", KVMIG_REC_ZERO, TIB2, ZCAP, 0, 2, -EPROTO },
	/* Share 2^31 - 1: stream 1 of 3, 15 of 16. */
	{ "last pages below 2^40, 3 streams", KVMIG_REC_PAGES, GFN52 - 64, 64, 1, 3, 0 },
	{ "last pages below 2^40, wrong", KVMIG_REC_PAGES, GFN52 - 64, 64, 2, 3, -EPROTO },
	{ "last page below 2^40, 16 streams", KVMIG_REC_PAGES, GFN52 - 1, 1, 15, 16, 0 },
	{ "pages across 2^40, 16 streams", KVMIG_REC_PAGES, GFN52 - 1, 2, 15, 16, -EPROTO },
	{ "pages across 2^40, one stream", KVMIG_REC_PAGES, GFN52 - 1, 2, 0, 1, 0 },
	/* Share 2^31: stream 2 of 3, 0 of 16. */
	{ "pages at 2^40, 16 streams", KVMIG_REC_PAGES, GFN52, 64, 0, 16, 0 },
	{ "pages at 2^40, 3 streams", KVMIG_REC_PAGES, GFN52, 64, 2, 3, 0 },
	/* Share 2^55 - 1: stream 15 of 16, 1 of 3; the run must not wrap. */
	{ "last pages of u64, 16 streams", KVMIG_REC_PAGES, U64_MAX - 63, 64, 15, 16, 0 },
	{ "last pages of u64, 3 streams", KVMIG_REC_PAGES, U64_MAX - 63, 64, 1, 3, 0 },
	{ "last pages of u64, wrong", KVMIG_REC_PAGES, U64_MAX - 63, 64, 0, 3, -EPROTO },
	{ "pages wrapping u64", KVMIG_REC_PAGES, U64_MAX, 2, 15, 16, -EPROTO },
	{ "zero share wrapping u64", KVMIG_REC_ZERO, U64_MAX - 511, 513, 15, 16, -EPROTO },
	{ "last zero share of u64", KVMIG_REC_ZERO, U64_MAX - 511, 512, 15, 16, 0 },
};

static void share_case_desc(const struct share_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(share, share_cases, share_case_desc);

static void check_share_test(struct kunit *test)
{
	const struct share_case *c = test->param_value;
	struct kvmig_rec rec = {
		.type = c->type,
		.gfn = c->gfn,
		.npages = c->npages,
	};
	int ret = kvmig_wire_check_share(&rec, c->stream, c->nr_streams);

	KUNIT_EXPECT_EQ(test, ret, c->ret);
}

/* Numbers worked out by hand: a share is 512 pages, gfn >> 9. */
static void share_math_test(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, kvmig_wire_stream_of(0, 1), 0U);
	KUNIT_EXPECT_EQ(test, kvmig_wire_stream_of(511, 2), 0U);
	KUNIT_EXPECT_EQ(test, kvmig_wire_stream_of(512, 2), 1U);
	KUNIT_EXPECT_EQ(test, kvmig_wire_stream_of(1024, 2), 0U);
	KUNIT_EXPECT_EQ(test, kvmig_wire_stream_of(5 * 512 + 3, 3), 2U);
	KUNIT_EXPECT_EQ(test, kvmig_wire_stream_of(15 * 512 + 511, 16), 15U);
	KUNIT_EXPECT_EQ(test, kvmig_wire_stream_of(16 * 512, 16), 0U);
	/* 2^29: share 2^20, 1 mod 3 (2^even), 1 mod 5 (2^20 = 16^5). */
	KUNIT_EXPECT_EQ(test, kvmig_wire_stream_of(TIB2, 3), 1U);
	KUNIT_EXPECT_EQ(test, kvmig_wire_stream_of(TIB2, 5), 1U);
	/* 2^40 - 1: share 2^31 - 1 = 2147483647. */
	KUNIT_EXPECT_EQ(test, kvmig_wire_stream_of(GFN52 - 1, 3), 1U);
	KUNIT_EXPECT_EQ(test, kvmig_wire_stream_of(GFN52 - 1, 5), 2U);
	KUNIT_EXPECT_EQ(test, kvmig_wire_stream_of(GFN52 - 1, 7), 1U);
	KUNIT_EXPECT_EQ(test, kvmig_wire_stream_of(GFN52 - 1, 16), 15U);
	/* 2^40: share 2^31 = 2147483648. */
	KUNIT_EXPECT_EQ(test, kvmig_wire_stream_of(GFN52, 3), 2U);
	KUNIT_EXPECT_EQ(test, kvmig_wire_stream_of(GFN52, 5), 3U);
	KUNIT_EXPECT_EQ(test, kvmig_wire_stream_of(GFN52, 16), 0U);
	/* U64_MAX: share 2^55 - 1. */
	KUNIT_EXPECT_EQ(test, kvmig_wire_stream_of(U64_MAX, 3), 1U);
	KUNIT_EXPECT_EQ(test, kvmig_wire_stream_of(U64_MAX, 5), 2U);
	KUNIT_EXPECT_EQ(test, kvmig_wire_stream_of(U64_MAX, 7), 1U);
	KUNIT_EXPECT_EQ(test, kvmig_wire_stream_of(U64_MAX, 16), 15U);
	KUNIT_EXPECT_EQ(test, kvmig_wire_stream_of(U64_MAX, 1), 0U);

	KUNIT_EXPECT_EQ(test, kvmig_wire_share_left(0, 0), 0ULL);
	KUNIT_EXPECT_EQ(test, kvmig_wire_share_left(0, 64), 64ULL);
	KUNIT_EXPECT_EQ(test, kvmig_wire_share_left(0, 1000), 512ULL);
	KUNIT_EXPECT_EQ(test, kvmig_wire_share_left(448, 64), 64ULL);
	KUNIT_EXPECT_EQ(test, kvmig_wire_share_left(448, 65), 64ULL);
	KUNIT_EXPECT_EQ(test, kvmig_wire_share_left(510, 4), 2ULL);
	KUNIT_EXPECT_EQ(test, kvmig_wire_share_left(511, 64), 1ULL);
	KUNIT_EXPECT_EQ(test, kvmig_wire_share_left(512, 64), 64ULL);
	KUNIT_EXPECT_EQ(test, kvmig_wire_share_left(TIB2, ZCAP), 512ULL);
	KUNIT_EXPECT_EQ(test, kvmig_wire_share_left(GFN52 - 64, 64), 64ULL);
	KUNIT_EXPECT_EQ(test, kvmig_wire_share_left(GFN52 - 64, 65), 64ULL);
	KUNIT_EXPECT_EQ(test, kvmig_wire_share_left(GFN52 - 1, 64), 1ULL);
	KUNIT_EXPECT_EQ(test, kvmig_wire_share_left(GFN52 - 1, U64_MAX), 1ULL);
	KUNIT_EXPECT_EQ(test, kvmig_wire_share_left(GFN52, U64_MAX), 512ULL);
	KUNIT_EXPECT_EQ(test, kvmig_wire_share_left(GFN52 + 300, 1000), 212ULL);
	/* Nothing wraps at the top of u64. */
	KUNIT_EXPECT_EQ(test, kvmig_wire_share_left(U64_MAX, 64), 1ULL);
	KUNIT_EXPECT_EQ(test, kvmig_wire_share_left(U64_MAX - 511, 1000), 512ULL);
	KUNIT_EXPECT_EQ(test, kvmig_wire_share_left(U64_MAX - 63, U64_MAX), 64ULL);
}

static void compare_slot_test(struct kunit *test)
{
	struct kvmig_wire_slot w = {
		.id = cpu_to_le32(1),
		.flags = cpu_to_le32(KVM_MEM_LOG_DIRTY_PAGES),
		.base_gfn = cpu_to_le64(0x20000),
		.npages = cpu_to_le64(1024),
	}, b;

	/* Dirty logging is the source's business: it does not count. */
	KUNIT_EXPECT_EQ(test, kvmig_wire_compare_slot(&w, &layout[1]), 0);
	b = w;
	b.id = cpu_to_le32(3);
	KUNIT_EXPECT_NE(test, kvmig_wire_compare_slot(&b, &layout[1]), 0);
	b = w;
	b.base_gfn = cpu_to_le64(0x20001);
	KUNIT_EXPECT_NE(test, kvmig_wire_compare_slot(&b, &layout[1]), 0);
	b = w;
	b.npages = cpu_to_le64(1023);
	KUNIT_EXPECT_NE(test, kvmig_wire_compare_slot(&b, &layout[1]), 0);
	b = w;
	b.flags = cpu_to_le32(KVM_MEM_READONLY);
	KUNIT_EXPECT_NE(test, kvmig_wire_compare_slot(&b, &layout[1]), 0);
}

static void wire_layout_test(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_wire_hello), 40);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_wire_stream), 16);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_wire_slot), 24);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_wire_rec), 24);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_wire_reply), 16);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_rdma_boot), 16);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_rdma_msg), 24);
}

/*
 * RDMA: the bootstrap record, and each message checked against the one
 * due, as it arrived (@got bytes, of a receive buffer of 4 KiB).
 */
static void rdma_boot_test(struct kunit *test)
{
	struct kvmig_rdma_boot ok = {
		.magic = cpu_to_le32(KVMIG_RDMA_MAGIC),
		.version = cpu_to_le16(KVMIG_RDMA_VERSION),
		.port = cpu_to_be16(4791),
	}, b;

	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_boot(&ok), 0);
	b = ok;
	b.magic = cpu_to_le32(KVMIG_WIRE_MAGIC);	/* a TCP peer's HELLO */
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_boot(&b), -EPROTO);
	b = ok;
	b.version = cpu_to_le16(KVMIG_RDMA_VERSION + 1);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_boot(&b), -EPROTO);
	b = ok;
	b.flags = cpu_to_le32(1);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_boot(&b), -EPROTO);
	b = ok;
	b.reserved = cpu_to_le32(0x80000000);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_boot(&b), -EPROTO);
}

static void rdma_msg_test(struct kunit *test)
{
	const u32 hdr = sizeof(struct kvmig_rdma_msg);
	struct kvmig_rdma_msg data = {
		.type = cpu_to_le32(KVMIG_RDMA_DATA), .len = cpu_to_le32(100),
	}, grant = {
		.type = cpu_to_le32(KVMIG_RDMA_GRANT),
		.addr = cpu_to_le64(0xffff888000000000ULL),
		.rkey = cpu_to_le32(0x1234), .npages = cpu_to_le32(64),
	}, written = {
		.type = cpu_to_le32(KVMIG_RDMA_WRITTEN),
		.npages = cpu_to_le32(64),
	}, m;

	/* DATA: 1 byte up to what arrived after the header. */
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_msg(&data, hdr + 100,
							KVMIG_RDMA_DATA, 0), 0);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_msg(&data, hdr + 99,
							KVMIG_RDMA_DATA, 0),
			-EPROTO);
	m = data;
	m.len = cpu_to_le32(KVMIG_RDMA_DATA_MAX);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_msg(&m, KVMIG_RDMA_BUF,
							KVMIG_RDMA_DATA, 0), 0);
	m.len = cpu_to_le32(U32_MAX);	/* no wrap past the buffer */
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_msg(&m, KVMIG_RDMA_BUF,
							KVMIG_RDMA_DATA, 0),
			-EPROTO);
	m.len = 0;
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_msg(&m, hdr,
							KVMIG_RDMA_DATA, 0),
			-EPROTO);
	m = data;
	m.rkey = cpu_to_le32(1);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_msg(&m, hdr + 100,
							KVMIG_RDMA_DATA, 0),
			-EPROTO);
	/* Shorter than a header, whatever it says. */
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_msg(&data, hdr - 1,
							KVMIG_RDMA_DATA, 0),
			-EPROTO);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_msg(&data, 0,
							KVMIG_RDMA_DATA, 0),
			-EPROTO);

	/* GRANT and WRITTEN: only where due, for exactly the run. */
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_msg(&grant, hdr,
							KVMIG_RDMA_GRANT, 64),
			0);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_msg(&grant, hdr,
							KVMIG_RDMA_GRANT, 63),
			-EPROTO);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_msg(&grant, hdr,
							KVMIG_RDMA_DATA, 0),
			-EPROTO);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_msg(&grant, hdr + 1,
							KVMIG_RDMA_GRANT, 64),
			-EPROTO);
	m = grant;
	m.len = cpu_to_le32(1);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_msg(&m, hdr,
							KVMIG_RDMA_GRANT, 64),
			-EPROTO);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_msg(&written, hdr,
							KVMIG_RDMA_WRITTEN,
							64), 0);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_msg(&written, hdr,
							KVMIG_RDMA_GRANT, 64),
			-EPROTO);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_msg(&written, hdr,
							KVMIG_RDMA_WRITTEN,
							1), -EPROTO);
	m = written;
	m.addr = cpu_to_le64(4096);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_msg(&m, hdr,
							KVMIG_RDMA_WRITTEN,
							64), -EPROTO);
	/* An unknown type is never due. */
	m = written;
	m.type = cpu_to_le32(4);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_rdma_msg(&m, hdr, 4, 64),
			-EPROTO);
}

static struct kunit_case kvmig_wire_cases[] = {
	KUNIT_CASE_PARAM(decode_rec_test, rec_gen_params),
	KUNIT_CASE(hello_test),
	KUNIT_CASE(check_stream_test),
	KUNIT_CASE_PARAM(check_share_test, share_gen_params),
	KUNIT_CASE(share_math_test),
	KUNIT_CASE(compare_slot_test),
	KUNIT_CASE(wire_layout_test),
	KUNIT_CASE(rdma_boot_test),
	KUNIT_CASE(rdma_msg_test),
	{}
};

static struct kunit_suite kvmig_wire_suite = {
	.name = "kvmig_wire",
	.test_cases = kvmig_wire_cases,
};

kunit_test_suites(&kvmig_wire_suite);
