"""The RMM: RMI dispatch, granule tracking, locking and the trace of every command.

``Rmm.handle_rmi`` is the one entry point for host calls.  It strips the SVE
hint, finds the command of the configured ABI version, runs it and packs the
result; a command reports a failure condition by raising ``RmiFailure``, which
only this dispatcher catches.  Commands live in the ``cmd_*`` modules.

Locking (several vCPUs call concurrently):

1. realm locks first, in ascending realm id: the realms of the RD/REC granules
   a command names (looked up optimistically, re-checked once locked);
2. then every granule lock stripe the command touches (named granules, NS
   buffers, and granules found through the realm's RTTs or RECs while the
   realm locks are held), all at once in ascending stripe order;
3. then leaf locks held briefly (the VMID/realm-id table, the PAS table, the
   trace).

RTT contents, REC attributes and realm state change only under the realm lock;
granule records only under their stripe (and their realm's lock when owned).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ..arch.gpt import PasTable
from ..arch.pas import GRANULE_MASK, GRANULE_SIZE, Pas
from ..memory import GuestMemory
from ..trace import Trace
from .abi import (
    SMC_UNKNOWN,
    SMCCC_SVE_HINT,
    U64_MASK,
    RmiStatus,
    rmi_return,
)
from .attestation import Attestation
from .config import RmmConfig
from .el2_config import RealmEl2Config, realm_el2_config
from .errors import RmiFailure, check, fail
from .exits import RealmTrap, RecExitDecision, Resume
from .granule import Granule, GranuleState, LockStripes
from .id_regs import realm_id_value
from .realm import Realm
from .rec import Rec, RecState
from .results import Call, EnterRealm, RmiReturn
from .rtt import Rtts
from .run import realm_entry, realm_exit
from .structs import AbiStruct, RmiRecEnter

RMI_SUCCESS = rmi_return(RmiStatus.SUCCESS)

S = TypeVar("S", bound=AbiStruct)


Handler = Callable[["Rmm", Call, tuple[int, ...]], "tuple[int, ...] | EnterRealm"]


@dataclass(frozen=True)
class Command:
    fid: int
    name: str
    handler: Handler
    nargs: int
    nouts: int


class Rmm:
    def __init__(
        self, memory: GuestMemory, gpt: PasTable, config: RmmConfig, trace: Trace | None = None
    ) -> None:
        from .commands import commands_for

        self.memory = memory
        self.gpt = gpt
        self.config = config
        self.trace = trace if trace is not None else Trace(history=0)
        self.features0 = config.features0()
        self.feature_register0 = self.features0.pack()
        self._commands: dict[int, Command] = commands_for(config.abi_version)
        self._granules: dict[int, Granule] = {}
        self._stripes = LockStripes()
        self._table_lock = threading.Lock()
        self._realms: dict[int, Realm] = {}
        self._vmids: set[int] = set()
        self._next_realm_id = 1
        # PaIsDelegable: the configured RAM, as far as the PAS table covers it.
        self._dram = [
            (max(base, gpt.base), min(base + size, gpt.end))
            for base, size in config.dram
            if base < gpt.end and base + size > gpt.base
        ]
        self._labels: dict[str, tuple[str, str, str, str]] = {}
        self._attestation: Attestation | None = None
        self.rsi_counts: Counter[str] = Counter()
        """Calls from realms by name (RSI, PSCI, SMCCC), counted even without a
        trace: what a summary reports."""

    # == the host interface =========================================================

    def handle_rmi(self, fid: int, args: Sequence[int], cpu: int = 0) -> RmiReturn | EnterRealm:
        fid = fid & 0xFFFF_FFFF & ~SMCCC_SVE_HINT
        command = self._commands.get(fid)
        if command is None:
            ret = RmiReturn((SMC_UNKNOWN,))
            if self.trace.active:
                self.trace.emit(
                    "rmi",
                    cpu=cpu,
                    fid=fid,
                    name=None,
                    args=[v & U64_MASK for v in args[:5]],
                    status="SMC_UNKNOWN",
                    index=0,
                    out=[],
                    duration_us=0.0,
                    realm=None,
                )
            return ret
        # X1.. of the command (the SMCCC registers past them are ignored, B1.2).
        n = command.nargs
        a = tuple([v & U64_MASK for v in args[:n]])
        if len(a) < n:
            a += (0,) * (n - len(a))
        call = Call(command.name, cpu)
        tracing = self.trace.active
        t0 = time.perf_counter() if tracing else 0.0
        nouts = command.nouts
        try:
            result = command.handler(self, call, a)
        except RmiFailure as f:
            out = (f.out + (0,) * nouts)[:nouts] if nouts else ()
            result = RmiReturn((rmi_return(f.status, f.index), *out), f.condition, tuple(call.tlbi))
        else:
            if isinstance(result, EnterRealm):
                result.tlbi = tuple(call.tlbi)
            else:
                if len(result) != nouts:
                    result = (tuple(result) + (0,) * nouts)[:nouts]
                result = RmiReturn((RMI_SUCCESS, *result), None, tuple(call.tlbi))
        if tracing:
            self._trace_call(command, call, a, result, time.perf_counter() - t0)
        return result

    def rec_enter_complete(self, rec: Rec) -> None:
        """The run loop of RMI_REC_ENTER has finished (the REC exited to the host).
        ``realm_entry``/``realm_exit`` call it themselves when they deliver an exit."""
        with rec.realm.lock:
            rec.state = RecState.READY

    # == realm execution (run.py; see docs/rmm.md "Running realms") ==================

    def realm_entry(self, rec: Rec, enter: RmiRecEnter) -> RecExitDecision | None:
        """Right after RMI_REC_ENTER returned EnterRealm, before the REC's context is
        loaded: complete the previous exit.  None: run the realm; a decision: the
        REC already left again (its RecExit is written, the REC is READY)."""
        return realm_entry(self, rec, enter)

    def realm_exit(self, rec: Rec, trap: RealmTrap) -> Resume | RecExitDecision:
        """The realm left EL1/EL0 (its state saved in rec.context and rec.gic):
        handle the trap and resume it, or deliver an exit to the host."""
        return realm_exit(self, rec, trap)

    def realm_el2_config(self, rec: Rec, enter: RmiRecEnter) -> RealmEl2Config:
        """The EL2 register values to run `rec` with for this RMI_REC_ENTER."""
        return realm_el2_config(self.config, rec, enter)

    def realm_id_register(self, realm: Realm, name: str) -> int:
        """The value `realm` reads from the feature ID register `name`."""
        return realm_id_value(self.config.cpu_id_regs, realm, name)

    @property
    def attestation(self) -> Attestation:
        """Token maker (created on first use: it parses the platform key)."""
        if self._attestation is None:
            with self._table_lock:
                if self._attestation is None:
                    self._attestation = Attestation(self.config.attestation, self.feature_register0)
        return self._attestation

    # == introspection ==============================================================

    def granule_state(self, pa: int) -> GranuleState:
        g = self._granules.get(pa & ~(GRANULE_SIZE - 1))
        return g.state if g is not None else GranuleState.UNDELEGATED

    def describe_granule(self, pa: int) -> str:
        base = pa & ~(GRANULE_SIZE - 1)
        g = self._granules.get(base)
        if g is not None:
            return g.describe()
        if not self.delegable(base):
            return "not delegable memory"
        return GranuleState.UNDELEGATED.value

    def granules(self) -> dict[int, Granule]:
        """A snapshot of every tracked (not UNDELEGATED) granule."""
        return dict(self._granules)

    @property
    def realms(self) -> dict[int, Realm]:
        """Live realms by id."""
        return dict(self._realms)

    def realm_at(self, rd: int) -> Realm | None:
        g = self._granules.get(rd)
        return g.realm if g is not None and g.state is GranuleState.RD else None

    def rec_at(self, pa: int) -> Rec | None:
        g = self._granules.get(pa)
        return g.rec if g is not None and g.state is GranuleState.REC else None

    def rtts(self, realm: Realm) -> Rtts:
        return Rtts(self.memory, realm)

    # == helpers for the commands ===================================================

    def delegable(self, pa: int) -> bool:
        """PaIsDelegable (B3.25): in the RAM this RMM tracks (and so in the PAS table)."""
        for lo, hi in self._dram:  # noqa: SIM110 (a loop is faster than any() here)
            if lo <= pa < hi:
                return True
        return False

    def _label(self, name: str) -> tuple[str, str, str, str]:
        """The labels `name`_align, `name`_bound, `name`_state, `name`_pas."""
        labels = self._labels.get(name)
        if labels is None:
            labels = (f"{name}_align", f"{name}_bound", f"{name}_state", f"{name}_pas")
            self._labels[name] = labels
        return labels

    def granule_arg(
        self, pa: int, state: GranuleState, name: str, state_label: str | None = None
    ) -> Granule:
        """Check `name`_align, `name`_bound and `name`_state of a granule argument."""
        if pa & GRANULE_MASK or not self.delegable(pa):
            align, bound, _, _ = self._label(name)
            fail(align if pa & GRANULE_MASK else bound)
        g = self._granules.get(pa)
        actual = g.state if g is not None else GranuleState.UNDELEGATED
        if actual is not state:
            fail(state_label or self._label(name)[2])
        return g  # type: ignore[return-value]

    def ns_buffer_check(self, pa: int, name: str) -> None:
        """`name`_align, `name`_bound, `name`_pas of a buffer the RMM reads as NS memory."""
        if pa & GRANULE_MASK or not self.delegable(pa) or self.gpt.get(pa) is not Pas.NONSECURE:
            align, bound, _, pas = self._label(name)
            fail(align if pa & GRANULE_MASK else bound if not self.delegable(pa) else pas)

    def read_ns_struct(self, pa: int, name: str, cls: type[S]) -> S:
        """Check an NS buffer and copy the structure out of it, atomically with
        respect to delegation of that granule."""
        held = self._stripes.acquire([pa])
        try:
            self.ns_buffer_check(pa, name)
            return cls.unpack(self.memory, pa)
        finally:
            self._stripes.release(held)

    def _owner_realms(self, owners: Iterable[int]) -> list[Realm]:
        found: dict[int, Realm] = {}
        for pa in owners:
            g = self._granules.get(pa)
            if (
                g is not None
                and g.state in (GranuleState.RD, GranuleState.REC)
                and g.realm is not None
            ):
                found[g.realm.id] = g.realm
        return [found[k] for k in sorted(found)]

    def locked(
        self,
        owners: Sequence[int] = (),
        pas: Sequence[int] = (),
        extra: Callable[[], Iterable[int]] | None = None,
    ) -> _Locked:
        """Hold the realm locks of the RD/REC granules `owners`, then the stripes of
        `pas` and of whatever `extra()` finds under the realm locks."""
        return _Locked(self, owners, pas, extra)

    # -- granule transitions ----------------------------------------------------------

    def delegate(self, call: Call, pa: int) -> None:
        self.gpt.set(pa, Pas.REALM)
        self.memory.zero(pa, GRANULE_SIZE)
        self._granules[pa] = Granule(pa)
        if self.trace.active:
            self._trace_granule(
                call, pa, GranuleState.UNDELEGATED, GranuleState.DELEGATED, None, None
            )

    def undelegate(self, call: Call, g: Granule) -> None:
        self.memory.zero(g.pa, GRANULE_SIZE)
        del self._granules[g.pa]
        self.gpt.set(g.pa, Pas.NONSECURE)
        if self.trace.active:
            self._trace_granule(
                call, g.pa, GranuleState.DELEGATED, GranuleState.UNDELEGATED, None, None
            )

    def transition(
        self,
        call: Call,
        g: Granule,
        new: GranuleState,
        *,
        realm: Realm | None = None,
        rec: Rec | None = None,
        ipa: int | None = None,
        level: int | None = None,
    ) -> None:
        """Move a tracked granule to `new`; a granule going back to DELEGATED is scrubbed."""
        old = g.state
        if self.trace.active:
            traced_realm = realm if realm is not None else g.realm
            traced_ipa = ipa if ipa is not None else g.ipa
            self._trace_granule(call, g.pa, old, new, traced_realm, traced_ipa)
        if new is GranuleState.DELEGATED:
            self.memory.zero(g.pa, GRANULE_SIZE)
            g.realm = g.rec = None
            g.ipa = g.level = None
        else:
            g.realm, g.rec, g.ipa, g.level = realm, rec, ipa, level
        g.state = new

    def tracked(self, pa: int) -> Granule:
        """The record of a granule the RTTs or a REC refer to (always tracked)."""
        return self._granules[pa]

    # -- realm registry -----------------------------------------------------------------

    def register_realm(self, vmid: int, make: Callable[[int], Realm]) -> Realm:
        """Reserve `vmid` (failure vmid_valid if another realm uses it) and give the
        realm `make` builds the next id."""
        with self._table_lock:
            check(vmid in self._vmids, "vmid_valid")
            realm = make(self._next_realm_id)
            self._next_realm_id += 1
            self._vmids.add(realm.vmid)
            self._realms[realm.id] = realm
            return realm

    def unregister_realm(self, realm: Realm) -> None:
        with self._table_lock:
            self._vmids.discard(realm.vmid)
            self._realms.pop(realm.id, None)

    # == trace ========================================================================

    def _trace_granule(
        self,
        call: Call,
        pa: int,
        old: GranuleState,
        new: GranuleState,
        realm: Realm | None,
        ipa: int | None,
    ) -> None:
        if self.trace.active:
            self.trace.emit(
                "granule",
                pa=pa,
                old=old.value,
                new=new.value,
                cmd=call.name,
                realm=realm.id if realm is not None else None,
                ipa=ipa,
            )

    def _trace_call(
        self,
        command: Command,
        call: Call,
        a: tuple[int, ...],
        result: RmiReturn | EnterRealm,
        seconds: float,
    ) -> None:
        if isinstance(result, EnterRealm):
            status, index, out, cond = RmiStatus.SUCCESS.rmi_name, 0, [], None
        else:
            st = RmiStatus(result.x[0] & 0xFF)
            status, index, out, cond = (
                st.rmi_name,
                result.index,
                list(result.x[1:]),
                result.condition,
            )
        self.trace.emit(
            "rmi",
            cpu=call.cpu,
            fid=command.fid,
            name=command.name,
            args=list(a[: command.nargs]),
            status=status,
            index=index,
            out=out,
            duration_us=round(seconds * 1e6, 1),
            realm=call.realm,
            condition=cond,
        )


class _Locked:
    """The context of ``Rmm.locked``: realm locks, then granule stripes (see the
    module docstring), retried if an owner granule changed meanwhile."""

    __slots__ = ("extra", "held", "owners", "pas", "realms", "rmm")

    def __init__(
        self,
        rmm: Rmm,
        owners: Sequence[int],
        pas: Sequence[int],
        extra: Callable[[], Iterable[int]] | None,
    ) -> None:
        self.rmm = rmm
        self.owners = owners
        self.pas = pas
        self.extra = extra

    def __enter__(self) -> None:
        rmm = self.rmm
        owners = self.owners
        stripes = rmm._stripes
        while True:
            realms = rmm._owner_realms(owners) if owners else []
            for r in realms:
                r.lock.acquire()
            try:
                more = list(self.extra()) if self.extra is not None else []
                held = stripes.acquire([*self.pas, *owners, *more])
            except BaseException:
                for r in reversed(realms):
                    r.lock.release()
                raise
            if not owners or rmm._owner_realms(owners) == realms:
                self.realms, self.held = realms, held
                return
            stripes.release(held)
            for r in reversed(realms):
                r.lock.release()

    def __exit__(self, *exc: object) -> None:
        self.rmm._stripes.release(self.held)
        for r in reversed(self.realms):
            r.lock.release()
