/* Minimal polled output on an Arm PL011 UART (PrimeCell UART TRM, DDI 0183). */
#ifndef COSIM_PL011_H
#define COSIM_PL011_H

#include "arch.h"

#define PL011_DR 0x000
#define PL011_FR 0x018
#define PL011_FR_TXFF BIT(5)
#define PL011_CR 0x030
#define PL011_CR_ENABLE 0x301 /* UARTEN | TXE | RXE */

static inline void pl011_init(u64 base) { mmio_write32(base + PL011_CR, PL011_CR_ENABLE); }

static inline void pl011_putc(u64 base, char c)
{
    while (mmio_read32(base + PL011_FR) & PL011_FR_TXFF)
        ;
    mmio_write32(base + PL011_DR, (u32)(u8)c);
}

static inline void pl011_puts(u64 base, const char *s)
{
    for (; *s; s++) {
        if (*s == '\n')
            pl011_putc(base, '\r');
        pl011_putc(base, *s);
    }
}

static inline void pl011_puthex(u64 base, u64 v)
{
    static const char digits[] = "0123456789abcdef";
    pl011_puts(base, "0x");
    for (int shift = 60; shift >= 0; shift -= 4)
        pl011_putc(base, digits[(v >> shift) & 0xf]);
}

#endif
