/*
 * AArch64 helpers shared by the bare-metal images (monitor, hoststub, realm
 * test payloads).  Bit positions are from the Arm Architecture Reference
 * Manual for A-profile (DDI 0487), named after the register fields there.
 */
#ifndef COSIM_ARCH_H
#define COSIM_ARCH_H

#define BIT(n) (1ULL << (n))

/* Exception syndrome (ESR_ELx.EC, Arm ARM D24.2 "ESR_EL3") */
#define ESR_EC_SHIFT 26
#define ESR_EC(esr) (((esr) >> ESR_EC_SHIFT) & 0x3f)
#define EC_UNKNOWN 0x00
#define EC_WFX 0x01
#define EC_FP 0x07
#define EC_SVC64 0x15
#define EC_HVC64 0x16
#define EC_SMC64 0x17
#define EC_SYSREG 0x18
#define EC_SVE 0x19
#define EC_SME 0x1d
#define EC_GPC 0x1e  /* Granule Protection Check exception (FEAT_RME) */
#define EC_IABT_LOW 0x20
#define EC_IABT_CUR 0x21
#define EC_DABT_LOW 0x24
#define EC_DABT_CUR 0x25
#define EC_SERROR 0x2f
#define ESR_IL BIT(25)

/* SPSR mode field M[3:0] for AArch64 states (Arm ARM C5.2.19 "SPSR_EL3") */
#define SPSR_M_EL1H 0x5
#define SPSR_M_EL2H 0x9
#define SPSR_DAIF (0xfULL << 6)

#ifndef __ASSEMBLER__
#include <stdint.h>

typedef uint64_t u64;
typedef uint32_t u32;
typedef uint8_t u8;

/* Two levels so that a register named by a macro (an S3_... encoding) expands. */
#define COSIM_STR_(x) #x
#define COSIM_STR(x) COSIM_STR_(x)
#define read_sysreg(reg) ({ u64 _v; __asm__ volatile("mrs %0, " COSIM_STR(reg) : "=r"(_v)); _v; })
#define write_sysreg(reg, v) __asm__ volatile("msr " COSIM_STR(reg) ", %0" ::"r"((u64)(v)) : "memory")
#define isb() __asm__ volatile("isb" ::: "memory")
#define dsb(opt) __asm__ volatile("dsb " #opt ::: "memory")
#define sev() __asm__ volatile("sev" ::: "memory")
#define wfi() __asm__ volatile("wfi" ::: "memory")

static inline u64 mmio_read64(u64 addr) { return *(volatile u64 *)addr; }
static inline void mmio_write64(u64 addr, u64 v) { *(volatile u64 *)addr = v; }
static inline u32 mmio_read32(u64 addr) { return *(volatile u32 *)addr; }
static inline void mmio_write32(u64 addr, u32 v) { *(volatile u32 *)addr = v; }
static inline u8 mmio_read8(u64 addr) { return *(volatile u8 *)addr; }
static inline void mmio_write8(u64 addr, u8 v) { *(volatile u8 *)addr = v; }

/* An unsigned ID register field (Arm ARM D19.1.3 "Principles of the ID scheme"). */
static inline u64 id_field(u64 reg, unsigned shift) { return (reg >> shift) & 0xf; }

#endif /* !__ASSEMBLER__ */
#endif /* COSIM_ARCH_H */
