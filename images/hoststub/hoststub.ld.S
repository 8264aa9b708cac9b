#include "cosim_layout.h"
ENTRY(_start)
SECTIONS
{
    . = COSIM_RAM_BASE + NS_LOAD_OFFSET;
    .text : { *(.text.boot) *(.text*) }
    .rodata : { *(.rodata*) }
    .data : { *(.data*) }
    . = ALIGN(4096);
    .bss (NOLOAD) : { *(.bss*) *(COMMON) }
    /DISCARD/ : { *(.comment) *(.note*) *(.eh_frame*) }
}
