/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmig wire protocol, version 5: what travels on the migration socket.
 * Little-endian, fixed-size headers; every field from the peer is checked
 * by the functions below before it is used.
 *
 *   source                                   destination
 *   HELLO + nr_slots x SLOT  ------------->  compares with its own layout
 *   (each other stream: STREAM)  --------->  checks it is in its place
 *                            <-------------  REPLY (status)
 *   REC(WAIT), every quarter I/O timeout ->  the source waits for its turn
 *   REC(PAGES, slot, gfn, n) + n pages  -->  written into the guest's pages
 *   REC(ZERO, slot, gfn, n)  ------------->  only populated nonzero pages cleared
 *   REC(ROUND, round)        ------------->  round boundary
 *   ...
 *   REC(STATE, len) + len bytes  -------->  device state, for the VMM
 *   REC(END)                 ------------->
 *                            <-------------  REPLY (PREPARED: status, pages)
 *   REC(COMMIT)              ------------->  the point of no return
 *                            <-------------  REPLY (status): acknowledged
 *
 * With several streams (connections), the first carries everything above
 * and its share of PAGES and ZERO records; each other stream carries only
 * its share and each ROUND (so that it hears from the source every round,
 * even with no page of its share dirty), then END once the source has
 * sent its last page. A page's
 * share is fixed by its gfn, kvmig_wire_stream_of(): every copy of a page
 * goes on one stream, in order, so a newer copy can never be overtaken by
 * an older one on another stream. The destination answers END on the
 * first stream only once every stream has reached its END.
 *
 * The switchover is a two-phase commit, the source coordinating: the
 * destination may run the guest only once it has COMMIT; the source may
 * resume only if it never sent COMMIT. Documentation/xfer.rst has the
 * outcomes of every message lost.
 *
 * This header and wire.c build in the kernel and, for the fuzzer, in
 * userspace (fuzz/).
 */
#ifndef _KVMIG_WIRE_H
#define _KVMIG_WIRE_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <asm/byteorder.h>
#else
#include "kshim.h"
#endif
#include <kvmig.h>

#define KVMIG_WIRE_MAGIC	0x474d564bU	/* "KVMG" */
#define KVMIG_WIRE_VERSION	5
#define KVMIG_WIRE_PAGE_SHIFT	12
#define KVMIG_WIRE_MAX_SLOTS	512
#define KVMIG_WIRE_MAX_RUN	64		/* pages per PAGES record */
#define KVMIG_WIRE_MAX_ZERO_RUN	262144U		/* pages per ZERO record: 1 GiB */
#define KVMIG_WIRE_MAX_STATE	(16U << 20)	/* device state bytes */
#define KVMIG_WIRE_MAX_STREAMS	16
#define KVMIG_WIRE_SHARD_SHIFT	9		/* 512 pages, 2 MiB, per share */

struct kvmig_wire_hello {
	__le32 magic;
	__le16 version;
	__le16 page_shift;
	__le32 nr_slots;
	__le32 flags;		/* KVMIG_WIRE_HELLO_* */
	__le64 guest_pages;
	__le32 nr_streams;	/* 1..KVMIG_WIRE_MAX_STREAMS */
	__le32 pad;		/* 0 */
	__le64 token;		/* the source's random number for this migration */
};

/* The first thing on each stream but the first. */
struct kvmig_wire_stream {
	__le32 magic;
	__le16 version;
	__le16 index;		/* 1..nr_streams - 1 */
	__le64 token;		/* the HELLO's */
};

/*
 * struct kvmig_wire_hello.flags: the SLOTs are regions (KVMIG_ATTACH_REGIONS)
 * named by id, with pages numbered from 0. A peer that does not know a flag
 * refuses the hello, and both ends must agree on it.
 */
#define KVMIG_WIRE_HELLO_REGIONS	0x1U
/*
 * A CHECK and its FEATUREs follow the SLOTs, and FINDINGS follow the
 * destination's REPLY whenever it read them (status OK, E_LAYOUT,
 * E_STREAMS or E_CHECK).
 */
#define KVMIG_WIRE_HELLO_CHECK		0x2U
#define KVMIG_WIRE_HELLO_FLAGS		(KVMIG_WIRE_HELLO_REGIONS | \
					 KVMIG_WIRE_HELLO_CHECK)

struct kvmig_wire_slot {
	__le32 id;
	__le32 flags;		/* KVM_MEM_READONLY matters; the rest is ignored */
	__le64 base_gfn;
	__le64 npages;
};

/*
 * The pre-check: what the source's VM is, for the destination to compare
 * with its own. The source's vCPUs' CPUID goes as the union, over the
 * vCPUs, of each feature register kvmig_wire_check_eval() compares.
 */
struct kvmig_wire_check {
	__le32 flags;		/* KVMIG_WIRE_CHECK_* */
	__le32 nr_vcpus;
	u8 uuid[16];		/* with KVMIG_WIRE_CHECK_UUID */
	__le32 dirty_ring;	/* bytes of dirty ring per vCPU, 0: none */
	__le32 max_basic;	/* CPUID.0:EAX, highest of the vCPUs */
	__le32 max_ext;		/* CPUID.80000000h:EAX, highest */
	__le32 vcpu_differs;	/* with _DIFFERS: the first such vCPU */
	__le32 vcpu_unread;	/* with _UNREAD: the first such vCPU */
	__le32 nr_features;	/* FEATUREs that follow */
};

#define KVMIG_WIRE_CHECK_UUID		0x1U	/* @uuid is the VM's identity */
#define KVMIG_WIRE_CHECK_DRY_RUN	0x2U	/* no page follows: end here */
#define KVMIG_WIRE_CHECK_MANUAL		0x4U	/* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 */
#define KVMIG_WIRE_CHECK_DIFFERS	0x8U	/* vCPUs' features differ */
#define KVMIG_WIRE_CHECK_UNREAD		0x10U	/* a vCPU's CPUID not read */
#define KVMIG_WIRE_CHECK_FLAGS		0x1fU
#define KVMIG_WIRE_MAX_FEATURES		32

struct kvmig_wire_feature {
	__le32 function;
	__le32 index;
	__le32 reg;		/* KVMIG_CPUID_* */
	__le32 bits;
};

/* After the REPLY: @nr FINDINGs, errors first. */
struct kvmig_wire_findings {
	__le32 magic;
	__le32 nr;		/* at most KVMIG_MAX_FINDINGS */
};

struct kvmig_wire_finding {
	__le32 code;
	__le32 severity;
	__le32 function;
	__le32 index;
	__le32 reg;
	__le32 bits;
	__le64 source;
	__le64 dest;
};

/* The destination's side of the pre-check. */
struct kvmig_check_local {
	bool has_uuid;
	u8 uuid[16];
	u32 nr_vcpus;
	u32 dirty_ring;
	bool manual;
	bool layout_ok;
	u32 layout_slot;	/* the first slot that differs */
	const struct kvmig_cpuid_entry *cpuid;	/* NULL: none given */
	u32 nr_cpuid;
};

/* The feature registers the pre-check compares. */
struct kvmig_feature_reg {
	u32 function;
	u32 index;
	u32 reg;
	bool indexed;		/* the leaf has subleaves */
	u32 ignore;		/* bits set at run time, or by the VMM alone */
};

/*
 * The array is declared with its size, so that a row missing from it
 * breaks the build; the source sends them all (KVMIG_WIRE_MAX_FEATURES).
 */
#define KVMIG_NR_FEATURE_REGS	15
extern const struct kvmig_feature_reg kvmig_feature_regs[KVMIG_NR_FEATURE_REGS];

int kvmig_wire_check_check(const struct kvmig_wire_check *c);
u32 kvmig_wire_check_eval(const struct kvmig_check_local *l,
			  const struct kvmig_wire_check *c,
			  const struct kvmig_wire_feature *f,
			  struct kvmig_wire_finding *out, u32 max);
int kvmig_wire_decode_finding(const struct kvmig_wire_finding *w,
			      struct kvmig_finding *f);
const struct kvmig_cpuid_entry *
kvmig_cpuid_find(const struct kvmig_cpuid_entry *e, u32 nr, u32 function,
		 u32 index, bool indexed);
u32 kvmig_cpuid_reg(const struct kvmig_cpuid_entry *e, u32 reg);

/* Status of a REPLY. */
enum {
	KVMIG_WIRE_OK		= 0,
	KVMIG_WIRE_E_VERSION	= 1,	/* version or page size not spoken */
	KVMIG_WIRE_E_LAYOUT	= 2,	/* memslot layout differs */
	KVMIG_WIRE_E_PROTO	= 3,	/* malformed stream */
	KVMIG_WIRE_E_LOCAL	= 4,	/* the destination failed on its own */
	KVMIG_WIRE_E_STREAMS	= 5,	/* streams differ in number, or out of place */
	KVMIG_WIRE_E_CHECK	= 6,	/* the pre-check found an error */
};

struct kvmig_wire_reply {
	__le32 magic;
	__le32 status;
	__le64 pages;		/* pages received (final reply) */
};

/* Record types. */
enum {
	KVMIG_REC_PAGES	= 1,
	KVMIG_REC_ZERO	= 2,
	KVMIG_REC_ROUND	= 3,
	KVMIG_REC_STATE	= 4,
	KVMIG_REC_END	= 5,
	KVMIG_REC_COMMIT = 6,
	KVMIG_REC_WAIT	= 7,	/* before round 0: queued at the source's host */
};

struct kvmig_wire_rec {
	__le16 type;
	__le16 flags;		/* 0 */
	__le32 slot;
	__le64 gfn;		/* PAGES, ZERO; the round number for ROUND */
	__le32 npages;		/* PAGES, ZERO */
	__le32 len;		/* STATE: bytes that follow */
};

/* A memslot as both ends describe it. */
struct kvmig_wire_layout_slot {
	u32 id;
	u32 flags;
	u64 base_gfn;
	u64 npages;
};

/* A record, decoded and checked against the layout. */
struct kvmig_rec {
	u32 type;
	u32 slot_index;		/* PAGES, ZERO: index in the layout */
	u64 gfn;
	u32 npages;
	u32 len;
};

int kvmig_wire_check_hello(const struct kvmig_wire_hello *h);
int kvmig_wire_check_stream(const struct kvmig_wire_stream *w, u32 index,
			    u64 token);
int kvmig_wire_check_share(const struct kvmig_rec *rec, u32 stream,
			   u32 nr_streams);

/* The stream that carries page @gfn, of @nr_streams. */
static inline u32 kvmig_wire_stream_of(u64 gfn, u32 nr_streams)
{
	return (gfn >> KVMIG_WIRE_SHARD_SHIFT) % nr_streams;
}

/* Pages from @gfn to the end of its share, at most @n. */
static inline u64 kvmig_wire_share_left(u64 gfn, u64 n)
{
	u64 left = (1ULL << KVMIG_WIRE_SHARD_SHIFT) -
		   (gfn & ((1ULL << KVMIG_WIRE_SHARD_SHIFT) - 1));

	return n < left ? n : left;
}

/*
 * RDMA (rdma.c). Over the TCP socket that sets the connection up: the
 * source's request, then the destination's answer with its port. Over the
 * connection: SENDs of at most KVMIG_RDMA_BUF bytes, each a struct
 * kvmig_rdma_msg and, for DATA, @len bytes of the record stream.
 */
#define KVMIG_RDMA_MAGIC	0x524d564bU	/* "KVMR" */
#define KVMIG_RDMA_VERSION	1
#define KVMIG_RDMA_BUF		4096

struct kvmig_rdma_boot {
	__le32 magic;
	__le16 version;
	__be16 port;		/* answer: where the destination listens */
	__le32 flags;		/* 0 */
	__le32 reserved;	/* 0 */
};

enum {
	KVMIG_RDMA_DATA = 1,	/* @len bytes of the record stream follow */
	KVMIG_RDMA_GRANT,	/* destination: write @npages pages at @addr */
	KVMIG_RDMA_WRITTEN,	/* source: the @npages pages are written */
};

struct kvmig_rdma_msg {
	__le32 type;
	__le32 len;
	__le64 addr;
	__le32 rkey;
	__le32 npages;
};

#define KVMIG_RDMA_DATA_MAX	(KVMIG_RDMA_BUF - sizeof(struct kvmig_rdma_msg))

int kvmig_wire_check_rdma_boot(const struct kvmig_rdma_boot *b);
int kvmig_wire_check_rdma_msg(const struct kvmig_rdma_msg *m, u32 got,
			      u32 type, u32 npages);

int kvmig_wire_compare_slot(const struct kvmig_wire_slot *w,
			    const struct kvmig_wire_layout_slot *mine);
int kvmig_wire_decode_rec(const struct kvmig_wire_rec *w,
			  const struct kvmig_wire_layout_slot *slots, u32 nr,
			  struct kvmig_rec *out);
void kvmig_wire_encode_rec(struct kvmig_wire_rec *w, u32 type, u32 slot,
			   u64 gfn, u32 npages, u32 len);

#endif /* _KVMIG_WIRE_H */
