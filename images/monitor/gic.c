/*
 * GICv3 set-up for a Non-secure host (Arm GICv3/v4 architecture
 * specification, IHI 0069): every interrupt is Group 1 Non-secure except
 * SGI 15, which the monitor keeps as a Group 0 (Secure) interrupt to wake
 * CPUs parked in WFI at EL3 by PSCI.
 */
#include "monitor.h"

#define GICD_CTLR 0x0000
#define GICD_TYPER 0x0004
#define GICD_IGROUPR 0x0080
#define GICD_IGRPMODR 0x0d00
#define GICD_CTLR_RWP BIT(31)
#define GICD_CTLR_ENABLE_G0 BIT(0)
#define GICD_CTLR_ENABLE_G1NS BIT(1)
#define GICD_CTLR_ENABLE_G1S BIT(2)
#define GICD_CTLR_ARE_S BIT(4)
#define GICD_CTLR_ARE_NS BIT(5)

#define GICR_WAKER 0x0014
#define GICR_WAKER_PROCESSOR_SLEEP BIT(1)
#define GICR_WAKER_CHILDREN_ASLEEP BIT(2)
#define GICR_SGI_BASE 0x10000
#define GICR_IGROUPR0 0x0080
#define GICR_ISENABLER0 0x0100
#define GICR_IPRIORITYR 0x0400
#define GICR_IGRPMODR0 0x0d00

#define WAKE_SGI 15
#define ICC_SRE_EL3_VALUE 0xf /* SRE, DFB, DIB, Enable (lower ELs may use SRE) */

static void gicd_wait_rwp(void)
{
    while (mmio_read32(COSIM_GICD_BASE + GICD_CTLR) & GICD_CTLR_RWP)
        ;
}

void gic_dist_init(void)
{
    u64 d = COSIM_GICD_BASE;
    /* Affinity routing must be enabled before the group enables (GICv3
     * spec 12.9.4 "GICD_CTLR": changing ARE with a group enabled is
     * UNPREDICTABLE). */
    mmio_write32(d + GICD_CTLR, 0);
    gicd_wait_rwp();
    mmio_write32(d + GICD_CTLR, GICD_CTLR_ARE_S | GICD_CTLR_ARE_NS);
    gicd_wait_rwp();
    u32 lines = ((mmio_read32(d + GICD_TYPER) & 0x1f) + 1) * 32;
    for (u32 i = 1; i < lines / 32; i++) {
        mmio_write32(d + GICD_IGROUPR + 4 * i, 0xffffffff);
        mmio_write32(d + GICD_IGRPMODR + 4 * i, 0);
    }
    mmio_write32(d + GICD_CTLR, GICD_CTLR_ARE_S | GICD_CTLR_ARE_NS | GICD_CTLR_ENABLE_G0 |
                                    GICD_CTLR_ENABLE_G1NS | GICD_CTLR_ENABLE_G1S);
    gicd_wait_rwp();
}

void gic_cpu_init(u64 cpu)
{
    u64 rd = COSIM_GICR_BASE + cpu * COSIM_GICR_STRIDE;
    u64 sgi = rd + GICR_SGI_BASE;
    mmio_write32(rd + GICR_WAKER, mmio_read32(rd + GICR_WAKER) & ~(u32)GICR_WAKER_PROCESSOR_SLEEP);
    while (mmio_read32(rd + GICR_WAKER) & GICR_WAKER_CHILDREN_ASLEEP)
        ;
    mmio_write32(sgi + GICR_IGROUPR0, ~(u32)BIT(WAKE_SGI));
    mmio_write32(sgi + GICR_IGRPMODR0, 0);
    mmio_write8(sgi + GICR_IPRIORITYR + WAKE_SGI, 0x00);
    mmio_write32(sgi + GICR_ISENABLER0, (u32)BIT(WAKE_SGI));

    write_sysreg(icc_sre_el3, ICC_SRE_EL3_VALUE);
    isb();
    write_sysreg(icc_pmr_el1, 0xff);
    write_sysreg(icc_igrpen0_el1, 1);
    write_sysreg(icc_igrpen1_el3, 3); /* EnableGrp1NS | EnableGrp1S */
    isb();
}

/* Wake a CPU parked in WFI: a Group 0 SGI to it alone (Aff0 target list). */
void gic_wake(u64 cpu)
{
    dsb(sy);
    write_sysreg(icc_sgi0r_el1, ((u64)WAKE_SGI << 24) | BIT(cpu));
    isb();
}

/* Acknowledge and complete a pending wake SGI, if any. */
void gic_ack_wake(void)
{
    u64 iar = read_sysreg(icc_iar0_el1) & 0xffffff;
    if (iar < 1020)
        write_sysreg(icc_eoir0_el1, iar);
}
