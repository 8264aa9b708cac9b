"""CCA events a debugger can stop on, and the matcher that decides whether
one happening now is one the user asked for.

Syntax (`--break-on EVENT`, `cca break EVENT`), case-insensitive:

    gpt                         a GPT violation (a granule protection fault)
    rmi:NAME[@REALM]            an RMI command from the host (DATA_CREATE or
                                RMI_DATA_CREATE), optionally only for realm REALM
    rsi:NAME[@REALM]            an RSI command from a realm
    enter[@REALM[.REC]]         the host enters a REC (its RMI_REC_ENTER)
    exit[@REALM[.REC]]          a REC leaves the realm (any trap to R-EL2)
    exit:REASON[@REALM[.REC]]   ... for this reason: sync, irq, fiq, serror,
                                psci, ripas_change, host_call or rsi (an RSI
                                call the RMM answers without the host)

Pure: no platform here; `Occurrence` describes what is happening, in
numbers the platform fills in.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..rmm.abi import PsciFid, RmiFid, RsiFid

EXIT_REASONS = ("sync", "irq", "fiq", "serror", "psci", "ripas_change", "host_call", "rsi")
KINDS = ("gpt", "rmi", "rsi", "enter", "exit")


class EventError(ValueError):
    """An event specification that cannot be understood (the message says why)."""


@dataclass(frozen=True)
class EventSpec:
    kind: str
    name: str | None = None
    """rmi/rsi: the command (RMI_/RSI_ name); exit: the reason."""
    realm: int | None = None
    rec: int | None = None
    text: str = ""

    def __str__(self) -> str:
        return self.text or self.kind


@dataclass(frozen=True)
class Occurrence:
    """An event as the platform sees it, before it is handled."""

    kind: str
    cpu: int
    pc: int
    """The instruction that caused it (where the vCPU will be stopped)."""
    name: str | None = None
    realm: int | None = None
    rec: int | None = None
    detail: str = ""

    def describe(self) -> str:
        what = self.kind if self.name is None else f"{self.kind} {self.name}"
        if self.realm is not None:
            what += f" (realm {self.realm}" + (f" REC {self.rec})" if self.rec is not None
                                                else ")")
        return f"{what} on CPU {self.cpu} at PC {self.pc:#x}" + \
            (f": {self.detail}" if self.detail else "")


def _command(prefix: str, name: str, enum: type[RmiFid] | type[RsiFid]) -> str:
    bare = name.upper()
    if bare.startswith(prefix + "_"):
        bare = bare[len(prefix) + 1:]
    try:
        return prefix + "_" + enum[bare].name
    except KeyError:
        known = ", ".join(m.name for m in enum)
        raise EventError(f"no {prefix} command '{name}' (known: {known})") from None


def _where(text: str, with_rec: bool) -> tuple[int | None, int | None]:
    realm, _, rec = text.partition(".")
    try:
        r = int(realm, 0)
        n = int(rec, 0) if rec else None
    except ValueError:
        raise EventError(f"'@{text}' is not REALM" + ("[.REC]" if with_rec else "") +
                         " (numbers, e.g. @1" + (" or @1.0)" if with_rec else ")")) from None
    if n is not None and not with_rec:
        raise EventError(f"'@{text}': a REC can only be given for enter and exit")
    return r, n


def parse_event(text: str) -> EventSpec:
    """An EventSpec from its text (EventError with a one-line reason if bad)."""
    raw = text.strip()
    if not raw:
        raise EventError("an empty event (expected e.g. gpt, rmi:DATA_CREATE, exit:host_call)")
    body, _, where = raw.partition("@")
    kind, _, arg = body.partition(":")
    kind = kind.lower()
    if kind not in KINDS:
        raise EventError(f"unknown event '{raw}' (kinds: {', '.join(KINDS)}; "
                         "e.g. gpt, rmi:DATA_CREATE@1, rsi:HOST_CALL, exit:host_call@1.0)")
    realm = rec = None
    if where:
        if kind == "gpt":
            raise EventError(f"'{raw}': gpt takes no @REALM")
        realm, rec = _where(where, kind in ("enter", "exit"))
    name = None
    if kind == "rmi":
        if not arg:
            raise EventError(f"'{raw}': name the command, e.g. rmi:DATA_CREATE")
        name = _command("RMI", arg, RmiFid)
    elif kind == "rsi":
        if not arg:
            raise EventError(f"'{raw}': name the command, e.g. rsi:HOST_CALL")
        name = _command("RSI", arg, RsiFid)
    elif kind == "exit" and arg:
        name = arg.lower()
        if name not in EXIT_REASONS:
            raise EventError(f"unknown exit reason '{arg}' (reasons: {', '.join(EXIT_REASONS)})")
    elif arg:
        raise EventError(f"'{raw}': {kind} takes no ':{arg}'")
    return EventSpec(kind, name, realm, rec, raw)


def matches(spec: EventSpec, occ: Occurrence) -> bool:
    if spec.kind != occ.kind:
        return False
    if spec.name is not None and spec.name != occ.name:
        return False
    if spec.realm is not None and spec.realm != occ.realm:
        return False
    return spec.rec is None or spec.rec == occ.rec


def rmi_name(fid: int) -> str | None:
    try:
        return RmiFid(fid).rmi_name
    except ValueError:
        return None


def rsi_name(fid: int) -> str | None:
    try:
        return RsiFid(fid).rsi_name
    except ValueError:
        return None


# ESR_ELx.EC values (Arm ARM D24.2.40) that decide an exit's reason.
EC_WFX = 0x01
EC_SMC64 = 0x17
EC_SYSREG = 0x18
EC_IABT_LOWER = 0x20
EC_DABT_LOWER = 0x24


def exit_reason(vector_kind: str, esr: int, fid: int) -> str:
    """Which exit reason a realm trap will become, from what the CPU reported
    (vector_kind SYNC/IRQ/FIQ/SERROR, ESR_EL2 and, for an SMC, x0)."""
    if vector_kind != "SYNC":
        return vector_kind.lower()
    if (esr >> 26) & 0x3F == EC_SMC64:
        fid &= 0xFFFF_FFFF
        if fid == RsiFid.HOST_CALL:
            return "host_call"
        if fid == RsiFid.IPA_STATE_SET:
            return "ripas_change"
        if 0x8400_0000 <= fid <= 0x8400_001F or 0xC400_0000 <= fid <= 0xC400_001F or \
                fid in set(PsciFid):
            return "psci"
        return "rsi"
    return "sync"
