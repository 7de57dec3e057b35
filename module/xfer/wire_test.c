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
	{ "wait", KVMIG_REC_WAIT, 0, 0, 0, 0, 0, 0 },
	{ "wait with a gfn", KVMIG_REC_WAIT, 0, 0, 1, 0, 0, -EPROTO },
	{ "wait with pages", KVMIG_REC_WAIT, 0, 0, 0, 1, 0, -EPROTO },
	{ "wait with a slot", KVMIG_REC_WAIT, 0, 1, 0, 0, 0, -EPROTO },
	{ "type 8", 8, 0, 1, 0x20000, 1, 0, -EPROTO },
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
	b.flags = cpu_to_le32(KVMIG_WIRE_HELLO_CHECK);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), 0);
	b.flags = cpu_to_le32(4);
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
	{ "wait on stream 1", KVMIG_REC_WAIT, 0, 0, 1, 4, 0 },
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

/* A destination's KVM_GET_SUPPORTED_CPUID, cut down. */
static const struct kvmig_cpuid_entry offered[] = {
	{ .function = 0, .eax = 0xd },
	{ .function = 1, .ecx = 0x7ef83203, .edx = 0x178bfbff },
	{ .function = 7, .index = 0, .ebx = 0x219c07ab, .ecx = 0x0040069c },
	{ .function = 7, .index = 1, .eax = 0x10 },
	{ .function = 0xd, .index = 0, .eax = 0x7 },
	{ .function = 0x80000000, .eax = 0x80000021 },
};

struct check_env {
	struct kvmig_check_local l;
	struct kvmig_wire_check c;
	struct kvmig_wire_feature f[KVMIG_NR_FEATURE_REGS];
	struct kvmig_wire_finding out[KVMIG_MAX_FINDINGS];
	struct kvmig_finding d[KVMIG_MAX_FINDINGS];
};

/* A source that asks for exactly what @offered has, same identity. */
static void check_env_init(struct check_env *e)
{
	const struct kvmig_cpuid_entry *o;
	u32 i;

	memset(e, 0, sizeof(*e));
	e->l = (struct kvmig_check_local) {
		.has_uuid = true, .uuid = { 0xaa, 1 }, .nr_vcpus = 4,
		.dirty_ring = 65536, .layout_ok = true, .cpuid = offered,
		.nr_cpuid = ARRAY_SIZE(offered),
	};
	e->c.flags = cpu_to_le32(KVMIG_WIRE_CHECK_UUID);
	e->c.uuid[0] = 0xaa;
	e->c.uuid[1] = 1;
	e->c.nr_vcpus = cpu_to_le32(4);
	e->c.dirty_ring = cpu_to_le32(65536);
	e->c.max_basic = cpu_to_le32(0xd);
	e->c.max_ext = cpu_to_le32(0x80000008);
	e->c.nr_features = cpu_to_le32(KVMIG_NR_FEATURE_REGS);
	for (i = 0; i < KVMIG_NR_FEATURE_REGS; i++) {
		const struct kvmig_feature_reg *r = &kvmig_feature_regs[i];

		e->f[i].function = cpu_to_le32(r->function);
		e->f[i].index = cpu_to_le32(r->index);
		e->f[i].reg = cpu_to_le32(r->reg);
		o = kvmig_cpuid_find(offered, ARRAY_SIZE(offered), r->function,
				     r->index, r->indexed);
		e->f[i].bits = cpu_to_le32(o ? kvmig_cpuid_reg(o, r->reg) : 0);
	}
}

static u32 check_run(struct kunit *test, struct check_env *e, u32 max)
{
	u32 i, n;

	KUNIT_ASSERT_EQ(test, kvmig_wire_check_check(&e->c), 0);
	n = kvmig_wire_check_eval(&e->l, &e->c, e->f, e->out, max);
	KUNIT_ASSERT_LE(test, n, max);
	for (i = 0; i < n; i++)
		KUNIT_ASSERT_EQ(test, kvmig_wire_decode_finding(&e->out[i],
								&e->d[i]), 0);
	return n;
}

static void check_same_test(struct kunit *test)
{
	struct check_env *e = kunit_kzalloc(test, sizeof(*e), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, e);
	check_env_init(e);
	KUNIT_EXPECT_EQ(test, check_run(test, e, KVMIG_MAX_FINDINGS), 0);
}

static void check_errors_test(struct kunit *test)
{
	struct check_env *e = kunit_kzalloc(test, sizeof(*e), GFP_KERNEL);
	u32 n;

	KUNIT_ASSERT_NOT_NULL(test, e);
	/* Another VM; a feature of leaf 7.0 EBX the destination lacks. */
	check_env_init(e);
	e->c.uuid[15] = 1;
	e->f[2].bits |= cpu_to_le32(BIT(16) | BIT(30));	/* AVX512F, _BW */
	n = check_run(test, e, KVMIG_MAX_FINDINGS);
	KUNIT_ASSERT_EQ(test, n, 2);
	KUNIT_EXPECT_EQ(test, e->d[0].code, KVMIG_CHECK_E_UUID);
	KUNIT_EXPECT_EQ(test, e->d[0].severity, KVMIG_CHECK_ERROR);
	KUNIT_EXPECT_EQ(test, e->d[1].code, KVMIG_CHECK_E_CPUID);
	KUNIT_EXPECT_EQ(test, e->d[1].function, 7);
	KUNIT_EXPECT_EQ(test, e->d[1].index, 0);
	KUNIT_EXPECT_EQ(test, e->d[1].reg, KVMIG_CPUID_EBX);
	KUNIT_EXPECT_EQ(test, e->d[1].bits, BIT(16) | BIT(30));

	/* Run-time bits (OSXSAVE, OSPKE) and the hypervisor bit pass. */
	check_env_init(e);
	e->f[0].bits |= cpu_to_le32(BIT(27) | BIT(31));
	e->f[3].bits |= cpu_to_le32(BIT(4));
	KUNIT_EXPECT_EQ(test, check_run(test, e, KVMIG_MAX_FINDINGS), 0);

	/* A leaf the destination has no entry for: every bit is missing. */
	check_env_init(e);
	e->f[14].bits = cpu_to_le32(0x41);		/* 0x80000021 EAX */
	KUNIT_ASSERT_EQ(test, check_run(test, e, KVMIG_MAX_FINDINGS), 1);
	KUNIT_EXPECT_EQ(test, e->d[0].function, 0x80000021);
	KUNIT_EXPECT_EQ(test, e->d[0].bits, 0x41);

	/* vCPUs: 4 against 2 refuses; a destination with none yet passes. */
	check_env_init(e);
	e->l.nr_vcpus = 2;
	KUNIT_ASSERT_EQ(test, check_run(test, e, KVMIG_MAX_FINDINGS), 1);
	KUNIT_EXPECT_EQ(test, e->d[0].code, KVMIG_CHECK_E_VCPUS);
	KUNIT_EXPECT_EQ(test, e->d[0].source, 4);
	KUNIT_EXPECT_EQ(test, e->d[0].dest, 2);
	e->l.nr_vcpus = 0;
	KUNIT_EXPECT_EQ(test, check_run(test, e, KVMIG_MAX_FINDINGS), 0);

	/* The layout, as the handshake found it. */
	check_env_init(e);
	e->l.layout_ok = false;
	e->l.layout_slot = 3;
	KUNIT_ASSERT_EQ(test, check_run(test, e, KVMIG_MAX_FINDINGS), 1);
	KUNIT_EXPECT_EQ(test, e->d[0].code, KVMIG_CHECK_E_LAYOUT);
	KUNIT_EXPECT_EQ(test, e->d[0].index, 3);
}

static void check_warnings_test(struct kunit *test)
{
	struct check_env *e = kunit_kzalloc(test, sizeof(*e), GFP_KERNEL);
	u32 n, i;

	KUNIT_ASSERT_NOT_NULL(test, e);
	check_env_init(e);
	e->l.has_uuid = false;
	e->l.dirty_ring = 0;
	e->l.manual = true;
	e->c.flags |= cpu_to_le32(KVMIG_WIRE_CHECK_DIFFERS |
				  KVMIG_WIRE_CHECK_UNREAD);
	e->c.vcpu_differs = cpu_to_le32(2);
	e->c.vcpu_unread = cpu_to_le32(3);
	e->c.max_basic = cpu_to_le32(0x1f);
	n = check_run(test, e, KVMIG_MAX_FINDINGS);
	KUNIT_ASSERT_EQ(test, n, 6);
	for (i = 0; i < n; i++)
		KUNIT_EXPECT_EQ(test, e->d[i].severity, KVMIG_CHECK_WARNING);
	KUNIT_EXPECT_EQ(test, e->d[0].code, KVMIG_CHECK_W_UUID);
	KUNIT_EXPECT_EQ(test, e->d[0].source, 1);
	KUNIT_EXPECT_EQ(test, e->d[1].code, KVMIG_CHECK_W_DIRTY);
	KUNIT_EXPECT_EQ(test, e->d[1].source, 65536);
	KUNIT_EXPECT_EQ(test, e->d[1].dest, 0);
	KUNIT_EXPECT_EQ(test, e->d[2].code, KVMIG_CHECK_W_MANUAL);
	KUNIT_EXPECT_EQ(test, e->d[3].code, KVMIG_CHECK_W_CPUID_VCPUS);
	KUNIT_EXPECT_EQ(test, e->d[3].index, 2);
	KUNIT_EXPECT_EQ(test, e->d[4].code, KVMIG_CHECK_W_CPUID_UNREAD);
	KUNIT_EXPECT_EQ(test, e->d[4].index, 3);
	KUNIT_EXPECT_EQ(test, e->d[5].code, KVMIG_CHECK_W_CPUID_LEAF);
	KUNIT_EXPECT_EQ(test, e->d[5].source, 0x1f);
	KUNIT_EXPECT_EQ(test, e->d[5].dest, 0xd);

	/* No CPUID at the destination: nothing compared, one warning. */
	check_env_init(e);
	e->l.cpuid = NULL;
	e->l.nr_cpuid = 0;
	e->f[2].bits = cpu_to_le32(~0U);
	KUNIT_ASSERT_EQ(test, check_run(test, e, KVMIG_MAX_FINDINGS), 1);
	KUNIT_EXPECT_EQ(test, e->d[0].code, KVMIG_CHECK_W_NO_CPUID);

	/* Short of room: the errors are kept, warnings dropped. */
	check_env_init(e);
	e->l.has_uuid = false;
	e->l.nr_vcpus = 1;
	e->f[0].bits = cpu_to_le32(~0U);
	e->f[1].bits = cpu_to_le32(~0U);
	KUNIT_ASSERT_EQ(test, check_run(test, e, 2), 2);
	KUNIT_EXPECT_EQ(test, e->d[0].code, KVMIG_CHECK_E_VCPUS);
	KUNIT_EXPECT_EQ(test, e->d[1].code, KVMIG_CHECK_E_CPUID);
	KUNIT_EXPECT_EQ(test, e->d[1].bits, ~0x7ef83203U & ~(BIT(27) | BIT(31)));
}

static void check_check_test(struct kunit *test)
{
	struct kvmig_wire_check c = {};
	struct kvmig_wire_finding w = {};
	struct kvmig_finding d;

	KUNIT_EXPECT_EQ(test, kvmig_wire_check_check(&c), 0);
	c.flags = cpu_to_le32(KVMIG_WIRE_CHECK_UUID);	/* and a zero uuid */
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_check(&c), KVMIG_WIRE_E_PROTO);
	c.uuid[7] = 1;
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_check(&c), 0);
	c.flags = 0;					/* a uuid, unflagged */
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_check(&c), KVMIG_WIRE_E_PROTO);
	memset(&c, 0, sizeof(c));
	c.flags = cpu_to_le32(0x20);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_check(&c), KVMIG_WIRE_E_PROTO);
	c.flags = 0;
	c.nr_features = cpu_to_le32(KVMIG_WIRE_MAX_FEATURES + 1);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_check(&c), KVMIG_WIRE_E_PROTO);
	c.nr_features = cpu_to_le32(KVMIG_WIRE_MAX_FEATURES);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_check(&c), 0);
	c.vcpu_differs = cpu_to_le32(1);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_check(&c), KVMIG_WIRE_E_PROTO);
	c.vcpu_differs = 0;
	c.vcpu_unread = cpu_to_le32(1);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_check(&c), KVMIG_WIRE_E_PROTO);

	/* A finding from the peer must say error or warning. */
	KUNIT_EXPECT_EQ(test, kvmig_wire_decode_finding(&w, &d), -EPROTO);
	w.severity = cpu_to_le32(KVMIG_CHECK_WARNING);
	w.code = cpu_to_le32(1000);			/* unknown: kept */
	KUNIT_EXPECT_EQ(test, kvmig_wire_decode_finding(&w, &d), 0);
	KUNIT_EXPECT_EQ(test, d.code, 1000);
	w.severity = cpu_to_le32(3);
	KUNIT_EXPECT_EQ(test, kvmig_wire_decode_finding(&w, &d), -EPROTO);
}

/* The findings and CPUID entries as the UAPI and KVM lay them out. */
static void check_layout_test(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_cpuid_entry),
			sizeof(struct kvm_cpuid_entry2));
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_cpuid_entry, edx),
			offsetof(struct kvm_cpuid_entry2, edx));
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_finding), 40);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_wire_finding), 40);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_wire_check), 48);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_check_setup), 64);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_check), 48);
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
	KUNIT_CASE(check_same_test),
	KUNIT_CASE(check_errors_test),
	KUNIT_CASE(check_warnings_test),
	KUNIT_CASE(check_check_test),
	KUNIT_CASE(check_layout_test),
	{}
};

static struct kunit_suite kvmig_wire_suite = {
	.name = "kvmig_wire",
	.test_cases = kvmig_wire_cases,
};

kunit_test_suites(&kvmig_wire_suite);
