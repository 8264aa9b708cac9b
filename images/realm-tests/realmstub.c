/*
 * realmstub request loop: ask the host for work with RSI_HOST_CALL (imm
 * REALMSTUB_NEXT, the last request's results in gprs[0..]), run it, repeat.
 * The host answers by writing the next request into the host call's GPRs
 * (RMI_REC_ENTER's gprs, which the RMM copies into this buffer).
 */
#include "arch.h"
#include "cosim_layout.h"

#define GIC_TIMER_INTID 27   /* the EL1 virtual timer's PPI on virt */
#define CNTV_CTL_ENABLE 1
#define SMC_REGS 18          /* x0..x17 (SMCCC v1.2) */

struct host_call {
    u64 imm;       /* RsiHostCall.imm is 16 bits; the rest is padding */
    u64 gprs[31];
} __attribute__((aligned(0x100)));

struct fault {
    u64 pending, esr, far, elr;
};

u8 realm_stacks[COSIM_MAX_CPUS * 0x2000] __attribute__((aligned(16)));
static struct host_call calls[COSIM_MAX_CPUS];
static struct fault faults[COSIM_MAX_CPUS];
static volatile u64 irq_intid[COSIM_MAX_CPUS];

void realm_smc(const u64 *in, u64 *out);
u64 realm_load1(u64), realm_load2(u64), realm_load4(u64), realm_load8(u64);
void realm_store1(u64, u64), realm_store2(u64, u64), realm_store4(u64, u64), realm_store8(u64, u64);
u64 realm_fp_sum(u64);
u64 realm_rdvl(void);
u64 realm_marked_call(u64 marker, u64 call_ipa);

static u64 this_cpu(void) { return read_sysreg(mpidr_el1) & 0xf; }

void realm_record_fault(u64 esr, u64 far, u64 elr)
{
    struct fault *f = &faults[this_cpu()];
    f->pending = 1;
    f->esr = esr;
    f->far = far;
    f->elr = elr;
}

void realm_irq(void)
{
    u64 iar = read_sysreg(S3_0_C12_C12_0);   /* ICC_IAR1_EL1 */
    irq_intid[this_cpu()] = iar & 0xffffff;
    write_sysreg(cntv_ctl_el0, 0);           /* quiesce the timer */
    write_sysreg(S3_0_C12_C12_1, iar);       /* ICC_EOIR1_EL1 */
    isb();
}

void realm_unexpected(u64 esr, u64 elr)
{
    /* Report through a host call the host does not expect: imm 0xdead. */
    struct host_call *c = &calls[this_cpu()];
    c->imm = 0xdead;
    c->gprs[0] = esr;
    c->gprs[1] = elr;
    u64 in[SMC_REGS] = {RSI_HOST_CALL, (u64)c}, out[SMC_REGS];
    for (;;)
        realm_smc(in, out);
}

static u64 load(u64 ipa, u64 size)
{
    switch (size) {
    case 1: return realm_load1(ipa);
    case 2: return realm_load2(ipa);
    case 4: return realm_load4(ipa);
    default: return realm_load8(ipa);
    }
}

static void store(u64 ipa, u64 size, u64 v)
{
    switch (size) {
    case 1: realm_store1(ipa, v); break;
    case 2: realm_store2(ipa, v); break;
    case 4: realm_store4(ipa, v); break;
    default: realm_store8(ipa, v); break;
    }
}

static u64 read_named(u64 which)
{
    switch (which) {
    case REALM_SYSREG_ID_AA64PFR0_EL1: return read_sysreg(id_aa64pfr0_el1);
    case REALM_SYSREG_ID_AA64PFR1_EL1: return read_sysreg(id_aa64pfr1_el1);
    case REALM_SYSREG_ID_AA64DFR0_EL1: return read_sysreg(id_aa64dfr0_el1);
    case REALM_SYSREG_ID_AA64ZFR0_EL1: return read_sysreg(id_aa64zfr0_el1);
    case REALM_SYSREG_ID_AA64ISAR0_EL1: return read_sysreg(id_aa64isar0_el1);
    case REALM_SYSREG_ID_AA64ISAR1_EL1: return read_sysreg(id_aa64isar1_el1);
    case REALM_SYSREG_ID_AA64MMFR0_EL1: return read_sysreg(id_aa64mmfr0_el1);
    case REALM_SYSREG_ID_AA64MMFR1_EL1: return read_sysreg(id_aa64mmfr1_el1);
    case REALM_SYSREG_MPIDR_EL1: return read_sysreg(mpidr_el1);
    case REALM_SYSREG_MIDR_EL1: return read_sysreg(midr_el1);
    case REALM_SYSREG_CURRENT_EL: return read_sysreg(CurrentEL);
    case REALM_SYSREG_PMCR_EL0: return read_sysreg(pmcr_el0);
    default: return 0;
    }
}

/* Wait for the EL1 virtual timer's interrupt through the GIC virtual CPU
 * interface (ICC_* registers reach ICV_* with HCR_EL2.IMO set). */
static void timer_wait(u64 ticks, u64 *res)
{
    u64 cpu = this_cpu();
    irq_intid[cpu] = 0;
    write_sysreg(S3_0_C12_C12_5, 0x7);        /* ICC_SRE_EL1: SRE | DFB | DIB */
    isb();
    write_sysreg(S3_0_C4_C6_0, 0xff);         /* ICC_PMR_EL1 */
    write_sysreg(S3_0_C12_C12_7, 1);          /* ICC_IGRPEN1_EL1 */
    isb();
    u64 t0 = read_sysreg(cntvct_el0);
    write_sysreg(cntv_tval_el0, ticks);
    write_sysreg(cntv_ctl_el0, CNTV_CTL_ENABLE);
    isb();
    __asm__ volatile("msr daifclr, #2" ::: "memory");
    while (!irq_intid[cpu])
        wfi();
    __asm__ volatile("msr daifset, #2" ::: "memory");
    res[1] = irq_intid[cpu];
    res[2] = read_sysreg(cntvct_el0) - t0;
}

static void run(u64 cpu, const u64 *req, u64 *res)
{
    struct fault *f = &faults[cpu];
    f->pending = 0;
    res[0] = REALM_STATUS_OK;
    switch (req[0]) {
    case REALM_OP_SMC:
        realm_smc(&req[1], &res[1]);
        return;
    case REALM_OP_LOAD:
        res[1] = load(req[1], req[2]);
        break;
    case REALM_OP_STORE:
        store(req[1], req[2], req[3]);
        break;
    case REALM_OP_MARKED_CALL:
        calls[cpu].imm = REALMSTUB_MARKED;
        res[1] = realm_marked_call(req[1], (u64)&calls[cpu]);
        return;
    case REALM_OP_READ_SYSREG:
        res[1] = read_named(req[1]);
        break;
    case REALM_OP_SVE_VL:
        res[1] = realm_rdvl();
        break;
    case REALM_OP_TIMER:
        timer_wait(req[1], res);
        return;
    case REALM_OP_FP_SUM:
        res[1] = realm_fp_sum(req[1]);
        return;
    case REALM_OP_SMC_LOOP: {
        u64 out[SMC_REGS], t0 = read_sysreg(cntvct_el0);
        for (u64 i = 0; i < req[1]; i++)
            realm_smc(&req[2], out);
        res[1] = out[0];
        res[2] = read_sysreg(cntvct_el0) - t0;
        return;
    }
    case REALM_OP_HOST_CALL_LOOP: {
        struct host_call *c = &calls[cpu];
        u64 in[SMC_REGS] = {RSI_HOST_CALL, (u64)c}, out[SMC_REGS];
        u64 t0 = read_sysreg(cntvct_el0);
        for (u64 i = 0; i < req[1]; i++) {
            c->imm = REALMSTUB_LOOP;
            realm_smc(in, out);
        }
        res[2] = read_sysreg(cntvct_el0) - t0;
        return;
    }
    default:
        res[0] = REALM_STATUS_BAD_REQUEST;
        return;
    }
    if (f->pending) {
        res[0] = REALM_STATUS_FAULT;
        res[3] = f->esr;
        res[4] = f->far;
        res[5] = f->elr;
    }
}

void realm_main(u64 cpu)
{
    struct host_call *c = &calls[cpu];
    u64 res[31] = {0}, req[31];
    res[30] = cpu;
    for (;;) {
        c->imm = REALMSTUB_NEXT;
        for (int i = 0; i < 31; i++)
            c->gprs[i] = res[i];
        u64 in[SMC_REGS] = {RSI_HOST_CALL, (u64)c}, out[SMC_REGS];
        realm_smc(in, out);
        for (int i = 0; i < 31; i++) {
            req[i] = c->gprs[i];
            res[i] = 0;
        }
        if (req[0] == REALM_OP_EXIT)
            return;
        run(cpu, req, res);
        res[30] = cpu;
    }
}
