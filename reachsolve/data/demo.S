// The arm64 KVM hyp entry code of 2021 in miniature (arch/arm64/kvm/hyp/entry.S).
//
// __guest_exit_panic reached hyp_panic with a cbz and an adr: both reach only
// +-1 MiB. That was fine while hyp_panic sat in the same .hyp.text section.
// Clang LTO gives every function its own section, so hyp_panic moved into
// .text.hyp_panic, which the linker may put anywhere, and allmodconfig stopped
// linking: "relocation R_AARCH64_CONDBR19 out of range".
//
// The fix replaced them with forms that reach far enough:
//   cbz x0, hyp_panic  ->  cbnz x0, 1f; b hyp_panic; 1:   (b: +-128 MiB, veneers)
//   adr x1, hyp_panic  ->  adr_l x1, hyp_panic            (adrp+add: +-4 GiB)
// `reachsolve demo` shows the old pair vulnerable and the fixed forms robust.

	.section .hyp.text, "ax", %progbits
	.p2align 2
	.globl	__guest_exit_panic
	.type	__guest_exit_panic, %function
__guest_exit_panic:
	// before the fix
	cbz	x0, hyp_panic			// R_AARCH64_CONDBR19
	adr	x1, hyp_panic			// R_AARCH64_ADR_PREL_LO21

	// after the fix
	cbnz	x0, 1f
	b	hyp_panic			// R_AARCH64_JUMP26
1:	adrp	x1, hyp_panic			// R_AARCH64_ADR_PREL_PG_HI21
	add	x1, x1, :lo12:hyp_panic		// R_AARCH64_ADD_ABS_LO12_NC (no range)

	// a short branch that stays inside .hyp.text is fine
	tbnz	x0, #0, __guest_exit_done	// R_AARCH64_TSTBR14, same section
	ret
	.globl	__guest_exit_done
__guest_exit_done:
	ret
	.size	__guest_exit_panic, . - __guest_exit_panic

	.section .text.hyp_panic, "ax", %progbits
	.p2align 2
	.globl	hyp_panic
	.type	hyp_panic, %function
hyp_panic:
	b	hyp_panic
	.size	hyp_panic, . - hyp_panic
