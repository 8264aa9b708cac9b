/*
 * realmstub: a bare-metal realm (EL1, MMU off) that runs requests from the
 * host, for the realm-execution tests.  REC 0 enters at _start; other RECs
 * come up through PSCI CPU_ON at secondary_entry.  x0 = the REC's index.
 */
#include "arch.h"
#include "cosim_layout.h"
#include "accessors.S.h"

#define STACK_SIZE 0x2000
#define CPACR_FPEN (3 << 20)   /* FP/SIMD not trapped at EL1/EL0 */
#define CPACR_ZEN (3 << 16)    /* SVE not trapped at EL1 (EL2 still traps it
                                  unless the realm was created with SVE) */

    .section .text.boot, "ax"
    .global _start
_start:
    mov     x19, #0
    b       1f
    .global secondary_entry
secondary_entry:
    mov     x19, x0
1:  msr     daifset, #0xf
    adrp    x1, realm_stacks
    add     x1, x1, :lo12:realm_stacks
    add     x2, x19, #1
    mov     x3, #STACK_SIZE
    madd    x1, x2, x3, x1
    mov     sp, x1
    adr     x1, el1_vectors
    msr     vbar_el1, x1
    mov     x1, #(CPACR_FPEN | CPACR_ZEN)
    msr     cpacr_el1, x1
    isb
    mov     x0, x19
    bl      realm_main
2:  wfi
    b       2b

/* RSI and PSCI calls: x0..x17 in and out (RSI uses up to X10 for arguments). */
    define_smc_call realm_smc

    define_accessors realm

    .arch_extension fp
    .arch_extension simd
    .arch_extension sve

/* The SVE vector length in bytes, with ZCR_EL1 asking for the most the
 * RMM allows (ZCR_EL2 caps it). */
    .global realm_rdvl
realm_rdvl:
    mov     x0, #0xf
    msr     zcr_el1, x0
    isb
    rdvl    x0, #1
    ret

/* x0 = value: V0..V31 lane 0 = value + n, then the sum of the lanes. */
    .global realm_fp_sum
realm_fp_sum:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    add     x1, x0, #\n
    fmov    d\n, x1
    .endr
    mov     x0, #0
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    fmov    x1, d\n
    add     x0, x0, x1
    .endr
    ret

/*
 * realm_marked_call(x0 = marker, x1 = RsiHostCall IPA): every GPR, V0..V31
 * and TPIDR_EL0/TPIDR_EL1/TPIDRRO_EL0/CONTEXTIDR_EL1 hold markers while the
 * host call exits to the host.  Returns the number of FP/SIMD and thread
 * registers that lost their marker.
 */
    .global realm_marked_call
realm_marked_call:
    stp     x29, x30, [sp, #-112]!
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     x23, x24, [sp, #48]
    stp     x25, x26, [sp, #64]
    stp     x27, x28, [sp, #80]
    str     x0, [sp, #96]
    mov     x9, x0
    mov     x10, x1
    set_markers x9
    ldr     x0, =RSI_HOST_CALL
    mov     x1, x10
    .irp n, 2,3,4,5,6,7,8,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30
    mov     x\n, x9
    .endr
    smc     #0
    /* Count the registers that lost their marker across the exit: GPRs
     * x11..x28, V0..V31 (both halves), and the four thread registers. */
    ldr     x9, [sp, #96]
    mov     x0, #0
    .irp n, 11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28
    cmp     x\n, x9
    cinc    x0, x0, ne
    .endr
    count_markers x9, x0
    ldp     x19, x20, [sp, #16]
    ldp     x21, x22, [sp, #32]
    ldp     x23, x24, [sp, #48]
    ldp     x25, x26, [sp, #64]
    ldp     x27, x28, [sp, #80]
    ldp     x29, x30, [sp], #112
    ret

/* EL1 vectors: a synchronous exception from the stub itself (an injected
 * external abort, say) is recorded and the instruction skipped; IRQs go to
 * the timer test. */
    .balign 0x800
el1_vectors:
    ventry  unexpected
    ventry  unexpected
    ventry  unexpected
    ventry  unexpected
    ventry  sync_current
    ventry  irq_current
    ventry  unexpected
    ventry  unexpected
    .rept 8
    ventry  unexpected
    .endr

    fault_skip_handler sync_current, 1, realm_record_fault

irq_current:
    stp     x0, x1, [sp, #-16]!
    stp     x2, x3, [sp, #-16]!
    stp     x4, x30, [sp, #-16]!
    bl      realm_irq
    ldp     x4, x30, [sp], #16
    ldp     x2, x3, [sp], #16
    ldp     x0, x1, [sp], #16
    eret

unexpected:
    mrs     x0, esr_el1
    mrs     x1, elr_el1
    bl      realm_unexpected
1:  wfi
    b       1b

    .ltorg
