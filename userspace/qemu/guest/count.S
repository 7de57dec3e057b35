/* SPDX-License-Identifier: GPL-2.0 */
/*
 * count.S: kvmig's CPU-writing migration test guest, a 512-byte boot sector.
 *
 * SeaBIOS loads it at 0x7c00 in real mode. It turns on A20, switches to
 * 32-bit protected mode with flat 4 GiB segments, prints 'A' on COM1 and
 * then, for ever, adds one to the first 32-bit word of every 4 KiB page from
 * 1 MiB up to the top of RAM below 4 GiB, printing one 'B' on COM1 after
 * every MiB it wrote (256 pages).
 *
 * The top of RAM is what the firmware's CMOS says (QEMU fills it from -m):
 * 0x34/0x35 count 64 KiB above 16 MiB; if that is zero, 0x30/0x31 count
 * KiB above 1 MiB. So the guest dirties all its RAM above 1 MiB, and a
 * host watching the serial port sees it advance: gaps between the 'B's
 * are the pauses the guest saw (a migration's downtime among them).
 *
 * Its dirty rate is settable: with the fw_cfg file "opt/kvmig/tsc-per-mib"
 * (QEMU's -fw_cfg name=opt/kvmig/tsc-per-mib,string=N, N decimal, below
 * 2^32), each MiB starts no earlier than N TSC ticks after the previous
 * one, so the guest writes at most tsc_khz * 1000 / N MiB/s. A guest that
 * falls behind (a pause, a migration's downtime) starts the schedule again
 * from where it is instead of catching up in a burst. Without the file it
 * writes as fast as it can.
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

	call	fw_pace
	movl	%esi, pace
	call	ram_top			/* %edi: end of RAM below 4 GiB */
	rdtsc
	movl	%eax, due
	movl	%edx, due + 4
pass:
	movl	$0x100000, %ebx
1:	incl	(%ebx)
	addl	$4096, %ebx
	testl	$0xfffff, %ebx
	jnz	2f
	call	mark
2:	cmpl	%edi, %ebx
	jb	1b
	jmp	pass

/*
 * mark: print 'B'; when paced, wait for the next MiB's due time (the last
 * one plus pace ticks), or restart the schedule from now if that is more
 * than one period past. Clobbers %eax, %ecx, %edx.
 */
mark:
	movw	$0x3f8, %dx
	movb	$'B', %al
	outb	%al, %dx
	movl	pace, %ecx
	jecxz	5f
	addl	%ecx, due
	adcl	$0, due + 4
3:	rdtsc
	subl	due, %eax
	sbbl	due + 4, %edx		/* %edx:%eax = now - due */
	jns	4f
	pause
	jmp	3b
4:	testl	%edx, %edx
	jnz	6f
	cmpl	%ecx, %eax
	jbe	5f
6:	rdtsc
	movl	%eax, due
	movl	%edx, due + 4
5:	ret

/*
 * fw_pace: %esi = the decimal number in fw_cfg file "opt/kvmig/tsc-per-mib",
 * or 0 without it. The directory (key 0x19) is a big-endian count, then
 * 64-byte entries: size, select (16 bits), reserved (16), name (56 bytes).
 * Clobbers %eax, %ebx, %ecx, %edx, %edi, %ebp.
 */
fw_pace:
	xorl	%esi, %esi
	movw	$0x510, %dx
	movw	$0x19, %ax
	outw	%ax, %dx
	incw	%dx
	call	be32
	movl	%eax, %ecx
	jecxz	9f
7:	call	be32			/* size */
	call	be32			/* select, reserved */
	shrl	$16, %eax
	movl	%eax, %ebp
	movl	$pace_name, %edi
	movl	$56, %ebx
	xorl	%esi, %esi		/* differences from pace_name */
8:	inb	%dx, %al
	cmpl	$pace_name_end, %edi
	jae	1f
	xorb	(%edi), %al
	movzbl	%al, %eax
	orl	%eax, %esi
	incl	%edi
1:	decl	%ebx
	jnz	8b
	testl	%esi, %esi
	jz	2f
	loop	7b
	xorl	%esi, %esi
9:	ret
2:	movl	%ebp, %eax
	decw	%dx
	outw	%ax, %dx
	incw	%dx
3:	inb	%dx, %al
	subb	$'0', %al
	cmpb	$9, %al
	ja	9b
	imull	$10, %esi, %esi
	movzbl	%al, %eax
	addl	%eax, %esi
	jmp	3b

/* be32: %eax = the next 4 bytes of fw_cfg data, big-endian. Clobbers %ebx. */
be32:
	movl	$4, %ebx
1:	shll	$8, %eax
	inb	%dx, %al
	decl	%ebx
	jnz	1b
	ret

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

pace_name:
	.asciz	"opt/kvmig/tsc-per-mib"
pace_name_end:

	.p2align 3
due:	.quad	0			/* TSC at which the next MiB may start */
pace:	.long	0			/* TSC ticks per MiB, 0: unpaced */
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
