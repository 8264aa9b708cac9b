/*
 * Test payloads for `cosim run` (tests/system/test_run.py): tiny NS-EL2
 * images that print on the Non-secure PL011 and then end in one way each,
 * chosen at build time:
 *   -DEND_OFF      PSCI SYSTEM_OFF
 *   -DEND_RESET    PSCI SYSTEM_RESET
 *   -DEND_SPIN     print a line, then spin forever
 *   -DEND_VIOLATE  load from the first granule of the carve-out (the monitor's
 *                  Root memory, which the device tree reserves 2 MiB above
 *                  itself), say whether the load faulted, then SYSTEM_OFF
 * Entered by the monitor with the arm64 Linux boot protocol: EL2h, MMU off,
 * all exceptions masked, x0 = the device tree.  Position independent.
 */
#include "cosim_layout.h"

#define UART_DR 0x00
#define UART_FR 0x18
#define UART_FR_TXFF (1 << 5)
#define UART_CR 0x30
#define UART_CR_ENABLE 0x301 /* UARTEN | TXE | RXE (PL011 TRM, "UARTCR") */
#define DTB_TO_CARVEOUT 0x200000

    .section .text.boot, "ax"
    .global _start
_start:
    mov     x19, x0                 /* the device tree */
    mov     x21, #0                 /* set by the fault handler */
    adr     x1, vectors
    msr     vbar_el2, x1
    isb
    ldr     x20, =COSIM_UART_NS_BASE
    mov     w1, #UART_CR_ENABLE
    str     w1, [x20, #UART_CR]
    adr     x0, msg_hello
    bl      puts
#if defined(END_SPIN)
    adr     x0, msg_spin
    bl      puts
1:  b       1b
#elif defined(END_VIOLATE)
    add     x2, x19, #DTB_TO_CARVEOUT
    .global violating_load
violating_load:
    ldr     x3, [x2]
    adr     x0, msg_no_fault
    cbz     x21, 2f
    adr     x0, msg_fault
2:  bl      puts
    ldr     x0, =PSCI_FID_SYSTEM_OFF
#elif defined(END_RESET)
    adr     x0, msg_reset
    bl      puts
    ldr     x0, =PSCI_FID_SYSTEM_RESET
#else
    adr     x0, msg_off
    bl      puts
    ldr     x0, =PSCI_FID_SYSTEM_OFF
#endif
    smc     #0
3:  b       3b                      /* SYSTEM_OFF and SYSTEM_RESET do not return */

/* puts(x0 = NUL-terminated string) on the UART at x20; clobbers x0, x1, x2. */
puts:
    ldrb    w1, [x0], #1
    cbz     w1, 2f
1:  ldr     w2, [x20, #UART_FR]
    tbnz    w2, #5, 1b              /* UART_FR_TXFF: transmit FIFO full */
    str     w1, [x20, #UART_DR]
    b       puts
2:  ret

/* A synchronous exception at EL2 (the external abort a GPT violation
 * injects in hw mode): note it in x21 and skip the faulting instruction. */
    .balign 0x800
vectors:
    .skip   0x200
    mrs     x9, elr_el2
    add     x9, x9, #4
    msr     elr_el2, x9
    mov     x21, #1
    eret

msg_hello:    .asciz "payload: hello from NS-EL2\n"
msg_spin:     .asciz "payload: spinning now\n"
msg_off:      .asciz "payload: powering off\n"
msg_reset:    .asciz "payload: resetting\n"
msg_fault:    .asciz "payload: the load took an external abort\n"
msg_no_fault: .asciz "payload: the load completed\n"
