"""The RMI v1.0 failure conditions, command by command, as data.

Each row is one failure condition of the specification (DEN0137 1.0-rel0,
section B4.3.N.2 of the command, see ``spec_v1_0``), under the spec's label.
Within a command the rows are in the priority order this RMM checks them (the
order of the spec's table, which meets every ordering constraint the spec
lists).  Each row builds a situation in which that condition (and no
condition checked before it) holds, and gives the status and index the RMM
must return.  The RMM reports the label of the condition that decided the
result, so the tests also check that the intended condition fired.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rmm_host import RAM_BASE, G, Host

from cosim.arch.pas import Pas
from cosim.rmm.abi import (
    REALM_FLAG_LPA2,
    REALM_FLAG_PMU,
    REALM_FLAG_SVE,
    REC_ENTER_EMUL_MMIO,
    PsciFid,
    PsciStatus,
    Ripas,
    RmiFid,
    RmiStatus,
    u64,
)
from cosim.rmm.realm import RealmState
from cosim.rmm.rec import PsciRequest, RecState
from cosim.rmm.structs import RmiRecEnter

F = RmiFid
INPUT = RmiStatus.ERROR_INPUT
REALM = RmiStatus.ERROR_REALM
REC = RmiStatus.ERROR_REC
RTT = RmiStatus.ERROR_RTT

UNPROT = 1 << 39
"""First unprotected IPA of the test realms (s2sz = 40)."""
IPA_LIMIT = 1 << 40
NS_DESC = 0xD8
"""KVM's attributes for unprotected mappings: MemAttr[2:0] = 0b110, S2AP = RW."""


class World:
    """The starting point of every failure-condition test.

    * ``rd``: a NEW realm (s2sz 40, starting level 1, 2 concatenated roots) with
      RTTs L2 [0, 1 GiB) and L3 [0, 2 MiB), a DATA granule at IPA 0x1000, REC 0
      (runnable) and REC 1 (not runnable), an NS mapping at UNPROT (level 3).
    * ``ard``: an ACTIVE realm with one runnable REC ``arec``.
    * ``spare``: a DELEGATED granule; ``ns``: an NS granule; ``src``: NS data.
    """

    def __init__(self, **config: Any) -> None:
        h = self.h = Host(ram_size=4 << 20, **config)
        self.realm = h.create_realm()
        self.rd = self.realm.rd
        self.l2, self.l3 = h.create_rtts(self.rd, 0, 3)
        self.data_ipa = 0x1000
        self.data = h.data_create(self.rd, self.data_ipa)
        self.rec = h.create_rec(self.realm)
        self.rec1 = h.create_rec(self.realm, runnable=False)
        self.unprot_rtts = h.create_rtts(self.rd, UNPROT, 3)
        self.ns_target = h.ns()
        h.ok(F.RTT_MAP_UNPROTECTED, self.rd, UNPROT, 3, self.ns_target | NS_DESC)
        self.active = h.create_realm()
        self.ard = self.active.rd
        self.arec = h.create_rec(self.active)
        h.ok(F.REALM_ACTIVATE, self.ard)
        self.spare = h.delegate()
        self.ns = h.ns()
        self.src = h.ns(bytes(range(256)) * 16)
        self.run = h.ns()
        self.params = h.ns()

    @property
    def rmm(self) -> Any:
        return self.h.rmm

    def undelegated(self) -> int:
        return self.h.ns()

    def realm_params(self, **kw: Any) -> int:
        """An NS granule holding valid RmiRealmParams (roots delegated), overridden by kw."""
        p = self.h.realm_params(**{"vmid": 100, **kw})
        if "rtt_base" not in kw:
            p.rtt_base = self.h.delegate(2, align=2 * G)
        return self.h.ns(p.to_bytes())

    def rec_params(self, index: int = 2, **kw: Any) -> int:
        p = self.h.rec_params(index)
        for k, v in kw.items():
            setattr(p, k, v)
        return self.h.ns(p.to_bytes())

    def rec_obj(self, pa: int) -> Any:
        return self.rmm.rec_at(pa)

    def enter_args(self, **kw: Any) -> int:
        self.h.memory.write(self.run, RmiRecEnter(**kw).to_bytes())
        return self.run

    def psci_request(self, rec: int, target_index: int = 1, fid: int = PsciFid.CPU_ON_64) -> None:
        self.rec_obj(rec).psci_pending = PsciRequest(fid, target_index, 0x8000_0000, 7)

    def ripas_request(self, rec: int, base: int, top: int, value: Ripas = Ripas.RAM) -> None:
        r = self.rec_obj(rec)
        r.ripas_addr, r.ripas_top, r.ripas_value = base, top, value

    def running(self, rec: int) -> int:
        """Mark a REC as inside RMI_REC_ENTER on another CPU."""
        self.rec_obj(rec).state = RecState.RUNNING
        return rec


Args = Callable[[World], tuple[int, ...]]


@dataclass(frozen=True)
class Condition:
    command: RmiFid
    label: str
    status: RmiStatus
    args: Args
    index: int = 0
    variant: str = ""
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.command.name}-{self.label}" + (f"-{self.variant}" if self.variant else "")

    @property
    def section(self) -> str:
        """The spec section that lists this failure condition."""
        return f"{RMI_SECTIONS[self.command]}.2"


C = Condition

RMI_SECTIONS = {
    F.DATA_CREATE: "B4.3.1",
    F.DATA_CREATE_UNKNOWN: "B4.3.2",
    F.DATA_DESTROY: "B4.3.3",
    F.FEATURES: "B4.3.4",
    F.GRANULE_DELEGATE: "B4.3.5",
    F.GRANULE_UNDELEGATE: "B4.3.6",
    F.PSCI_COMPLETE: "B4.3.7",
    F.REALM_ACTIVATE: "B4.3.8",
    F.REALM_CREATE: "B4.3.9",
    F.REALM_DESTROY: "B4.3.10",
    F.REC_AUX_COUNT: "B4.3.11",
    F.REC_CREATE: "B4.3.12",
    F.REC_DESTROY: "B4.3.13",
    F.REC_ENTER: "B4.3.14",
    F.RTT_CREATE: "B4.3.15",
    F.RTT_DESTROY: "B4.3.16",
    F.RTT_FOLD: "B4.3.17",
    F.RTT_INIT_RIPAS: "B4.3.18",
    F.RTT_MAP_UNPROTECTED: "B4.3.19",
    F.RTT_READ_ENTRY: "B4.3.20",
    F.RTT_SET_RIPAS: "B4.3.21",
    F.RTT_UNMAP_UNPROTECTED: "B4.3.22",
    F.VERSION: "B4.3.23",
}
"""Where each RMI command is defined (B4.3.N; its failure conditions are B4.3.N.2)."""

BAD_ALIGN = 0x800
OUT_OF_RAM = RAM_BASE - G


def _rd_conditions(cmd: RmiFid, rest: Callable[[World], tuple[int, ...]] = lambda w: ()) -> list[C]:
    return [
        C(cmd, "rd_align", INPUT, lambda w: (w.rd + BAD_ALIGN, *rest(w))),
        C(cmd, "rd_bound", INPUT, lambda w: (OUT_OF_RAM, *rest(w))),
        C(cmd, "rd_state", INPUT, lambda w: (w.spare, *rest(w))),
    ]


def _realm_create_rd(**kw: Any) -> Args:
    return lambda w: (w.h.delegate(), w.realm_params(**kw))


def _rtt_state(w: World) -> tuple[int, ...]:
    base = w.h.alloc(2, align=2 * G)
    w.h.ok(F.GRANULE_DELEGATE, base)  # the second root stays UNDELEGATED
    return (w.h.delegate(), w.realm_params(rtt_base=base))


def _realm_live_rtt(w: World) -> tuple[int, ...]:
    return (w.rd,)


def _realm_live_rec(w: World) -> tuple[int, ...]:
    r = w.h.create_realm()
    w.h.create_rec(r)
    return (r.rd,)


def _rec_create(**kw: Any) -> Args:
    return lambda w: (w.rd, w.h.delegate(), w.rec_params(**kw))


def _aux_params(w: World, i: int, value: int | Callable[[World], int]) -> int:
    p = w.h.rec_params(2)
    p.aux[i] = value(w) if callable(value) else value
    return w.h.ns(p.to_bytes())


def _aux_alias(w: World) -> tuple[int, ...]:
    rec = w.h.delegate()
    p = w.h.rec_params(2)
    p.aux[3] = rec
    return (w.rd, rec, w.h.ns(p.to_bytes()))


def _aux_dup(w: World) -> tuple[int, ...]:
    p = w.h.rec_params(2)
    p.aux[5] = p.aux[4]
    return (w.rd, w.h.delegate(), w.h.ns(p.to_bytes()))


def _num_recs(w: World) -> tuple[int, ...]:
    w.h.create_rec(w.realm)  # REC 2: the last of the 2**2 - 1 that max_recs_order = 2 allows
    return (w.rd, w.h.delegate(), w.rec_params(3))


def _system_off(w: World) -> tuple[int, ...]:
    w.rmm.realm_at(w.ard).state = RealmState.SYSTEM_OFF
    return (w.arec, w.run)


def _not_runnable(w: World) -> tuple[int, ...]:
    w.rec_obj(w.arec).runnable = False  # as after the realm's PSCI_CPU_OFF
    return (w.arec, w.run)


def _rec_psci(w: World) -> tuple[int, ...]:
    w.psci_request(w.arec, 1)
    return (w.arec, w.run)


LR_PENDING = 1 << 62
LR_GROUP1 = 1 << 60


def _gic(hcr: int = 0, lrs: list[int] | None = None) -> Args:
    return lambda w: (w.arec, w.enter_args(gicv3_hcr=hcr, gicv3_lrs=lrs or [0] * 16))


def _psci(
    target: Callable[[World], int],
    status: int = 0,
    setup: bool = True,
    fid: int = PsciFid.CPU_ON_64,
    target_index: int = 1,
) -> Args:
    def build(w: World) -> tuple[int, ...]:
        if setup:
            w.psci_request(w.rec, target_index, fid)
        return (w.rec, target(w), u64(status))

    return build


def _destroyed_at_0x8000(w: World) -> None:
    w.h.ok(F.DATA_CREATE, w.rd, w.h.delegate(), 0x8000, w.src, 0)
    w.h.ok(F.DATA_DESTROY, w.rd, 0x8000)


def _set_ripas(
    base: int = 0x4000,
    top: int = 0x6000,
    req: tuple[int, int] = (0x4000, 0x8000),
    rec: Callable[[World], int] = lambda w: w.rec,
    rd: Callable[[World], int] = lambda w: w.rd,
    setup: Callable[[World], None] | None = None,
) -> Args:
    def build(w: World) -> tuple[int, ...]:
        w.ripas_request(w.rec, *req)
        if setup:
            setup(w)
        return (rd(w), rec(w), base, top)

    return build


HIGH_RAM = {"lpa2": True, "pa_width": 52, "s2sz_max": 52, "ram_base": (1 << 48) - (2 << 20)}
"""An LPA2-capable RMM whose test RAM spans 2**48: the world's granules lie
below it, a granule at 2**48 is a 52-bit output address."""


def _high_granule(w: World) -> int:
    """A DELEGATED granule at PA 2**48 (HIGH_RAM worlds)."""
    return w.h.delegate_at(1 << 48)

P2M = 0x20_0000
"""2 MiB: the first IPA whose level-2 entry is not a table in the world realm."""


CONDITIONS: list[Condition] = [
    # -- RMI_VERSION (no failure conditions; an unsupported request is reported) --
    C(F.VERSION, "version", INPUT, lambda w: (0x20000,), variant="2.0"),
    C(F.VERSION, "version", INPUT, lambda w: (0x10001,), variant="1.1"),
    # -- RMI_GRANULE_DELEGATE --
    C(F.GRANULE_DELEGATE, "gran_align", INPUT, lambda w: (w.ns + BAD_ALIGN,)),
    C(F.GRANULE_DELEGATE, "gran_bound", INPUT, lambda w: (OUT_OF_RAM,), variant="below_ram"),
    C(F.GRANULE_DELEGATE, "gran_bound", INPUT, lambda w: (w.h.ram_end,), variant="above_ram"),
    C(F.GRANULE_DELEGATE, "gran_bound", INPUT, lambda w: (1 << 48,), variant="beyond_pa"),
    C(F.GRANULE_DELEGATE, "gran_state", INPUT, lambda w: (w.spare,), variant="delegated"),
    C(F.GRANULE_DELEGATE, "gran_state", INPUT, lambda w: (w.data,), variant="data"),
    C(F.GRANULE_DELEGATE, "gran_gpt", INPUT, lambda w: (w.h.gpt.set(w.ns, Pas.SECURE), w.ns)[1:]),
    # -- RMI_GRANULE_UNDELEGATE --
    C(F.GRANULE_UNDELEGATE, "gran_align", INPUT, lambda w: (w.spare + BAD_ALIGN,)),
    C(F.GRANULE_UNDELEGATE, "gran_bound", INPUT, lambda w: (OUT_OF_RAM,)),
    C(F.GRANULE_UNDELEGATE, "gran_state", INPUT, lambda w: (w.ns,), variant="undelegated"),
    C(F.GRANULE_UNDELEGATE, "gran_state", INPUT, lambda w: (w.rd,), variant="rd"),
    C(F.GRANULE_UNDELEGATE, "gran_state", INPUT, lambda w: (w.l3,), variant="rtt"),
    # -- RMI_REALM_CREATE --
    C(F.REALM_CREATE, "params_align", INPUT, lambda w: (w.spare, w.ns + 8)),
    C(F.REALM_CREATE, "params_bound", INPUT, lambda w: (w.spare, OUT_OF_RAM)),
    C(F.REALM_CREATE, "params_pas", INPUT, lambda w: (w.h.delegate(), w.spare)),
    C(F.REALM_CREATE, "params_valid", INPUT, _realm_create_rd(hash_algo=2), variant="hash_algo"),
    C(F.REALM_CREATE, "params_valid", INPUT, _realm_create_rd(flags=1 << 3), variant="flags"),
    C(F.REALM_CREATE, "params_valid", INPUT, _realm_create_rd(s2sz=31), variant="s2sz"),
    C(F.REALM_CREATE, "params_valid", INPUT, _realm_create_rd(num_bps=0), variant="num_bps"),
    C(F.REALM_CREATE, "params_valid", INPUT, _realm_create_rd(num_wps=0), variant="num_wps"),
    C(F.REALM_CREATE, "params_supp", INPUT, _realm_create_rd(s2sz=49), variant="s2sz"),
    C(
        F.REALM_CREATE,
        "params_supp",
        INPUT,
        _realm_create_rd(flags=REALM_FLAG_LPA2),
        variant="lpa2",
    ),
    C(
        F.REALM_CREATE,
        "params_supp",
        INPUT,
        _realm_create_rd(flags=REALM_FLAG_SVE, sve_vl=16),
        variant="sve_vl",
    ),
    C(
        F.REALM_CREATE,
        "params_supp",
        INPUT,
        _realm_create_rd(flags=REALM_FLAG_SVE),
        variant="sve",
        config={"sve_en": False},
    ),
    C(
        F.REALM_CREATE,
        "params_supp",
        INPUT,
        _realm_create_rd(flags=REALM_FLAG_PMU, pmu_num_ctrs=7),
        variant="pmu_ctrs",
    ),
    C(F.REALM_CREATE, "params_supp", INPUT, _realm_create_rd(num_bps=6), variant="num_bps"),
    C(F.REALM_CREATE, "params_supp", INPUT, _realm_create_rd(num_wps=4), variant="num_wps"),
    C(
        F.REALM_CREATE,
        "params_supp",
        INPUT,
        _realm_create_rd(hash_algo=1),
        variant="hash",
        config={"hash_algorithms": (0,)},
    ),
    C(
        F.REALM_CREATE,
        "alias",
        INPUT,
        lambda w: (lambda base: (base + G, w.realm_params(rtt_base=base)))(w.h.delegate(2, 2 * G)),
    ),
    C(F.REALM_CREATE, "rd_align", INPUT, lambda w: (w.spare + BAD_ALIGN, w.realm_params())),
    C(F.REALM_CREATE, "rd_bound", INPUT, lambda w: (OUT_OF_RAM, w.realm_params())),
    C(F.REALM_CREATE, "rd_state", INPUT, lambda w: (w.ns, w.realm_params()), variant="undelegated"),
    C(F.REALM_CREATE, "rd_state", INPUT, lambda w: (w.rd, w.realm_params()), variant="rd"),
    C(
        F.REALM_CREATE,
        "rtt_align",
        INPUT,
        lambda w: (w.h.delegate(), w.realm_params(rtt_base=w.h.delegate(2, 2 * G) + 8)),
        variant="granule",
    ),
    C(
        F.REALM_CREATE,
        "rtt_align",
        INPUT,
        lambda w: (w.h.delegate(), w.realm_params(rtt_base=w.h.delegate(3, 2 * G) + G)),
        variant="concatenated",
    ),
    C(
        F.REALM_CREATE,
        "rtt_num_level",
        INPUT,
        _realm_create_rd(rtt_num_start=1),
        variant="num_start",
    ),
    C(
        F.REALM_CREATE,
        "rtt_num_level",
        INPUT,
        _realm_create_rd(rtt_level_start=2),
        variant="sl2_s2sz40",
    ),
    C(F.REALM_CREATE, "rtt_num_level", INPUT, _realm_create_rd(rtt_level_start=-1), variant="sl-1"),
    C(F.REALM_CREATE, "rtt_num_level", INPUT, _realm_create_rd(rtt_level_start=4), variant="sl4"),
    C(F.REALM_CREATE, "rtt_num_level", INPUT, _realm_create_rd(s2sz=44), variant="s2sz44_sl1"),
    C(
        F.REALM_CREATE,
        "rtt_num_level",
        INPUT,
        _realm_create_rd(s2sz=40, rtt_level_start=0, rtt_num_start=1),
        variant="sl0_pa40",
        config={"pa_width": 40},
    ),
    C(F.REALM_CREATE, "rtt_state", INPUT, _rtt_state),
    C(F.REALM_CREATE, "vmid_valid", INPUT, _realm_create_rd(vmid=1), variant="in_use"),
    C(
        F.REALM_CREATE,
        "vmid_valid",
        INPUT,
        _realm_create_rd(vmid=1 << 8),
        variant="width",
        config={"vmid_bits": 8},
    ),
    # -- RMI_REALM_ACTIVATE --
    *_rd_conditions(F.REALM_ACTIVATE),
    C(F.REALM_ACTIVATE, "realm_state", REALM, lambda w: (w.ard,)),
    # -- RMI_REALM_DESTROY --
    *_rd_conditions(F.REALM_DESTROY),
    C(F.REALM_DESTROY, "realm_live", REALM, _realm_live_rtt, variant="rtts_recs"),
    C(F.REALM_DESTROY, "realm_live", REALM, _realm_live_rec, variant="rec"),
    # -- RMI_REC_AUX_COUNT --
    *_rd_conditions(F.REC_AUX_COUNT),
    # -- RMI_REC_CREATE --
    C(F.REC_CREATE, "params_align", INPUT, lambda w: (w.rd, w.spare, w.ns + 8)),
    C(F.REC_CREATE, "params_bound", INPUT, lambda w: (w.rd, w.spare, OUT_OF_RAM)),
    C(F.REC_CREATE, "params_pas", INPUT, lambda w: (w.rd, w.h.delegate(), w.spare)),
    C(F.REC_CREATE, "rec_align", INPUT, lambda w: (w.rd, w.spare + BAD_ALIGN, w.rec_params())),
    C(F.REC_CREATE, "rec_bound", INPUT, lambda w: (w.rd, OUT_OF_RAM, w.rec_params())),
    C(F.REC_CREATE, "rec_state", INPUT, lambda w: (w.rd, w.ns, w.rec_params())),
    C(F.REC_CREATE, "rd_align", INPUT, lambda w: (w.rd + BAD_ALIGN, w.spare, w.rec_params())),
    C(F.REC_CREATE, "rd_bound", INPUT, lambda w: (OUT_OF_RAM, w.spare, w.rec_params())),
    C(F.REC_CREATE, "rd_state", INPUT, lambda w: (w.h.delegate(), w.spare, w.rec_params())),
    C(F.REC_CREATE, "realm_state", REALM, lambda w: (w.ard, w.spare, w.rec_params(1))),
    C(F.REC_CREATE, "num_recs", REALM, _num_recs, config={"max_recs_order": 2}),
    C(F.REC_CREATE, "mpidr_index", INPUT, _rec_create(mpidr=3), variant="skip"),
    C(F.REC_CREATE, "mpidr_index", INPUT, _rec_create(mpidr=1), variant="reuse"),
    C(F.REC_CREATE, "num_aux", INPUT, _rec_create(num_aux=15)),
    C(
        F.REC_CREATE,
        "aux_align",
        INPUT,
        lambda w: (w.rd, w.h.delegate(), _aux_params(w, 2, w.spare + 8)),
    ),
    C(F.REC_CREATE, "aux_alias", INPUT, _aux_alias, variant="rec"),
    C(F.REC_CREATE, "aux_alias", INPUT, _aux_dup, variant="duplicate"),
    C(F.REC_CREATE, "aux_state", INPUT, lambda w: (w.rd, w.h.delegate(), _aux_params(w, 7, w.ns))),
    C(
        F.REC_CREATE,
        "aux_state",
        INPUT,
        lambda w: (w.rd, w.h.delegate(), _aux_params(w, 2, OUT_OF_RAM)),
        variant="not_delegable",
    ),
    # -- RMI_REC_DESTROY --
    C(F.REC_DESTROY, "rec_align", INPUT, lambda w: (w.rec + BAD_ALIGN,)),
    C(F.REC_DESTROY, "rec_bound", INPUT, lambda w: (OUT_OF_RAM,)),
    C(F.REC_DESTROY, "rec_gran_state", INPUT, lambda w: (w.spare,)),
    C(F.REC_DESTROY, "rec_state", REC, lambda w: (w.running(w.arec),)),
    # -- RMI_REC_ENTER --
    C(F.REC_ENTER, "run_align", INPUT, lambda w: (w.arec, w.run + 8)),
    C(F.REC_ENTER, "run_bound", INPUT, lambda w: (w.arec, OUT_OF_RAM)),
    C(F.REC_ENTER, "run_pas", INPUT, lambda w: (w.arec, w.spare)),
    C(F.REC_ENTER, "rec_align", INPUT, lambda w: (w.arec + BAD_ALIGN, w.run)),
    C(F.REC_ENTER, "rec_bound", INPUT, lambda w: (OUT_OF_RAM, w.run)),
    C(F.REC_ENTER, "rec_gran_state", INPUT, lambda w: (w.spare, w.run)),
    C(F.REC_ENTER, "rec_state", REC, lambda w: (w.running(w.arec), w.run)),
    C(F.REC_ENTER, "realm_new", REALM, lambda w: (w.rec, w.run), index=0),
    C(F.REC_ENTER, "system_off", REALM, _system_off, index=1),
    C(F.REC_ENTER, "rec_runnable", REC, _not_runnable),
    C(F.REC_ENTER, "rec_psci", REC, _rec_psci),
    C(F.REC_ENTER, "rec_gicv3", REC, _gic(hcr=1), variant="hcr_en"),
    C(F.REC_ENTER, "rec_gicv3", REC, _gic(hcr=1 << 8), variant="hcr_reserved"),
    C(F.REC_ENTER, "rec_gicv3", REC, _gic(lrs=[LR_PENDING | 1 << 61 | 27]), variant="lr_hw"),
    C(F.REC_ENTER, "rec_gicv3", REC, _gic(lrs=[LR_PENDING | 1020]), variant="lr_special_intid"),
    C(
        F.REC_ENTER,
        "rec_gicv3",
        REC,
        _gic(lrs=[LR_PENDING | 27, LR_PENDING | LR_GROUP1 | 27]),
        variant="lr_duplicate",
    ),
    C(F.REC_ENTER, "rec_gicv3", REC, _gic(lrs=[LR_PENDING | 1 << 33 | 27]), variant="lr_pintid"),
    C(F.REC_ENTER, "rec_mmio", REC, lambda w: (w.arec, w.enter_args(flags=REC_ENTER_EMUL_MMIO))),
    # -- RMI_PSCI_COMPLETE --
    C(F.PSCI_COMPLETE, "alias", INPUT, _psci(lambda w: w.rec)),
    C(F.PSCI_COMPLETE, "calling_align", INPUT, lambda w: (w.rec + BAD_ALIGN, w.rec1, 0)),
    C(F.PSCI_COMPLETE, "calling_bound", INPUT, lambda w: (OUT_OF_RAM, w.rec1, 0)),
    C(F.PSCI_COMPLETE, "calling_state", INPUT, lambda w: (w.spare, w.rec1, 0)),
    C(F.PSCI_COMPLETE, "target_align", INPUT, _psci(lambda w: w.rec1 + BAD_ALIGN)),
    C(F.PSCI_COMPLETE, "target_bound", INPUT, _psci(lambda w: OUT_OF_RAM)),
    C(F.PSCI_COMPLETE, "target_state", INPUT, _psci(lambda w: w.spare)),
    C(F.PSCI_COMPLETE, "pending", INPUT, _psci(lambda w: w.rec1, setup=False), variant="none"),
    C(
        F.PSCI_COMPLETE,
        "pending",
        INPUT,
        lambda w: (w.psci_request(w.rec), w.running(w.rec), w.rec1, 0)[1:],
        variant="running",
    ),
    C(F.PSCI_COMPLETE, "owner", INPUT, _psci(lambda w: w.arec, target_index=0)),
    C(F.PSCI_COMPLETE, "target", INPUT, _psci(lambda w: w.rec1, target_index=2)),
    C(
        F.PSCI_COMPLETE,
        "status",
        INPUT,
        _psci(lambda w: w.rec1, PsciStatus.INVALID_PARAMETERS),
        variant="cpu_on_invalid",
    ),
    C(
        F.PSCI_COMPLETE,
        "status",
        INPUT,
        _psci(lambda w: w.rec1, PsciStatus.DENIED, fid=PsciFid.AFFINITY_INFO_64),
        variant="affinity_denied",
    ),
    C(
        F.PSCI_COMPLETE,
        "status",
        INPUT,
        lambda w: (
            w.rec_obj(w.rec1).__setattr__("runnable", True),
            *_psci(lambda w: w.rec1, PsciStatus.DENIED)(w),
        )[1:],
        variant="cpu_on_denied_already_on",
    ),
    # -- RMI_RTT_CREATE --
    *_rd_conditions(F.RTT_CREATE, lambda w: (w.spare, P2M, 3)),
    C(F.RTT_CREATE, "level_bound", INPUT, lambda w: (w.rd, w.spare, 0, 1), variant="start_level"),
    C(F.RTT_CREATE, "level_bound", INPUT, lambda w: (w.rd, w.spare, 0, 4), variant="4"),
    C(F.RTT_CREATE, "level_bound", INPUT, lambda w: (w.rd, w.spare, 0, u64(-1)), variant="-1"),
    C(F.RTT_CREATE, "ipa_align", INPUT, lambda w: (w.rd, w.spare, P2M + G, 3)),
    C(F.RTT_CREATE, "ipa_bound", INPUT, lambda w: (w.rd, w.spare, IPA_LIMIT, 3)),
    C(F.RTT_CREATE, "rtt_align", INPUT, lambda w: (w.rd, w.spare + BAD_ALIGN, P2M, 3)),
    C(F.RTT_CREATE, "rtt_bound", INPUT, lambda w: (w.rd, OUT_OF_RAM, P2M, 3)),
    C(F.RTT_CREATE, "rtt_state", INPUT, lambda w: (w.rd, w.ns, P2M, 3)),
    C(
        F.RTT_CREATE,
        "rtt_bound2",
        INPUT,
        lambda w: (w.rd, _high_granule(w), P2M, 3),
        config=HIGH_RAM,
    ),
    C(F.RTT_CREATE, "rtt_walk", RTT, lambda w: (w.rd, w.spare, 1 << 30, 3), index=1),
    C(F.RTT_CREATE, "rtte_state", RTT, lambda w: (w.rd, w.spare, 0, 3), index=2, variant="l3"),
    C(F.RTT_CREATE, "rtte_state", RTT, lambda w: (w.rd, w.spare, 0, 2), index=1, variant="l2"),
    # -- RMI_RTT_DESTROY --
    *_rd_conditions(F.RTT_DESTROY, lambda w: (0, 3)),
    C(F.RTT_DESTROY, "level_bound", INPUT, lambda w: (w.rd, 0, 1)),
    C(F.RTT_DESTROY, "ipa_align", INPUT, lambda w: (w.rd, G, 3)),
    C(F.RTT_DESTROY, "ipa_bound", INPUT, lambda w: (w.rd, IPA_LIMIT, 3)),
    C(F.RTT_DESTROY, "rtt_walk", RTT, lambda w: (w.rd, 1 << 30, 3), index=1),
    C(F.RTT_DESTROY, "rtte_state", RTT, lambda w: (w.rd, P2M, 3), index=2),
    C(F.RTT_DESTROY, "rtt_live", RTT, lambda w: (w.rd, 0, 3), index=3, variant="data"),
    C(F.RTT_DESTROY, "rtt_live", RTT, lambda w: (w.rd, 0, 2), index=2, variant="table"),
    # -- RMI_RTT_FOLD --
    *_rd_conditions(F.RTT_FOLD, lambda w: (0, 3)),
    C(F.RTT_FOLD, "level_bound", INPUT, lambda w: (w.rd, 0, 1)),
    C(F.RTT_FOLD, "ipa_align", INPUT, lambda w: (w.rd, G, 3)),
    C(F.RTT_FOLD, "ipa_bound", INPUT, lambda w: (w.rd, IPA_LIMIT, 3)),
    C(F.RTT_FOLD, "rtt_walk", RTT, lambda w: (w.rd, 1 << 30, 3), index=1),
    C(F.RTT_FOLD, "rtte_state", RTT, lambda w: (w.rd, P2M, 3), index=2),
    C(F.RTT_FOLD, "rtt_homo", RTT, lambda w: (w.rd, 0, 3), index=3, variant="mixed"),
    C(F.RTT_FOLD, "rtt_homo", RTT, lambda w: (w.rd, 0, 2), index=2, variant="table"),
    # -- RMI_RTT_READ_ENTRY --
    *_rd_conditions(F.RTT_READ_ENTRY, lambda w: (0, 3)),
    C(F.RTT_READ_ENTRY, "level_bound", INPUT, lambda w: (w.rd, 0, 0), variant="0"),
    C(F.RTT_READ_ENTRY, "level_bound", INPUT, lambda w: (w.rd, 0, 4), variant="4"),
    C(F.RTT_READ_ENTRY, "ipa_align", INPUT, lambda w: (w.rd, G, 2)),
    C(F.RTT_READ_ENTRY, "ipa_bound", INPUT, lambda w: (w.rd, IPA_LIMIT, 3)),
    # -- RMI_RTT_MAP_UNPROTECTED (attr_valid needs the realm's descriptor format) --
    *_rd_conditions(F.RTT_MAP_UNPROTECTED, lambda w: (UNPROT + G, 3, w.ns | NS_DESC)),
    C(
        F.RTT_MAP_UNPROTECTED,
        "attr_valid",
        INPUT,
        lambda w: (w.rd, UNPROT + G, 3, w.ns | NS_DESC | 1),
        variant="valid_bit",
    ),
    C(
        F.RTT_MAP_UNPROTECTED,
        "attr_valid",
        INPUT,
        lambda w: (w.rd, UNPROT + G, 3, w.ns | NS_DESC | 1 << 10),
        variant="af",
    ),
    C(
        F.RTT_MAP_UNPROTECTED,
        "attr_valid",
        INPUT,
        lambda w: (w.rd, UNPROT + G, 3, w.ns | 0x10 | 0xC0),
        variant="memattr_reserved",
    ),
    C(
        F.RTT_MAP_UNPROTECTED,
        "attr_valid",
        INPUT,
        lambda w: (w.rd, UNPROT + G, 3, w.ns | NS_DESC | 1 << 55),
        variant="ns_bit",
    ),
    C(
        F.RTT_MAP_UNPROTECTED,
        "level_bound",
        INPUT,
        lambda w: (w.rd, UNPROT, 0, NS_DESC),
        variant="0",
    ),
    C(
        F.RTT_MAP_UNPROTECTED,
        "level_bound",
        INPUT,
        lambda w: (w.rd, UNPROT, 4, NS_DESC),
        variant="4",
    ),
    C(F.RTT_MAP_UNPROTECTED, "addr_align", INPUT, lambda w: (w.rd, UNPROT + P2M, 2, G | NS_DESC)),
    C(
        F.RTT_MAP_UNPROTECTED,
        "addr_bound",
        INPUT,
        lambda w: (w.rd, UNPROT + G, 3, 1 << 48 | NS_DESC),
    ),
    C(F.RTT_MAP_UNPROTECTED, "ipa_align", INPUT, lambda w: (w.rd, UNPROT + G, 2, NS_DESC)),
    C(
        F.RTT_MAP_UNPROTECTED,
        "ipa_bound",
        INPUT,
        lambda w: (w.rd, G, 3, w.ns | NS_DESC),
        variant="protected",
    ),
    C(
        F.RTT_MAP_UNPROTECTED,
        "ipa_bound",
        INPUT,
        lambda w: (w.rd, IPA_LIMIT, 3, w.ns | NS_DESC),
        variant="beyond",
    ),
    C(
        F.RTT_MAP_UNPROTECTED,
        "rtt_walk",
        RTT,
        lambda w: (w.rd, UNPROT + (1 << 30), 3, w.ns | NS_DESC),
        index=1,
    ),
    C(
        F.RTT_MAP_UNPROTECTED,
        "rtte_state",
        RTT,
        lambda w: (w.rd, UNPROT, 3, w.ns | NS_DESC),
        index=3,
    ),
    # -- RMI_RTT_UNMAP_UNPROTECTED --
    *_rd_conditions(F.RTT_UNMAP_UNPROTECTED, lambda w: (UNPROT, 3)),
    C(F.RTT_UNMAP_UNPROTECTED, "level_bound", INPUT, lambda w: (w.rd, UNPROT, 0)),
    C(F.RTT_UNMAP_UNPROTECTED, "ipa_align", INPUT, lambda w: (w.rd, UNPROT + G, 2)),
    C(F.RTT_UNMAP_UNPROTECTED, "ipa_bound", INPUT, lambda w: (w.rd, G, 3)),
    C(F.RTT_UNMAP_UNPROTECTED, "rtt_walk", RTT, lambda w: (w.rd, UNPROT + (1 << 30), 3), index=1),
    C(F.RTT_UNMAP_UNPROTECTED, "rtte_state", RTT, lambda w: (w.rd, UNPROT + G, 3), index=3),
    # -- RMI_RTT_INIT_RIPAS --
    *_rd_conditions(F.RTT_INIT_RIPAS, lambda w: (P2M, 2 * P2M)),
    C(F.RTT_INIT_RIPAS, "size_valid", INPUT, lambda w: (w.rd, P2M, P2M)),
    C(F.RTT_INIT_RIPAS, "top_bound", INPUT, lambda w: (w.rd, P2M, UNPROT + P2M)),
    C(F.RTT_INIT_RIPAS, "realm_state", REALM, lambda w: (w.ard, P2M, 2 * P2M)),
    C(F.RTT_INIT_RIPAS, "base_align", RTT, lambda w: (w.rd, P2M + G, 2 * P2M), index=2),
    C(F.RTT_INIT_RIPAS, "rtte_state", RTT, lambda w: (w.rd, w.data_ipa, P2M), index=3),
    C(F.RTT_INIT_RIPAS, "top_gran_align", INPUT, lambda w: (w.rd, 0x2000, 0x2800)),
    C(F.RTT_INIT_RIPAS, "no_progress", RTT, lambda w: (w.rd, P2M, P2M + G), index=2),
    # -- RMI_RTT_SET_RIPAS --
    C(F.RTT_SET_RIPAS, "rd_align", INPUT, _set_ripas(rd=lambda w: w.rd + BAD_ALIGN)),
    C(F.RTT_SET_RIPAS, "rd_bound", INPUT, _set_ripas(rd=lambda w: OUT_OF_RAM)),
    C(F.RTT_SET_RIPAS, "rd_state", INPUT, _set_ripas(rd=lambda w: w.spare)),
    C(F.RTT_SET_RIPAS, "rec_align", INPUT, _set_ripas(rec=lambda w: w.rec + BAD_ALIGN)),
    C(F.RTT_SET_RIPAS, "rec_bound", INPUT, _set_ripas(rec=lambda w: OUT_OF_RAM)),
    C(F.RTT_SET_RIPAS, "rec_gran_state", INPUT, _set_ripas(rec=lambda w: w.spare)),
    C(F.RTT_SET_RIPAS, "rec_owner", REC, _set_ripas(rec=lambda w: w.arec)),
    C(F.RTT_SET_RIPAS, "rec_state", REC, _set_ripas(setup=lambda w: w.running(w.rec) and None)),
    C(F.RTT_SET_RIPAS, "size_valid", INPUT, _set_ripas(base=0x4000, top=0x4000)),
    C(F.RTT_SET_RIPAS, "base_bound", INPUT, _set_ripas(base=0x5000, top=0x6000)),
    C(F.RTT_SET_RIPAS, "top_bound", INPUT, _set_ripas(top=0x9000)),
    C(
        F.RTT_SET_RIPAS,
        "base_align",
        RTT,
        _set_ripas(base=P2M + G, top=P2M + 2 * G, req=(P2M + G, 2 * P2M)),
        index=2,
    ),
    C(F.RTT_SET_RIPAS, "top_gran_align", INPUT, _set_ripas(top=0x5800)),
    C(
        F.RTT_SET_RIPAS,
        "no_progress",
        RTT,
        _set_ripas(base=P2M, top=P2M + G, req=(P2M, 2 * P2M)),
        index=2,
        variant="entry_larger",
    ),
    C(
        F.RTT_SET_RIPAS,
        "no_progress",
        RTT,
        _set_ripas(
            base=0x8000,
            top=0x9000,
            req=(0x8000, 0x9000),
            setup=_destroyed_at_0x8000,
        ),
        index=3,
        variant="destroyed",
    ),
    # -- RMI_DATA_CREATE --
    C(F.DATA_CREATE, "src_align", INPUT, lambda w: (w.rd, w.spare, 0x2000, w.src + 8, 0)),
    C(F.DATA_CREATE, "src_bound", INPUT, lambda w: (w.rd, w.spare, 0x2000, OUT_OF_RAM, 0)),
    C(F.DATA_CREATE, "src_pas", INPUT, lambda w: (w.rd, w.spare, 0x2000, w.data, 0)),
    C(F.DATA_CREATE, "data_align", INPUT, lambda w: (w.rd, w.spare + BAD_ALIGN, 0x2000, w.src, 0)),
    C(F.DATA_CREATE, "data_bound", INPUT, lambda w: (w.rd, OUT_OF_RAM, 0x2000, w.src, 0)),
    C(F.DATA_CREATE, "data_state", INPUT, lambda w: (w.rd, w.data, 0x2000, w.src, 0)),
    C(F.DATA_CREATE, "rd_align", INPUT, lambda w: (w.rd + BAD_ALIGN, w.spare, 0x2000, w.src, 0)),
    C(F.DATA_CREATE, "rd_bound", INPUT, lambda w: (OUT_OF_RAM, w.spare, 0x2000, w.src, 0)),
    C(F.DATA_CREATE, "rd_state", INPUT, lambda w: (w.h.delegate(), w.spare, 0x2000, w.src, 0)),
    C(
        F.DATA_CREATE,
        "data_bound2",
        INPUT,
        lambda w: (w.rd, _high_granule(w), 0x2000, w.src, 0),
        config=HIGH_RAM,
    ),
    C(F.DATA_CREATE, "ipa_align", INPUT, lambda w: (w.rd, w.spare, 0x2008, w.src, 0)),
    C(F.DATA_CREATE, "ipa_bound", INPUT, lambda w: (w.rd, w.spare, UNPROT + G, w.src, 0)),
    C(F.DATA_CREATE, "realm_state", REALM, lambda w: (w.ard, w.spare, 0x2000, w.src, 0)),
    C(F.DATA_CREATE, "rtt_walk", RTT, lambda w: (w.rd, w.spare, P2M, w.src, 0), index=2),
    C(F.DATA_CREATE, "rtte_state", RTT, lambda w: (w.rd, w.spare, w.data_ipa, w.src, 0), index=3),
    # -- RMI_DATA_CREATE_UNKNOWN --
    C(F.DATA_CREATE_UNKNOWN, "data_align", INPUT, lambda w: (w.rd, w.spare + BAD_ALIGN, 0x2000)),
    C(F.DATA_CREATE_UNKNOWN, "data_bound", INPUT, lambda w: (w.rd, OUT_OF_RAM, 0x2000)),
    C(F.DATA_CREATE_UNKNOWN, "data_state", INPUT, lambda w: (w.rd, w.ns, 0x2000)),
    C(F.DATA_CREATE_UNKNOWN, "rd_align", INPUT, lambda w: (w.rd + BAD_ALIGN, w.spare, 0x2000)),
    C(F.DATA_CREATE_UNKNOWN, "rd_bound", INPUT, lambda w: (OUT_OF_RAM, w.spare, 0x2000)),
    C(F.DATA_CREATE_UNKNOWN, "rd_state", INPUT, lambda w: (w.l2, w.spare, 0x2000)),
    C(
        F.DATA_CREATE_UNKNOWN,
        "data_bound2",
        INPUT,
        lambda w: (w.rd, _high_granule(w), 0x2000),
        config=HIGH_RAM,
    ),
    C(F.DATA_CREATE_UNKNOWN, "ipa_align", INPUT, lambda w: (w.rd, w.spare, 0x2100)),
    C(F.DATA_CREATE_UNKNOWN, "ipa_bound", INPUT, lambda w: (w.rd, w.spare, UNPROT)),
    C(F.DATA_CREATE_UNKNOWN, "rtt_walk", RTT, lambda w: (w.rd, w.spare, 1 << 30), index=1),
    C(F.DATA_CREATE_UNKNOWN, "rtte_state", RTT, lambda w: (w.rd, w.spare, w.data_ipa), index=3),
    # -- RMI_DATA_DESTROY --
    *_rd_conditions(F.DATA_DESTROY, lambda w: (w.data_ipa,)),
    C(F.DATA_DESTROY, "ipa_align", INPUT, lambda w: (w.rd, w.data_ipa + 8)),
    C(F.DATA_DESTROY, "ipa_bound", INPUT, lambda w: (w.rd, UNPROT)),
    C(F.DATA_DESTROY, "rtt_walk", RTT, lambda w: (w.rd, P2M), index=2),
    C(F.DATA_DESTROY, "rtte_state", RTT, lambda w: (w.rd, 0x2000), index=3),
]

COMMANDS_WITHOUT_FAILURES = (F.FEATURES,)
"""RMI_FEATURES has no failure conditions (RMI_VERSION reports an unsupported request)."""
