/*
 * hoststub request loop.  Each CPU asks Python for its next request with the
 * SiP call HOSTSTUB_NEXT (x1 = its request page, x2 = the secondary entry
 * point, x3 = its CPU index), executes it, records the result in the same
 * page and asks again.  Only EL3 may ring the doorbell, so the stub reaches
 * Python through an SMC that the monitor forwards (the SiP channel).
 *
 * The polling channel asks the same question without any SMC of ours, so the
 * stub also runs as BL33 under another EL3 firmware: the arguments go into
 * this CPU's slot of poll_area (layout POLL), `call` is bumped, and the stub
 * waits until Python has written the request and set `answer` to `call`.
 */
#include "arch.h"
#include "cosim_layout.h"
#include "pl011.h"

#define REQ(r, field) (*(volatile u64 *)((u64)(r) + STUB_##field##_OFF))
#define REQ_ARGS(r) ((u64 *)((u64)(r) + STUB_ARGS_OFF))
#define REQ_ARGS2(r) ((u64 *)((u64)(r) + STUB_ARGS2_OFF))
#define REQ_RET(r) ((u64 *)((u64)(r) + STUB_RET_OFF))
#define REQ_BATCH(r) ((u64 *)((u64)(r) + STUB_BATCH_OFF))

#define GICR_SGI_FRAME 0x10000
#define GICD_CTLR 0x0000
#define GICD_CTLR_RWP BIT(31)
#define GICD_CTLR_NS_ENABLE (BIT(0) | BIT(1) | BIT(4))
#define GICR_ISENABLER0 0x0100
#define ICC_SRE_SRE BIT(0)
#define ICC_SRE_ENABLE BIT(3)
#define ISR_EL1_I BIT(7)
#define CNT_CTL_ENABLE BIT(0)
#define INTID_SPURIOUS_FIRST 1020
#define REALM_VTIMER_PPI 27 /* the realm's EL1 timers: their interrupts make it exit */
#define REALM_PTIMER_PPI 30
#define MAINTENANCE_PPI 25  /* GIC virtual interface maintenance (ICH_HCR_EL2.UIE...) */
#define POLL_SPINS 64       /* polls before the stub starts sleeping between them */
#define POLL_SLEEP_MIN_HZ 50000 /* first sleep: 20 us ... */
#define POLL_SLEEP_MAX_HZ 1000  /* ... doubling up to 1 ms */
#define POLL(cpu, field) (*(volatile u64 *)((u64)&poll_area[cpu] + POLL_##field##_OFF))

struct fault {
    u64 pending, esr, far, elr;
};

u8 stub_stacks[COSIM_MAX_CPUS * 0x2000] __attribute__((aligned(16)));
static u8 pages[COSIM_MAX_CPUS][STUB_SIZE] __attribute__((aligned(4096)));
static struct fault faults[COSIM_MAX_CPUS];
struct poll_slot {
    u8 bytes[POLL_SIZE];
} __attribute__((aligned(POLL_SIZE)));
struct poll_slot poll_area[COSIM_MAX_CPUS];
extern volatile u64 stub_header[];

void secondary_entry(void);
void stub_smc(const u64 *in, u64 *out);
u64 stub_smc4(u64 x0, u64 x1, u64 x2, u64 x3);
u64 stub_load1(u64), stub_load2(u64), stub_load4(u64), stub_load8(u64);
void stub_store1(u64, u64), stub_store2(u64, u64), stub_store4(u64, u64), stub_store8(u64, u64);
void stub_doorbell(void);
u64 stub_smc_check(const u64 *in, u64 *out, u64 marker);

static u64 this_cpu(void) { return read_sysreg(mpidr_el1) & 0xff; }

void stub_record_fault(u64 esr, u64 far, u64 elr)
{
    struct fault *f = &faults[this_cpu()];
    f->pending = 1;
    f->esr = esr;
    f->far = far;
    f->elr = elr;
}

void stub_unexpected(u64 esr, u64 elr)
{
    pl011_puts(COSIM_UART_NS_BASE, "hoststub: unexpected exception, ESR_EL2 ");
    pl011_puthex(COSIM_UART_NS_BASE, esr);
    pl011_puts(COSIM_UART_NS_BASE, " ELR_EL2 ");
    pl011_puthex(COSIM_UART_NS_BASE, elr);
    pl011_puts(COSIM_UART_NS_BASE, "\n");
}

static u64 counter(void)
{
    isb();
    return read_sysreg(cntvct_el0);
}

static u64 physical_counter(void)
{
    isb();
    return read_sysreg(cntpct_el0);
}

/*
 * The interrupts this host CPU takes part in (GICv3 spec, IHI 0069): the kick
 * SGI, its EL2 physical timer (CNTHP, for WAIT deadlines), the PPIs of the
 * realm's EL1 timers and the virtual interface's maintenance interrupt (an
 * underflow the VMM asked for when more interrupts wait than list registers).  They stay masked in PSTATE: the stub never takes an
 * interrupt, it only lets them end a WFI or make a running realm exit to R-EL2
 * (HCR_EL2.IMO is set while a realm runs), then acknowledges them.  The
 * monitor made every interrupt but its own wake SGI Group 1 Non-secure.
 */
static void gic_host_init(u64 cpu)
{
    write_sysreg(icc_sre_el2, read_sysreg(icc_sre_el2) | ICC_SRE_SRE | ICC_SRE_ENABLE);
    isb();
    /* Our monitor sets these at EL3; another firmware (TF-A) leaves them to
     * the NS world, as Linux expects: the priority mask open, Non-secure
     * Group 1 on in the CPU interface and in the distributor (GICD_CTLR's
     * Non-secure view: EnableGrp1, EnableGrp1A, ARE_NS; then wait for RWP). */
    write_sysreg(icc_pmr_el1, 0xff);
    write_sysreg(icc_igrpen1_el1, 1);
    isb();
    if (cpu == 0) {
        mmio_write32(COSIM_GICD_BASE + GICD_CTLR,
                     mmio_read32(COSIM_GICD_BASE + GICD_CTLR) | GICD_CTLR_NS_ENABLE);
        while (mmio_read32(COSIM_GICD_BASE + GICD_CTLR) & GICD_CTLR_RWP)
            ;
    }
    u64 sgi = COSIM_GICR_BASE + cpu * COSIM_GICR_STRIDE + GICR_SGI_FRAME;
    mmio_write32(sgi + GICR_ISENABLER0, (u32)(BIT(KICK_SGI) | BIT(HYP_TIMER_PPI) |
                                              BIT(REALM_VTIMER_PPI) | BIT(REALM_PTIMER_PPI) |
                                              BIT(MAINTENANCE_PPI)));
}

/* Send the kick SGI to every CPU in `mask` (ICC_SGI1R_EL1: INTID in [27:24],
 * Aff0 target list in [15:0]; host CPU n has MPIDR Aff0 = n). */
static void send_kicks(u64 mask)
{
    if (!mask)
        return;
    dsb(ishst);
    write_sysreg(icc_sgi1r_el1, ((u64)KICK_SGI << 24) | (mask & 0xffff));
    isb();
}

/* Acknowledge and complete every pending Group 1 interrupt (EOImode 0: the
 * write to ICC_EOIR1_EL1 also deactivates).  Level-sensitive sources must be
 * quiet before this, or they are pending again at once. */
static u64 ack_interrupts(void)
{
    u64 n = 0;
    for (;;) {
        u64 intid = read_sysreg(icc_iar1_el1) & 0xffffff;
        if (intid >= INTID_SPURIOUS_FIRST)
            break;
        write_sysreg(icc_eoir1_el1, intid);
        n++;
    }
    isb();
    return n;
}

/* Arm the EL2 physical timer (CNTHP) for CNTPCT_EL0 = deadline (0: leave it
 * off).  The world switch does not touch it, so it also fires while a realm
 * runs on this CPU: its PPI, routed to R-EL2 (HCR_EL2.IMO), makes the realm
 * exit, like a host scheduler tick preempting a guest. */
static void hyp_timer_arm(u64 deadline)
{
    if (!deadline)
        return;
    write_sysreg(cnthp_cval_el2, deadline);
    write_sysreg(cnthp_ctl_el2, CNT_CTL_ENABLE);
    isb();
}

static void hyp_timer_off(void)
{
    write_sysreg(cnthp_ctl_el2, 0);
    isb();
}

/* Sleep in WFI until an interrupt is pending (ISR_EL1 at EL2 shows physical
 * interrupts), with CNTHP armed for `deadline` when it is not 0. */
static void wait_for_interrupt(u64 deadline)
{
    hyp_timer_arm(deadline);
    while (!(read_sysreg(isr_el1) & ISR_EL1_I))
        wfi();
    hyp_timer_off();
}

/*
 * The polling channel's HOSTSTUB_NEXT.  Python watches `call` from another
 * host thread; between polls the stub first yields (QEMU ends the vCPU's
 * time slice on YIELD) and then sleeps in WFI with CNTHP armed, for 20 us
 * doubling up to 1 ms, so an idle wait costs the host little.  While an
 * interrupt is pending (a kick meant for the next WAIT, which acknowledges
 * it) WFI would not sleep, so the stub only yields.  The DSBs order the
 * request page and the slot against `call` and `answer` (Arm ARM B2.3).
 */
static void poll_next(u64 cpu, volatile u8 *page)
{
    u64 freq = read_sysreg(cntfrq_el0);
    u64 sleep = freq / POLL_SLEEP_MIN_HZ, sleep_max = freq / POLL_SLEEP_MAX_HZ;
    POLL(cpu, PAGE) = (u64)page;
    POLL(cpu, ENTRY) = (u64)secondary_entry;
    POLL(cpu, CPU) = cpu;
    POLL(cpu, CNTFRQ) = freq;
    u64 call = POLL(cpu, ANSWER) + 1;
    dsb(ish);
    POLL(cpu, CALL) = call;
    for (u64 polls = 0; POLL(cpu, ANSWER) != call; polls++) {
        if (polls < POLL_SPINS || (read_sysreg(isr_el1) & ISR_EL1_I)) {
            __asm__ volatile("yield" ::: "memory");
            continue;
        }
        wait_for_interrupt(physical_counter() + sleep);
        if (sleep < sleep_max)
            sleep *= 2;
    }
    dsb(ish);
}

static void smc_batch(volatile u8 *r, u64 *ret)
{
    u64 n = REQ(r, COUNT), repeat = REQ(r, VALUE), i, done = 0, regs[18] = {0};
    u64 t0 = counter();
    if (n > STUB_BATCH_MAX)
        n = STUB_BATCH_MAX;
    if (repeat == 0)
        repeat = 1;
    for (u64 pass = 0; pass < repeat; pass++) {
        for (i = 0; i < n; i++) {
            const u64 *b = REQ_BATCH(r) + i * STUB_BATCH_REGS;
            for (u64 k = 0; k < STUB_BATCH_REGS; k++)
                regs[k] = b[k];
            stub_smc(regs, ret);
            done++;
            if (ret[0] != 0)
                goto out;
        }
    }
out:
    REQ(r, TICKS) = counter() - t0;
    REQ(r, DONE) = done;
}

/*
 * The console fast path of REC_ENTER (ConsoleFlag in cosim/monitor/layout.py):
 * complete the realm's PL011 data-register writes and flag/control-register
 * reads here and enter the realm again, handing Python the bytes in one batch
 * when the REC_ENTER request ends - as KVM's coalesced MMIO does.  Linux's
 * console writes a character with an FR read and a DR write, each an exit.
 *
 * Only an emulatable data abort (RmiRecExit.esr: EC 0x24 with ISV, Arm ARM
 * "ISS encoding for an exception from a Data Abort") on the UART page
 * qualifies, and only while the list registers came back as they went in
 * (the realm took no virtual interrupt: the VMM's vGIC has nothing to learn).
 * Anything else - an interrupt, a timer, a kick - ends the loop as before.
 */
#define PL011_DR 0x000
#define PL011_FR 0x018
#define PL011_CR 0x030
#define RUN(run, field) (*(volatile u64 *)((run) + REC_RUN_##field##_OFF))

static int console_exit(volatile u8 *r, u64 run)
{
    u64 flags = REQ(r, CONSOLE_FLAGS);
    if (!flags || *(volatile u8 *)(run + REC_RUN_EXIT_REASON_OFF) != REC_EXIT_SYNC)
        return 0;
    u64 esr = RUN(run, EXIT_ESR);
    if ((esr >> REC_EXIT_ESR_EC_SHIFT & 0x3f) != REC_EXIT_EC_DABT_LOWER ||
        !(esr & REC_EXIT_DABT_ISV))
        return 0;
    u64 ipa = (RUN(run, EXIT_HPFAR) & HPFAR_FIPA_MASK) >> HPFAR_FIPA_SHIFT << 12;
    if (ipa != REQ(r, CONSOLE_IPA))
        return 0;
    volatile u64 *in_lrs = (volatile u64 *)(run + REC_RUN_ENTER_LRS_OFF);
    volatile u64 *out_lrs = (volatile u64 *)(run + REC_RUN_EXIT_LRS_OFF);
    for (u64 i = 0; i < REC_RUN_LRS; i++)
        if (in_lrs[i] != out_lrs[i])
            return 0;
    u64 offset = RUN(run, EXIT_FAR) & 0xfff, value = RUN(run, EXIT_GPRS);
    u64 len = REQ(r, CONSOLE_LEN);
    if (esr & REC_EXIT_DABT_WNR) {
        if (offset == PL011_DR && (flags & CONSOLE_DR_WRITE) && len < STUB_CONSOLE_MAX) {
            ((volatile u8 *)r + STUB_CONSOLE_BUF_OFF)[len] = (u8)value;
            REQ(r, CONSOLE_LEN) = len + 1;
        } else if (!(offset == PL011_CR && (flags & CONSOLE_CR_ACCESS) &&
                     value == REQ(r, CONSOLE_CR))) {
            return 0;
        }
    } else {
        if (offset == PL011_FR && (flags & CONSOLE_FR_READ))
            value = REQ(r, CONSOLE_FR);
        else if (offset == PL011_CR && (flags & CONSOLE_CR_ACCESS))
            value = REQ(r, CONSOLE_CR);
        else
            return 0;
        RUN(run, ENTER_GPRS) = value;
    }
    /* Re-enter as the VMM would: the access completed (the last entry's other
     * completions were consumed by it; the WFI/WFE trap choices stay). */
    RUN(run, ENTER_FLAGS) = (RUN(run, ENTER_FLAGS) & ~REC_ENTER_COMPLETIONS) | REC_ENTER_EMUL_MMIO;
    REQ(r, CONSOLE_EXITS) = REQ(r, CONSOLE_EXITS) + 1;
    return 1;
}

static u64 do_load(u64 addr, u64 size)
{
    switch (size) {
    case 1: return stub_load1(addr);
    case 2: return stub_load2(addr);
    case 4: return stub_load4(addr);
    default: return stub_load8(addr);
    }
}

static void do_store(u64 addr, u64 size, u64 value)
{
    switch (size) {
    case 1: stub_store1(addr, value); break;
    case 2: stub_store2(addr, value); break;
    case 4: stub_store4(addr, value); break;
    default: stub_store8(addr, value); break;
    }
}

static void mem_loop(u64 base, u64 len, u64 passes)
{
    for (u64 p = 0; p < passes; p++)
        for (u64 a = base; a + 8 <= base + len; a += 8)
            stub_store8(a, stub_load8(a) + 1);
}

static void execute(volatile u8 *r, struct fault *f)
{
    u64 op = REQ(r, OP), size = REQ(r, SIZE), addr = REQ(r, ADDR);
    u64 *ret = REQ_RET(r);
    f->pending = 0;
    REQ(r, STATUS) = STUB_STATUS_OK;
    send_kicks(REQ(r, KICK));
    REQ(r, KICK) = 0;
    switch (op) {
    case STUB_OP_SMC:
        stub_smc(REQ_ARGS(r), ret);
        break;
    case STUB_OP_SMC_LOOP: {
        u64 n = REQ(r, COUNT), t0 = counter();
        for (u64 i = 0; i < n; i++)
            stub_smc(REQ_ARGS(r), ret);
        REQ(r, TICKS) = counter() - t0;
        break;
    }
    case STUB_OP_SMC_PAIR_LOOP: {
        u64 n = REQ(r, COUNT), t0 = counter();
        for (u64 i = 0; i < n; i++) {
            stub_smc(REQ_ARGS(r), ret);
            if (ret[0] != 0)
                break;
            stub_smc(REQ_ARGS2(r), ret);
            if (ret[0] != 0)
                break;
        }
        REQ(r, TICKS) = counter() - t0;
        break;
    }
    case STUB_OP_LOAD:
    case STUB_OP_STORE:
        if ((size != 1 && size != 2 && size != 4 && size != 8) || (addr & (size - 1))) {
            REQ(r, STATUS) = STUB_STATUS_BAD_REQUEST;
            return;
        }
        if (op == STUB_OP_LOAD)
            ret[0] = do_load(addr, size);
        else
            do_store(addr, size, REQ(r, VALUE));
        break;
    case STUB_OP_MEM_LOOP: {
        u64 t0 = counter();
        mem_loop(addr, size, REQ(r, COUNT));
        REQ(r, TICKS) = counter() - t0;
        break;
    }
    case STUB_OP_DOORBELL:
        stub_doorbell();
        break;
    case STUB_OP_YIELD:
        return;
    case STUB_OP_REC_ENTER:
        REQ(r, CONSOLE_LEN) = 0;
        REQ(r, CONSOLE_EXITS) = 0;
        hyp_timer_arm(REQ(r, VALUE));
        do
            stub_smc(REQ_ARGS(r), ret);
        while (ret[0] == 0 && console_exit(r, REQ_ARGS(r)[2]));
        hyp_timer_off();
        REQ(r, IRQS) = ack_interrupts();
        REQ(r, TICKS) = physical_counter();
        break;
    case STUB_OP_WAIT: {
        u64 deadline = REQ(r, VALUE);
        if (!deadline && REQ(r, COUNT))
            deadline = physical_counter() + REQ(r, COUNT);
        wait_for_interrupt(deadline);
        REQ(r, IRQS) = ack_interrupts();
        REQ(r, TICKS) = physical_counter();
        break;
    }
    case STUB_OP_SMC_BATCH:
        smc_batch(r, ret);
        break;
    case STUB_OP_SMC_CHECK:
        REQ(r, TICKS) = stub_smc_check(REQ_ARGS(r), ret, REQ(r, VALUE));
        break;
    default:
        REQ(r, STATUS) = STUB_STATUS_BAD_REQUEST;
        return;
    }
    if (f->pending) {
        REQ(r, STATUS) = STUB_STATUS_FAULT;
        REQ(r, FAULT_ESR) = f->esr;
        REQ(r, FAULT_FAR) = f->far;
        REQ(r, FAULT_ELR) = f->elr;
    }
}

void stub_main(u64 cpu)
{
    volatile u8 *r = pages[cpu];
    gic_host_init(cpu);
    if (cpu == 0) {
        pl011_init(COSIM_UART_NS_BASE);
        pl011_puts(COSIM_UART_NS_BASE, "hoststub: ready\n");
    }
    for (;;) {
        if (stub_header[STUB_HEADER_CHANNEL_OFF / 8] == STUB_CHANNEL_POLL)
            poll_next(cpu, r);
        else
            stub_smc4(SIP_HOSTSTUB_NEXT, (u64)r, (u64)secondary_entry, cpu);
        if (REQ(r, OP) == STUB_OP_EXIT)
            return;
        execute(r, &faults[cpu]);
        REQ(r, DONE_SEQ) = REQ(r, SEQ);
    }
}
