#include "cosim_layout.h"
/* Linked where our monitor enters the NS payload, or (hoststub-bl33, with
 * -DSTUB_BASE=FIRMWARE_BL33_BASE) where TF-A's qemu platform loads BL33. */
#ifndef STUB_BASE
#define STUB_BASE (COSIM_RAM_BASE + NS_LOAD_OFFSET)
#endif
ENTRY(_start)
SECTIONS
{
    . = STUB_BASE;
    .text : { *(.text.boot) *(.text*) }
    .rodata : { *(.rodata*) }
    .data : { *(.data*) }
    . = ALIGN(4096);
    .bss (NOLOAD) : { *(.bss*) *(COMMON) }
    /DISCARD/ : { *(.comment) *(.note*) *(.eh_frame*) }
}
