"""Every layout and constant shared between Python, the EL3 monitor, the
hoststub and the TCG plugin, defined once.

`cosim.monitor.headers` turns this module into the C/assembly header
``cosim_layout.h`` that images/ and qemu_plugin/ are built with; a test
checks that the header, this module and the symbols of the built monitor
agree.  Change a layout here and only here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ..machine.board import MAX_CPUS

# ---------------------------------------------------------------------------
# Generic structure description


@dataclass(frozen=True)
class Field:
    name: str
    size: int = 8
    count: int = 1
    align: int = 8

    @property
    def nbytes(self) -> int:
        return self.size * self.count


class Layout:
    """A C-like structure: fields placed in order, each aligned, with an
    optional fixed total size (the structure is padded up to it)."""

    def __init__(self, name: str, fields: list[Field], *, size: int | None = None,
                 at: dict[str, int] | None = None) -> None:
        self.name = name
        self.fields = fields
        self.offsets: dict[str, int] = {}
        off = 0
        at = at or {}
        for f in fields:
            if f.name in at:
                if at[f.name] < off:
                    raise ValueError(f"{name}.{f.name}: fixed offset {at[f.name]:#x} overlaps")
                off = at[f.name]
            off = (off + f.align - 1) // f.align * f.align
            self.offsets[f.name] = off
            off += f.nbytes
        self.used = off
        if size is not None and off > size:
            raise ValueError(f"{name} needs {off:#x} bytes, more than its size {size:#x}")
        self.size = size if size is not None else (off + 7) // 8 * 8
        self._fields = {f.name: f for f in fields}

    def __getitem__(self, name: str) -> int:
        return self.offsets[name]

    def field(self, name: str) -> Field:
        return self._fields[name]


# ---------------------------------------------------------------------------
# Platform constants

NS_LOAD_OFFSET = 0x0020_0000
"""Where in RAM the NS payload image is loaded (RAM_BASE + this)."""

# ---------------------------------------------------------------------------
# SMC function IDs owned by the platform (not the RMM)

SIP_BASE = 0xC200_0000
"""SMC64 SiP service calls (SMCCC OEN 2): the co-simulator's own services."""


class SipFid(IntEnum):
    HOSTSTUB_NEXT = SIP_BASE | 0x01
    """hoststub: report the last result, receive the next request."""
    ECHO = SIP_BASE | 0x02
    """Returns x1..x17 each XORed with its register number: a test service."""
    CONSOLE_PUTC = SIP_BASE | 0x03
    """Writes w1 to the co-simulator's log (for payloads without a UART)."""


PSCI_FID_FIRST = 0x8400_0000
PSCI_FID_LAST64 = 0xC400_001F


# ---------------------------------------------------------------------------
# Boot configuration: a block inside monitor.bin that Python patches per run


BOOT_MAGIC = int.from_bytes(b"COSIMBT1", "little")
BOOT_CONFIG_OFFSET = 0x40
"""Offset of the boot configuration inside monitor.bin (right after the reset branch)."""


class BootFlag(IntEnum):
    GPT_HW = 1 << 0
    """Enable granule protection checks (GPCCR_EL3/GPTBR_EL3 below)."""


BOOT_CONFIG = Layout("BOOT", [
    Field("magic"),
    Field("version"),
    Field("ram_base"),
    Field("ram_size"),
    Field("carveout_base"),
    Field("carveout_size"),
    Field("ns_entry"),
    Field("ns_dtb"),
    Field("num_cpus"),
    Field("flags"),
    Field("gpccr"),
    Field("gptbr"),
    Field("rel2_vbar"),
], size=0x100)
BOOT_CONFIG_VERSION = 1

# ---------------------------------------------------------------------------
# Carve-out: the top of RAM, owned by the monitor and the RMM (Root PAS)

CARVEOUT_HEADER_SIZE = 0x1000
"""First page: monitor status and the CPU feature block."""

PERCPU_SIZE = 0x1_0000
"""Per-CPU area: mailbox + frame, PSCI state, EL3 stack, saved contexts."""

CARVEOUT_PERCPU_OFFSET = CARVEOUT_HEADER_SIZE
CARVEOUT_GPT_OFFSET = CARVEOUT_PERCPU_OFFSET + MAX_CPUS * PERCPU_SIZE
"""Level-0 and level-1 GPT tables (hw GPT mode) start here; the rest of the
carve-out after them holds the realm-EL2 vector page and spare room."""

# The CPU feature block in the header page: ID registers the primary CPU
# reads at boot so Python can configure the RMM for the CPU QEMU emulates.
CPU_FEATURE_REGS: dict[str, str] = {
    # name: how the assembler is told (an encoding where binutils 2.40 lacks the name)
    "midr_el1": "midr_el1",
    "mpidr_el1": "mpidr_el1",
    "id_aa64pfr0_el1": "id_aa64pfr0_el1",
    "id_aa64pfr1_el1": "id_aa64pfr1_el1",
    "id_aa64pfr2_el1": "S3_0_C0_C4_2",
    "id_aa64dfr0_el1": "id_aa64dfr0_el1",
    "id_aa64dfr1_el1": "id_aa64dfr1_el1",
    "id_aa64isar0_el1": "id_aa64isar0_el1",
    "id_aa64isar1_el1": "id_aa64isar1_el1",
    "id_aa64isar2_el1": "id_aa64isar2_el1",
    "id_aa64mmfr0_el1": "id_aa64mmfr0_el1",
    "id_aa64mmfr1_el1": "id_aa64mmfr1_el1",
    "id_aa64mmfr2_el1": "id_aa64mmfr2_el1",
    "id_aa64mmfr3_el1": "S3_0_C0_C7_3",
    "id_aa64zfr0_el1": "id_aa64zfr0_el1",
    "id_aa64smfr0_el1": "S3_0_C0_C4_5",
    "pmcr_el0": "pmcr_el0",
    "ich_vtr_el2": "ich_vtr_el2",
    "cntfrq_el0": "cntfrq_el0",
}
"""ID and configuration registers the primary CPU copies at boot, so Python
can configure the RMM for the CPU QEMU emulates."""

CPU_FEATURE_EXTRA = ["sve_max_vl", "sme_max_vl"]
"""Values the monitor measures: the largest SVE / streaming vector length in
bytes (0 without SVE / SME), read with RDVL after setting ZCR_EL3/SMCR_EL3.LEN
to the maximum."""

CARVEOUT_HEADER = Layout("HDR", [
    Field("magic"),
    Field("booted_cpus"),
    *[Field(f"feat_{r}") for r in CPU_FEATURE_REGS],
    *[Field(f"feat_{r}") for r in CPU_FEATURE_EXTRA],
], size=CARVEOUT_HEADER_SIZE)



class Reason(IntEnum):
    """Why the monitor rang the doorbell (mailbox `reason`)."""

    BOOT = 1
    """Primary CPU initialised EL3 and wrote the feature block."""
    SMC = 2
    """An SMC from a lower EL that the monitor does not own."""
    GPF = 3
    """A granule protection fault taken to EL3 (hw GPT mode)."""
    REALM_EXIT = 4
    """A realm trapped to R-EL2 and came back to EL3."""
    FATAL = 5
    """An exception the monitor cannot handle; state is in the mailbox."""
    CPU_UP = 6
    """A CPU entered the NS world (boot or PSCI CPU_ON)."""


class Action(IntEnum):
    """What Python tells the monitor to do next (mailbox `action`)."""

    RETURN = 0
    """ERET to the interrupted context with the (possibly changed) frame."""
    POWER_OFF = 1
    RESET = 2
    HALT = 3
    """Park this CPU in a WFE loop with all state preserved (for GDB)."""
    INJECT_SEA = 4
    """Inject a synchronous external abort into the interrupted EL."""
    ENTER_REALM = 5
    """Save the NS context, load the realm context, enter the realm."""
    RESUME_REALM = 6
    """Return to the realm that just exited (RSI handled in the RMM)."""
    EXIT_REALM = 7
    """Save the realm context, restore the NS context, return to the host."""


class ActionFlag(IntEnum):
    TLBI_PAALLOS = 1 << 0
    """Invalidate cached GPT information on all CPUs before acting."""


# The per-CPU area.  `x` is the saved GPR frame of the interrupted context:
# Python reads the caller's registers there and edits them in place to
# return results; the monitor restores x0..x30 from it before ERET.
MAILBOX = Layout("MBOX", [
    Field("cpu"),
    Field("seq"),
    Field("reason"),
    Field("action"),
    Field("flags"),
    Field("esr"),
    Field("elr"),
    Field("spsr"),
    Field("far"),
    Field("hpfar"),
    Field("mfar"),
    Field("scr"),
    Field("x", 8, 31),
    Field("sp_el0"),
    Field("psci_state"),
    Field("psci_entry"),
    Field("psci_context"),
    Field("inject_esr"),
    Field("inject_far"),
], size=0x400)


class PsciCpuState(IntEnum):
    OFF = 0
    ON_PENDING = 1
    ON = 2
    CLAIMED = 3
    """A CPU_ON is filling in the entry point (reported as ON_PENDING)."""


PERCPU = Layout("PCPU", [
    Field("mailbox", 1, MAILBOX.size),
    Field("stack", 1, 0x2000, align=16),
    Field("ns_ctx", 1, 0x3000, align=16),
    Field("realm_ctx", 1, 0x3000, align=16),
], size=PERCPU_SIZE, at={"stack": 0x1000})
PERCPU_STACK_TOP = PERCPU["stack"] + PERCPU.field("stack").nbytes

# ---------------------------------------------------------------------------
# hoststub request page: one per CPU, in the stub's NS memory.  The stub
# passes its address in x1 of every SIP HOSTSTUB_NEXT call; Python writes the
# next request there before answering and reads the result of the last one.


class StubOp(IntEnum):
    SMC = 1
    """Load x0..x17 from `args`, SMC, store x0..x17 to `ret`."""
    SMC_LOOP = 2
    """Issue the same SMC `count` times; `ret` holds the last results and
    `ticks` the generic-timer ticks the loop took."""
    LOAD = 3
    """Load `size` bytes at `addr` into ret[0]; a fault sets `fault_*`."""
    STORE = 4
    """Store the low `size` bytes of `value` at `addr`."""
    DOORBELL = 5
    """Execute the doorbell instruction at NS-EL2 (an attack to be refused)."""
    MEM_LOOP = 6
    """`count` passes of 8-byte loads and stores over [addr, addr + size)."""
    EXIT = 7
    """Leave the request loop and park in WFI."""
    YIELD = 8
    """Nothing to do now (the machine is being paused): ask again."""
    SMC_PAIR_LOOP = 9
    """`count` times: the SMC of `args`, then the SMC of `args2` (e.g. delegate
    then undelegate); `ret` holds the last results of the second."""


STUB_REQUEST = Layout("STUB", [
    Field("seq"),
    Field("op"),
    Field("addr"),
    Field("size"),
    Field("value"),
    Field("count"),
    Field("args", 8, 18),
    Field("args2", 8, 18),
    Field("done_seq"),
    Field("status"),
    Field("ret", 8, 18),
    Field("fault_esr"),
    Field("fault_far"),
    Field("fault_elr"),
    Field("ticks"),
], size=0x1000)


class StubStatus(IntEnum):
    OK = 0
    FAULT = 1
    """The access took a synchronous exception (fault_esr/far/elr say which)."""
    BAD_REQUEST = 2
