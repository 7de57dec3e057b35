// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness for the wire decoder (module/xfer/wire.c, built here
 * unchanged): the input is what a source would send to a destination,
 * parsed as kvmig_xfer_recv() does. Whatever the bytes, every accepted
 * page record must lie inside the destination's memslots and every
 * accepted state blob within its limit; a violation aborts.
 *
 * The input is one stream of a migration:
 *
 *   HELLO + nr_slots x SLOT   the first stream's, for nr_streams and token
 *   u8 sel                    the stream read is sel % nr_streams
 *   STREAM                    unless that is the first stream
 *   REC ...                   the records of that stream
 *
 * kvmig_wire_check_stream() and kvmig_wire_check_share() are checked
 * against the rules of wire.h, worked out here independently: an accepted
 * STREAM names this stream of this migration, and a record is accepted on
 * a stream if and only if it may come there (every type on the first
 * stream, else PAGES, ZERO and END only; with several streams, a PAGES or
 * ZERO run in one 512-page share, the stream's). The same bytes are also
 * checked as an RDMA message (kvmig_wire_check_rdma_msg()) and as a
 * pre-check (kvmig_wire_check_check(), kvmig_wire_check_eval()).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "../module/xfer/wire.h"

static const struct kvmig_wire_layout_slot layout[] = {
	{ .id = 0, .flags = KVM_MEM_READONLY, .base_gfn = 0, .npages = 48 },
	/* Shares 256..259: one on each of 4 streams. */
	{ .id = 1, .base_gfn = 0x20000, .npages = 2048 },
	{ .id = 3, .base_gfn = 0x40000, .npages = 512 },
	{ .id = 40000, .base_gfn = 0xfffffffffff00ULL, .npages = 0xff },
};
#define NR	(sizeof(layout) / sizeof(layout[0]))

#define SHARE	512ULL		/* pages, 1 << KVMIG_WIRE_SHARD_SHIFT */

/* gen_corpus.py packs them so. */
static_assert(sizeof(struct kvmig_wire_hello) == 40, "HELLO");
static_assert(sizeof(struct kvmig_wire_stream) == 16, "STREAM");

static int take(const unsigned char **p, size_t *n, void *out, size_t len)
{
	if (*n < len)
		return -1;
	memcpy(out, *p, len);
	*p += len;
	*n -= len;
	return 0;
}

/*
 * May a record of @type, pages [@gfn, @gfn + @npages), come on stream
 * @stream of @nr_streams? Independent of wire.c and wire.h's helpers;
 * 128-bit, so that runs at the top of u64 do not wrap.
 */
static int share_ok(u32 type, u64 gfn, u32 npages, u32 stream,
		    u32 nr_streams)
{
	unsigned __int128 last;

	switch (type) {
	case KVMIG_REC_PAGES:
	case KVMIG_REC_ZERO:
		break;
	case KVMIG_REC_ROUND:
	case KVMIG_REC_END:
		return 1;
	default:
		return stream == 0;
	}
	if (nr_streams == 1)
		return 1;
	last = (unsigned __int128)gfn + npages - 1;
	return gfn / SHARE == last / SHARE && gfn / SHARE % nr_streams == stream;
}

/*
 * The same bytes as an RDMA message of min(@n, 4096) bytes, checked
 * against each type that may be due: an accepted one must keep to the
 * rules of wire.h, worked out here again (a DATA length within what
 * arrived; GRANT and WRITTEN alone in their SEND, for the run's pages).
 */
static void fuzz_rdma(const unsigned char *p, size_t n)
{
	u32 got = n > KVMIG_RDMA_BUF ? KVMIG_RDMA_BUF : n, t, len, np;
	struct kvmig_rdma_msg m = { 0 };

	memcpy(&m, p, got < sizeof(m) ? got : sizeof(m));
	len = le32_to_cpu(m.len);
	np = le32_to_cpu(m.npages);
	for (t = 0; t <= KVMIG_RDMA_WRITTEN + 1; t++) {
		if (kvmig_wire_check_rdma_msg(&m, got, t, 64))
			continue;
		assert(got >= sizeof(m) && le32_to_cpu(m.type) == t);
		if (t == KVMIG_RDMA_DATA)
			assert(len >= 1 && len <= got - sizeof(m) &&
			       !m.addr && !m.rkey && !np);
		else
			assert((t == KVMIG_RDMA_GRANT ||
				(t == KVMIG_RDMA_WRITTEN && !m.addr &&
				 !m.rkey)) && !len && got == sizeof(m) &&
			       np == 64);
	}
}

static const struct kvmig_cpuid_entry offered[] = {
	{ .function = 0, .eax = 0xd },
	{ .function = 1, .ecx = 0x7ffafbff, .edx = 0x078bfbff },
	{ .function = 7, .index = 0, .ebx = 0x219c07ab, .ecx = 0x0040069c },
	{ .function = 0xd, .index = 0, .eax = 0x7 },
	{ .function = 0x80000000, .eax = 0x80000021 },
	{ .function = 0x80000001, .ecx = 0x75c237ff, .edx = 0x2fd3fbff },
};

/*
 * The same bytes as a source's CHECK and FEATUREs, compared with a fixed
 * destination: findings stay within their room, errors first, every one
 * decodes, and a missing CPUID feature names only bits the source sent.
 */
static void fuzz_check(const unsigned char *p, size_t n)
{
	struct kvmig_wire_feature f[KVMIG_WIRE_MAX_FEATURES];
	struct kvmig_wire_finding out[KVMIG_MAX_FINDINGS];
	struct kvmig_check_local l = {
		.has_uuid = true, .uuid = { 1, 2, 3 }, .nr_vcpus = 2,
		.layout_ok = true, .cpuid = offered,
		.nr_cpuid = sizeof(offered) / sizeof(offered[0]),
	};
	struct kvmig_wire_check c;
	struct kvmig_finding d;
	u32 i, j, nr, nf, warned = 0;

	if (take(&p, &n, &c, sizeof(c)) || kvmig_wire_check_check(&c))
		return;
	nr = le32_to_cpu(c.nr_features);
	if (nr > KVMIG_WIRE_MAX_FEATURES)
		abort();
	if (take(&p, &n, f, nr * sizeof(f[0])))
		return;
	nf = kvmig_wire_check_eval(&l, &c, f, out, n & 1 ? 3 : KVMIG_MAX_FINDINGS);
	if (nf > (n & 1 ? 3 : KVMIG_MAX_FINDINGS))
		abort();
	for (i = 0; i < nf; i++) {
		if (kvmig_wire_decode_finding(&out[i], &d))
			abort();
		if (d.severity == KVMIG_CHECK_WARNING)
			warned = 1;
		else if (warned)
			abort();
		if (d.code != KVMIG_CHECK_E_CPUID)
			continue;
		for (j = 0; j < nr; j++)
			if (le32_to_cpu(f[j].function) == d.function &&
			    le32_to_cpu(f[j].index) == d.index &&
			    le32_to_cpu(f[j].reg) == d.reg &&
			    !(d.bits & ~le32_to_cpu(f[j].bits)))
				break;
		if (!d.bits || j == nr)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const unsigned char *p, size_t n)
{
	struct kvmig_wire_hello h;
	struct kvmig_wire_stream wst;
	struct kvmig_wire_slot ws;
	struct kvmig_wire_rec w;
	struct kvmig_rec rec, raw;
	const struct kvmig_wire_layout_slot *s;
	u32 i, nr, nr_streams, stream;
	u64 token;
	unsigned char sel;
	int ret, ok;

	fuzz_rdma(p, n);
	fuzz_check(p, n);
	if (take(&p, &n, &h, sizeof(h)) || kvmig_wire_check_hello(&h))
		return 0;
	nr_streams = le32_to_cpu(h.nr_streams);
	if (!nr_streams || nr_streams > KVMIG_WIRE_MAX_STREAMS || h.pad)
		abort();
	token = le64_to_cpu(h.token);
	nr = le32_to_cpu(h.nr_slots);
	for (i = 0; i < nr; i++) {
		if (take(&p, &n, &ws, sizeof(ws)))
			return 0;
		/* Go on either way: the decoder must hold up regardless. */
		(void)kvmig_wire_compare_slot(&ws, &layout[i % NR]);
	}
	if (take(&p, &n, &sel, sizeof(sel)))
		return 0;
	stream = sel % nr_streams;
	if (stream) {
		if (take(&p, &n, &wst, sizeof(wst)))
			return 0;
		ret = kvmig_wire_check_stream(&wst, stream, token);
		ok = le32_to_cpu(wst.magic) == KVMIG_WIRE_MAGIC &&
		     le16_to_cpu(wst.version) == KVMIG_WIRE_VERSION &&
		     le16_to_cpu(wst.index) == stream &&
		     le64_to_cpu(wst.token) == token;
		if (ret != (ok ? 0 : KVMIG_WIRE_E_STREAMS))
			abort();
		if (ret)
			return 0;
	}
	while (!take(&p, &n, &w, sizeof(w))) {
		/*
		 * The share check's arithmetic, on the header as it came:
		 * any gfn, up to U64_MAX, and any length. An empty run
		 * (never decoded) has no share of its own: left out.
		 */
		raw.type = le16_to_cpu(w.type);
		raw.slot_index = 0;
		raw.gfn = le64_to_cpu(w.gfn);
		raw.npages = le32_to_cpu(w.npages);
		raw.len = 0;
		if (raw.npages || (raw.type != KVMIG_REC_PAGES &&
				   raw.type != KVMIG_REC_ZERO)) {
			ret = kvmig_wire_check_share(&raw, stream, nr_streams);
			ok = share_ok(raw.type, raw.gfn, raw.npages, stream,
				      nr_streams);
			if (ret != (ok ? 0 : -EPROTO))
				abort();
		}

		if (kvmig_wire_decode_rec(&w, layout, NR, &rec))
			return 0;
		ret = kvmig_wire_check_share(&rec, stream, nr_streams);
		ok = share_ok(rec.type, rec.gfn, rec.npages, stream,
			      nr_streams);
		if (ret != (ok ? 0 : -EPROTO))
			abort();
		if (ret)
			return 0;
		switch (rec.type) {
		case KVMIG_REC_PAGES:
		case KVMIG_REC_ZERO:
			if (rec.slot_index >= NR)
				abort();
			s = &layout[rec.slot_index];
			if (s->id != le32_to_cpu(w.slot) || !rec.npages ||
			    rec.gfn < s->base_gfn ||
			    rec.gfn - s->base_gfn + rec.npages > s->npages ||
			    rec.npages > (rec.type == KVMIG_REC_ZERO ?
					  KVMIG_WIRE_MAX_ZERO_RUN :
					  KVMIG_WIRE_MAX_RUN))
				abort();
			if (rec.type == KVMIG_REC_PAGES) {
				size_t len = (size_t)rec.npages << 12;

				if (n < len)
					return 0;
				p += len;
				n -= len;
			}
			break;
		case KVMIG_REC_STATE:
			if (rec.len > KVMIG_WIRE_MAX_STATE)
				abort();
			if (n < rec.len)
				return 0;
			p += rec.len;
			n -= rec.len;
			break;
		case KVMIG_REC_WAIT:
			if (rec.gfn || rec.npages || rec.len)
				abort();
			break;
		case KVMIG_REC_ROUND:
			break;
		case KVMIG_REC_END:
		case KVMIG_REC_COMMIT:
			return 0;
		default:
			abort();
		}
	}
	return 0;
}
