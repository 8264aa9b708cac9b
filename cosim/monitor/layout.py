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
    Field("ctx_groups"),  # CtxGroup bits of the groups this CPU has (set by Python)
    Field("num_bps"),
    Field("num_wps"),
    Field("num_lrs"),
    Field("num_aprs"),
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
    TLBI_REALM = 1 << 1
    """Invalidate all stage-1/2 EL1&0 TLB entries of the Realm security state on
    all CPUs (a live RTT entry was removed or changed)."""
    RELOAD_EL1 = 1 << 2
    """RESUME_REALM: Python changed the realm's EL1 registers in realm_ctx
    (an exception injected): write them back before returning."""


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
    Field("in_realm"),
    Field("realm_sve"),
], size=0x400)


class PsciCpuState(IntEnum):
    OFF = 0
    ON_PENDING = 1
    ON = 2
    CLAIMED = 3
    """A CPU_ON is filling in the entry point (reported as ON_PENDING)."""


# ---------------------------------------------------------------------------
# World-switch contexts.  Each per-CPU area holds two: `ns_ctx` (the host's
# state while a realm runs) and `realm_ctx` (the running REC's state).  The
# register lists below are the only definition of what a switch saves and
# restores; the monitor's save/restore code is generated from them.


class CtxGroup(IntEnum):
    """Register groups that exist only with a CPU feature: bit n of the
    carve-out header's `ctx_groups`, which Python sets from the ID registers."""

    SVE = 0
    PAUTH = 1
    CSV2 = 2
    TCR2 = 3
    SCTLR2 = 4
    S1PIE = 5
    S1POE = 6
    GCS = 7
    HCX = 8
    FGT = 9
    ECV = 10
    PMU = 11


@dataclass(frozen=True)
class SysReg:
    name: str
    """Lower-case architectural name (the Python and layout field name)."""
    asm: str = ""
    """How the assembler is told: the name, or an S<op0>_<op1>_C<n>_C<m>_<op2> encoding."""
    group: CtxGroup | None = None
    index: int = 0
    """For numbered registers (list registers, breakpoints): their number."""

    @property
    def encoding(self) -> str:
        return self.asm or self.name


def _regs(names: str, group: CtxGroup | None = None) -> list[SysReg]:
    return [SysReg(n, group=group) for n in names.split()]


EL1_SYSREGS: list[SysReg] = [
    *_regs("sctlr_el1 cpacr_el1 ttbr0_el1 ttbr1_el1 tcr_el1 esr_el1 far_el1 afsr0_el1 "
           "afsr1_el1 mair_el1 amair_el1 vbar_el1 contextidr_el1 tpidr_el1 tpidr_el0 "
           "tpidrro_el0 elr_el1 spsr_el1 sp_el1 par_el1 csselr_el1 mdscr_el1 cntkctl_el1 "
           "cntv_ctl_el0 cntv_cval_el0 cntp_ctl_el0 cntp_cval_el0"),
    SysReg("zcr_el1", group=CtxGroup.SVE),
    *_regs("apiakeylo_el1 apiakeyhi_el1 apibkeylo_el1 apibkeyhi_el1 apdakeylo_el1 "
           "apdakeyhi_el1 apdbkeylo_el1 apdbkeyhi_el1 apgakeylo_el1 apgakeyhi_el1",
           CtxGroup.PAUTH),
    *_regs("scxtnum_el0 scxtnum_el1", CtxGroup.CSV2),
    SysReg("tcr2_el1", "S3_0_C2_C0_3", CtxGroup.TCR2),
    SysReg("sctlr2_el1", "S3_0_C1_C0_3", CtxGroup.SCTLR2),
    SysReg("pire0_el1", "S3_0_C10_C2_2", CtxGroup.S1PIE),
    SysReg("pir_el1", "S3_0_C10_C2_3", CtxGroup.S1PIE),
    SysReg("por_el1", "S3_0_C10_C2_4", CtxGroup.S1POE),
    SysReg("por_el0", "S3_3_C10_C2_4", CtxGroup.S1POE),
    SysReg("gcscr_el1", "S3_0_C2_C5_0", CtxGroup.GCS),
    SysReg("gcspr_el1", "S3_0_C2_C5_1", CtxGroup.GCS),
    SysReg("gcscre0_el1", "S3_0_C2_C5_2", CtxGroup.GCS),
    SysReg("gcspr_el0", "S3_3_C2_C5_1", CtxGroup.GCS),
    *_regs("pmcr_el0 pmcntenset_el0 pmintenset_el1 pmovsset_el0 pmuserenr_el0 pmselr_el0 "
           "pmccntr_el0 pmccfiltr_el0", CtxGroup.PMU),
]
"""EL1/EL0 state: swapped in both directions on every world switch."""

MAX_BREAKPOINTS = 16
MAX_WATCHPOINTS = 16
DEBUG_SYSREGS: list[SysReg] = [
    *[SysReg(f"dbgbvr{i}_el1", index=i) for i in range(MAX_BREAKPOINTS)],
    *[SysReg(f"dbgbcr{i}_el1", index=i) for i in range(MAX_BREAKPOINTS)],
    *[SysReg(f"dbgwvr{i}_el1", index=i) for i in range(MAX_WATCHPOINTS)],
    *[SysReg(f"dbgwcr{i}_el1", index=i) for i in range(MAX_WATCHPOINTS)],
]
"""Breakpoint and watchpoint registers: swapped for the CPU's counts."""

EL2_SYSREGS: list[SysReg] = [
    # HCR_EL2 first: its E2H bit decides how CPTR_EL2 and CNTHCTL_EL2 are laid out.
    *_regs("hcr_el2 vttbr_el2 vtcr_el2 vbar_el2 sctlr_el2 cptr_el2 mdcr_el2 cnthctl_el2 "
           "cntvoff_el2 vpidr_el2 vmpidr_el2 hstr_el2 elr_el2 spsr_el2 esr_el2 far_el2 "
           "hpfar_el2"),
    SysReg("zcr_el2", group=CtxGroup.SVE),
    SysReg("hcrx_el2", "S3_4_C1_C2_2", CtxGroup.HCX),
    SysReg("hfgrtr_el2", "S3_4_C1_C1_4", CtxGroup.FGT),
    SysReg("hfgwtr_el2", "S3_4_C1_C1_5", CtxGroup.FGT),
    SysReg("hfgitr_el2", "S3_4_C1_C1_6", CtxGroup.FGT),
    SysReg("hdfgrtr_el2", "S3_4_C3_C1_4", CtxGroup.FGT),
    SysReg("hdfgwtr_el2", "S3_4_C3_C1_5", CtxGroup.FGT),
    SysReg("cntpoff_el2", "S3_4_C14_C0_6", CtxGroup.ECV),
]
"""EL2 state: the host's is saved on entry and restored on exit; the realm's
is what Python writes (the RMM's configuration for running the REC)."""

MAX_LIST_REGISTERS = 16
MAX_APRS = 4
GIC_SYSREGS: list[SysReg] = [
    *_regs("ich_hcr_el2 ich_vmcr_el2"),
    *[SysReg(f"ich_lr{i}_el2", index=i) for i in range(MAX_LIST_REGISTERS)],
    *[SysReg(f"ich_ap0r{i}_el2", index=i) for i in range(MAX_APRS)],
    *[SysReg(f"ich_ap1r{i}_el2", index=i) for i in range(MAX_APRS)],
]
"""GIC virtual CPU interface: swapped in both directions (list registers and
active-priority registers up to the CPU's counts, from ICH_VTR_EL2)."""

GIC_STATUS_SYSREGS: list[SysReg] = _regs("ich_misr_el2 ich_elrsr_el2")
"""Read-only GIC status, recorded when a realm exits."""

SVE_MAX_VL = 256
"""Bytes in a Z register at the architectural maximum (2048 bits)."""

CONTEXT = Layout("CTX", [
    Field("gprs", 8, 31),
    Field("sp_el0"),
    Field("pc"),
    Field("pstate"),
    Field("vector"),  # realm exit: offset of the R-EL2 vector that fired
    *[Field(r.name) for r in EL1_SYSREGS + DEBUG_SYSREGS + EL2_SYSREGS + GIC_SYSREGS
      + GIC_STATUS_SYSREGS],
    Field("fpsr"),
    Field("fpcr"),
    Field("vregs", 16, 32, align=16),  # Q0..Q31 (without SVE)
    Field("sve_z", 1, 32 * SVE_MAX_VL, align=16),  # Z0..Z31 at a stride of the VL
    Field("sve_p", 1, 16 * SVE_MAX_VL // 8, align=16),
    Field("sve_ffr", 1, SVE_MAX_VL // 8, align=16),
])

PERCPU = Layout("PCPU", [
    Field("mailbox", 1, MAILBOX.size),
    Field("stack", 1, 0x2000, align=16),
    Field("ns_ctx", 1, CONTEXT.size, align=16),
    Field("realm_ctx", 1, CONTEXT.size, align=16),
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
    SMC_CHECK = 10
    """The SMC of `args` with x18..x28, V0..V31 and the EL1/EL0 thread registers
    set to markers from `value`; `ticks` returns how many of them changed."""
    SMC_PAIR_LOOP = 9
    """`count` times: the SMC of `args`, then the SMC of `args2` (e.g. delegate
    then undelegate); `ret` holds the last results of the second."""
    REC_ENTER = 11
    """The SMC of `args` (RMI_REC_ENTER) with the EL2 physical timer armed for
    CNTPCT_EL0 = `value` (0: not armed; it ends the realm's time slice), then
    acknowledge every physical interrupt pending at this CPU (a kick, a timer
    that made the realm exit): `irqs` counts them, `ticks` is CNTPCT_EL0 at
    the return."""
    WAIT = 12
    """Idle until an interrupt arrives (WFI): a kick from another CPU, or the
    EL2 physical timer armed for CNTPCT_EL0 = `value` (0: `count` ticks from
    now; both 0: no timer); then acknowledge them as REC_ENTER does.  An idle
    host CPU thus sleeps in QEMU instead of inside a doorbell, where it would
    hold up broadcast TLB maintenance and pausing."""
    SMC_BATCH = 13
    """`count` SMCs from `batch` (STUB_BATCH_REGS registers each), stopping
    after the first whose x0 is not 0: `ret` holds that SMC's results and
    `done` how many ran.  With `value` = n > 1 the batch runs n times over
    (`done` counts them all): a benchmark times a whole sequence of calls
    without the host's request protocol; `ticks` is the generic-timer ticks
    the SMCs took."""


STUB_BATCH_MAX = 48
"""SMCs one SMC_BATCH request carries."""
STUB_BATCH_REGS = 6
"""Registers x0..x5 of each batched SMC (every RMI command takes at most x0..x5)."""
KICK_SGI = 1
"""The SGI one host CPU sends another to make it look at its work again: a
realm it runs exits with an IRQ, an idle WAIT returns (Group 1 Non-secure)."""
HYP_TIMER_PPI = 26
"""INTID of the EL2 physical timer (CNTHP), which ends a WAIT at its deadline."""
STUB_CONSOLE_MAX = 1024
"""Bytes of console output one REC_ENTER request collects in the hoststub."""


class ConsoleFlag(IntEnum):
    """REC_ENTER `console_flags`: which PL011 accesses the hoststub completes
    itself (the console fast path, like KVM's coalesced MMIO)."""

    DR_WRITE = 1 << 0
    """Writes of the data register: the byte goes to `console_buf`."""
    FR_READ = 1 << 1
    """Reads of the flag register answer `console_fr` (the VMM sets this only
    while its receive FIFO is empty, so FR is constant)."""
    CR_ACCESS = 1 << 2
    """Reads of the control register answer `console_cr`; writes of that same
    value are completed (they change nothing)."""


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
    Field("kick"),  # CPU mask: each is sent KICK_SGI before the request runs
    Field("irqs"),
    Field("done"),
    Field("batch", 8, STUB_BATCH_MAX * STUB_BATCH_REGS),
    # REC_ENTER's console fast path (ConsoleFlag): the UART page's IPA in the
    # realm, what to complete, the register values; the stub returns the
    # bytes written and how many exits it completed without Python.
    Field("console_ipa"),
    Field("console_flags"),
    Field("console_fr"),
    Field("console_cr"),
    Field("console_len"),
    Field("console_exits"),
    Field("console_buf", 1, STUB_CONSOLE_MAX),
], size=0x1000)


# The hoststub's image header (at STUB_HEADER_OFFSET of the image, after the
# branch at its entry) says how it reaches Python.  With the SiP channel it
# calls HOSTSTUB_NEXT, which needs our monitor; with the polling channel it
# needs no EL3 service at all (so it runs as BL33 under any firmware): it
# writes the HOSTSTUB_NEXT arguments into its CPU's POLL slot, bumps `call`,
# and waits until Python has written the request and set `answer` = `call`.

STUB_HEADER_OFFSET = 8
STUB_HEADER_MAGIC = 0x4255_5453_4D49_5343
"""b"CSIMSTUB" little-endian: the header is there."""


class StubChannel(IntEnum):
    SIP = 0
    """SIP HOSTSTUB_NEXT through our monitor's doorbell."""
    POLL = 1
    """The mailbox in shared NS RAM, polled by both sides."""


STUB_HEADER = Layout("STUB_HEADER", [
    Field("magic"),
    Field("channel"),
    Field("poll_area"),  # address of the POLL slots, one per CPU (from the linker)
])

POLL_SLOT = Layout("POLL", [
    Field("call"),  # the stub: answer + 1, once the fields below are written
    Field("answer"),  # Python: = call, once the next request is in the page
    Field("page"),  # the HOSTSTUB_NEXT arguments x1..x3
    Field("entry"),
    Field("cpu"),
    Field("cntfrq"),  # CNTFRQ_EL0, for Python's timer arithmetic
], size=64)

FIRMWARE_BL33_BASE = 0x6000_0000
"""Where TF-A's qemu platform loads BL33 from its FIP (NS_IMAGE_OFFSET, RAM
base + 512 MiB): the link address of the hoststub-bl33 image."""


class StubStatus(IntEnum):
    OK = 0
    FAULT = 1
    """The access took a synchronous exception (fault_esr/far/elr say which)."""
    BAD_REQUEST = 2


# ---------------------------------------------------------------------------
# realmstub (images/realm-tests): a realm that runs requests from the host,
# the realm-side twin of the hoststub.  It asks for work with RSI_HOST_CALL
# (imm REALMSTUB_NEXT), the host answers in the host call's GPRs.

REALMSTUB_IPA = 0x8000_0000
"""Where the realmstub image is loaded in the realm's IPA space (its entry)."""
REALMSTUB_NEXT = 0xC05C
"""RsiHostCall.imm of the realmstub's "result of the last request, next one please"."""
REALMSTUB_LOOP = 0xC05E
"""RsiHostCall.imm of the host calls of RealmOp.HOST_CALL_LOOP."""
REALMSTUB_MARKED = 0xC05D
"""RsiHostCall.imm of a host call made with marker values in every register."""


class RealmOp(IntEnum):
    """Requests (gprs[0] of the host call answer); arguments in gprs[1..]."""

    SMC = 1
    """SMC with x0..x17 = gprs[1..18] (an RSI or PSCI call); results x0..x17."""
    LOAD = 2
    """Load gprs[2] bytes at IPA gprs[1]: value, or a fault (ESR_EL1, FAR_EL1)."""
    STORE = 3
    """Store gprs[3] (gprs[2] bytes) at IPA gprs[1]."""
    MARKED_CALL = 4
    """Fill every GPR, the FP/SIMD registers and the EL0/EL1 thread registers with
    markers derived from gprs[1], make a host call (imm REALMSTUB_MARKED), then
    check the FP/SIMD and thread registers still hold their markers."""
    READ_SYSREG = 5
    """Read the system register gprs[1] names (RealmSysreg)."""
    TIMER = 6
    """Arm the EL1 virtual timer for gprs[1] ticks and wait for its interrupt
    through the GIC virtual CPU interface: INTID and ticks waited."""
    FP_SUM = 7
    """Write gprs[1] into V0..V31 (lane 0) and return their sum: FP works."""
    EXIT = 8
    """Stop asking: WFI forever."""
    SMC_LOOP = 9
    """The SMC of gprs[2..19] gprs[1] times (e.g. an RSI call the RMM answers
    without leaving the realm): the last x0 and the generic-timer ticks taken."""
    SVE_VL = 11
    """RDVL: the SVE vector length in bytes (an Undefined Instruction fault if
    the realm has no SVE)."""
    HOST_CALL_LOOP = 10
    """gprs[1] host calls with imm REALMSTUB_LOOP, back to back (for the host's
    re-entry benchmark), then the ticks taken."""


class RealmSysreg(IntEnum):
    ID_AA64PFR0_EL1 = 0
    ID_AA64PFR1_EL1 = 1
    ID_AA64DFR0_EL1 = 2
    ID_AA64ZFR0_EL1 = 3
    ID_AA64ISAR0_EL1 = 4
    ID_AA64ISAR1_EL1 = 5
    ID_AA64MMFR0_EL1 = 6
    ID_AA64MMFR1_EL1 = 7
    MPIDR_EL1 = 8
    MIDR_EL1 = 9
    CURRENT_EL = 10
    PMCR_EL0 = 11


class RealmStatus(IntEnum):
    OK = 0
    FAULT = 1
    """The access took a synchronous exception: gprs[3] = ESR_EL1, gprs[4] = FAR_EL1."""
    BAD_REQUEST = 2
