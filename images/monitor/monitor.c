/*
 * cca-cosim EL3 monitor: boot, SMC dispatch and the doorbell protocol.
 *
 * The monitor makes no policy decision.  For every exception it does not own
 * (everything but the PSCI CPU power calls of psci.c) it fills this CPU's
 * mailbox and rings the doorbell; Python answers in the same mailbox with an
 * action and, for an SMC, the caller's registers edited in place.
 */
#include "monitor.h"
#include "pl011.h"

#define SCTLR_EL2_RES1 0x30c50830ULL /* RES1 bits, MMU and caches off, little-endian */

void log_puts(const char *s) { pl011_puts(COSIM_UART_SECURE_BASE, s); }

void log_hex(const char *label, u64 v)
{
    log_puts(label);
    pl011_puthex(COSIM_UART_SECURE_BASE, v);
    log_puts("\n");
}

u64 ring(u64 pcpu, u64 reason)
{
    MB(pcpu, REASON) = reason;
    MB(pcpu, ACTION) = ACTION_RETURN;
    MB(pcpu, FLAGS) = 0;
    MB(pcpu, SEQ) = MB(pcpu, SEQ) + 1;
    cosim_doorbell();
    if (MB(pcpu, FLAGS) & ACTIONFLAG_TLBI_PAALLOS) {
        /* Python changed the GPT: drop cached GPT information on every PE
         * (Arm ARM D8.13 "TLB maintenance for the GPT": TLBI PAALLOS).  A
         * machine with one PE has no other PE in its Outer Shareable domain,
         * so TLBI PAALL (this PE) invalidates the same entries; QEMU does it
         * at once instead of as synchronised work for all vCPUs. */
        if (BOOTCFG(NUM_CPUS) == 1)
            __asm__ volatile("dsb sy\n tlbi paall\n dsb sy\n isb" ::: "memory");
        else
            __asm__ volatile("dsb sy\n tlbi paallos\n dsb sy\n isb" ::: "memory");
    }
    if (MB(pcpu, FLAGS) & ACTIONFLAG_TLBI_REALM)
        tlbi_realm_all();
    return MB(pcpu, ACTION);
}

static void gpio_pulse(u32 pin)
{
    /* PL061: set the pin as output, then drive it high through the masked
     * data address (bit pin of the address selects the pin). */
    u64 base = COSIM_SECURE_GPIO_BASE;
    mmio_write8(base + 0x400, mmio_read8(base + 0x400) | (u8)(1u << pin));
    mmio_write8(base + ((1u << pin) << 2), (u8)(1u << pin));
}

void terminal_action(u64 pcpu, u64 action)
{
    if (action == ACTION_POWER_OFF)
        gpio_pulse(0);
    else if (action == ACTION_RESET)
        gpio_pulse(1);
    else if (action == ACTION_HALT)
        halt_in_place(pcpu);
    else
        log_hex("monitor: action not valid here: ", action);
    park_forever();
}

/* Deliver a synchronous external abort to the EL the exception came from
 * (or to EL2 when HCR_EL2.TGE routes EL0 there), as the architecture would
 * have taken it: ESR/FAR/ELR/SPSR of the target EL set, PC at its vector
 * (Arm ARM D1.3 "Exception entry"). */
static void inject_abort(u64 pcpu)
{
    u64 spsr = MB(pcpu, SPSR);
    u64 src_el = (spsr >> 2) & 3;
    u64 target_el = src_el;
    if (src_el == 0)
        target_el = (read_sysreg(hcr_el2) & BIT(27)) ? 2 : 1; /* HCR_EL2.TGE */
    u64 offset;
    if (target_el == src_el)
        offset = (spsr & 1) ? 0x200 : 0x000; /* current EL with SPx / SP0 */
    else
        offset = 0x400;                      /* lower EL, AArch64 */
    u64 esr = MB(pcpu, INJECT_ESR), far = MB(pcpu, INJECT_FAR), elr = MB(pcpu, ELR);
    u64 new_spsr = SPSR_DAIF | (target_el == 2 ? SPSR_M_EL2H : SPSR_M_EL1H);
    if (target_el == 2) {
        write_sysreg(esr_el2, esr);
        write_sysreg(far_el2, far);
        write_sysreg(elr_el2, elr);
        write_sysreg(spsr_el2, spsr);
        MB(pcpu, ELR) = read_sysreg(vbar_el2) + offset;
    } else {
        write_sysreg(esr_el1, esr);
        write_sysreg(far_el1, far);
        write_sysreg(elr_el1, elr);
        write_sysreg(spsr_el1, spsr);
        MB(pcpu, ELR) = read_sysreg(vbar_el1) + offset;
    }
    MB(pcpu, SPSR) = new_spsr;
}

/* Act on Python's answer for an exception from a lower EL.  Returns the
 * world to ERET into. */
static u64 act(u64 pcpu, u64 action)
{
    switch (action) {
    case ACTION_RETURN:
        break;
    case ACTION_INJECT_SEA:
        inject_abort(pcpu);
        break;
    case ACTION_ENTER_REALM:
        if (MB(pcpu, IN_REALM))
            terminal_action(pcpu, action);
        return realm_enter(pcpu);
    default:
        terminal_action(pcpu, action);
    }
    write_sysreg(elr_el3, MB(pcpu, ELR));
    write_sysreg(spsr_el3, MB(pcpu, SPSR));
    return MB(pcpu, IN_REALM) ? WORLD_REALM : WORLD_NONSECURE;
}

static void record_syndrome(u64 pcpu, u64 esr)
{
    MB(pcpu, ESR) = esr;
    MB(pcpu, ELR) = read_sysreg(elr_el3);
    MB(pcpu, SPSR) = read_sysreg(spsr_el3);
    MB(pcpu, SCR) = read_sysreg(scr_el3);
    MB(pcpu, FAR) = read_sysreg(far_el3);
    MB(pcpu, HPFAR) = 0;
    MB(pcpu, MFAR) = 0;
}

u64 monitor_lower_sync(u64 pcpu)
{
    u64 esr = read_sysreg(esr_el3);
    if (MB(pcpu, IN_REALM) && ESR_EC(esr) == EC_SMC64 && ((read_sysreg(spsr_el3) >> 2) & 3) == 2)
        return realm_trap(pcpu);   /* the R-EL2 vectors: a realm exit */
    record_syndrome(pcpu, esr);
    switch (ESR_EC(esr)) {
    case EC_SMC64:
        if (psci_handle(pcpu, (u32)XREG(pcpu, 0))) {
            write_sysreg(elr_el3, MB(pcpu, ELR));
            return WORLD_NONSECURE;
        }
        return act(pcpu, ring(pcpu, REASON_SMC));
    case EC_GPC:
        /* MFAR_EL3 holds the faulting PA and the PAS it was accessed in. */
        MB(pcpu, MFAR) = read_sysreg(mfar_el3);
        return act(pcpu, ring(pcpu, REASON_GPF));
    default:
        return act(pcpu, ring(pcpu, REASON_FATAL));
    }
}

/* IRQ/FIQ/SError or AArch32 exceptions are never routed to EL3 (SCR_EL3
 * IRQ/FIQ/EA are 0, lower ELs are AArch64 only): report and let Python say. */
u64 monitor_unexpected(u64 pcpu, u64 elr)
{
    record_syndrome(pcpu, read_sysreg(esr_el3));
    MB(pcpu, ELR) = elr;
    return act(pcpu, ring(pcpu, REASON_FATAL));
}

void monitor_self_fault(u64 pcpu)
{
    log_hex("monitor: exception at EL3, ESR_EL3 ", read_sysreg(esr_el3));
    log_hex("monitor:   ELR_EL3 ", read_sysreg(elr_el3));
    log_hex("monitor:   FAR_EL3 ", read_sysreg(far_el3));
    MB(pcpu, ESR) = read_sysreg(esr_el3);
    MB(pcpu, ELR) = read_sysreg(elr_el3);
    MB(pcpu, FAR) = read_sysreg(far_el3);
    MB(pcpu, SPSR) = read_sysreg(spsr_el3);
    ring(pcpu, REASON_FATAL);
}

/* Enter the NS payload at EL2h with the Linux arm64 boot protocol: x0 = arg0
 * (the DTB for the boot CPU, the PSCI context id for others), x1..x3 = 0,
 * MMU off, all exceptions masked (Documentation/arch/arm64/booting.rst). */
void enter_ns(u64 pcpu, u64 entry, u64 arg0)
{
    for (int i = 1; i < 31; i++)
        XREG(pcpu, i) = 0;
    XREG(pcpu, 0) = arg0;
    MB(pcpu, SP_EL0) = 0;
    MB(pcpu, ELR) = entry;
    MB(pcpu, SPSR) = SPSR_DAIF | SPSR_M_EL2H;
    MB(pcpu, ESR) = 0;
    u64 action = ring(pcpu, REASON_CPU_UP);
    if (action != ACTION_RETURN)
        terminal_action(pcpu, action);
    write_sysreg(sctlr_el2, SCTLR_EL2_RES1);
    write_sysreg(hcr_el2, 0);
    write_sysreg(cntvoff_el2, 0);
    write_sysreg(scr_el3, el3_ns_scr());
    write_sysreg(elr_el3, MB(pcpu, ELR));
    write_sysreg(spsr_el3, MB(pcpu, SPSR));
    isb();
    el3_exit(WORLD_NONSECURE);
}

void monitor_cold_boot(u64 cpu, u64 pcpu)
{
    MB(pcpu, CPU) = cpu;
    el3_setup();
    gic_cpu_init(cpu);
    if (BOOTCFG(FLAGS) & BOOTFLAG_GPT_HW)
        gpt_enable();
    if (cpu != 0)
        psci_park(pcpu);

    pl011_init(COSIM_UART_SECURE_BASE);
    log_puts("cca-cosim monitor: EL3 up\n");
    gic_dist_init();
    el3_write_features(carveout_header());
    u64 action = ring(pcpu, REASON_BOOT);
    if (action != ACTION_RETURN)
        terminal_action(pcpu, action);
    psci_boot_primary(pcpu);
    enter_ns(pcpu, BOOTCFG(NS_ENTRY), BOOTCFG(NS_DTB));
}
