/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dmaio.S: kvmig's DMA-writing migration test guest, a 512-byte boot sector.
 *
 * Guest RAM that changes without the guest CPU writing it: QEMU's device
 * emulation writes it (DMA), which KVM's dirty log never sees; only QEMU's
 * own dirty bitmap does. A migration that copies only what KVM reports
 * dirty leaves stale pages here, and the memory compare catches it.
 *
 * Like count.S it enters 32-bit protected mode with flat segments and prints
 * 'A' on COM1. Then it finds a legacy virtio-blk device (vendor 0x1af4,
 * device 0x1001) on PCI bus 0 through ports 0xcf8/0xcfc, resets it (SeaBIOS
 * may have driven it) and sets up its queue 0 in I/O BAR0's legacy layout,
 * without interrupts. Request n reads 4 KiB block (n mod N) of the disk,
 * N = capacity / 8 sectors, into buffer page (n mod NPAGES) at BUF, one
 * request at a time, polling the used ring. One 'B' on COM1 every 64
 * requests; 'E' and a halt if there is no device or a request fails.
 *
 * The CPU never writes the buffer pages. When N and NPAGES are coprime
 * (the Makefile's disk has 61 blocks, each a different pattern) every
 * request changes the whole page it lands in.
 */

	.set	VRING, 0x10000		/* queue 0: desc, avail, used; 4K-aligned */
	.set	VRING_SIZE, 0x10000	/* zeroed at start; 1024 entries use 28K */
	.set	HDR, VRING + 0xf000	/* request header (zeroed: T_IN), status */
	.set	STATUS, HDR + 16
	.set	BUF, 0x200000		/* the DMA target pages */
	.set	NPAGES, 1024

	/* Legacy virtio-pci registers, offsets into I/O BAR0. */
	.set	VP_GUEST_FEATURES, 0x04
	.set	VP_QUEUE_PFN, 0x08
	.set	VP_QUEUE_NUM, 0x0c
	.set	VP_QUEUE_SEL, 0x0e
	.set	VP_QUEUE_NOTIFY, 0x10
	.set	VP_STATUS, 0x12
	.set	VP_CONFIG, 0x14		/* virtio-blk config: capacity, u64 */

	.code16
	.text
	.globl	start
start:
	cli
	cld
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	$0x7c00, %sp

	inb	$0x92, %al		/* fast A20 */
	orb	$0x02, %al
	andb	$0xfe, %al
	outb	%al, $0x92

	lgdtl	gdt_desc
	movl	%cr0, %eax
	orl	$1, %eax
	movl	%eax, %cr0
	ljmp	$0x08, $pm32

	.code32
pm32:
	movw	$0x10, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movl	$0x7c00, %esp

	movb	$'A', %al
	call	putc

	/* Find the device: bus 0, devices 0-31, function 0. */
	movl	$0x80000000, %ebx
1:	movl	%ebx, %eax
	call	pci_read
	cmpl	$0x10011af4, %eax
	je	2f
	addl	$0x800, %ebx
	cmpl	$0x80010000, %ebx
	jb	1b
	jmp	fail
2:	leal	4(%ebx), %eax		/* command: I/O space, bus master */
	call	pci_read
	orb	$0x05, %al
	movw	$0xcfc, %dx
	outw	%ax, %dx
	leal	0x10(%ebx), %eax	/* BAR0: the legacy I/O registers */
	call	pci_read
	andl	$0xfffc, %eax
	movl	%eax, %esi

	/* Reset, ACKNOWLEDGE | DRIVER, no features, queue 0. */
	xorl	%eax, %eax
	leal	VP_STATUS(%esi), %edx
	outb	%al, %dx
	movb	$3, %al
	outb	%al, %dx
	xorl	%eax, %eax
	leal	VP_GUEST_FEATURES(%esi), %edx
	outl	%eax, %dx
	leal	VP_QUEUE_SEL(%esi), %edx
	outw	%ax, %dx

	movl	$VRING, %edi		/* a clean ring: used->idx starts at 0 */
	movl	$VRING_SIZE / 4, %ecx
	rep stosl

	leal	VP_QUEUE_NUM(%esi), %edx
	inw	%dx, %ax
	movzwl	%ax, %ecx		/* Q, a power of two */
	decl	%ecx
	movl	%ecx, qmask
	incl	%ecx
	shll	$4, %ecx
	addl	$VRING, %ecx		/* avail = desc + 16 Q */
	movl	%ecx, avail
	movw	$1, (%ecx)		/* VRING_AVAIL_F_NO_INTERRUPT */
	movl	qmask, %eax		/* used = align(avail + 6 + 2 Q, 4096) */
	leal	6 + 2 + 4095(%ecx,%eax,2), %edi
	andl	$~4095, %edi

	/* Three descriptors, reused by every request. */
	movl	$VRING, %ebx
	movl	$HDR, (%ebx)
	movl	$16, 8(%ebx)
	movl	$0x00010001, 12(%ebx)		/* NEXT, next 1 */
	movl	$4096, 16 + 8(%ebx)		/* addr set per request */
	movl	$0x00020003, 16 + 12(%ebx)	/* NEXT | WRITE, next 2 */
	movl	$STATUS, 32(%ebx)
	movl	$1, 32 + 8(%ebx)
	movl	$0x00000002, 32 + 12(%ebx)	/* WRITE */

	movl	$VRING >> 12, %eax
	leal	VP_QUEUE_PFN(%esi), %edx
	outl	%eax, %dx
	movb	$7, %al			/* DRIVER_OK */
	leal	VP_STATUS(%esi), %edx
	outb	%al, %dx

	leal	VP_CONFIG(%esi), %edx	/* N = capacity in 4 KiB blocks */
	inl	%dx, %eax
	shrl	$3, %eax
	jz	fail
	movl	%eax, %ebp

	xorl	%ebx, %ebx		/* block */
	xorl	%ecx, %ecx		/* page */
req:
	leal	(,%ebx,8), %eax		/* header: T_IN, sector 8 * block */
	movl	%eax, HDR + 8
	movl	%ecx, %eax
	shll	$12, %eax
	addl	$BUF, %eax
	movl	%eax, VRING + 16
	movb	$0xff, STATUS

	movl	avail, %edx
	movzwl	2(%edx), %eax
	pushl	%eax
	andl	qmask, %eax
	movw	$0, 4(%edx,%eax,2)	/* ring[idx] = descriptor 0 */
	popl	%eax
	incl	%eax
	movw	%ax, 2(%edx)		/* publish (x86 keeps store order) */
	pushl	%eax
	leal	VP_QUEUE_NOTIFY(%esi), %edx
	xorl	%eax, %eax
	outw	%ax, %dx
	popl	%eax
1:	pause
	cmpw	%ax, 2(%edi)		/* used->idx */
	jne	1b
	cmpb	$0, STATUS
	jne	fail

	testb	$63, %al
	jnz	2f
	pushl	%eax
	movb	$'B', %al
	call	putc
	popl	%eax
2:	incl	%ebx
	cmpl	%ebp, %ebx
	jb	3f
	xorl	%ebx, %ebx
3:	incl	%ecx
	cmpl	$NPAGES, %ecx
	jb	req
	xorl	%ecx, %ecx
	jmp	req

fail:
	movb	$'E', %al
	call	putc
1:	hlt
	jmp	1b

/* putc: %al to COM1. Clobbers %edx. */
putc:
	movw	$0x3f8, %dx
	outb	%al, %dx
	ret

/* pci_read: %eax = config dword at address %eax. Clobbers %edx. */
pci_read:
	movw	$0xcf8, %dx
	outl	%eax, %dx
	movw	$0xcfc, %dx
	inl	%dx, %eax
	ret

	.p2align 2
qmask:	.long	0
avail:	.long	0

	/* The GDT's null entry, never loaded, holds the GDTR image. */
	.p2align 3
gdt:
gdt_desc:
	.word	gdt_end - gdt - 1
	.long	gdt
	.word	0
	.quad	0x00cf9a000000ffff	/* 0x08: code, base 0, 4 GiB, 32-bit */
	.quad	0x00cf92000000ffff	/* 0x10: data, base 0, 4 GiB */
gdt_end:

	.org	510
	.word	0xaa55
