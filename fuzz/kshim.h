/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Just enough of the kernel's types for module/xfer/wire.c to build in
 * userspace, for the fuzzer. x86-64 only: little-endian, as the wire.
 */
#ifndef KVMIG_KSHIM_H
#define KVMIG_KSHIM_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <linux/kvm.h>
#include <linux/types.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

#define le16_to_cpu(x)	((u16)(x))
#define le32_to_cpu(x)	((u32)(x))
#define le64_to_cpu(x)	((u64)(x))
#define cpu_to_le16(x)	((__le16)(x))
#define cpu_to_le32(x)	((__le32)(x))
#define cpu_to_le64(x)	((__le64)(x))
#define EXPORT_SYMBOL_IF_KUNIT(sym)
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define BIT(n)		(1UL << (n))

#endif
