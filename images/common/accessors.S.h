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
