"""A running realm without QEMU: an activated realm with RECs, and a stand-in
for the platform that enters RECs and reports traps the way the world switch
does (registers in rec.context, then Rmm.realm_exit)."""

from __future__ import annotations

from typing import Any

from rmm_host import G, Host, RealmHandle

from cosim.arch import esr as E
from cosim.rmm.abi import RmiFid, RmiStatus
from cosim.rmm.exits import RealmTrap, RecExitDecision, Resume, TrapKind
from cosim.rmm.rec import Rec
from cosim.rmm.results import EnterRealm, RmiReturn
from cosim.rmm.structs import RmiRecEnter, RmiRecExit, RmiRecRun
from cosim.trace import Trace

F = RmiFid

S2SZ = 40
UNPROT = 1 << (S2SZ - 1)
"""The unprotected half of the realm's IPA space starts here."""
CODE = 0x0
"""Protected IPA of the realm's (measured) code page; the realm's PC starts here."""
BUF = 0x1000
"""Protected IPAs BUF .. BUF + 7 pages: RIPAS RAM, mapped (DATA)."""
UNBACKED = 0x10000
"""Protected IPA with RIPAS RAM and no DATA granule."""
RAM_TOP = 0x100000
"""[0, RAM_TOP) was RTT_INIT_RIPAS'd to RAM; above it is RIPAS EMPTY."""
EMPTY = 0x180000
VBAR = 0x8000
PSTATE_EL1H = 0x3C5


def smc_esr() -> int:
    return E.make(E.Ec.SMC64, 0)


def dabt_esr(
    *,
    write: bool,
    srt: int = 1,
    sas: int = 2,
    sse: bool = False,
    sf: bool = True,
    isv: bool = True,
    fsc: int = E.FSC_TRANSLATION_L0 + 3,
) -> int:
    iss = fsc | (srt << E.DABT_SRT_SHIFT) | (sas << E.DABT_SAS_SHIFT)
    iss |= (E.DABT_ISV if isv else 0) | (E.DABT_SSE if sse else 0)
    iss |= (E.DABT_SF if sf else 0) | (E.DABT_WNR if write else 0)
    return E.make(E.Ec.DABT_LOWER, iss)


class RealmRun:
    """An ACTIVE realm (s2sz 40) with `recs` RECs (only REC 0 runnable)."""

    def __init__(
        self,
        *,
        recs: int = 2,
        trace: Trace | None = None,
        realm: dict[str, Any] | None = None,
        **config: Any,
    ) -> None:
        self.h = Host(trace=trace, **config)
        self.rmm = self.h.rmm
        self.realm_handle: RealmHandle = self.h.create_realm(s2sz=S2SZ, **(realm or {}))
        self.rd = self.realm_handle.rd
        self.h.create_rtts(self.rd, 0, 3)
        self.h.ok(F.RTT_INIT_RIPAS, self.rd, 0, RAM_TOP)
        self.data = {CODE: self.h.data_create(self.rd, CODE, b"\x1f\x20\x03\xd5" * (G // 4))}
        for i in range(8):
            self.data[BUF + i * G] = self.h.data_create(self.rd, BUF + i * G, measure=False)
        for i in range(recs):
            self.h.create_rec(self.realm_handle, runnable=i == 0, pc=CODE, gprs=[0x1234])
        self.h.ok(F.REALM_ACTIVATE, self.rd)
        self.realm = self.rmm.realm_at(self.rd)
        assert self.realm is not None
        self.run_pa = self.h.ns()
        self.current: Rec | None = None
        self.entered: EnterRealm | None = None

    # -- RECs -----------------------------------------------------------------------------

    def rec_pa(self, index: int) -> int:
        return self.realm_handle.recs[index]

    def rec(self, index: int = 0) -> Rec:
        rec = self.rmm.rec_at(self.rec_pa(index))
        assert rec is not None
        return rec

    # -- the platform's side ------------------------------------------------------------

    def rec_enter(self, index: int = 0, **enter: Any) -> RmiReturn | EnterRealm:
        e = RmiRecEnter(**enter)
        e.pack(self.h.memory, self.run_pa)
        return self.h.call(F.REC_ENTER, self.rec_pa(index), self.run_pa)

    def enter(self, index: int = 0, **enter: Any) -> RecExitDecision | None:
        """RMI_REC_ENTER (which must pass) and Rmm.realm_entry; the REC then runs
        (self.current) unless completing the previous exit exited again."""
        r = self.rec_enter(index, **enter)
        assert isinstance(r, EnterRealm), r
        self.current = r.rec
        self.entered = r
        d = self.rmm.realm_entry(r.rec, r.enter)
        if d is not None:
            assert d.x0 == RmiStatus.SUCCESS
            assert RmiRecRun.unpack(self.h.memory, self.run_pa).exit == d.exit
            self.current = None
        return d

    def trap(
        self, kind: TrapKind = TrapKind.SYNC, esr: int = 0, far: int = 0, hpfar: int = 0
    ) -> Resume | RecExitDecision:
        assert self.current is not None, "no REC is running"
        d = self.rmm.realm_exit(self.current, RealmTrap(kind, esr, far, hpfar))
        if isinstance(d, RecExitDecision):
            assert d.x0 == RmiStatus.SUCCESS
            assert RmiRecRun.unpack(self.h.memory, self.run_pa).exit == d.exit
            self.current = None
        return d

    def leave(self) -> RmiRecExit:
        """The running REC exits to the host (an IRQ)."""
        return self.exit_of(self.trap(TrapKind.IRQ))

    def smc(self, fid: int, *args: int) -> Resume | RecExitDecision:
        assert self.current is not None
        gprs = self.current.context.gprs
        gprs[0] = fid
        for i, a in enumerate(args, 1):
            gprs[i] = a & 0xFFFF_FFFF_FFFF_FFFF
        return self.trap(esr=smc_esr())

    def call(self, fid: int, *args: int) -> list[int]:
        """An SMC handled inside the RMM: returns X0..X3 (and checks PC += 4)."""
        assert self.current is not None
        pc = self.current.context.pc
        r = self.smc(fid, *args)
        assert isinstance(r, Resume), r
        assert self.current.context.pc == pc + 4
        return self.current.context.gprs[:4]

    def exit_of(self, d: Resume | RecExitDecision | None) -> RmiRecExit:
        assert isinstance(d, RecExitDecision), d
        return d.exit

    @property
    def x(self) -> list[int]:
        rec = self.current or self.rec(0)
        return rec.context.gprs

    def read(self, ipa: int, size: int) -> bytes:
        """Bytes of a mapped protected page (DATA) of the realm."""
        page = ipa & ~(G - 1)
        return self.h.memory.read(self.data[page] + (ipa - page), size)
