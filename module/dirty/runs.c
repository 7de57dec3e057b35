// SPDX-License-Identifier: GPL-2.0
/*
 * Pending bitmaps to runs of dirty gfns: the form the transfer engine and
 * KVMIG_DIRTY_READ hand pages on in.
 */
#include <linux/bitmap.h>
#include <linux/bitops.h>
#include <linux/export.h>
#include <linux/minmax.h>
#include <kunit/visibility.h>

#include "dirty.h"

/**
 * kvmig_bitmap_runs - runs of set bits, from a position on
 * @bm: bitmap, bit i is page @base_gfn + i
 * @nbits: bits in @bm
 * @pos: in: first bit to look at; out: where the next call goes on
 * @base_gfn: gfn of bit 0
 * @slot: memslot id to put in the runs
 * @runs: output array
 * @max: capacity of @runs
 * @pages: the pages of the runs written are added here
 *
 * Does not change @bm. A run never crosses the end of @bm and never holds
 * more than U32_MAX pages. Return: runs written; fewer than @max only if
 * the end of @bm was reached (then *@pos == @nbits).
 */
u32 kvmig_bitmap_runs(const unsigned long *bm, unsigned long nbits,
		      unsigned long *pos, u64 base_gfn, u32 slot,
		      struct kvmig_dirty_run *runs, u32 max, u64 *pages)
{
	unsigned long start, end;
	u32 n = 0;

	start = *pos;
	while (n < max) {
		start = find_next_bit(bm, nbits, start);
		if (start >= nbits)
			break;
		end = find_next_zero_bit(bm, nbits, start + 1);
		end = min_t(unsigned long, end, start + U32_MAX);
		runs[n].gfn = base_gfn + start;
		runs[n].npages = end - start;
		runs[n].slot = slot;
		*pages += end - start;
		n++;
		start = end;
	}
	*pos = min(start, nbits);
	return n;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_bitmap_runs);
