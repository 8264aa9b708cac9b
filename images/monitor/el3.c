/*
 * EL3 configuration: what the lower ELs may use, and the CPU feature block.
 * Register fields are from the Arm ARM (DDI 0487) register descriptions
 * "SCR_EL3", "CPTR_EL3", "MDCR_EL3", "ZCR_EL3", "SMCR_EL3", "GPCCR_EL3".
 */
#include "monitor.h"

/* SCR_EL3 */
#define SCR_NS BIT(0)
#define SCR_RES1 (BIT(4) | BIT(5))
#define SCR_HCE BIT(8)
#define SCR_SIF BIT(9)
#define SCR_RW BIT(10)
#define SCR_APK BIT(16)
#define SCR_API BIT(17)
#define SCR_ENSCXT BIT(25)
#define SCR_ATA BIT(26)
#define SCR_FGTEN BIT(27)
#define SCR_ECVEN BIT(28)
#define SCR_HXEN BIT(38)
#define SCR_ENTP2 BIT(41)
#define SCR_TCR2EN BIT(43)
#define SCR_SCTLR2EN BIT(44)
#define SCR_PIEN BIT(45)
#define SCR_GPF BIT(48)

/* CPTR_EL3 */
#define CPTR_EZ BIT(8)   /* do not trap SVE */
#define CPTR_ESM BIT(12) /* do not trap SME */

/* MDCR_EL3: Secure self-hosted debug disabled, AArch32 Secure debug off. */
#define MDCR_SDD BIT(16)
#define MDCR_SPD32_DISABLED (2ULL << 14)

#define SMCR_FA64 BIT(31)
#define ZCR_LEN_MAX 0xf

#define ID_AA64MMFR3_EL1 S3_0_C0_C7_3
#define SMCR_EL3 S3_6_C1_C2_6

/* The SCR_EL3 value for the Non-secure world: NS EL2 is AArch64 and may use
 * every feature the CPU has without trapping to EL3.  Each enable bit is set
 * only when the ID registers say the feature exists (the bits are RES0
 * otherwise). */
static u64 compute_ns_scr(void)
{
    u64 pfr0 = read_sysreg(id_aa64pfr0_el1), pfr1 = read_sysreg(id_aa64pfr1_el1);
    u64 isar1 = read_sysreg(id_aa64isar1_el1), isar2 = read_sysreg(id_aa64isar2_el1);
    u64 mmfr0 = read_sysreg(id_aa64mmfr0_el1), mmfr1 = read_sysreg(id_aa64mmfr1_el1);
    u64 mmfr3 = read_sysreg(ID_AA64MMFR3_EL1);
    u64 scr = SCR_NS | SCR_RES1 | SCR_HCE | SCR_SIF | SCR_RW;

    /* Pointer authentication: ISAR1.APA/API/GPA/GPI, ISAR2.APA3/GPA3. */
    if (id_field(isar1, 4) || id_field(isar1, 8) || id_field(isar1, 24) ||
        id_field(isar1, 28) || id_field(isar2, 8) || id_field(isar2, 12))
        scr |= SCR_APK | SCR_API;
    if (id_field(pfr1, 8) >= 2)   /* PFR1.MTE >= FEAT_MTE2 */
        scr |= SCR_ATA;
    if (id_field(pfr0, 56) >= 2)  /* PFR0.CSV2 >= 2: SCXTNUM_ELx */
        scr |= SCR_ENSCXT;
    if (id_field(mmfr0, 56))      /* MMFR0.FGT */
        scr |= SCR_FGTEN;
    if (id_field(mmfr0, 60) >= 2) /* MMFR0.ECV with CNTPOFF_EL2 */
        scr |= SCR_ECVEN;
    if (id_field(mmfr1, 40))      /* MMFR1.HCX */
        scr |= SCR_HXEN;
    if (id_field(pfr1, 24))       /* PFR1.SME: TPIDR2_EL0 */
        scr |= SCR_ENTP2;
    if (id_field(mmfr3, 0))       /* MMFR3.TCRX */
        scr |= SCR_TCR2EN;
    if (id_field(mmfr3, 4))       /* MMFR3.SCTLRX */
        scr |= SCR_SCTLR2EN;
    if (id_field(mmfr3, 8))       /* MMFR3.S1PIE */
        scr |= SCR_PIEN;
    if (BOOTCFG(FLAGS) & BOOTFLAG_GPT_HW)
        scr |= SCR_GPF;           /* GPFs from lower ELs are taken to EL3 */
    return scr;
}

u64 el3_ns_scr(void) { return compute_ns_scr(); }

void el3_setup(void)
{
    u64 pfr0 = read_sysreg(id_aa64pfr0_el1), pfr1 = read_sysreg(id_aa64pfr1_el1);
    u64 cptr = 0;
    if (id_field(pfr0, 32))       /* PFR0.SVE */
        cptr |= CPTR_EZ;
    if (id_field(pfr1, 24))       /* PFR1.SME */
        cptr |= CPTR_ESM;
    write_sysreg(cptr_el3, cptr);
    isb();
    if (cptr & CPTR_EZ)
        write_sysreg(zcr_el3, ZCR_LEN_MAX);   /* lower ELs may use the full VL */
    if (cptr & CPTR_ESM)
        write_sysreg(SMCR_EL3, SMCR_FA64 | ZCR_LEN_MAX);
    write_sysreg(mdcr_el3, MDCR_SDD | MDCR_SPD32_DISABLED);
    write_sysreg(scr_el3, compute_ns_scr());
    /* Timers: the secure physical timer off, EL1 may use the physical
     * counter and timer until the NS hypervisor decides otherwise. */
    write_sysreg(cntps_ctl_el1, 0);
    write_sysreg(cnthctl_el2, 3);
    write_sysreg(cntvoff_el2, 0);
    isb();
}

void el3_write_features(u64 header)
{
#define X(reg, off) PCPU_U64(header, off) = read_sysreg(reg);
    COSIM_FEATURE_SYSREGS(X)
#undef X
    u64 sve_vl = 0, sme_vl = 0;
    if (read_sysreg(cptr_el3) & CPTR_EZ)
        __asm__ volatile(".arch_extension sve\n rdvl %0, #1" : "=r"(sve_vl));
    if (read_sysreg(cptr_el3) & CPTR_ESM)
        __asm__ volatile(".arch_extension sme\n rdsvl %0, #1" : "=r"(sme_vl));
    PCPU_U64(header, HDR_FEAT_SVE_MAX_VL_OFF) = sve_vl;
    PCPU_U64(header, HDR_FEAT_SME_MAX_VL_OFF) = sme_vl;
    PCPU_U64(header, HDR_MAGIC_OFF) = BOOT_MAGIC;
}

/* Granule protection: Python built the tables and computed GPCCR_EL3 and
 * GPTBR_EL3; every PE programs its own copy (they are per-PE registers).
 * Invalidate cached GPT information before use (TLBI PAALL, Arm ARM D8.13). */
void gpt_enable(void)
{
    write_sysreg(gptbr_el3, BOOTCFG(GPTBR));
    dsb(sy);
    write_sysreg(gpccr_el3, BOOTCFG(GPCCR));
    isb();
    __asm__ volatile("tlbi paall\n dsb sy\n isb" ::: "memory");
}
