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
