// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness for the wire decoder (module/xfer/wire.c, built here
 * unchanged): the input is what a source would send to a destination,
 * parsed exactly as kvmig_xfer_recv() does. Whatever the bytes, every
 * accepted page record must lie inside the destination's memslots and
 * every accepted state blob within its limit; a violation aborts.
 */
#include <stdlib.h>
#include <string.h>

#include "../module/xfer/wire.h"

static const struct kvmig_wire_layout_slot layout[] = {
	{ .id = 0, .flags = KVM_MEM_READONLY, .base_gfn = 0, .npages = 48 },
	{ .id = 1, .base_gfn = 0x20000, .npages = 512 },
	{ .id = 3, .base_gfn = 0x40000, .npages = 512 },
	{ .id = 40000, .base_gfn = 0xfffffffffff00ULL, .npages = 0xff },
};
#define NR	(sizeof(layout) / sizeof(layout[0]))

static int take(const unsigned char **p, size_t *n, void *out, size_t len)
{
	if (*n < len)
		return -1;
	memcpy(out, *p, len);
	*p += len;
	*n -= len;
	return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *p, size_t n)
{
	struct kvmig_wire_hello h;
	struct kvmig_wire_slot ws;
	struct kvmig_wire_rec w;
	struct kvmig_rec rec;
	const struct kvmig_wire_layout_slot *s;
	u32 i, nr;

	if (take(&p, &n, &h, sizeof(h)) || kvmig_wire_check_hello(&h))
		return 0;
	nr = le32_to_cpu(h.nr_slots);
	for (i = 0; i < nr; i++) {
		if (take(&p, &n, &ws, sizeof(ws)))
			return 0;
		/* Go on either way: the decoder must hold up regardless. */
		(void)kvmig_wire_compare_slot(&ws, &layout[i % NR]);
	}
	while (!take(&p, &n, &w, sizeof(w))) {
		if (kvmig_wire_decode_rec(&w, layout, NR, &rec))
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
