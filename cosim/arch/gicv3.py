"""GICv3 virtual CPU interface facts (Arm IHI 0069, ICH_HCR_EL2 and ICH_LR<n>_EL2)."""

from __future__ import annotations

MAX_LIST_REGISTERS = 16

ICH_HCR_EN = 1 << 0
ICH_HCR_UIE = 1 << 1
ICH_HCR_LRENPIE = 1 << 2
ICH_HCR_NPIE = 1 << 3
ICH_HCR_VGRP0EIE = 1 << 4
ICH_HCR_VGRP0DIE = 1 << 5
ICH_HCR_VGRP1EIE = 1 << 6
ICH_HCR_VGRP1DIE = 1 << 7
ICH_HCR_TDIR = 1 << 14
ICH_HCR_EOICOUNT_SHIFT = 27
ICH_HCR_EOICOUNT_MASK = 0x1F << ICH_HCR_EOICOUNT_SHIFT

ICH_LR_VINTID_MASK = 0xFFFF_FFFF
ICH_LR_PINTID_SHIFT = 32
ICH_LR_PINTID_MASK = 0x1FFF << ICH_LR_PINTID_SHIFT
ICH_LR_EOI = 1 << 41
"""With HW = 0, bit 41 of the pINTID field requests a maintenance interrupt on EOI."""
ICH_LR_RES0_MASK = (0b111 << 45) | (0xF << 56)
ICH_LR_PRIORITY_SHIFT = 48
ICH_LR_GROUP = 1 << 60
ICH_LR_HW = 1 << 61
ICH_LR_STATE_SHIFT = 62
ICH_LR_STATE_MASK = 0b11 << ICH_LR_STATE_SHIFT

INTID_SPECIAL_FIRST = 1020
"""INTIDs 1020..1023 are special; 1024..8191 are reserved."""
INTID_LPI_FIRST = 8192


def lr_state(lr: int) -> int:
    return (lr & ICH_LR_STATE_MASK) >> ICH_LR_STATE_SHIFT


def lr_vintid(lr: int) -> int:
    return lr & ICH_LR_VINTID_MASK
