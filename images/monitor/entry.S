/*
 * cca-cosim EL3 monitor: reset entry, exception vectors and the ERET paths.
 *
 * The monitor runs from flash0 (where -bios puts it) with its MMU off, so
 * every data access is to the Root physical address space once granule
 * protection is on (Arm ARM, "Granule Protection Checks": EL3 accesses with
 * the MMU disabled use Root PA space).  All writable state therefore lives in
 * the carve-out at the top of RAM, which Python keeps Root in the GPT; the
 * image itself is read-only.  TPIDR_EL3 holds this CPU's per-CPU area, whose
 * first part is the mailbox with the saved GPR frame (see
 * cosim/monitor/layout.py).
 */
#include "arch.h"
#include "cosim_layout.h"

/* Mark the world this vCPU is about to run in, for the plugin's GPT mode. */
#define WORLD_MARK(w) hint #(COSIM_WORLD_MARK_HINT_BASE + (w))

/* Load x0..x30 from the mailbox frame of the per-CPU area in x0 (flags are
 * not touched). */
.macro restore_frame
    add     x0, x0, #MBOX_X_OFF
    ldp     x2, x3, [x0, #16]
    ldp     x4, x5, [x0, #32]
    ldp     x6, x7, [x0, #48]
    ldp     x8, x9, [x0, #64]
    ldp     x10, x11, [x0, #80]
    ldp     x12, x13, [x0, #96]
    ldp     x14, x15, [x0, #112]
    ldp     x16, x17, [x0, #128]
    ldp     x18, x19, [x0, #144]
    ldp     x20, x21, [x0, #160]
    ldp     x22, x23, [x0, #176]
    ldp     x24, x25, [x0, #192]
    ldp     x26, x27, [x0, #208]
    ldp     x28, x29, [x0, #224]
    ldr     x30, [x0, #240]
    ldp     x0, x1, [x0]
.endm

    .section .text.boot, "ax"
    .global _start
_start:
    WORLD_MARK(WORLD_ROOT)      /* every reset starts in the monitor */
    b       cold_boot

    /* The boot configuration: Python patches it into each run's copy. */
    .org    BOOT_CONFIG_OFFSET
    .global boot_config
boot_config:
    .quad   BOOT_MAGIC
    .quad   BOOT_CONFIG_VERSION
    .org    BOOT_CONFIG_OFFSET + BOOT_SIZE

cold_boot:
    msr     daifset, #0xf
    ldr     x20, =boot_config
    ldr     x21, [x20, #BOOT_CARVEOUT_BASE_OFF]
    cbz     x21, park_forever               /* not patched: nothing we can do */
    ldr     x2, [x20, #BOOT_NUM_CPUS_OFF]
    mrs     x0, mpidr_el1
    ubfx    x19, x0, #0, #8                 /* Aff0: the CPU index on virt */
    and     x1, x0, #0xffff00               /* Aff1, Aff2 */
    cbnz    x1, park_forever
    ubfx    x1, x0, #32, #8                 /* Aff3 */
    cbnz    x1, park_forever
    cmp     x19, x2
    b.hs    park_forever
    ldr     x3, =PCPU_SIZE
    ldr     x4, =CARVEOUT_PERCPU_OFFSET
    add     x4, x21, x4
    madd    x22, x19, x3, x4                /* this CPU's per-CPU area */
    msr     tpidr_el3, x22
    ldr     x5, =PERCPU_STACK_TOP
    add     sp, x22, x5
    adr     x0, el3_vectors
    msr     vbar_el3, x0
    isb
    mov     x0, x19
    mov     x1, x22
    bl      monitor_cold_boot               /* does not return */

    .global park_forever
park_forever:
    msr     daifset, #0xf
1:  wfi
    b       1b

/* HALT: put the interrupted context's GPRs back and wait forever, so that a
 * debugger sees the offender's registers (its PC is in ELR_EL3).  x0 = the
 * per-CPU area. */
    .global halt_in_place
halt_in_place:
    msr     daifset, #0xf
    ldr     x1, [x0, #MBOX_SP_EL0_OFF]
    msr     sp_el0, x1
    restore_frame
1:  wfi
    b       1b

/* The doorbell: the plugin blocks this vCPU here until Python has answered
 * through the mailbox.  To the architecture it is a NOP hint. */
    .global cosim_doorbell
cosim_doorbell:
    dsb     sy
    hint    #COSIM_DOORBELL_HINT
    dsb     sy
    ret

/* ---------------------------------------------------------------------------
 * Save the interrupted context's x0..x30 and SP_EL0 into the mailbox frame.
 * Uses the EL3 stack for the first two registers only. */
.macro save_frame
    stp     x0, x1, [sp, #-16]!
    mrs     x0, tpidr_el3
    add     x0, x0, #MBOX_X_OFF
    stp     x2, x3, [x0, #16]
    stp     x4, x5, [x0, #32]
    stp     x6, x7, [x0, #48]
    stp     x8, x9, [x0, #64]
    stp     x10, x11, [x0, #80]
    stp     x12, x13, [x0, #96]
    stp     x14, x15, [x0, #112]
    stp     x16, x17, [x0, #128]
    stp     x18, x19, [x0, #144]
    stp     x20, x21, [x0, #160]
    stp     x22, x23, [x0, #176]
    stp     x24, x25, [x0, #192]
    stp     x26, x27, [x0, #208]
    stp     x28, x29, [x0, #224]
    str     x30, [x0, #240]
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x0]
    mrs     x2, sp_el0
    str     x2, [x0, #(MBOX_SP_EL0_OFF - MBOX_X_OFF)]
.endm

.macro ventry target
    .balign 0x80
    WORLD_MARK(WORLD_ROOT)
    b       \target
.endm

/* EL3 vector table (Arm ARM D1.3.1 "Exception vectors"). */
    .balign 0x800
    .global el3_vectors
el3_vectors:
    ventry  current_el_fault   /* 0x000 current EL, SP_EL0: sync */
    ventry  current_el_fault   /* 0x080 IRQ */
    ventry  current_el_fault   /* 0x100 FIQ */
    ventry  current_el_fault   /* 0x180 SError */
    ventry  current_el_fault   /* 0x200 current EL, SP_EL3: sync */
    ventry  current_el_fault   /* 0x280 IRQ */
    ventry  current_el_fault   /* 0x300 FIQ */
    ventry  current_el_fault   /* 0x380 SError */
    ventry  lower_sync         /* 0x400 lower EL, AArch64: sync */
    ventry  lower_async        /* 0x480 IRQ */
    ventry  lower_async        /* 0x500 FIQ */
    ventry  lower_async        /* 0x580 SError */
    ventry  lower_async        /* 0x600 lower EL, AArch32 */
    ventry  lower_async
    ventry  lower_async
    ventry  lower_async

lower_sync:
    save_frame
    mrs     x0, tpidr_el3
    bl      monitor_lower_sync
    b       el3_exit

lower_async:
    save_frame
    mrs     x0, tpidr_el3
    mrs     x1, elr_el3
    bl      monitor_unexpected
    b       el3_exit

/* A fault in the monitor itself.  Report it (the frame is clobbered, the
 * syndrome is not) and stop this CPU. */
current_el_fault:
    mrs     x0, tpidr_el3
    ldr     x1, =PERCPU_STACK_TOP
    add     sp, x0, x1
    bl      monitor_self_fault
    b       park_forever

/* ---------------------------------------------------------------------------
 * el3_exit: restore the frame and ERET.  x0 = the world being entered
 * (WORLD_NONSECURE or WORLD_REALM), as monitor_lower_sync returns it.
 * ELR_EL3, SPSR_EL3 and SCR_EL3 have been set by the C code. */
    .global el3_exit
el3_exit:
    mrs     x1, tpidr_el3
    ldr     x2, =PERCPU_STACK_TOP
    add     sp, x1, x2                      /* every entry starts on an empty stack */
    ldr     x2, [x1, #MBOX_SP_EL0_OFF]
    msr     sp_el0, x2
    cmp     x0, #WORLD_REALM
    mov     x0, x1
    restore_frame
    b.eq    1f
    WORLD_MARK(WORLD_NONSECURE)
    eret
1:  WORLD_MARK(WORLD_REALM)
    eret

    .ltorg
