"""The protocol between the TCG plugin (qemu_plugin/cosim_plugin.c) and
Python, and the instruction encodings the plugin instruments.  Exported to C
through the generated cosim_layout.h, so this is the one definition."""

from __future__ import annotations

import struct
from enum import IntEnum


def hint_encoding(imm: int) -> int:
    """A64 HINT #imm: 0xD503201F with CRm:op2 = imm (Arm ARM C6.2 "HINT")."""
    return 0xD503201F | (imm & 0x7F) << 5


DOORBELL_HINT = 0x7D
"""The doorbell is `hint #0x7d`, an unallocated hint and so a NOP to the
architecture.  The plugin instruments it and honours it only at EL3."""

WORLD_MARK_HINT_BASE = 0x78
"""`hint #(0x78 + world)` marks the world a vCPU is about to run in: the
monitor executes it first in every EL3 vector (Root) and right before every
ERET (the target world).  The plugin's GPT mode tracks each vCPU's world with
it.  World numbers are those of cosim.arch.pas.World."""

DOORBELL_INSN = hint_encoding(DOORBELL_HINT)
WORLD_MARK_INSN_BASE = hint_encoding(WORLD_MARK_HINT_BASE)

PLUGIN_MAGIC = int.from_bytes(b"CSIM", "little")
PLUGIN_PROTOCOL_VERSION = 2
PLUGIN_CONTROL_VCPU = 0xFFFF
"""vCPU field of the control connection's HELLO."""
PLUGIN_WORLD_UNCHANGED = 0xFFFF
"""Reply `world` value that leaves the vCPU's world as it is."""
PLUGIN_EXIT_LOST = 3
"""QEMU's exit status when the plugin lost the co-simulator."""


class PluginMsg(IntEnum):
    HELLO = 1
    """First message of a connection: vcpu, arg0 = protocol version."""
    DOORBELL = 2
    """The monitor rang the doorbell at EL3: serve the CPU's mailbox."""
    ATTACK = 3
    """The doorbell encoding ran below EL3: pc, arg0 = EL.  Never forwarded."""
    VIOLATION = 4
    """Plugin GPT check failed: pc, arg0 = PA, arg1 = VA, arg2 = info, arg3 = value."""
    HELD = 5
    """The vCPU is held because the machine halted on a violation: pc = the
    instruction whose access it has just made (the violating one for the
    offender, arg0 = 1; its next load or store for every other vCPU, arg0 = 0).
    The reply lets it go on."""


class PluginReply(IntEnum):
    OK = 0
    STOP = 1
    """Halt (plugin GPT mode, policy halt): the plugin holds every vCPU, this one
    inside the violating access, the others in their next load or store, each
    with a HELD message whose reply releases it."""


REQUEST = struct.Struct("<IHHQQQQQ")
"""magic u32, type u16, vcpu u16, pc u64, arg0..arg3 u64 (48 bytes)."""
REPLY = struct.Struct("<IHHQ")
"""magic u32, type u16, world u16, value u64 (16 bytes)."""

VIOLATION_SIZE_MASK = 0xFF
VIOLATION_STORE = 1 << 8
VIOLATION_WORLD_SHIFT = 16
VIOLATION_EL_SHIFT = 24
VIOLATION_EL_UNKNOWN = 0xFF
"""VIOLATION arg2: bits 0..7 access size in bytes, bit 8 store, bits 16..17 world,
bits 24..31 the EL (VIOLATION_EL_UNKNOWN when PSTATE could not be read)."""
