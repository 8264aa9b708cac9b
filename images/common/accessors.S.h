/*
 * Helpers the hoststub and the realmstub share.
 *
 * Single-instruction loads and stores of 1, 2, 4 and 8 bytes, as functions
 * named <prefix>_load<n>(addr) and <prefix>_store<n>(addr, value).  Each
 * access is exactly one instruction, so an exception handler can record a
 * fault and skip it (ELR + 4) and the caller sees a result, not a crash.
 */
.macro define_accessors prefix
    .global \prefix\()_load1, \prefix\()_load2, \prefix\()_load4, \prefix\()_load8
\prefix\()_load1:
    ldrb    w0, [x0]
    ret
\prefix\()_load2:
    ldrh    w0, [x0]
    ret
\prefix\()_load4:
    ldr     w0, [x0]
    ret
\prefix\()_load8:
    ldr     x0, [x0]
    ret
    .global \prefix\()_store1, \prefix\()_store2, \prefix\()_store4, \prefix\()_store8
\prefix\()_store1:
    strb    w1, [x0]
    ret
\prefix\()_store2:
    strh    w1, [x0]
    ret
\prefix\()_store4:
    str     w1, [x0]
    ret
\prefix\()_store8:
    str     x1, [x0]
    ret
.endm

/*
 * <name>(x0 = in[18], x1 = out[18]): SMC #0 with x0..x17 from `in`, and
 * x0..x17 after it (SMCCC v1.2 results) stored to `out`.
 */
.macro define_smc_call name
    .global \name
\name:
    stp     x29, x30, [sp, #-32]!
    stp     x19, x20, [sp, #16]
    mov     x19, x1
    mov     x20, x0
    ldp     x0, x1, [x20, #0]
    ldp     x2, x3, [x20, #16]
    ldp     x4, x5, [x20, #32]
    ldp     x6, x7, [x20, #48]
    ldp     x8, x9, [x20, #64]
    ldp     x10, x11, [x20, #80]
    ldp     x12, x13, [x20, #96]
    ldp     x14, x15, [x20, #112]
    ldp     x16, x17, [x20, #128]
    smc     #0
    stp     x0, x1, [x19, #0]
    stp     x2, x3, [x19, #16]
    stp     x4, x5, [x19, #32]
    stp     x6, x7, [x19, #48]
    stp     x8, x9, [x19, #64]
    stp     x10, x11, [x19, #80]
    stp     x12, x13, [x19, #96]
    stp     x14, x15, [x19, #112]
    stp     x16, x17, [x19, #128]
    ldp     x19, x20, [sp, #16]
    ldp     x29, x30, [sp], #32
    ret
.endm

/*
 * Marker checks (isolation tests): set_markers puts the value of \marker in
 * V0..V31 (both halves) and the EL0/EL1 thread registers (TPIDR_EL0,
 * TPIDR_EL1, TPIDRRO_EL0, CONTEXTIDR_EL1's 32 bits); count_markers adds to
 * \count how many of them no longer hold it.  Both use x2 and x3.
 */
.macro set_markers marker
    msr     tpidr_el0, \marker
    msr     tpidr_el1, \marker
    msr     tpidrro_el0, \marker
    and     x2, \marker, #0xffffffff
    msr     contextidr_el1, x2
    dup     v0.2d, \marker
    dup     v1.2d, \marker
    dup     v2.2d, \marker
    dup     v3.2d, \marker
    dup     v4.2d, \marker
    dup     v5.2d, \marker
    dup     v6.2d, \marker
    dup     v7.2d, \marker
    dup     v8.2d, \marker
    dup     v9.2d, \marker
    dup     v10.2d, \marker
    dup     v11.2d, \marker
    dup     v12.2d, \marker
    dup     v13.2d, \marker
    dup     v14.2d, \marker
    dup     v15.2d, \marker
    dup     v16.2d, \marker
    dup     v17.2d, \marker
    dup     v18.2d, \marker
    dup     v19.2d, \marker
    dup     v20.2d, \marker
    dup     v21.2d, \marker
    dup     v22.2d, \marker
    dup     v23.2d, \marker
    dup     v24.2d, \marker
    dup     v25.2d, \marker
    dup     v26.2d, \marker
    dup     v27.2d, \marker
    dup     v28.2d, \marker
    dup     v29.2d, \marker
    dup     v30.2d, \marker
    dup     v31.2d, \marker
.endm

.macro count_markers marker, count
    mov     x2, v0.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v0.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v1.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v1.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v2.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v2.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v3.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v3.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v4.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v4.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v5.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v5.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v6.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v6.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v7.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v7.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v8.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v8.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v9.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v9.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v10.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v10.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v11.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v11.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v12.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v12.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v13.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v13.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v14.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v14.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v15.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v15.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v16.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v16.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v17.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v17.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v18.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v18.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v19.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v19.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v20.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v20.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v21.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v21.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v22.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v22.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v23.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v23.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v24.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v24.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v25.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v25.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v26.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v26.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v27.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v27.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v28.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v28.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v29.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v29.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v30.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v30.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v31.d[0]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mov     x2, v31.d[1]
    cmp     x2, \marker
    cinc    \count, \count, ne
    mrs     x2, tpidr_el0
    cmp     x2, \marker
    cinc    \count, \count, ne
    mrs     x2, tpidr_el1
    cmp     x2, \marker
    cinc    \count, \count, ne
    mrs     x2, tpidrro_el0
    cmp     x2, \marker
    cinc    \count, \count, ne
    mrs     x2, contextidr_el1
    and     x3, \marker, #0xffffffff
    cmp     x2, x3
    cinc    \count, \count, ne
.endm

/* A vector table entry that branches to \target. */
.macro ventry target
    .balign 0x80
    b       \target
.endm

/*
 * \name: handler for a synchronous exception taken from the payload itself
 * at EL\el (a load or store that faulted, e.g. an injected external abort):
 * \record(ESR, FAR, ELR) is called, the faulting instruction skipped, and
 * execution resumes.  Only the accessors above may fault, so the registers
 * the C call clobbers are ones their callers already gave up.
 */
.macro fault_skip_handler name, el, record
\name:
    stp     x0, x1, [sp, #-16]!
    stp     x2, x30, [sp, #-16]!
    mrs     x0, esr_el\el
    mrs     x1, far_el\el
    mrs     x2, elr_el\el
    bl      \record
    mrs     x0, elr_el\el
    add     x0, x0, #4
    msr     elr_el\el, x0
    ldp     x2, x30, [sp], #16
    ldp     x0, x1, [sp], #16
    eret
.endm
