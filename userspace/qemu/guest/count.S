/* SPDX-License-Identifier: GPL-2.0 */
/*
 * count.S: kvmig's CPU-writing migration test guest, a 512-byte boot sector.
 *
 * SeaBIOS loads it at 0x7c00 in real mode. It turns on A20, switches to
 * 32-bit protected mode with flat 4 GiB segments, prints 'A' on COM1 and
 * then, for ever, adds one to the first 32-bit word of every 4 KiB page from
 * 1 MiB up to the top of RAM below 4 GiB, printing one 'B' on COM1 after
 * every MARK_PASSES full passes (1 unless the Makefile says otherwise).
 *
 * The top of RAM is what the firmware's CMOS says (QEMU fills it from -m):
 * 0x34/0x35 count 64 KiB above 16 MiB; if that is zero, 0x30/0x31 count
 * KiB above 1 MiB. So the guest dirties all its RAM above 1 MiB, and a
 * host watching the serial port sees it advance: gaps between the 'B's
 * are the pauses the guest saw (a migration's downtime among them).
 *
 * After a pass, all counters are equal, or the first k pages are one ahead
 * of the rest during a pass; a migrated copy must keep that shape.
 */

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

	/* A20 through port 0x92 ("fast A20"); bit 0 would reset the CPU. */
	inb	$0x92, %al
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
	movw	%ax, %fs
	movw	%ax, %gs
	movw	%ax, %ss
	movl	$0x7c00, %esp

	movw	$0x3f8, %dx
	movb	$'A', %al
	outb	%al, %dx

	call	ram_top			/* %edi: end of RAM below 4 GiB */
	movl	$MARK_PASSES, %ecx
pass:
	movl	$0x100000, %ebx
1:	incl	(%ebx)
	addl	$4096, %ebx
	cmpl	%edi, %ebx
	jb	1b
	decl	%ecx
	jnz	pass
	movl	$MARK_PASSES, %ecx
	movw	$0x3f8, %dx
	movb	$'B', %al
	outb	%al, %dx
	jmp	pass

/* ram_top: %edi = first byte above RAM, from the CMOS. Clobbers %eax. */
ram_top:
	movb	$0x35, %al
	call	cmos
	movb	%al, %ah
	movb	$0x34, %al
	call	cmos
	movzwl	%ax, %edi
	testl	%edi, %edi
	jz	1f
	shll	$16, %edi
	addl	$0x1000000, %edi
	ret
1:	movb	$0x31, %al
	call	cmos
	movb	%al, %ah
	movb	$0x30, %al
	call	cmos
	movzwl	%ax, %edi
	shll	$10, %edi
	addl	$0x100000, %edi
	ret

/* cmos: %al = CMOS register %al (NMI left enabled). Keeps %ah. */
cmos:
	outb	%al, $0x70
	inb	$0x71, %al
	ret

	.p2align 3
gdt:
	.quad	0
	.quad	0x00cf9a000000ffff	/* 0x08: code, base 0, 4 GiB, 32-bit */
	.quad	0x00cf92000000ffff	/* 0x10: data, base 0, 4 GiB */
gdt_desc:
	.word	gdt_desc - gdt - 1
	.long	gdt

	.org	510
	.word	0xaa55
