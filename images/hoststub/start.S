/*
 * hoststub: a minimal Non-secure EL2 payload through which the co-simulator
 * issues real SMCs and memory accesses (see stub.c).  Entered by the monitor
 * with the arm64 Linux boot protocol: EL2h, MMU off, x0 = DTB on the boot
 * CPU; secondaries come through PSCI CPU_ON at secondary_entry with
 * x0 = the context id, which Python sets to the CPU index.
 *
 * The same image runs as BL33 under a third-party EL3 firmware (TF-A):
 * then it reaches Python through the polling channel (stub.c), which needs
 * no SMC of ours.  Python reads the header below from the image file and
 * patches its channel word before the image is loaded.
 */
#include "arch.h"
#include "cosim_layout.h"
#include "accessors.S.h"

#define STACK_SIZE 0x2000
#ifndef STUB_DEFAULT_CHANNEL
#define STUB_DEFAULT_CHANNEL STUB_CHANNEL_SIP
#endif
#define CPTR_EL2_NVHE 0x33ff   /* RES1 bits and TZ (SVE trapped); TFP = 0 */

    .section .text.boot, "ax"
    .global _start
_start:
    b       boot_entry

    .balign 8                       /* at STUB_HEADER_OFFSET: the STUB_HEADER layout */
    .global stub_header
stub_header:
    .quad   STUB_HEADER_MAGIC
    .quad   STUB_DEFAULT_CHANNEL
    .quad   poll_area

boot_entry:
    mov     x19, #0
    b       common_entry

    .global secondary_entry
secondary_entry:
    mov     x19, x0

common_entry:
    msr     daifset, #0xf
    adrp    x1, stub_stacks
    add     x1, x1, :lo12:stub_stacks
    add     x2, x19, #1
    mov     x3, #STACK_SIZE
    madd    x1, x2, x3, x1
    mov     sp, x1
    adr     x1, el2_vectors
    msr     vbar_el2, x1
    mov     x1, #CPTR_EL2_NVHE
    msr     cptr_el2, x1            /* FP/SIMD not trapped at EL2 */
    isb
    mov     x0, x19
    bl      stub_main
1:  wfi
    b       1b

    define_smc_call stub_smc

/*
 * stub_smc_check(x0 = in[18], x1 = out[18], x2 = marker): the SMC of
 * stub_smc with the caller-visible state the host owns set to markers
 * (x18..x28, V0..V31, TPIDR_EL0/EL1, TPIDRRO_EL0, CONTEXTIDR_EL1); returns
 * how many of them changed across the SMC.  With RMI_REC_ENTER this shows
 * that the host's registers survive a realm run and hold nothing of the
 * realm's.
 */
    .arch_extension fp
    .arch_extension simd
    .global stub_smc_check
stub_smc_check:
    stp     x29, x30, [sp, #-112]!
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     x23, x24, [sp, #48]
    stp     x25, x26, [sp, #64]
    stp     x27, x28, [sp, #80]
    stp     x1, x2, [sp, #96]
    mov     x9, x2
    set_markers x9
    .irp n, 18,19,20,21,22,23,24,25,26,27,28
    mov     x\n, x9
    .endr
    mov     x29, x0
    ldp     x0, x1, [x29, #0]
    ldp     x2, x3, [x29, #16]
    ldp     x4, x5, [x29, #32]
    ldp     x6, x7, [x29, #48]
    ldp     x8, x9, [x29, #64]
    ldp     x10, x11, [x29, #80]
    ldp     x12, x13, [x29, #96]
    ldp     x14, x15, [x29, #112]
    ldp     x16, x17, [x29, #128]
    mov     x29, sp
    smc     #0
    mov     sp, x29
    stp     x0, x1, [sp, #-16]!
    ldr     x1, [sp, #16 + 96]
    stp     x2, x3, [x1, #16]
    stp     x4, x5, [x1, #32]
    stp     x6, x7, [x1, #48]
    stp     x8, x9, [x1, #64]
    stp     x10, x11, [x1, #80]
    stp     x12, x13, [x1, #96]
    stp     x14, x15, [x1, #112]
    stp     x16, x17, [x1, #128]
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x1, #0]
    ldr     x9, [sp, #104]
    mov     x0, #0
    .irp n, 18,19,20,21,22,23,24,25,26,27,28
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

/* SMC with x0..x3 only; returns x0 (the request loop's call to Python). */
    .global stub_smc4
stub_smc4:
    smc     #0
    ret

/* The loads and stores Python asks for. */
    define_accessors stub

    .global stub_doorbell
stub_doorbell:
    hint    #COSIM_DOORBELL_HINT
    ret

/* EL2 vectors: a synchronous exception taken from the stub itself (a load
 * or store that faulted, e.g. an external abort injected for a GPT
 * violation) is recorded and the faulting instruction skipped. */
    .balign 0x800
el2_vectors:
    ventry  unexpected
    ventry  unexpected
    ventry  unexpected
    ventry  unexpected
    ventry  sync_current
    ventry  unexpected
    ventry  unexpected
    ventry  unexpected
    ventry  unexpected
    ventry  unexpected
    ventry  unexpected
    ventry  unexpected
    ventry  unexpected
    ventry  unexpected
    ventry  unexpected
    ventry  unexpected

    fault_skip_handler sync_current, 2, stub_record_fault

unexpected:
    mrs     x0, esr_el2
    mrs     x1, elr_el2
    bl      stub_unexpected
1:  wfi
    b       1b
