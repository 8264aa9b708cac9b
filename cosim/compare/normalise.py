"""Turn a Recording into comparable (key, text) items.

Addresses are where two correct RMMs legitimately differ, so granule
addresses from the host's page pool become names by first use (G0, G1...);
the REC auxiliary granules (their number is the RMM's choice) are left out
with the calls that only move them; REC_ENTERs that ended in an IRQ/FIQ exit
(timing) are left out too.  What is compared: each RMI call's command and
normalised arguments, its status and outputs, the REC exit after each
REC_ENTER, and the scenario's named values."""

from __future__ import annotations

from dataclasses import dataclass

from ..rmm.abi import SMC_UNKNOWN, RecExitReason, RmiFid, RmiStatus
from .record import EXIT_GPRS, Recording

PA, VAL, DESC = "P", "V", "D"
ARGS: dict[int, str] = {
    RmiFid.GRANULE_DELEGATE: "P", RmiFid.GRANULE_UNDELEGATE: "P",
    RmiFid.DATA_CREATE: "PPVPV", RmiFid.DATA_CREATE_UNKNOWN: "PPV", RmiFid.DATA_DESTROY: "PV",
    RmiFid.REALM_ACTIVATE: "P", RmiFid.REALM_CREATE: "PP", RmiFid.REALM_DESTROY: "P",
    RmiFid.REC_CREATE: "PPP", RmiFid.REC_DESTROY: "P", RmiFid.REC_ENTER: "PP",
    RmiFid.RTT_CREATE: "PPVV", RmiFid.RTT_DESTROY: "PVV", RmiFid.RTT_MAP_UNPROTECTED: "PVVD",
    RmiFid.RTT_READ_ENTRY: "PVV", RmiFid.RTT_UNMAP_UNPROTECTED: "PVV",
    RmiFid.PSCI_COMPLETE: "PPV", RmiFid.FEATURES: "V", RmiFid.RTT_FOLD: "PVV",
    RmiFid.REC_AUX_COUNT: "P", RmiFid.RTT_INIT_RIPAS: "PVV", RmiFid.RTT_SET_RIPAS: "PPVV",
    RmiFid.VERSION: "V",
}
"""What each argument of an RMI v1.0 command is: a PA, a descriptor holding
one, or any other value."""
OUTPUTS: dict[int, str] = {
    RmiFid.VERSION: "VV", RmiFid.FEATURES: "V", RmiFid.DATA_DESTROY: "PV",
    RmiFid.RTT_DESTROY: "PV", RmiFid.RTT_READ_ENTRY: "VVDV", RmiFid.RTT_UNMAP_UNPROTECTED: "V",
    RmiFid.RTT_FOLD: "P", RmiFid.REC_AUX_COUNT: "V", RmiFid.RTT_INIT_RIPAS: "V",
    RmiFid.RTT_SET_RIPAS: "V",
}
"""The outputs x1.. each command defines (RMM spec B4.3); the rest are not
outputs, and what an RMM leaves there is not compared."""
ADDRESS_MASK = ((1 << 48) - 1) & ~0xFFF
EXIT_ITEMS_GPRS = (RecExitReason.HOST_CALL, RecExitReason.PSCI)


@dataclass
class Normalised:
    calls: list[tuple[str, str]]
    """(command with arguments, status and outputs [+ exit]) per compared call."""
    values: dict[str, str]
    aux_calls: int
    irq_entries: int
    error: str = ""


def status_text(x0: int) -> str:
    if x0 == SMC_UNKNOWN:
        return "SMC_UNKNOWN"
    try:
        name = RmiStatus(x0 & 0xFF).name
    except ValueError:
        name = f"status {x0 & 0xFF:#x}"
    return name + (f" (level/index {x0 >> 8})" if x0 >> 8 else "")


class _Names:
    """Granule names by lifetime: each successful delegation names its granule
    afresh (G0, G1, ... in delegation order), undelegation ends the name;
    other pool pages are the host's NS pages (parameters, sources, REC run
    pages) and are all "ns" (the host reuses its pages, so their addresses
    say nothing)."""

    def __init__(self, pool: tuple[int, int]) -> None:
        self.pool = pool
        self.live: dict[int, str] = {}
        self.count = 0

    def delegated(self, pa: int, aux: bool) -> None:
        if aux:
            self.live[pa] = "AUX"
        else:
            self.live[pa] = f"G{self.count}"
            self.count += 1

    def undelegated(self, pa: int) -> None:
        self.live.pop(pa, None)

    def pa(self, value: int) -> str:
        base = value & ~0xFFF
        off = f"+{value & 0xFFF:#x}" if value & 0xFFF else ""
        if base in self.live:
            return self.live[base] + off
        if self.pool[0] <= base < self.pool[1]:
            return "ns" + off
        return f"{value:#x}"

    def desc(self, value: int) -> str:
        addr = value & ADDRESS_MASK
        if addr and (addr in self.live or self.pool[0] <= addr < self.pool[1]):
            return f"{self.pa(addr)}|{value & ~ADDRESS_MASK:#x}"
        return f"{value:#x}"

    def one(self, role: str, value: int) -> str:
        if role == PA:
            return self.pa(value)
        if role == DESC:
            return self.desc(value)
        return f"{value:#x}"


def _exit_text(ex: dict[str, int]) -> str:
    try:
        reason = RecExitReason(ex["exit_reason"]).name
    except ValueError:
        reason = f"reason {ex['exit_reason']}"
    parts = [reason]
    if ex["exit_reason"] == RecExitReason.SYNC:
        parts += [f"esr {ex['esr']:#x}", f"far {ex['far']:#x}", f"hpfar {ex['hpfar']:#x}"]
    if ex["exit_reason"] == RecExitReason.HOST_CALL:
        parts.append(f"imm {ex['imm']:#x}")
    if ex["exit_reason"] == RecExitReason.RIPAS_CHANGE:
        parts.append(f"ripas [{ex['ripas_base']:#x}, {ex['ripas_top']:#x}) -> "
                     f"{ex['ripas_value']}")
    if ex["exit_reason"] in EXIT_ITEMS_GPRS:
        parts.append("x0..x6 " + " ".join(f"{ex[f'x{i}']:#x}" for i in range(EXIT_GPRS)))
    return ", ".join(parts)


def normalise(rec: Recording) -> Normalised:
    names = _Names(rec.pool)
    calls: list[tuple[str, str]] = []
    aux_calls = irq_entries = 0
    aux_window = False
    for call in rec.calls:
        ok = call.ret[0] == 0
        pa = call.args[0] if call.args else 0
        if call.fid == RmiFid.REC_AUX_COUNT:
            aux_window = True
        elif call.fid == RmiFid.REC_CREATE:
            aux_window = False
        if call.fid == RmiFid.GRANULE_DELEGATE and aux_window and pa in rec.aux:
            aux_calls += 1
            if ok:
                names.delegated(pa, aux=True)
            continue
        if call.fid == RmiFid.GRANULE_UNDELEGATE and names.live.get(pa) == "AUX":
            aux_calls += 1
            if ok:
                names.undelegated(pa)
            continue
        if call.exit is not None and call.exit["exit_reason"] in (RecExitReason.IRQ,
                                                                   RecExitReason.FIQ):
            irq_entries += 1
            continue
        roles = ARGS.get(call.fid, "V" * len(call.args))
        args = ", ".join(names.one(roles[i] if i < len(roles) else VAL, a)
                         for i, a in enumerate(call.args))
        if ok and call.fid == RmiFid.GRANULE_DELEGATE:
            names.delegated(pa, aux=False)
            args += f" as {names.pa(pa)}"
        text = status_text(call.ret[0])
        outs = OUTPUTS.get(call.fid, "")
        if outs and (ok or call.fid == RmiFid.VERSION):
            text += " " + " ".join(f"x{i + 1}={names.one(r, call.ret[i + 1])}"
                                   for i, r in enumerate(outs))
        if call.exit is not None:
            text += "; exit " + _exit_text(call.exit)
        if ok and call.fid == RmiFid.GRANULE_UNDELEGATE:
            names.undelegated(pa)
        label = f" [{call.label}]" if call.label else ""
        calls.append((f"{call.name}({args}){label}", text))
    return Normalised(calls, dict(rec.values), aux_calls, irq_entries, rec.error)
