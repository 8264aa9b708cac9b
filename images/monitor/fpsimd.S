/*
 * FP/SIMD and SVE register save/restore for the world switch.  The rest of
 * the monitor is built with -mgeneral-regs-only; only these routines touch
 * vector state.  x0 = a context (cosim_layout.h CTX_*), x1 = 1 to move the
 * full SVE state (Z0-Z31, P0-P15, FFR at the EL3 vector length, which
 * ZCR_EL3.LEN makes the largest the CPU has), 0 for Q0-Q31 only.  FPSR and
 * FPCR are moved in both cases.
 */
#include "cosim_layout.h"

    .arch_extension fp
    .arch_extension simd
    .arch_extension sve

.macro qregs op
    add     x2, x0, #CTX_VREGS_OFF
    \op     q0, q1, [x2, #0]
    \op     q2, q3, [x2, #32]
    \op     q4, q5, [x2, #64]
    \op     q6, q7, [x2, #96]
    \op     q8, q9, [x2, #128]
    \op     q10, q11, [x2, #160]
    \op     q12, q13, [x2, #192]
    \op     q14, q15, [x2, #224]
    \op     q16, q17, [x2, #256]
    \op     q18, q19, [x2, #288]
    \op     q20, q21, [x2, #320]
    \op     q22, q23, [x2, #352]
    \op     q24, q25, [x2, #384]
    \op     q26, q27, [x2, #416]
    \op     q28, q29, [x2, #448]
    \op     q30, q31, [x2, #480]
.endm

.macro zregs op
    ldr     x2, =CTX_SVE_Z_OFF
    add     x2, x0, x2
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    \op     z\n, [x2, #\n, mul vl]
    .endr
.endm

.macro pregs op
    ldr     x2, =CTX_SVE_P_OFF
    add     x2, x0, x2
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    \op     p\n, [x2, #\n, mul vl]
    .endr
.endm

    .text
    .global fp_save
fp_save:
    mrs     x2, fpsr
    str     x2, [x0, #CTX_FPSR_OFF]
    mrs     x2, fpcr
    str     x2, [x0, #CTX_FPCR_OFF]
    cbnz    x1, 1f
    qregs   stp
    ret
1:  zregs   str
    pregs   str
    /* FFR has no store form: move it through P0 (already saved). */
    rdffr   p0.b
    ldr     x3, =CTX_SVE_FFR_OFF
    add     x3, x0, x3
    str     p0, [x3]
    ldr     p0, [x2]
    ret

    .global fp_restore
fp_restore:
    ldr     x2, [x0, #CTX_FPSR_OFF]
    msr     fpsr, x2
    ldr     x2, [x0, #CTX_FPCR_OFF]
    msr     fpcr, x2
    cbnz    x1, 1f
    qregs   ldp
    ret
1:  ldr     x3, =CTX_SVE_FFR_OFF
    add     x3, x0, x3
    ldr     p0, [x3]
    wrffr   p0.b
    pregs   ldr
    zregs   ldr
    ret

    .ltorg
