"""The `cca` commands: what the GDB extension asks the co-simulator, and
the text it prints.

Requests arrive as the text after `monitor cca` (e.g. `granule 0x40100000`);
every answer is one JSON object: {"ok": true, "text": ...} or
{"ok": false, "error": ...}.  A user's mistake is an error with a one-line
message, never an exception.

`CcaView` is the little the commands need from a running platform; the
debugger fills it in, the unit tests give a fake.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..arch import stage2
from ..arch.pas import GRANULE_MASK, Pas
from ..rmm.rtte import Hipas
from .events import EventError, EventSpec, parse_event
from .stage1 import Stage1Error, translate

HISTORY = 8
"""Granule transitions `cca granule` lists."""
TRACE_DEFAULT = 20
TRACE_MAX = 10000


class CommandError(Exception):
    """A request that cannot be answered (the message is for the user)."""


class CcaView(Protocol):
    """What the commands read from the running co-simulator."""

    @property
    def rmm(self) -> Any: ...

    def ram_range(self) -> tuple[int, int]: ...

    def pas_of(self, pa: int) -> Pas: ...

    def describe_granule(self, pa: int) -> str: ...

    def events(self, last: int) -> list[dict[str, Any]]: ...

    def granule_history(self, pa: int, last: int) -> list[dict[str, Any]]: ...

    def cpus(self) -> int: ...

    def cpu_state(self, cpu: int) -> tuple[int, int]:
        """(PC, EL) of a vCPU: the VM is stopped."""
        ...

    def running_rec(self, cpu: int) -> Any: ...

    def breaks(self) -> list[EventSpec]: ...

    def add_break(self, spec: EventSpec) -> None: ...

    def delete_break(self, index: int | None) -> int: ...

    def stage1_registers(self, cpu: int) -> dict[str, int]:
        """SCTLR_EL1, TCR_EL1, TTBR0_EL1, TTBR1_EL1 of a vCPU."""
        ...

    def last_stop(self) -> str | None:
        """The CCA event of the current stop, once (None if it was not one)."""
        ...


def parse_number(text: str, what: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise CommandError(f"'{text}' is not a {what} (a number, e.g. 0x40000000)") from None
    if value < 0:
        raise CommandError(f"{what} {text} is negative")
    return value


def _realm(view: CcaView, text: str) -> Any:
    rid = parse_number(text, "realm id")
    realms = view.rmm.realms if view.rmm is not None else {}
    realm = realms.get(rid)
    if realm is None:
        known = ", ".join(str(r) for r in sorted(realms)) or "none yet"
        raise CommandError(f"no realm {rid} (live realms: {known})")
    return realm


def cmd_realms(view: CcaView, args: list[str]) -> str:
    realms = view.rmm.realms if view.rmm is not None else {}
    if not realms:
        return "no realms"
    lines = ["realm  RD                  state       IPA bits  VMID  RECs  RIM"]
    for rid, r in sorted(realms.items()):
        rim = bytes(r.measurements[0][:16]).hex()
        lines.append(f"{rid:<6} {r.rd:#018x}  {r.state.value:<10}  {r.s2sz:<8}  "
                     f"{r.vmid:<4}  {len(r.recs):<4}  {rim}...")
    return "\n".join(lines)


def cmd_recs(view: CcaView, args: list[str]) -> str:
    realms = view.rmm.realms if view.rmm is not None else {}
    if args:
        realms = {_realm(view, args[0]).id: _realm(view, args[0])}
    running = {}
    for cpu in range(view.cpus()):
        rec = view.running_rec(cpu)
        if rec is not None:
            running[id(rec)] = cpu
    lines = []
    for rid, r in sorted(realms.items()):
        for index, rec in sorted(r.recs.items()):
            where = f"running on CPU {running[id(rec)]}" if id(rec) in running else \
                rec.state.value.lower()
            lines.append(f"realm {rid} REC {index}: {rec.pa:#x}, MPIDR {rec.mpidr:#x}, "
                         f"{'runnable' if rec.runnable else 'not runnable'}, {where}, "
                         f"saved PC {rec.context.pc:#x}")
    return "\n".join(lines) or "no RECs"


def cmd_granule(view: CcaView, args: list[str]) -> str:
    if len(args) != 1:
        raise CommandError("usage: cca granule ADDR (a physical address)")
    pa = parse_number(args[0], "physical address")
    lo, hi = view.ram_range()
    if not lo <= pa < hi:
        raise CommandError(f"{pa:#x} is outside guest RAM [{lo:#x}, {hi:#x}): no granule there")
    base = pa & ~GRANULE_MASK
    lines = [f"granule {base:#x}: {view.pas_of(base).label} PAS",
             f"  RMM state: {view.describe_granule(base)}"]
    g = view.rmm.granules().get(base) if view.rmm is not None else None
    if g is not None and g.realm is not None:
        lines.append(f"  owner: realm {g.realm.id} (RD {g.realm.rd:#x})")
    history = view.granule_history(base, HISTORY)
    if history:
        lines.append("  history (oldest first):")
        for e in history:
            realm = f" of realm {e['realm']}" if e.get("realm") is not None else ""
            at = f" at IPA {e['ipa']:#x}" if e.get("ipa") is not None else ""
            lines.append(f"    t={e['t']:.6f} {e['cmd']}: {e['old']} -> {e['new']}{realm}{at}")
    else:
        lines.append("  history: no RMI command changed it")
    return "\n".join(lines)


def describe_entry(entry: Any) -> str:
    text = entry.hipas.value
    if entry.has_ripas:
        text += f", RIPAS {entry.ripas.name}"
    if entry.hipas in (Hipas.ASSIGNED, Hipas.ASSIGNED_NS):
        text += f", PA {entry.addr:#x}"
    elif entry.hipas is Hipas.TABLE:
        text += f" -> RTT {entry.addr:#x}"
    return text


def cmd_rtt(view: CcaView, args: list[str]) -> str:
    if len(args) != 2:
        raise CommandError("usage: cca rtt REALM IPA")
    realm = _realm(view, args[0])
    ipa = parse_number(args[1], "IPA")
    if ipa >= 1 << realm.s2sz:
        raise CommandError(f"IPA {ipa:#x} is outside realm {realm.id}'s {realm.s2sz}-bit "
                           "IPA space")
    rtts = view.rmm.rtts(realm)
    level = realm.rtt_level_start
    table, _entries, _base, index = rtts.start(ipa)
    side = "protected" if ipa < 1 << (realm.s2sz - 1) else "unprotected"
    lines = [f"realm {realm.id}, IPA {ipa:#x} ({side}), starting level {level}"]
    while True:
        entry = rtts.read(table, index, level)
        lines.append(f"  level {level}: RTT {table:#x}[{index}] = {describe_entry(entry)}")
        if entry.hipas is not Hipas.TABLE or level >= stage2.PAGE_LEVEL:
            break
        table = entry.addr
        level += 1
        index = stage2.table_index(ipa, level)
    if entry.hipas in (Hipas.ASSIGNED, Hipas.ASSIGNED_NS):
        offset = ipa & (stage2.entry_size(level) - 1)
        lines.append(f"  maps IPA {ipa:#x} to PA {entry.addr + offset:#x} "
                     f"({stage2.entry_size(level) >> 10} KiB {'block' if level < 3 else 'page'})")
    else:
        lines.append(f"  no valid mapping for IPA {ipa:#x}")
    return "\n".join(lines)


def format_event(e: dict[str, Any]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, list):
            return "[" + ",".join(value(x) for x in v) + "]"
        return hex(v) if isinstance(v, int) and not isinstance(v, bool) and v > 9 else str(v)

    rest = " ".join(f"{k}={value(v)}" for k, v in e.items() if k not in ("t", "kind"))
    return f"t={e.get('t', 0):.6f} {e.get('kind')} {rest}"


def cmd_trace(view: CcaView, args: list[str]) -> str:
    n = TRACE_DEFAULT
    if args:
        n = parse_number(args[0], "count")
        if not 1 <= n <= TRACE_MAX:
            raise CommandError(f"count must be 1..{TRACE_MAX}, not {n}")
    events = view.events(n)
    return "\n".join(format_event(e) for e in events) or "no events"


def world_of(el: int, rec: Any) -> str:
    if el == 3:
        return "Root (EL3 monitor)"
    if rec is not None:
        return f"Realm EL{el} (realm {rec.realm.id} REC {rec.index})"
    return f"Non-secure EL{el}"


def cmd_world(view: CcaView, args: list[str]) -> str:
    lines = []
    for cpu in range(view.cpus()):
        pc, el = view.cpu_state(cpu)
        lines.append(f"CPU {cpu}: {world_of(el, view.running_rec(cpu) if el < 3 else None)}, "
                     f"PC {pc:#x}")
    return "\n".join(lines)


def cmd_ipa(view: CcaView, args: list[str]) -> str:
    if len(args) != 2:
        raise CommandError("usage: cca ipa VA (the selected thread's vCPU translates it)")
    va = parse_number(args[0], "virtual address")
    cpu = parse_number(args[1], "CPU")
    if cpu >= view.cpus():
        raise CommandError(f"no CPU {cpu}")
    rec = view.running_rec(cpu)
    if rec is None:
        raise CommandError(f"CPU {cpu} runs no realm: its VAs are not a realm's")
    realm = rec.realm
    rtts = view.rmm.rtts(realm)

    def read_u64(ipa: int) -> int:
        if ipa >= 1 << realm.s2sz:
            raise Stage1Error(f"a stage-1 table at IPA {ipa:#x} is outside the IPA space")
        w = rtts.walk(ipa, stage2.PAGE_LEVEL)
        if w.entry.hipas not in (Hipas.ASSIGNED, Hipas.ASSIGNED_NS):
            raise Stage1Error(f"the stage-1 table at IPA {ipa:#x} is not mapped "
                              f"({w.entry.hipas.value} at level {w.level})")
        pa = w.entry.addr + (ipa & (stage2.entry_size(w.level) - 1))
        return int(view.rmm.memory.read_u64(pa))

    regs = view.stage1_registers(cpu)
    try:
        walk = translate(va, regs["SCTLR_EL1"], regs["TCR_EL1"], regs["TTBR0_EL1"],
                         regs["TTBR1_EL1"], read_u64)
    except Stage1Error as exc:
        raise CommandError(f"VA {va:#x}: {exc}") from None
    lines = [f"VA {va:#x} on CPU {cpu} (realm {realm.id} REC {rec.index}):",
             *[f"  {s}" for s in walk.steps]]
    lines.append(f"  IPA {walk.ipa:#x}" if walk.ipa is not None else
                 f"  VA {va:#x} is not mapped at stage 1")
    return "\n".join(lines)


def cmd_break(view: CcaView, args: list[str]) -> str:
    if not args:
        specs = view.breaks()
        if not specs:
            return "no CCA event breakpoints"
        return "\n".join(f"{i}: {s}" for i, s in enumerate(specs, 1))
    try:
        spec = parse_event(" ".join(args))
    except EventError as exc:
        raise CommandError(str(exc)) from None
    view.add_break(spec)
    return f"CCA event breakpoint {len(view.breaks())}: {spec}"


def cmd_delete(view: CcaView, args: list[str]) -> str:
    if not args or args[0] == "all":
        n = view.delete_break(None)
        return f"deleted {n} CCA event breakpoint(s)"
    index = parse_number(args[0], "breakpoint number")
    if not 1 <= index <= len(view.breaks()):
        raise CommandError(f"no CCA event breakpoint {index} (see cca break)")
    view.delete_break(index)
    return f"deleted CCA event breakpoint {index}"


def cmd_last(view: CcaView, args: list[str]) -> str:
    what = view.last_stop()
    return f"cca: stopped on {what}" if what else ""


@dataclass(frozen=True)
class Command:
    run: Callable[[CcaView, list[str]], str]
    usage: str


COMMANDS: dict[str, Command] = {
    "realms": Command(cmd_realms, "realms: every live realm"),
    "recs": Command(cmd_recs, "recs [REALM]: RECs, their state and where they run"),
    "granule": Command(cmd_granule, "granule ADDR: PAS, RMM state, owner and history"),
    "rtt": Command(cmd_rtt, "rtt REALM IPA: the RTT walk, level by level"),
    "trace": Command(cmd_trace, "trace [N]: the last N events (default 20)"),
    "world": Command(cmd_world, "world: world and EL of each vCPU"),
    "ipa": Command(cmd_ipa, "ipa VA: the IPA a realm VA maps to (the selected thread's "
                            "stage 1)"),
    "break": Command(cmd_break, "break [EVENT]: stop on a CCA event (list them without EVENT)"),
    "delete": Command(cmd_delete, "delete [N|all]: remove CCA event breakpoints"),
    "last": Command(cmd_last, "last: the CCA event this stop is for (once)"),
}


def usage() -> str:
    return "cca commands:\n" + "\n".join(f"  cca {c.usage}" for c in COMMANDS.values())


def run_command(view: CcaView, text: str) -> dict[str, Any]:
    """Answer one request: {"ok": True, "text"} or {"ok": False, "error"}."""
    words = text.split()
    if not words or words[0] == "help":
        return {"ok": True, "text": usage()}
    command = COMMANDS.get(words[0])
    if command is None:
        return {"ok": False, "error": f"unknown cca command '{words[0]}' "
                                      f"(commands: {', '.join(COMMANDS)})"}
    try:
        return {"ok": True, "text": command.run(view, words[1:])}
    except CommandError as exc:
        return {"ok": False, "error": str(exc)}


def answer(view: CcaView, text: str) -> str:
    """run_command as the JSON text the proxy sends back."""
    try:
        reply = run_command(view, text)
    except Exception as exc:  # a co-simulator bug must not end the gdb session
        reply = {"ok": False, "error": f"internal error: {exc!r}"}
    return json.dumps(reply)
