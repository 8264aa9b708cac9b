"""A GICv3 for the realm, as a VMM emulates it (GICv3/v4 architecture
specification, Arm IHI 0069): the distributor and one redistributor per vCPU
are emulated MMIO (the realm reaches them through MMIO exits); the CPU
interface is the hardware's virtual one, fed through the list registers of
RMI_REC_ENTER and read back from RMI_REC_EXIT.

The view is a single security state (GICD_CTLR.DS = 1) with affinity routing
always on (ARE RAO/WI), no LPIs and no ITS, like KVM's vGIC for a guest.

Interrupt state lives here: each interrupt has an enable, a pending latch
(edge-triggered sources and software), an input line (level-sensitive
sources), an active bit, a priority, a group and a configuration.  At every
entry the pending and active interrupts that target the vCPU are written to
its list registers, highest priority first (active ones always, so that the
guest's EOI finds them); at every exit the list registers say what the guest
did with them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from ...arch.gicv3 import (
    ICH_HCR_UIE,
    ICH_LR_GROUP,
    ICH_LR_PRIORITY_SHIFT,
    ICH_LR_STATE_SHIFT,
    ICH_LR_VINTID_MASK,
)

SGI_COUNT = 16
PRIVATE_COUNT = 32
"""SGIs 0-15 and PPIs 16-31 are banked per vCPU (in its redistributor)."""
DEFAULT_SPIS = 64
MAINTENANCE_PPI = 25
"""The virtual CPU interface's maintenance interrupt (the VMM asks for one
when more interrupts are pending than list registers)."""

LR_PENDING = 0b01
LR_ACTIVE = 0b10

# Distributor registers (IHI 0069 12.9)
GICD_CTLR = 0x0000
GICD_TYPER = 0x0004
GICD_IIDR = 0x0008
GICD_TYPER2 = 0x000C
GICD_STATUSR = 0x0010
GICD_IGROUPR = 0x0080
GICD_ISENABLER = 0x0100
GICD_ICENABLER = 0x0180
GICD_ISPENDR = 0x0200
GICD_ICPENDR = 0x0280
GICD_ISACTIVER = 0x0300
GICD_ICACTIVER = 0x0380
GICD_IPRIORITYR = 0x0400
GICD_ICFGR = 0x0C00
GICD_IGRPMODR = 0x0D00
GICD_NSACR = 0x0E00
GICD_IROUTER = 0x6000
GICD_PIDR2 = 0xFFE8
GICD_CTLR_ENABLE_GRP0 = 1 << 0
GICD_CTLR_ENABLE_GRP1 = 1 << 1
GICD_CTLR_ARE = 1 << 4
GICD_CTLR_DS = 1 << 6
GICD_CTLR_WRITABLE = GICD_CTLR_ENABLE_GRP0 | GICD_CTLR_ENABLE_GRP1
PIDR2_GICV3 = 0x3B
"""ArchRev (bits [7:4]) = 3: GICv3; JEP106 bits of Arm."""
IIDR_VALUE = 0x0000_043B
"""Implementer Arm (0x43B), product 0: a virtual GIC."""
IROUTER_IRM = 1 << 31
IDBITS_FIELD = 9 << 19
"""TYPER.IDbits = 9: 10-bit INTIDs (no LPIs)."""

# Redistributor registers (IHI 0069 12.11): RD_base frame, then SGI_base frame
GICR_CTLR = 0x0000
GICR_IIDR = 0x0004
GICR_TYPER = 0x0008
GICR_STATUSR = 0x0010
GICR_WAKER = 0x0014
GICR_PIDR2 = 0xFFE8
GICR_SGI_BASE = 0x1_0000
GICR_FRAME_SIZE = 0x2_0000
GICR_WAKER_PROCESSOR_SLEEP = 1 << 1
GICR_WAKER_CHILDREN_ASLEEP = 1 << 2
GICR_TYPER_LAST = 1 << 4
GICR_TYPER_PROC_SHIFT = 8


class Irq:
    """One interrupt's state at the (virtual) distributor or redistributor."""

    __slots__ = ("active", "edge", "enabled", "group1", "in_lr", "intid", "latched_in_lr", "line",
                 "pending", "priority", "route", "target")

    def __init__(self, intid: int, target: int) -> None:
        self.intid = intid
        self.enabled = False
        self.pending = False
        """Pending latch: edge events and software (ISPENDR, SGIs)."""
        self.line = False
        """Input level (level-sensitive sources)."""
        self.active = False
        self.priority = 0
        self.group1 = False
        self.edge = intid < SGI_COUNT
        """ICFGR: SGIs are always edge-triggered; PPIs and SPIs reset to level."""
        self.route = 0
        """GICD_IROUTER (SPIs)."""
        self.target = target
        """The vCPU the interrupt goes to (SPIs: from route)."""
        self.in_lr = False
        self.latched_in_lr = False
        """The pending state in its list register came from the latch (not the line)."""

    @property
    def is_pending(self) -> bool:
        return self.pending or (self.line and not self.edge)


class VGic:
    """The interrupt state of a realm and its delivery through list registers."""

    def __init__(self, mpidrs: list[int], num_lrs: int, spis: int = DEFAULT_SPIS) -> None:
        if spis % 32 or not 32 <= spis <= 988:
            raise ValueError(f"SPI count must be a multiple of 32 in 32..988, not {spis}")
        if num_lrs < 1:
            raise ValueError("the CPU reports no list registers")
        self.mpidrs = list(mpidrs)
        self.num_lrs = num_lrs
        self.num_spis = spis
        self.ctlr = 0
        self._lock = threading.Lock()
        self.private = [[Irq(i, cpu) for i in range(PRIVATE_COUNT)]
                        for cpu in range(len(mpidrs))]
        self.spis = [Irq(PRIVATE_COUNT + i, 0) for i in range(spis)]
        self._hot: list[set[Irq]] = [set() for _ in mpidrs]
        """Per vCPU: its interrupts that are pending or active (the only ones an
        entry must look at)."""
        self._lrs: list[list[Irq | None]] = [[None] * num_lrs for _ in mpidrs]
        self._kicks = 0
        self.distributor = GicDistributor(self)
        self.redistributors = GicRedistributors(self)

    # -- lookup ------------------------------------------------------------------------

    def irq(self, intid: int, cpu: int) -> Irq | None:
        if intid < PRIVATE_COUNT:
            return self.private[cpu][intid]
        i = intid - PRIVATE_COUNT
        return self.spis[i] if i < self.num_spis else None

    def cpu_of_mpidr(self, mpidr: int) -> int | None:
        try:
            return self.mpidrs.index(mpidr)
        except ValueError:
            return None

    def _group_enabled(self, irq: Irq) -> bool:
        bit = GICD_CTLR_ENABLE_GRP1 if irq.group1 else GICD_CTLR_ENABLE_GRP0
        return bool(self.ctlr & bit)

    def _touch(self, irq: Irq) -> None:
        """Re-file `irq` after a change; wake its vCPU if it became deliverable."""
        hot = self._hot[irq.target]
        if irq.active or irq.is_pending:
            if irq not in hot:
                hot.add(irq)
            if irq.is_pending and irq.enabled and self._group_enabled(irq) \
                    and not irq.in_lr:
                self._kicks |= 1 << irq.target
        else:
            hot.discard(irq)

    def _retarget(self, irq: Irq, target: int) -> None:
        if target != irq.target:
            self._hot[irq.target].discard(irq)
            irq.target = target
        self._touch(irq)

    # -- interrupt sources (any thread) ---------------------------------------------------

    def set_line(self, intid: int, level: bool, cpu: int = 0) -> None:
        """Drive a level-sensitive input (a PPI of vCPU `cpu`, or an SPI)."""
        with self._lock:
            irq = self.irq(intid, cpu)
            if irq is not None and irq.line != level:
                irq.line = level
                self._touch(irq)

    def pulse(self, intid: int, cpu: int = 0) -> None:
        """An edge on an edge-triggered input (or software pending)."""
        with self._lock:
            irq = self.irq(intid, cpu)
            if irq is not None:
                irq.pending = True
                self._touch(irq)

    def send_sgi(self, source: int, value: int) -> list[int]:
        """A trapped write of ICC_SGI1R_EL1 (or SGI0R/ASGI1R) by vCPU `source`
        (IHI 0069 12.2.22): TargetList [15:0], Aff1 [23:16], INTID [27:24],
        Aff2 [39:32], IRM [40], RS [47:44], Aff3 [55:48].  Returns the vCPUs hit."""
        intid = (value >> 24) & 0xF
        if (value >> 40) & 1:
            targets = [c for c in range(len(self.mpidrs)) if c != source]
        else:
            aff = ((value >> 48) & 0xFF) << 24 | ((value >> 32) & 0xFF) << 16 \
                | ((value >> 16) & 0xFF) << 8
            rs = (value >> 44) & 0xF
            targets = []
            for bit in range(16):
                if value >> bit & 1:
                    cpu = self.cpu_of_mpidr(aff | (rs * 16 + bit))
                    if cpu is not None:
                        targets.append(cpu)
        for cpu in targets:
            self.pulse(intid, cpu)
        return targets

    def take_kicks(self, exclude: int) -> int:
        """The vCPUs (bit mask) that got something to deliver since the last
        call, except `exclude` (the caller, who looks at its own anyway)."""
        with self._lock:
            mask, self._kicks = self._kicks & ~(1 << exclude), self._kicks & (1 << exclude)
        return mask

    # -- list registers (the vCPU's own thread) --------------------------------------------

    def exit_lrs(self, cpu: int, lrs: Iterable[int]) -> None:
        """What the guest did with the list registers of the last entry."""
        with self._lock:
            slots = self._lrs[cpu]
            for i, lr in enumerate(lrs):
                if i >= self.num_lrs:
                    break
                irq = slots[i]
                if irq is None:
                    continue
                slots[i] = None
                irq.in_lr = False
                state = lr >> ICH_LR_STATE_SHIFT
                irq.active = bool(state & LR_ACTIVE)
                if state & LR_PENDING and irq.latched_in_lr:
                    irq.pending = True  # not taken yet: keep the latched edge
                self._touch(irq)

    def entry_lrs(self, cpu: int) -> tuple[list[int], int]:
        """The list registers and ICH_HCR_EL2 bits for the next entry of `cpu`."""
        lrs = [0] * self.num_lrs
        with self._lock:
            self._kicks &= ~(1 << cpu)
            hot = self._hot[cpu]
            if not hot:
                return lrs, 0
            chosen = sorted((irq for irq in hot if irq.active or (
                irq.enabled and self._group_enabled(irq))),
                key=lambda irq: (not irq.active, irq.priority, irq.intid))
            slots = self._lrs[cpu]
            for i, irq in enumerate(chosen[:self.num_lrs]):
                state = LR_ACTIVE if irq.active else 0
                irq.latched_in_lr = False
                # A level interrupt is not presented pending while active: the
                # guest's handler quiets its source before the EOI.
                if irq.is_pending and (irq.edge or not irq.active):
                    state |= LR_PENDING
                    # acknowledging clears a latched pending state (IHI 0069
                    # 4.1.2), so the list register now holds it
                    irq.latched_in_lr = irq.pending
                    irq.pending = False
                lrs[i] = (state << ICH_LR_STATE_SHIFT | (ICH_LR_GROUP if irq.group1 else 0)
                          | irq.priority << ICH_LR_PRIORITY_SHIFT
                          | (irq.intid & ICH_LR_VINTID_MASK))
                irq.in_lr = True
                slots[i] = irq
            overflow = len(chosen) > self.num_lrs
        return lrs, ICH_HCR_UIE if overflow else 0

    def deliverable(self, cpu: int) -> bool:
        """Something is pending for `cpu` that the guest could take (a WFI
        returns)."""
        with self._lock:
            return any(irq.is_pending and irq.enabled and self._group_enabled(irq)
                       for irq in self._hot[cpu])

    def deactivate(self, cpu: int, intid: int) -> None:
        """A trapped ICC_DIR_EL1 write (EOImode 1): deactivate the interrupt."""
        with self._lock:
            irq = self.irq(intid, cpu)
            if irq is not None:
                irq.active = False
                self._touch(irq)

    # -- register helpers (called with the lock held) -------------------------------------

    def _bits(self, irqs: list[Irq | None], attr: str) -> int:
        value = 0
        for n, irq in enumerate(irqs):
            if irq is not None and (irq.is_pending if attr == "pending" else getattr(irq, attr)):
                value |= 1 << n
        return value

    def _set_bits(self, irqs: list[Irq | None], attr: str, value: int, set_to: bool) -> None:
        for n, irq in enumerate(irqs):
            if irq is None or not value >> n & 1:
                continue
            if attr == "pending" and not set_to:
                irq.pending = False
            else:
                setattr(irq, attr, set_to)
            self._touch(irq)

    def _write_config(self, irqs: list[Irq | None], value: int) -> None:
        for n, irq in enumerate(irqs):
            if irq is not None and irq.intid >= SGI_COUNT:
                irq.edge = bool(value >> (2 * n + 1) & 1)
                self._touch(irq)

    def _route(self, irq: Irq, value: int) -> None:
        irq.route = value & (IROUTER_IRM | 0xFF_00FF_FFFF)
        if value & IROUTER_IRM:
            target = 0
        else:
            mpidr = (value & 0xFF_FFFF) | ((value >> 32) & 0xFF) << 24
            target = self.cpu_of_mpidr(mpidr)
            if target is None:
                target = irq.target
        self._retarget(irq, target)


def _merge(old: int, value: int, offset: int, size: int) -> int:
    """Write `size` bytes of `value` at byte `offset` of a 64-bit register."""
    shift = 8 * offset
    mask = ((1 << (8 * size)) - 1) << shift
    return (old & ~mask) | ((value << shift) & mask)


class _BitRegisters:
    """The one-bit-per-interrupt and byte-per-interrupt register banks shared by
    the distributor (SPIs) and the redistributors' SGI frame (SGIs and PPIs)."""

    BIT_BANKS = {
        GICD_IGROUPR: ("group1", None),
        GICD_ISENABLER: ("enabled", True),
        GICD_ICENABLER: ("enabled", False),
        GICD_ISPENDR: ("pending", True),
        GICD_ICPENDR: ("pending", False),
        GICD_ISACTIVER: ("active", True),
        GICD_ICACTIVER: ("active", False),
        GICD_IGRPMODR: (None, None),
    }

    def __init__(self, gic: VGic) -> None:
        self.gic = gic

    def _irqs(self, cpu: int, first: int, count: int) -> list[Irq | None]:
        raise NotImplementedError

    def bank_read(self, offset: int, size: int, cpu: int) -> int | None:
        """A read in the banks (None: not a bank register)."""
        gic = self.gic
        base = offset & ~0x7F
        if base in self.BIT_BANKS and offset < GICD_IPRIORITYR:
            attr, _ = self.BIT_BANKS[base]
            first = (offset - base) * 8
            irqs = self._irqs(cpu, first, size * 8)
            return gic._bits(irqs, attr) if attr else 0
        if GICD_IPRIORITYR <= offset < GICD_IPRIORITYR + 0x400:
            irqs = self._irqs(cpu, offset - GICD_IPRIORITYR, size)
            return sum((irq.priority if irq else 0) << (8 * i) for i, irq in enumerate(irqs))
        if GICD_ICFGR <= offset < GICD_ICFGR + 0x100:
            irqs = self._irqs(cpu, (offset - GICD_ICFGR) * 4, size * 4)
            return sum((0b10 if irq and irq.edge else 0) << (2 * i)
                       for i, irq in enumerate(irqs))
        if GICD_NSACR <= offset < GICD_NSACR + 0x100:
            return 0
        return None

    def bank_write(self, offset: int, size: int, value: int, cpu: int) -> bool:
        gic = self.gic
        base = offset & ~0x7F
        if base in self.BIT_BANKS and offset < GICD_IPRIORITYR:
            attr, set_to = self.BIT_BANKS[base]
            irqs = self._irqs(cpu, (offset - base) * 8, size * 8)
            if attr == "group1":
                for n, irq in enumerate(irqs):
                    if irq is not None:
                        irq.group1 = bool(value >> n & 1)
                        gic._touch(irq)
            elif attr is not None:
                gic._set_bits(irqs, attr, value, bool(set_to))
            return True
        if GICD_IPRIORITYR <= offset < GICD_IPRIORITYR + 0x400:
            for i, irq in enumerate(self._irqs(cpu, offset - GICD_IPRIORITYR, size)):
                if irq is not None:
                    irq.priority = (value >> (8 * i)) & 0xFF
            return True
        if GICD_ICFGR <= offset < GICD_ICFGR + 0x100:
            gic._write_config(self._irqs(cpu, (offset - GICD_ICFGR) * 4, size * 4), value)
            return True
        return GICD_NSACR <= offset < GICD_NSACR + 0x100


class GicDistributor(_BitRegisters):
    name = "GICv3 distributor"

    def _irqs(self, cpu: int, first: int, count: int) -> list[Irq | None]:
        gic = self.gic
        out: list[Irq | None] = []
        for intid in range(first, first + count):
            # SGIs and PPIs are the redistributors' with affinity routing: RAZ/WI here
            out.append(gic.irq(intid, cpu) if intid >= PRIVATE_COUNT else None)
        return out

    def read(self, offset: int, size: int, cpu: int) -> int:
        gic = self.gic
        with gic._lock:
            if offset == GICD_CTLR:
                return gic.ctlr | GICD_CTLR_ARE | GICD_CTLR_DS
            if offset == GICD_TYPER:
                lines = (PRIVATE_COUNT + gic.num_spis) // 32 - 1
                return IDBITS_FIELD | ((len(gic.mpidrs) - 1) & 7) << 5 | lines
            if offset == GICD_IIDR:
                return IIDR_VALUE
            if offset in (GICD_TYPER2, GICD_STATUSR):
                return 0
            if GICD_IROUTER <= offset < GICD_IROUTER + 8 * 1020:
                intid = (offset - GICD_IROUTER) // 8
                irq = gic.irq(intid, cpu) if intid >= PRIVATE_COUNT else None
                value = irq.route if irq is not None else 0
                return (value >> (8 * (offset & 7))) & ((1 << (8 * size)) - 1)
            if offset == GICD_PIDR2:
                return PIDR2_GICV3
            value = self.bank_read(offset, size, cpu)
            return value if value is not None else 0

    def write(self, offset: int, size: int, value: int, cpu: int) -> None:
        gic = self.gic
        with gic._lock:
            if offset == GICD_CTLR:
                gic.ctlr = value & GICD_CTLR_WRITABLE
                for irq in gic.spis:
                    gic._touch(irq)
                for private in gic.private:
                    for irq in private:
                        gic._touch(irq)
                return
            if GICD_IROUTER <= offset < GICD_IROUTER + 8 * 1020:
                intid = (offset - GICD_IROUTER) // 8
                irq = gic.irq(intid, cpu) if intid >= PRIVATE_COUNT else None
                if irq is not None:
                    gic._route(irq, _merge(irq.route, value, offset & 7, size))
                return
            self.bank_write(offset, size, value, cpu)


class GicRedistributors(_BitRegisters):
    """All vCPUs' redistributors, one GICR_FRAME_SIZE frame pair each."""

    name = "GICv3 redistributors"

    def __init__(self, gic: VGic) -> None:
        super().__init__(gic)
        self.waker = [GICR_WAKER_PROCESSOR_SLEEP | GICR_WAKER_CHILDREN_ASLEEP
                      for _ in gic.mpidrs]

    def _irqs(self, cpu: int, first: int, count: int) -> list[Irq | None]:
        private = self.gic.private[cpu]
        return [private[i] if i < PRIVATE_COUNT else None for i in range(first, first + count)]

    def _typer(self, owner: int) -> int:
        mpidr = self.gic.mpidrs[owner]
        aff = (mpidr & 0xFF_FFFF) | ((mpidr >> 32) & 0xFF) << 24
        last = GICR_TYPER_LAST if owner == len(self.gic.mpidrs) - 1 else 0
        return aff << 32 | owner << GICR_TYPER_PROC_SHIFT | last

    def read(self, offset: int, size: int, cpu: int) -> int:
        owner, off = divmod(offset, GICR_FRAME_SIZE)
        gic = self.gic
        if owner >= len(gic.mpidrs):
            return 0
        with gic._lock:
            if off < GICR_SGI_BASE:
                if GICR_TYPER <= off < GICR_TYPER + 8:
                    value = self._typer(owner) >> (8 * (off - GICR_TYPER))
                    return value & ((1 << (8 * size)) - 1)
                if off == GICR_WAKER:
                    return self.waker[owner]
                if off == GICR_IIDR:
                    return IIDR_VALUE
                if off == GICR_PIDR2:
                    return PIDR2_GICV3
                return 0
            value = self.bank_read(off - GICR_SGI_BASE, size, owner)
            return value if value is not None else 0

    def write(self, offset: int, size: int, value: int, cpu: int) -> None:
        owner, off = divmod(offset, GICR_FRAME_SIZE)
        gic = self.gic
        if owner >= len(gic.mpidrs):
            return
        with gic._lock:
            if off == GICR_WAKER:
                sleep = value & GICR_WAKER_PROCESSOR_SLEEP
                self.waker[owner] = sleep | (GICR_WAKER_CHILDREN_ASLEEP if sleep else 0)
            elif off >= GICR_SGI_BASE:
                self.bank_write(off - GICR_SGI_BASE, size, value, owner)
