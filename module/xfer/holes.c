// SPDX-License-Identifier: GPL-2.0
/*
 * Holes in guest memory: ranges of the VMM's mapping that were never
 * populated, and so read as zero without anything behind them. Round 0
 * sends them as ZERO records without pinning them, and the destination
 * passes over its own holes when it receives one: a read fault on such a
 * page would map the zero page and allocate page tables (anonymous
 * memory), or allocate the page itself (shmem and memfd, which have no
 * zero page), so that migrating a sparse guest would cost, and on shmem
 * allocate, all of its memory.
 *
 * A page is a hole when
 *  - its VMA is anonymous or shmem (any other kind of mapping may have
 *    contents that no page table shows: a regular file, hugetlbfs, a
 *    device), and
 *  - no page table entry maps it: not present, not swapped out, not
 *    migrating (any non-none PTE or a huge PMD counts as populated), and
 *  - for shmem, the file's page cache holds no entry at its index: neither
 *    a folio nor a swap entry (a shared mapping may have unmapped a page
 *    that still holds data).
 *
 * The walk reads the page tables without their locks, as GUP-fast does,
 * but with mmap_lock held for reading: what frees an anonymous VMA's page
 * tables (munmap, mremap, khugepaged's collapse) needs it for writing, and
 * shmem's retracted page tables are never read here past the PMD. A page
 * populated while the walk runs was written after dirty logging started,
 * and is logged and sent again like any other dirty page.
 */
#include <kunit/visibility.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/pgtable.h>
#include <linux/shmem_fs.h>
#include <linux/xarray.h>

#include "xfer.h"

/* Which rules say whether a page of @vma is a hole. */
enum hole_kind {
	HOLE_NEVER,	/* contents we cannot see: never a hole */
	HOLE_ANON,	/* page tables */
	HOLE_SHMEM,	/* page tables and the page cache */
};

static enum hole_kind vma_hole_kind(struct vm_area_struct *vma)
{
	if (vma->vm_flags & (VM_IO | VM_PFNMAP | VM_MIXEDMAP | VM_HUGETLB))
		return HOLE_NEVER;
	if (vma_is_anonymous(vma))
		return HOLE_ANON;
	if (vma->vm_file && shmem_mapping(vma->vm_file->f_mapping))
		return HOLE_SHMEM;
	return HOLE_NEVER;
}

/*
 * Pages from @addr up to @end that share the state of the first: a hole
 * (*@hole true) or populated, as the page tables alone say. A level with
 * no table is a hole as wide as its range; a leaf or a non-present entry
 * at any level (a huge page, a swap or migration entry) is populated.
 */
static unsigned long pt_span(struct mm_struct *mm, unsigned long addr,
			     unsigned long end, bool *hole)
{
	unsigned long start = addr, next, pmd_end;
	bool h, stop;
	pgd_t *pgdp;
	p4d_t *p4dp, p4d;
	pud_t *pudp, pud;
	pmd_t *pmdp, pmd;
	pte_t *ptep;

	while (addr < end) {
		stop = false;
		pgdp = pgd_offset(mm, addr);
		next = pgd_addr_end(addr, end);
		h = pgd_none(READ_ONCE(*pgdp));
		if (h)
			goto span;
		p4dp = p4d_offset(pgdp, addr);
		p4d = READ_ONCE(*p4dp);
		next = p4d_addr_end(addr, end);
		h = p4d_none(p4d);
		if (h)
			goto span;
		pudp = pud_offset(p4dp, addr);
		pud = READ_ONCE(*pudp);
		next = pud_addr_end(addr, end);
		h = pud_none(pud);
		if (h || pud_leaf(pud) || !pud_present(pud))
			goto span;
		pmdp = pmd_offset(pudp, addr);
		pmd = READ_ONCE(*pmdp);
		next = pmd_addr_end(addr, end);
		h = pmd_none(pmd);
		if (h || pmd_leaf(pmd) || !pmd_present(pmd))
			goto span;
		/* A table of PTEs: page by page, up to the end of the PMD. */
		pmd_end = next;
		ptep = pte_offset_kernel(&pmd, addr);
		h = pte_none(ptep_get(ptep));
		for (next = addr + PAGE_SIZE; next < pmd_end; next += PAGE_SIZE) {
			if (pte_none(ptep_get(++ptep)) != h) {
				stop = true;
				break;
			}
		}
span:
		if (addr == start)
			*hole = h;
		else if (h != *hole)
			break;
		addr = next;
		if (stop)
			break;
	}
	return (addr - start) >> PAGE_SHIFT;
}

/*
 * Of @n pages of shmem at page cache index @index, which the page tables
 * call a hole: how many lead the range with the same state, hole or
 * populated, as the page cache says (a folio or a swap entry is data).
 */
static unsigned long cache_span(struct address_space *mapping, pgoff_t index,
				unsigned long n, bool *hole)
{
	pgoff_t found = index, i;

	if (!xa_find(&mapping->i_pages, &found, index + n - 1, XA_PRESENT)) {
		*hole = true;
		return n;
	}
	if (found > index) {
		*hole = true;
		return found - index;
	}
	*hole = false;
	for (i = 1; i < n; i++)
		if (!xa_load(&mapping->i_pages, index + i))
			break;
	return i;
}

/**
 * kvmig_hole_span - how far the state of the page at @addr goes
 * @mm: the VMM's mm
 * @addr: a page-aligned user address of guest memory
 * @n: pages to look at, at least 1
 * @hole: out: whether the first page is a hole (see above)
 *
 * Return: the number of pages from @addr, 1 to @n, that are all holes or
 * all populated. An address outside any VMA is reported populated: the
 * pin that follows fails on it as it would without this walk.
 */
unsigned long kvmig_hole_span(struct mm_struct *mm, unsigned long addr,
			      unsigned long n, bool *hole)
{
	struct vm_area_struct *vma;
	enum hole_kind kind;
	unsigned long end, len;

	*hole = false;
	if (!n)
		return 0;
	mmap_read_lock(mm);
	vma = vma_lookup(mm, addr);
	if (!vma) {
		len = 1;
		goto out;
	}
	kind = vma_hole_kind(vma);
	/* @n may be anything: shift only what fits in the VMA. */
	end = addr + (min(n, (vma->vm_end - addr) >> PAGE_SHIFT) << PAGE_SHIFT);
	if (kind == HOLE_NEVER) {
		len = (end - addr) >> PAGE_SHIFT;
		goto out;
	}
	len = pt_span(mm, addr, end, hole);
	if (*hole && kind == HOLE_SHMEM)
		len = cache_span(vma->vm_file->f_mapping,
				 linear_page_index(vma, addr), len, hole);
out:
	mmap_read_unlock(mm);
	return len;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_hole_span);
