/*
 * The PSCI calls the monitor answers itself for the Non-secure host (Arm
 * DEN0022 "Power State Coordination Interface", version 1.1): VERSION,
 * FEATURES, CPU_ON, CPU_OFF, AFFINITY_INFO and MIGRATE_INFO_TYPE.  Power-off
 * and reset go to Python like every call the monitor does not own.
 */
#include "monitor.h"

#define PSCI_VERSION 0x84000000u
#define PSCI_CPU_SUSPEND32 0x84000001u
#define PSCI_CPU_OFF 0x84000002u
#define PSCI_CPU_ON32 0x84000003u
#define PSCI_AFFINITY_INFO32 0x84000004u
#define PSCI_MIGRATE_INFO_TYPE 0x84000006u
#define PSCI_SYSTEM_OFF 0x84000008u
#define PSCI_SYSTEM_RESET 0x84000009u
#define PSCI_FEATURES 0x8400000au
#define PSCI_CPU_ON64 0xc4000003u
#define PSCI_AFFINITY_INFO64 0xc4000004u
#define SMCCC_VERSION 0x80000000u

#define PSCI_VERSION_1_1 0x10001
#define PSCI_SUCCESS 0
#define PSCI_NOT_SUPPORTED ((u64)-1)
#define PSCI_INVALID_PARAMETERS ((u64)-2)
#define PSCI_DENIED ((u64)-3)
#define PSCI_ALREADY_ON ((u64)-4)
#define PSCI_ON_PENDING ((u64)-5)
#define PSCI_INVALID_ADDRESS ((u64)-9)
#define AFFINITY_ON 0
#define AFFINITY_OFF 1
#define AFFINITY_ON_PENDING 2
#define MIGRATE_TYPE_NOT_PRESENT 2 /* no Trusted OS: nothing to migrate */

#define STATE(p) (*(volatile u64 *)((p) + MBOX_PSCI_STATE_OFF))

static int mpidr_to_cpu(u64 mpidr, u64 *cpu)
{
    if (mpidr & ~0xffULL)
        return 0;
    if ((mpidr & 0xff) >= BOOTCFG(NUM_CPUS))
        return 0;
    *cpu = mpidr & 0xff;
    return 1;
}

static int entry_valid(u64 entry)
{
    return !(entry & 3) && entry >= BOOTCFG(RAM_BASE) && entry < BOOTCFG(CARVEOUT_BASE);
}

static u64 cpu_on(u64 target, u64 entry, u64 context)
{
    u64 cpu;
    if (!mpidr_to_cpu(target, &cpu))
        return PSCI_INVALID_PARAMETERS;
    if (!entry_valid(entry))
        return PSCI_INVALID_ADDRESS;
    u64 t = pcpu_of(cpu);
    u64 expected = PSCI_STATE_OFF;
    if (!__atomic_compare_exchange_n((u64 *)(t + MBOX_PSCI_STATE_OFF), &expected,
                                     PSCI_STATE_CLAIMED, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return expected == PSCI_STATE_ON ? PSCI_ALREADY_ON : PSCI_ON_PENDING;
    PCPU_U64(t, MBOX_PSCI_ENTRY_OFF) = entry;
    PCPU_U64(t, MBOX_PSCI_CONTEXT_OFF) = context;
    __atomic_store_n((u64 *)(t + MBOX_PSCI_STATE_OFF), PSCI_STATE_ON_PENDING, __ATOMIC_RELEASE);
    gic_wake(cpu);
    return PSCI_SUCCESS;
}

static u64 affinity_info(u64 target, u64 lowest_level)
{
    u64 cpu;
    if (lowest_level != 0 || !mpidr_to_cpu(target, &cpu))
        return PSCI_INVALID_PARAMETERS;
    u64 st = STATE(pcpu_of(cpu));
    if (st == PSCI_STATE_ON)
        return AFFINITY_ON;
    return st == PSCI_STATE_OFF ? AFFINITY_OFF : AFFINITY_ON_PENDING;
}

static u64 features(u32 fid)
{
    switch (fid) {
    case PSCI_VERSION:
    case PSCI_CPU_OFF:
    case PSCI_CPU_ON32:
    case PSCI_CPU_ON64:
    case PSCI_AFFINITY_INFO32:
    case PSCI_AFFINITY_INFO64:
    case PSCI_MIGRATE_INFO_TYPE:
    case PSCI_SYSTEM_OFF:
    case PSCI_SYSTEM_RESET:
    case PSCI_FEATURES:
    case SMCCC_VERSION:
        return PSCI_SUCCESS;
    default:
        return PSCI_NOT_SUPPORTED;
    }
}

/* Handle `fid` if it is one of the monitor's own calls; results go into the
 * frame.  Returns 0 for every other function ID. */
int psci_handle(u64 pcpu, u32 fid)
{
    u64 x1 = XREG(pcpu, 1), x2 = XREG(pcpu, 2), x3 = XREG(pcpu, 3);
    u64 ret;
    switch (fid) {
    case PSCI_VERSION:
        ret = PSCI_VERSION_1_1;
        break;
    case PSCI_FEATURES:
        ret = features((u32)x1);
        break;
    case PSCI_CPU_ON32:
        ret = cpu_on((u32)x1, (u32)x2, (u32)x3);
        break;
    case PSCI_CPU_ON64:
        ret = cpu_on(x1, x2, x3);
        break;
    case PSCI_AFFINITY_INFO32:
        ret = affinity_info((u32)x1, (u32)x2);
        break;
    case PSCI_AFFINITY_INFO64:
        ret = affinity_info(x1, x2);
        break;
    case PSCI_MIGRATE_INFO_TYPE:
        ret = MIGRATE_TYPE_NOT_PRESENT;
        break;
    case PSCI_CPU_OFF:
        __atomic_store_n((u64 *)(pcpu + MBOX_PSCI_STATE_OFF), PSCI_STATE_OFF, __ATOMIC_RELEASE);
        psci_park(pcpu);
    default:
        return 0;
    }
    XREG(pcpu, 0) = ret;
    return 1;
}

void psci_boot_primary(u64 pcpu)
{
    __atomic_store_n((u64 *)(pcpu + MBOX_PSCI_STATE_OFF), PSCI_STATE_ON, __ATOMIC_RELEASE);
}

/* A powered-off CPU waits in WFI at EL3 until a CPU_ON names it. */
void psci_park(u64 pcpu)
{
    for (;;) {
        u64 st = __atomic_load_n((u64 *)(pcpu + MBOX_PSCI_STATE_OFF), __ATOMIC_ACQUIRE);
        if (st == PSCI_STATE_ON_PENDING)
            break;
        wfi();
        gic_ack_wake();
    }
    gic_ack_wake();
    u64 entry = PCPU_U64(pcpu, MBOX_PSCI_ENTRY_OFF);
    u64 context = PCPU_U64(pcpu, MBOX_PSCI_CONTEXT_OFF);
    __atomic_store_n((u64 *)(pcpu + MBOX_PSCI_STATE_OFF), PSCI_STATE_ON, __ATOMIC_RELEASE);
    enter_ns(pcpu, entry, context);
}
