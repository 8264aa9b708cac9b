/* Internal interfaces of the cca-cosim EL3 monitor. */
#ifndef MONITOR_H
#define MONITOR_H

#include "arch.h"
#include "cosim_layout.h"

/* The boot configuration block inside the image (patched by Python). */
extern const volatile u64 boot_config[];
#define BOOTCFG(field) (*(const volatile u64 *)((u64)boot_config + BOOT_##field##_OFF))

/* Per-CPU area fields (mailbox first): `p` is the area's address. */
#define PCPU_U64(p, off) (*(volatile u64 *)((p) + (off)))
#define MB(p, field) PCPU_U64(p, MBOX_##field##_OFF)
#define XREG(p, n) PCPU_U64(p, MBOX_X_OFF + 8 * (u64)(n))

static inline u64 pcpu_of(u64 cpu)
{
    return BOOTCFG(CARVEOUT_BASE) + CARVEOUT_PERCPU_OFFSET + cpu * PCPU_SIZE;
}

static inline u64 carveout_header(void) { return BOOTCFG(CARVEOUT_BASE); }

/* entry.S */
void cosim_doorbell(void);
__attribute__((noreturn)) void park_forever(void);
__attribute__((noreturn)) void el3_exit(u64 world);
__attribute__((noreturn)) void halt_in_place(u64 pcpu);

/* monitor.c */
u64 ring(u64 pcpu, u64 reason);
__attribute__((noreturn)) void terminal_action(u64 pcpu, u64 action);
__attribute__((noreturn)) void enter_ns(u64 pcpu, u64 entry, u64 arg0);
void log_puts(const char *s);
void log_hex(const char *label, u64 v);

/* realm.c */
u64 realm_enter(u64 pcpu);
u64 realm_trap(u64 pcpu);
void tlbi_realm_all(void);

/* el3.c */
void el3_setup(void);
u64 el3_ns_scr(void);
void el3_write_features(u64 header);
void gpt_enable(void);

/* gic.c */
void gic_dist_init(void);
void gic_cpu_init(u64 cpu);
void gic_wake(u64 cpu);
void gic_ack_wake(void);

/* psci.c */
int psci_handle(u64 pcpu, u32 fid);
void psci_boot_primary(u64 pcpu);
__attribute__((noreturn)) void psci_park(u64 pcpu);

#endif
