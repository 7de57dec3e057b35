// SPDX-License-Identifier: GPL-2.0
/*
 * kvmig wire protocol: decode and check what the peer sent. Pure code, no
 * I/O: KUnit tests it in the kernel and libFuzzer in userspace (fuzz/).
 */
#ifdef __KERNEL__
#include <linux/errno.h>
#include <linux/export.h>
#include <linux/kvm.h>
#include <linux/string.h>
#include <kunit/visibility.h>
#endif

#include "wire.h"

/* Return: 0, or a KVMIG_WIRE_E_* status for the reply. */
int kvmig_wire_check_hello(const struct kvmig_wire_hello *h)
{
	if (le32_to_cpu(h->magic) != KVMIG_WIRE_MAGIC)
		return KVMIG_WIRE_E_PROTO;
	if (le16_to_cpu(h->version) != KVMIG_WIRE_VERSION ||
	    le16_to_cpu(h->page_shift) != KVMIG_WIRE_PAGE_SHIFT)
		return KVMIG_WIRE_E_VERSION;
	if ((le32_to_cpu(h->flags) & ~KVMIG_WIRE_HELLO_FLAGS) ||
	    !le32_to_cpu(h->nr_slots) ||
	    le32_to_cpu(h->nr_slots) > KVMIG_WIRE_MAX_SLOTS ||
	    !le32_to_cpu(h->nr_streams) ||
	    le32_to_cpu(h->nr_streams) > KVMIG_WIRE_MAX_STREAMS || h->pad)
		return KVMIG_WIRE_E_PROTO;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_wire_check_hello);

/*
 * Is @w the opening of stream @index of the migration whose HELLO
 * carried @token? Return: 0 or KVMIG_WIRE_E_STREAMS.
 */
int kvmig_wire_check_stream(const struct kvmig_wire_stream *w, u32 index,
			    u64 token)
{
	if (le32_to_cpu(w->magic) != KVMIG_WIRE_MAGIC ||
	    le16_to_cpu(w->version) != KVMIG_WIRE_VERSION ||
	    le16_to_cpu(w->index) != index || le64_to_cpu(w->token) != token)
		return KVMIG_WIRE_E_STREAMS;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_wire_check_stream);

/*
 * May @rec, decoded, come on stream @stream of @nr_streams? The first
 * stream takes every type, the others PAGES, ZERO, ROUND and END only; a
 * PAGES or ZERO run must lie in one share, that of @stream. Another
 * stream's page would break the order of its copies. Return: 0 or -EPROTO.
 */
int kvmig_wire_check_share(const struct kvmig_rec *rec, u32 stream,
			   u32 nr_streams)
{
	switch (rec->type) {
	case KVMIG_REC_PAGES:
	case KVMIG_REC_ZERO:
		break;
	case KVMIG_REC_WAIT:
	case KVMIG_REC_ROUND:
	case KVMIG_REC_END:
		return 0;
	default:
		return stream ? -EPROTO : 0;
	}
	if (nr_streams == 1)
		return 0;
	if (kvmig_wire_share_left(rec->gfn, rec->npages) != rec->npages ||
	    kvmig_wire_stream_of(rec->gfn, nr_streams) != stream)
		return -EPROTO;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_wire_check_share);

/* Same memslot on both ends? Return: 0 or KVMIG_WIRE_E_LAYOUT. */
int kvmig_wire_compare_slot(const struct kvmig_wire_slot *w,
			    const struct kvmig_wire_layout_slot *mine)
{
	if (le32_to_cpu(w->id) != mine->id ||
	    le64_to_cpu(w->base_gfn) != mine->base_gfn ||
	    le64_to_cpu(w->npages) != mine->npages ||
	    (le32_to_cpu(w->flags) & KVM_MEM_READONLY) !=
	    (mine->flags & KVM_MEM_READONLY))
		return KVMIG_WIRE_E_LAYOUT;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_wire_compare_slot);

/*
 * Decode one record header and check it against the layout (sorted by id):
 * a PAGES or ZERO run must lie wholly inside one memslot, and not be empty
 * or longer than KVMIG_WIRE_MAX_RUN (PAGES: the pages that follow are
 * received into one pinned batch) or KVMIG_WIRE_MAX_ZERO_RUN (ZERO: the
 * destination looks at each of its populated pages, cancellable between
 * pages); a STATE blob must fit the limit.
 * Return: 0 or -EPROTO.
 */
int kvmig_wire_decode_rec(const struct kvmig_wire_rec *w,
			  const struct kvmig_wire_layout_slot *slots, u32 nr,
			  struct kvmig_rec *out)
{
	u32 lo = 0, hi = nr, mid, id;
	u64 gfn, n;

	if (w->flags)
		return -EPROTO;
	out->type = le16_to_cpu(w->type);
	out->gfn = le64_to_cpu(w->gfn);
	out->npages = le32_to_cpu(w->npages);
	out->len = le32_to_cpu(w->len);
	out->slot_index = 0;

	switch (out->type) {
	case KVMIG_REC_PAGES:
	case KVMIG_REC_ZERO:
		break;
	case KVMIG_REC_STATE:
		if (w->slot || out->gfn || out->npages ||
		    out->len > KVMIG_WIRE_MAX_STATE)
			return -EPROTO;
		return 0;
	case KVMIG_REC_WAIT:
		if (w->slot || out->gfn || out->npages || out->len)
			return -EPROTO;
		return 0;
	case KVMIG_REC_ROUND:
	case KVMIG_REC_END:
	case KVMIG_REC_COMMIT:
		if (w->slot || out->npages || out->len)
			return -EPROTO;
		return 0;
	default:
		return -EPROTO;
	}

	if (out->len)
		return -EPROTO;
	n = out->npages;
	if (!n || n > (out->type == KVMIG_REC_ZERO ? KVMIG_WIRE_MAX_ZERO_RUN :
		       KVMIG_WIRE_MAX_RUN))
		return -EPROTO;
	id = le32_to_cpu(w->slot);
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (slots[mid].id == id)
			break;
		if (slots[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= hi)
		return -EPROTO;
	gfn = out->gfn;
	/* Written so that no sum can wrap. */
	if (gfn < slots[mid].base_gfn ||
	    gfn - slots[mid].base_gfn >= slots[mid].npages ||
	    n > slots[mid].npages - (gfn - slots[mid].base_gfn))
		return -EPROTO;
	out->slot_index = mid;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_wire_decode_rec);

void kvmig_wire_encode_rec(struct kvmig_wire_rec *w, u32 type, u32 slot,
			   u64 gfn, u32 npages, u32 len)
{
	memset(w, 0, sizeof(*w));
	w->type = cpu_to_le16(type);
	w->slot = cpu_to_le32(slot);
	w->gfn = cpu_to_le64(gfn);
	w->npages = cpu_to_le32(npages);
	w->len = cpu_to_le32(len);
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_wire_encode_rec);

/* The peer's bootstrap record: RDMA, of this version. 0 or -EPROTO. */
int kvmig_wire_check_rdma_boot(const struct kvmig_rdma_boot *b)
{
	if (le32_to_cpu(b->magic) != KVMIG_RDMA_MAGIC ||
	    le16_to_cpu(b->version) != KVMIG_RDMA_VERSION || b->flags ||
	    b->reserved)
		return -EPROTO;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_wire_check_rdma_boot);

/*
 * An RDMA message of @got bytes, where one of @type is due: DATA, with a
 * length of 1 up to what arrived after the header; GRANT or WRITTEN, for
 * exactly @npages pages, with no payload. Fields a type does not use must
 * be 0. 0 or -EPROTO.
 */
int kvmig_wire_check_rdma_msg(const struct kvmig_rdma_msg *m, u32 got,
			      u32 type, u32 npages)
{
	u32 len;

	if (got < sizeof(*m) || le32_to_cpu(m->type) != type)
		return -EPROTO;
	len = le32_to_cpu(m->len);
	switch (type) {
	case KVMIG_RDMA_DATA:
		if (!len || len > got - sizeof(*m) || m->addr || m->rkey ||
		    m->npages)
			return -EPROTO;
		return 0;
	case KVMIG_RDMA_GRANT:
		if (len || got != sizeof(*m) ||
		    le32_to_cpu(m->npages) != npages)
			return -EPROTO;
		return 0;
	case KVMIG_RDMA_WRITTEN:
		if (len || got != sizeof(*m) || m->addr || m->rkey ||
		    le32_to_cpu(m->npages) != npages)
			return -EPROTO;
		return 0;
	}
	return -EPROTO;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_wire_check_rdma_msg);

/*
 * The CPUID registers whose bits are features a guest may rely on: what
 * the pre-check compares. @ignore: bits the CPU or KVM set at run time
 * (OSXSAVE, OSPKE follow CR4) or that the VMM sets whatever KVM reports
 * (the hypervisor bit).
 */
const struct kvmig_feature_reg kvmig_feature_regs[] = {
	{ 0x1, 0, KVMIG_CPUID_ECX, false, BIT(27) | BIT(31) },
	{ 0x1, 0, KVMIG_CPUID_EDX, false, 0 },
	{ 0x7, 0, KVMIG_CPUID_EBX, true, 0 },
	{ 0x7, 0, KVMIG_CPUID_ECX, true, BIT(4) },
	{ 0x7, 0, KVMIG_CPUID_EDX, true, 0 },
	{ 0x7, 1, KVMIG_CPUID_EAX, true, 0 },
	{ 0x7, 1, KVMIG_CPUID_EDX, true, 0 },
	{ 0xd, 0, KVMIG_CPUID_EAX, true, 0 },	/* XCR0, low half */
	{ 0xd, 0, KVMIG_CPUID_EDX, true, 0 },	/* XCR0, high half */
	{ 0xd, 1, KVMIG_CPUID_EAX, true, 0 },	/* XSAVEOPT, XSAVEC, XSAVES */
	{ 0x80000001, 0, KVMIG_CPUID_ECX, false, 0 },
	{ 0x80000001, 0, KVMIG_CPUID_EDX, false, 0 },
	{ 0x80000007, 0, KVMIG_CPUID_EDX, false, 0 },	/* invariant TSC */
	{ 0x80000008, 0, KVMIG_CPUID_EBX, false, 0 },
	{ 0x80000021, 0, KVMIG_CPUID_EAX, false, 0 },
};
EXPORT_SYMBOL_IF_KUNIT(kvmig_feature_regs);

/* The entry for @function (and @index, if @indexed) in @e, or NULL. */
const struct kvmig_cpuid_entry *
kvmig_cpuid_find(const struct kvmig_cpuid_entry *e, u32 nr, u32 function,
		 u32 index, bool indexed)
{
	u32 i;

	for (i = 0; i < nr; i++)
		if (e[i].function == function &&
		    (!indexed || e[i].index == index))
			return &e[i];
	return NULL;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_cpuid_find);

u32 kvmig_cpuid_reg(const struct kvmig_cpuid_entry *e, u32 reg)
{
	switch (reg) {
	case KVMIG_CPUID_EAX:
		return e->eax;
	case KVMIG_CPUID_EBX:
		return e->ebx;
	case KVMIG_CPUID_ECX:
		return e->ecx;
	default:
		return e->edx;
	}
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_cpuid_reg);

/* Is the source's CHECK well formed? Return: 0 or KVMIG_WIRE_E_PROTO. */
int kvmig_wire_check_check(const struct kvmig_wire_check *c)
{
	u32 flags = le32_to_cpu(c->flags);
	static const u8 none[16];

	if (flags & ~KVMIG_WIRE_CHECK_FLAGS ||
	    le32_to_cpu(c->nr_features) > KVMIG_WIRE_MAX_FEATURES)
		return KVMIG_WIRE_E_PROTO;
	if (!!(flags & KVMIG_WIRE_CHECK_UUID) == !memcmp(c->uuid, none, 16))
		return KVMIG_WIRE_E_PROTO;
	if (!(flags & KVMIG_WIRE_CHECK_DIFFERS) && c->vcpu_differs)
		return KVMIG_WIRE_E_PROTO;
	if (!(flags & KVMIG_WIRE_CHECK_UNREAD) && c->vcpu_unread)
		return KVMIG_WIRE_E_PROTO;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_wire_check_check);

static void finding(struct kvmig_wire_finding *out, u32 max, u32 *n,
		    u32 code, u32 function, u32 index, u32 reg, u32 bits,
		    u64 source, u64 dest)
{
	struct kvmig_wire_finding *f = &out[*n];

	if (*n >= max)
		return;
	(*n)++;
	f->code = cpu_to_le32(code);
	f->severity = cpu_to_le32(code < KVMIG_CHECK_W_UUID ?
				  KVMIG_CHECK_ERROR : KVMIG_CHECK_WARNING);
	f->function = cpu_to_le32(function);
	f->index = cpu_to_le32(index);
	f->reg = cpu_to_le32(reg);
	f->bits = cpu_to_le32(bits);
	f->source = cpu_to_le64(source);
	f->dest = cpu_to_le64(dest);
}

/* The source's CPUID features against what the destination offers. */
static void eval_cpuid(const struct kvmig_check_local *l,
		       const struct kvmig_wire_check *c,
		       const struct kvmig_wire_feature *f,
		       struct kvmig_wire_finding *out, u32 max, u32 *n)
{
	u32 i, nr = le32_to_cpu(c->nr_features);
	const struct kvmig_cpuid_entry *e;
	const struct kvmig_feature_reg *r;
	u32 fn, idx, reg, bits, have, j;

	for (i = 0; i < nr; i++) {
		fn = le32_to_cpu(f[i].function);
		idx = le32_to_cpu(f[i].index);
		reg = le32_to_cpu(f[i].reg);
		bits = le32_to_cpu(f[i].bits);
		/* Only the registers both ends know are compared. */
		for (j = 0, r = NULL; j < KVMIG_NR_FEATURE_REGS && !r; j++)
			if (kvmig_feature_regs[j].function == fn &&
			    kvmig_feature_regs[j].index == idx &&
			    kvmig_feature_regs[j].reg == reg)
				r = &kvmig_feature_regs[j];
		if (!r)
			continue;
		bits &= ~r->ignore;
		e = kvmig_cpuid_find(l->cpuid, l->nr_cpuid, fn, idx,
				     r->indexed);
		have = e ? kvmig_cpuid_reg(e, reg) : 0;
		if (bits & ~have)
			finding(out, max, n, KVMIG_CHECK_E_CPUID, fn, idx, reg,
				bits & ~have, bits, have);
	}
}

static u32 max_leaf(const struct kvmig_check_local *l, u32 function)
{
	const struct kvmig_cpuid_entry *e;

	e = kvmig_cpuid_find(l->cpuid, l->nr_cpuid, function, 0, false);
	return e ? e->eax : 0;
}

/*
 * The destination's pre-check: compare the source's @c and its features
 * @f (c->nr_features of them, checked by kvmig_wire_check_check()) with
 * @l. Writes at most @max findings to @out, errors first.
 * Return: how many.
 */
u32 kvmig_wire_check_eval(const struct kvmig_check_local *l,
			  const struct kvmig_wire_check *c,
			  const struct kvmig_wire_feature *f,
			  struct kvmig_wire_finding *out, u32 max)
{
	u32 flags = le32_to_cpu(c->flags), n = 0, v;
	bool uuid = flags & KVMIG_WIRE_CHECK_UUID;

	if (uuid && l->has_uuid && memcmp(c->uuid, l->uuid, 16))
		finding(out, max, &n, KVMIG_CHECK_E_UUID, 0, 0, 0, 0, 0, 0);
	if (!l->layout_ok)
		finding(out, max, &n, KVMIG_CHECK_E_LAYOUT, 0, l->layout_slot,
			0, 0, 0, 0);
	v = le32_to_cpu(c->nr_vcpus);
	if (l->nr_vcpus && v != l->nr_vcpus)
		finding(out, max, &n, KVMIG_CHECK_E_VCPUS, 0, 0, 0, 0, v,
			l->nr_vcpus);
	if (l->cpuid)
		eval_cpuid(l, c, f, out, max, &n);

	if (uuid != l->has_uuid)
		finding(out, max, &n, KVMIG_CHECK_W_UUID, 0, 0, 0, 0, uuid,
			l->has_uuid);
	v = le32_to_cpu(c->dirty_ring);
	if (v != l->dirty_ring)
		finding(out, max, &n, KVMIG_CHECK_W_DIRTY, 0, 0, 0, 0, v,
			l->dirty_ring);
	v = !!(flags & KVMIG_WIRE_CHECK_MANUAL);
	if (v != l->manual)
		finding(out, max, &n, KVMIG_CHECK_W_MANUAL, 0, 0, 0, 0, v,
			l->manual);
	if (!l->cpuid)
		finding(out, max, &n, KVMIG_CHECK_W_NO_CPUID, 0, 0, 0, 0, 0, 0);
	if (flags & KVMIG_WIRE_CHECK_DIFFERS)
		finding(out, max, &n, KVMIG_CHECK_W_CPUID_VCPUS, 0,
			le32_to_cpu(c->vcpu_differs), 0, 0, 0, 0);
	if (flags & KVMIG_WIRE_CHECK_UNREAD)
		finding(out, max, &n, KVMIG_CHECK_W_CPUID_UNREAD, 0,
			le32_to_cpu(c->vcpu_unread), 0, 0, 0, 0);
	if (l->cpuid) {
		v = max_leaf(l, 0);
		if (le32_to_cpu(c->max_basic) > v)
			finding(out, max, &n, KVMIG_CHECK_W_CPUID_LEAF, 0, 0,
				0, 0, le32_to_cpu(c->max_basic), v);
		v = max_leaf(l, 0x80000000);
		if (le32_to_cpu(c->max_ext) > v)
			finding(out, max, &n, KVMIG_CHECK_W_CPUID_LEAF,
				0x80000000, 0, 0, 0, le32_to_cpu(c->max_ext),
				v);
	}
	return n;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_wire_check_eval);

/* A finding from the peer. Return: 0, or -EPROTO for a bad severity. */
int kvmig_wire_decode_finding(const struct kvmig_wire_finding *w,
			      struct kvmig_finding *f)
{
	f->code = le32_to_cpu(w->code);
	f->severity = le32_to_cpu(w->severity);
	f->function = le32_to_cpu(w->function);
	f->index = le32_to_cpu(w->index);
	f->reg = le32_to_cpu(w->reg);
	f->bits = le32_to_cpu(w->bits);
	f->source = le64_to_cpu(w->source);
	f->dest = le64_to_cpu(w->dest);
	if (f->severity != KVMIG_CHECK_ERROR &&
	    f->severity != KVMIG_CHECK_WARNING)
		return -EPROTO;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_wire_decode_finding);
