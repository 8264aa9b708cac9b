/*
 * The world switch between the Non-secure host and a realm.
 *
 * Python (the RMM) decides everything; this code moves state.  On
 * ENTER_REALM it saves the host's EL1, EL2, debug, GIC virtual-interface and
 * FP/SIMD/SVE state into ns_ctx, loads the realm's from realm_ctx (its EL2
 * part is the RMM's configuration for running the REC: HCR_EL2, VTTBR_EL2,
 * VTCR_EL2, VBAR_EL2 = the R-EL2 vector page, ...) and ERETs to realm EL1 in
 * the Realm security state (SCR_EL3.{NSE,NS} = {1,1}, Arm ARM "Security
 * states") when the CPU has FEAT_RME.  Every realm exit reaches EL3 through
 * the R-EL2 vectors; the realm's state is saved into realm_ctx before Python
 * is asked.  RESUME_REALM returns straight to the realm; EXIT_REALM restores
 * the host and returns from its RMI_REC_ENTER.
 *
 * Register lists come from cosim/monitor/layout.py (COSIM_CTX_* in
 * cosim_layout.h).  Writes are skipped when the value is unchanged: QEMU
 * flushes its TLB on writes to translation-control registers, and a switch
 * costs what it flushes, not what it copies.
 */
#include "monitor.h"

#define SCR_NS BIT(0)
#define SCR_NSE BIT(62)
#define PFR0_RME_SHIFT 52

void fp_save(u64 ctx, u64 sve);
void fp_restore(u64 ctx, u64 sve);

#define HAS_GROUP(g, groups) ((g) < 0 || ((groups) >> (g)) & 1)
#define CTX(ctx, off) PCPU_U64(ctx, off)

struct counts {
    u64 groups, bps, wps, lrs, aprs;
};

static struct counts counts(void)
{
    u64 h = carveout_header();
    struct counts c = {
        .groups = PCPU_U64(h, HDR_CTX_GROUPS_OFF),
        .bps = PCPU_U64(h, HDR_NUM_BPS_OFF),
        .wps = PCPU_U64(h, HDR_NUM_WPS_OFF),
        .lrs = PCPU_U64(h, HDR_NUM_LRS_OFF),
        .aprs = PCPU_U64(h, HDR_NUM_APRS_OFF),
    };
    return c;
}

#define SAVE_G(reg, off, g) \
    if (HAS_GROUP(g, c->groups)) \
        CTX(ctx, off) = read_sysreg(reg);
#define LOAD_G(reg, off, g) \
    if (HAS_GROUP(g, c->groups)) { \
        u64 v_ = CTX(ctx, off); \
        if (read_sysreg(reg) != v_) \
            write_sysreg(reg, v_); \
    }

static void save_el1(u64 ctx, const struct counts *c) { COSIM_CTX_EL1(SAVE_G) }

/* Breakpoint and watchpoint registers.  A realm's are saved only when it
 * leaves for the host (Python never reads them; RESUME_REALM keeps them in
 * the CPU), and written only where they differ: QEMU re-registers a
 * breakpoint on every write. */
static void save_debug(u64 ctx, const struct counts *c)
{
#define X(reg, off, idx) if (idx < c->bps) CTX(ctx, off) = read_sysreg(reg);
    COSIM_CTX_DBGBVR(X)
    COSIM_CTX_DBGBCR(X)
#undef X
#define X(reg, off, idx) if (idx < c->wps) CTX(ctx, off) = read_sysreg(reg);
    COSIM_CTX_DBGWVR(X)
    COSIM_CTX_DBGWCR(X)
#undef X
}

#define LOAD_IF(reg, off) \
    { \
        u64 v_ = CTX(ctx, off); \
        if (read_sysreg(reg) != v_) \
            write_sysreg(reg, v_); \
    }

static void load_debug(u64 ctx, const struct counts *c)
{
#define X(reg, off, idx) if (idx < c->bps) LOAD_IF(reg, off)
    COSIM_CTX_DBGBVR(X)
    COSIM_CTX_DBGBCR(X)
#undef X
#define X(reg, off, idx) if (idx < c->wps) LOAD_IF(reg, off)
    COSIM_CTX_DBGWVR(X)
    COSIM_CTX_DBGWCR(X)
#undef X
}

static void load_el1(u64 ctx, const struct counts *c)
{
    COSIM_CTX_EL1(LOAD_G)
    isb();
}

static void save_el2(u64 ctx, const struct counts *c) { COSIM_CTX_EL2(SAVE_G) }

static void load_el2(u64 ctx, const struct counts *c)
{
    /* HCR_EL2 comes first in the list: its E2H bit decides how the
     * registers after it (CPTR_EL2, CNTHCTL_EL2) are read. */
    COSIM_CTX_EL2(LOAD_G)
    isb();
}

static void save_gic(u64 ctx, const struct counts *c)
{
    COSIM_CTX_GIC(SAVE_G)
#define X(reg, off, idx) if (idx < c->lrs) CTX(ctx, off) = read_sysreg(reg);
    COSIM_CTX_GIC_LR(X)
#undef X
#define X(reg, off, idx) if (idx < c->aprs) CTX(ctx, off) = read_sysreg(reg);
    COSIM_CTX_GIC_AP0R(X)
    COSIM_CTX_GIC_AP1R(X)
#undef X
}

/* List and active-priority registers are written only where they differ:
 * each write makes QEMU re-evaluate the virtual CPU interface. */
static void load_gic(u64 ctx, const struct counts *c)
{
#define X(reg, off, idx) if (idx < c->lrs) LOAD_IF(reg, off)
    COSIM_CTX_GIC_LR(X)
#undef X
#define X(reg, off, idx) if (idx < c->aprs) LOAD_IF(reg, off)
    COSIM_CTX_GIC_AP0R(X)
    COSIM_CTX_GIC_AP1R(X)
#undef X
    COSIM_CTX_GIC(LOAD_G)
    isb();
}

static void copy_frame_to(u64 pcpu, u64 ctx)
{
    for (int i = 0; i < 31; i++)
        CTX(ctx, CTX_GPRS_OFF + 8 * i) = XREG(pcpu, i);
    CTX(ctx, CTX_SP_EL0_OFF) = MB(pcpu, SP_EL0);
}

static void copy_frame_from(u64 pcpu, u64 ctx)
{
    for (int i = 0; i < 31; i++)
        XREG(pcpu, i) = CTX(ctx, CTX_GPRS_OFF + 8 * i);
    MB(pcpu, SP_EL0) = CTX(ctx, CTX_SP_EL0_OFF);
}

static u64 realm_scr(void)
{
    u64 scr = el3_ns_scr();
    if (id_field(read_sysreg(id_aa64pfr0_el1), PFR0_RME_SHIFT))
        scr |= SCR_NSE | SCR_NS;
    return scr;
}

/* Invalidate every EL1&0 stage-1 and stage-2 TLB entry of the Realm
 * security state on all PEs: TLBI ALLE1IS issued in that state (Arm ARM
 * "TLBI ALLE1IS": it applies to the security state SCR_EL3.{NSE,NS} names). */
void tlbi_realm_all(void)
{
    u64 scr = read_sysreg(scr_el3);
    write_sysreg(scr_el3, realm_scr());
    isb();
    __asm__ volatile("dsb ishst\n tlbi alle1is\n dsb ish\n isb" ::: "memory");
    write_sysreg(scr_el3, scr);
    isb();
}

u64 realm_enter(u64 pcpu)
{
    struct counts cv = counts();
    const struct counts *c = &cv;
    u64 ns = pcpu + PCPU_NS_CTX_OFF, ctx = pcpu + PCPU_REALM_CTX_OFF;
    u64 host_sve = (c->groups >> CTXGROUP_SVE) & 1;

    copy_frame_to(pcpu, ns);
    CTX(ns, CTX_PC_OFF) = MB(pcpu, ELR);
    CTX(ns, CTX_PSTATE_OFF) = MB(pcpu, SPSR);
    save_el1(ns, c);
    save_debug(ns, c);
    save_el2(ns, c);
    save_gic(ns, c);
    fp_save(ns, host_sve);

    /* ctx is the realm context from here on (the X-macros name it so). */
    load_el2(ctx, c);
    load_el1(ctx, c);
    load_debug(ctx, c);
    load_gic(ctx, c);
    fp_restore(ctx, MB(pcpu, REALM_SVE));
    copy_frame_from(pcpu, ctx);
    MB(pcpu, ELR) = CTX(ctx, CTX_PC_OFF);
    MB(pcpu, SPSR) = CTX(ctx, CTX_PSTATE_OFF);
    MB(pcpu, IN_REALM) = 1;
    write_sysreg(scr_el3, realm_scr());
    write_sysreg(elr_el3, MB(pcpu, ELR));
    write_sysreg(spsr_el3, MB(pcpu, SPSR));
    isb();
    return WORLD_REALM;
}

static u64 realm_leave(u64 pcpu)
{
    struct counts cv = counts();
    const struct counts *c = &cv;
    u64 ctx = pcpu + PCPU_REALM_CTX_OFF;
    u64 host_sve = (c->groups >> CTXGROUP_SVE) & 1;

    /* What the realm exit left in the CPU and Python does not look at. */
    save_debug(ctx, c);
    fp_save(ctx, MB(pcpu, REALM_SVE));

    ctx = pcpu + PCPU_NS_CTX_OFF;
    load_el2(ctx, c);
    load_el1(ctx, c);
    load_debug(ctx, c);
    load_gic(ctx, c);
    fp_restore(ctx, host_sve);
    copy_frame_from(pcpu, ctx);
    MB(pcpu, ELR) = CTX(ctx, CTX_PC_OFF);
    MB(pcpu, SPSR) = CTX(ctx, CTX_PSTATE_OFF);
    MB(pcpu, IN_REALM) = 0;
    write_sysreg(scr_el3, el3_ns_scr());
    write_sysreg(elr_el3, MB(pcpu, ELR));
    write_sysreg(spsr_el3, MB(pcpu, SPSR));
    isb();
    return WORLD_NONSECURE;
}

/* A realm exception reached EL3 through the R-EL2 vectors (an SMC at EL2).
 * Save the realm's state Python needs (GPRs, syndrome, EL1 and GIC
 * registers), ask Python, and do what it says.  Not saved here: the realm's
 * EL2 registers (Python writes all of them on every entry), and its debug and
 * FP/SIMD/SVE registers, which a RESUME_REALM leaves in the CPU and
 * realm_leave saves when the realm gives the CPU back to the host. */
u64 realm_trap(u64 pcpu)
{
    struct counts cv = counts();
    const struct counts *c = &cv;
    u64 ctx = pcpu + PCPU_REALM_CTX_OFF;

    CTX(ctx, CTX_VECTOR_OFF) = read_sysreg(elr_el3) - 4 - read_sysreg(vbar_el2);
    MB(pcpu, ELR) = read_sysreg(elr_el2);
    MB(pcpu, SPSR) = read_sysreg(spsr_el2);
    MB(pcpu, ESR) = read_sysreg(esr_el2);
    MB(pcpu, FAR) = read_sysreg(far_el2);
    MB(pcpu, HPFAR) = read_sysreg(hpfar_el2);
    save_el1(ctx, c);
    save_gic(ctx, c);
    COSIM_CTX_GIC_STATUS(SAVE_G)

    u64 action = ring(pcpu, REASON_REALM_EXIT);
    u64 flags = MB(pcpu, FLAGS);
    if (action == ACTION_RESUME_REALM) {
        if (flags & ACTIONFLAG_RELOAD_EL1)
            load_el1(ctx, c);
        write_sysreg(elr_el3, MB(pcpu, ELR));
        write_sysreg(spsr_el3, MB(pcpu, SPSR));
        return WORLD_REALM;
    }
    if (action == ACTION_EXIT_REALM)
        return realm_leave(pcpu);
    terminal_action(pcpu, action);
}
