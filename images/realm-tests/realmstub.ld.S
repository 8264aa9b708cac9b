#include "cosim_layout.h"
ENTRY(_start)
SECTIONS
{
    . = REALMSTUB_IPA;
    .text : { *(.text.boot) *(.text*) }
    .rodata : { *(.rodata*) }
    .data : { *(.data*) }
    . = ALIGN(4096);
    .bss : { *(.bss*) *(COMMON) }
    . = ALIGN(4096);
    realm_image_end = .;
    /DISCARD/ : { *(.comment) *(.note*) *(.eh_frame*) }
}
