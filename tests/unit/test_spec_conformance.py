"""The RMM against the RMM v1.0 specification text (spec_v1_0.py), command by
command, for every RMI and RSI command:

* failure conditions: every condition the spec lists has a row in the
  failure-condition tables (rmi_conditions.py for RMI, RSI_ROWS below), each
  row produces it with the spec's status (test_rmi_conditions.py runs the RMI
  rows), and the RMM reports no condition the spec does not list;
* ordering constraints: for every "[A..] < [B..]" of a command, a situation in
  which both a and b hold reports a;
* success conditions: the outputs and effects each success condition names.

What the RMM does differently from the spec text, and why, is listed in
docs/rmm.md ("Differences from the specification text"); the tests here pin
those decisions too (SET_RIPAS base_align/no_progress, the unprotected
RTT_DESTROY parent entry, the PSCI_COMPLETE pending check of a running REC).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from realm_harness import BUF, RAM_TOP, UNBACKED, RealmRun, dabt_esr
from realm_harness import UNPROT as R_UNPROT
from rmi_conditions import (
    BAD_ALIGN,
    CONDITIONS,
    IPA_LIMIT,
    NS_DESC,
    OUT_OF_RAM,
    P2M,
    UNPROT,
    Condition,
    World,
)
from rmm_host import G, Host
from spec_v1_0 import RMI, RSI

from cosim.arch.pas import Pas
from cosim.rmm import GranuleState, RealmState, RecState
from cosim.rmm.abi import (
    REC_ENTER_EMUL_MMIO,
    PsciAffinityState,
    PsciFid,
    PsciStatus,
    Ripas,
    RmiFid,
    RmiStatus,
    RsiFid,
    RsiResponse,
    RsiStatus,
    RttEntryState,
    u64,
)
from cosim.rmm.exits import TrapKind
from cosim.rmm.measurement import Rim
from cosim.rmm.rec import AttestState
from cosim.rmm.structs import RmiRecRun, RsiRealmConfig

F = RmiFid
R = RsiFid
OK, INPUT, STATE, INCOMPLETE, UNKNOWN = (
    RsiStatus.SUCCESS,
    RsiStatus.ERROR_INPUT,
    RsiStatus.ERROR_STATE,
    RsiStatus.INCOMPLETE,
    RsiStatus.ERROR_UNKNOWN,
)

# == RMI failure conditions ===========================================================


@pytest.mark.parametrize("fid", list(RMI), ids=lambda f: f.name)
def test_rmi_rows_cover_exactly_the_spec_conditions(fid: RmiFid) -> None:
    spec = RMI[fid]
    rows = {c.label for c in CONDITIONS if c.command is fid}
    assert rows == set(spec.labels) | set(spec.extra), spec.section


@pytest.mark.parametrize("fid", list(RMI), ids=lambda f: f.name)
def test_rmi_check_order_meets_the_spec_orderings(fid: RmiFid) -> None:
    """The rows are in the order the RMM checks them; every ordering constraint
    "[A..] < [B..]" must hold in that order."""
    order = [c.label for c in CONDITIONS if c.command is fid]
    for before, after in RMI[fid].orderings:
        for a in before:
            for b in after:
                assert order.index(a) < order.index(b), f"{RMI[fid].section}: {a} < {b}"


ROLES: dict[RmiFid, dict[str, int]] = {
    F.DATA_CREATE: {"rd": 0, "ipa": 2},
    F.DATA_CREATE_UNKNOWN: {"rd": 0, "ipa": 2},
    F.DATA_DESTROY: {"rd": 0, "ipa": 1},
    F.REALM_ACTIVATE: {"rd": 0},
    F.REALM_DESTROY: {"rd": 0},
    F.REC_CREATE: {"rd": 0},
    F.REC_DESTROY: {"rec": 0},
    F.REC_ENTER: {"rec": 0, "run": 1},
    F.RTT_CREATE: {"rd": 0, "ipa": 2, "level": 3},
    F.RTT_DESTROY: {"rd": 0, "ipa": 1, "level": 2},
    F.RTT_FOLD: {"rd": 0, "ipa": 1, "level": 2},
    F.RTT_INIT_RIPAS: {"rd": 0, "base": 1, "top": 2},
    F.RTT_MAP_UNPROTECTED: {"rd": 0, "ipa": 1, "level": 2},
    F.RTT_UNMAP_UNPROTECTED: {"rd": 0, "ipa": 1, "level": 2},
    F.RTT_SET_RIPAS: {"rd": 0, "rec": 1, "base": 2, "top": 3},
}
"""Which argument of each command is the RD, the REC, the IPA, ... (B4.3.N.1.1)."""

Mutator = Callable[[World, list[int], dict[str, int]], None]


def _set(role: str, value: Callable[[World, int], int]) -> Mutator:
    def mutate(w: World, args: list[int], roles: dict[str, int]) -> None:
        args[roles[role]] = value(w, args[roles[role]])

    return mutate


def _base_bound(w: World, args: list[int], roles: dict[str, int]) -> None:
    """base != rec.ripas_addr: the REC's request moves on."""
    w.rec_obj(args[roles["rec"]]).ripas_addr = args[roles["base"]] + G


MAKE_HOLD: dict[str, Mutator] = {
    "rd_bound": _set("rd", lambda w, v: OUT_OF_RAM),
    "rd_state": _set("rd", lambda w, v: w.spare),
    "rec_align": _set("rec", lambda w, v: v + BAD_ALIGN),
    "rec_bound": _set("rec", lambda w, v: OUT_OF_RAM),
    "rec_gran_state": _set("rec", lambda w, v: w.spare),
    "run_align": _set("run", lambda w, v: v + 8),
    "run_bound": _set("run", lambda w, v: OUT_OF_RAM),
    "run_pas": _set("run", lambda w, v: w.spare),
    "level_bound": _set("level", lambda w, v: 4),
    "ipa_bound": _set("ipa", lambda w, v: IPA_LIMIT),
    "top_gran_align": _set("top", lambda w, v: v - 0x800),
    "base_bound": _base_bound,
}
"""For each condition on the left of an ordering: how to make it hold as well,
starting from a situation in which the condition on the right holds."""


def _ordering_cases() -> list[tuple[Condition, str]]:
    cases = []
    for fid, spec in RMI.items():
        for before, after in spec.orderings:
            for b in after:
                for row in (c for c in CONDITIONS if c.command is fid and c.label == b):
                    cases.extend((row, a) for a in before)
    return cases


@pytest.mark.parametrize(
    "row, first", _ordering_cases(), ids=lambda v: v if isinstance(v, str) else v.id
)
def test_rmi_ordering_constraint(row: Condition, first: str) -> None:
    """B1.6: "If the pre-conditions of A and B are both true, then the
    post-condition of A is observed" for every "[.. A ..] < [.. B ..]"."""
    w = World(**row.config)
    args = list(row.args(w))
    MAKE_HOLD[first](w, args, ROLES[row.command])
    r = w.h.ret(row.command, *args)
    assert r.condition == first, f"{RMI[row.command].section}: {first} < {row.label}"


# == RMI success conditions ===========================================================

SUCCESS: dict[RmiFid, Callable[[], set[str]]] = {}
"""Per command: a scenario asserting success conditions; returns their IDs."""


def success(fid: RmiFid) -> Callable[[Callable[[], set[str]]], Callable[[], set[str]]]:
    def register(fn: Callable[[], set[str]]) -> Callable[[], set[str]]:
        SUCCESS[fid] = fn
        return fn

    return register


def _entry(w: World | Host, rd: int, ipa: int, level: int = 3) -> tuple[int, ...]:
    """RMI_RTT_READ_ENTRY outputs (walk_level, state, desc, ripas)."""
    h = w.h if isinstance(w, World) else w
    return h.ret(F.RTT_READ_ENTRY, rd, ipa, level).x[1:]


@success(F.DATA_CREATE)
def _data_create() -> set[str]:
    w = World()
    realm = w.rmm.realm_at(w.rd)
    w.h.ok(F.DATA_DESTROY, w.rd, w.data_ipa)  # an UNASSIGNED/DESTROYED entry
    rim = realm.rim
    d = w.h.delegate()
    w.h.ok(F.DATA_CREATE, w.rd, d, w.data_ipa, w.src, 1)
    assert w.rmm.granule_state(d) is GranuleState.DATA
    assert _entry(w, w.rd, w.data_ipa) == (3, RttEntryState.ASSIGNED, d, Ripas.RAM)
    content = w.h.memory.read(w.src, G)
    assert w.h.memory.read(d, G) == content
    assert realm.rim == Rim(realm.hash_algo).extend_data(rim, w.data_ipa, 1, content)
    return {"data_state", "rtte_state", "rtte_ripas", "rtte_addr", "rim"}


@success(F.DATA_CREATE_UNKNOWN)
def _data_create_unknown() -> set[str]:
    w = World()
    d = w.h.delegate()
    w.h.ok(F.DATA_CREATE_UNKNOWN, w.rd, d, 0x3000)
    assert w.rmm.granule_state(d) is GranuleState.DATA and w.h.memory.is_zero(d, G)
    assert _entry(w, w.rd, 0x3000)[:3] == (3, RttEntryState.ASSIGNED, d)
    return {"data_state", "data_content", "rtte_state", "rtte_addr"}


@success(F.DATA_DESTROY)
def _data_destroy() -> set[str]:
    w = World()
    later = w.h.data_create(w.rd, 0x5000)
    assert _entry(w, w.rd, w.data_ipa)[3] == Ripas.RAM
    r = w.h.ret(F.DATA_DESTROY, w.rd, w.data_ipa)
    assert r.x == (0, w.data, 0x5000)  # data; top: the next live entry (RttSkipNonLiveEntries)
    assert w.rmm.granule_state(w.data) is GranuleState.DELEGATED
    assert _entry(w, w.rd, w.data_ipa) == (3, RttEntryState.UNASSIGNED, 0, Ripas.DESTROYED)
    assert later
    return {"data_state", "rtte_state", "ripas_ram", "data", "top"}


@success(F.FEATURES)
def _features() -> set[str]:
    h = Host()
    assert all(h.ret(F.FEATURES, i).x == (0, 0) for i in (1, 2, 0xFF, 2**64 - 1))
    return {"index"}


@success(F.GRANULE_DELEGATE)
def _delegate() -> set[str]:
    h = Host()
    g = h.ns(b"\x77" * G)
    h.ok(F.GRANULE_DELEGATE, g)
    assert h.rmm.granule_state(g) is GranuleState.DELEGATED and h.gpt.get(g) is Pas.REALM
    return {"gran_state", "gran_gpt"}


@success(F.GRANULE_UNDELEGATE)
def _undelegate() -> set[str]:
    h = Host()
    g = h.delegate()
    h.memory.write(g, b"\x77" * G)  # what a realm may have left there
    h.ok(F.GRANULE_UNDELEGATE, g)
    assert h.rmm.granule_state(g) is GranuleState.UNDELEGATED and h.gpt.get(g) is Pas.NONSECURE
    assert h.memory.is_zero(g, G)
    return {"gran_gpt", "gran_state", "gran_content"}


@success(F.PSCI_COMPLETE)
def _psci_complete() -> set[str]:
    w = World()
    rec, rec1 = w.rmm.rec_at(w.rec), w.rmm.rec_at(w.rec1)
    # on_success: the target starts at the caller's entry point with X0 = context id
    w.psci_request(w.rec, 1)
    rec.context.gprs[1:4] = [9, 9, 9]
    w.h.ok(F.PSCI_COMPLETE, w.rec, w.rec1, PsciStatus.SUCCESS)
    assert rec.psci_pending is None
    assert rec1.runnable and rec1.context.pc == 0x8000_0000
    assert rec1.context.gprs == [7] + [0] * 30
    assert rec.context.gprs[:4] == [PsciStatus.SUCCESS, 0, 0, 0]
    # on_already
    w.psci_request(w.rec, 1)
    w.h.ok(F.PSCI_COMPLETE, w.rec, w.rec1, PsciStatus.SUCCESS)
    assert rec.context.gprs[0] == u64(PsciStatus.ALREADY_ON)
    # affinity_on, affinity_off
    w.psci_request(w.rec, 1, PsciFid.AFFINITY_INFO_64)
    w.h.ok(F.PSCI_COMPLETE, w.rec, w.rec1, PsciStatus.SUCCESS)
    assert rec.context.gprs[0] == PsciAffinityState.ON
    rec1.runnable = False
    w.psci_request(w.rec, 1, PsciFid.AFFINITY_INFO_64)
    w.h.ok(F.PSCI_COMPLETE, w.rec, w.rec1, PsciStatus.SUCCESS)
    assert rec.context.gprs[0] == PsciAffinityState.OFF
    # status: a permitted non-success status is what the caller sees
    w.psci_request(w.rec, 1)
    w.h.ok(F.PSCI_COMPLETE, w.rec, w.rec1, u64(PsciStatus.DENIED))
    assert rec.context.gprs[:4] == [u64(PsciStatus.DENIED), 0, 0, 0] and not rec1.runnable
    return {"pending", "on_already", "on_success", "affinity_on", "affinity_off", "status", "args"}


@success(F.REALM_ACTIVATE)
def _activate() -> set[str]:
    w = World()
    w.h.ok(F.REALM_ACTIVATE, w.rd)
    assert w.rmm.realm_at(w.rd).state is RealmState.ACTIVE
    return {"realm_state"}


@success(F.REALM_CREATE)
def _realm_create() -> set[str]:
    h = Host()
    r = h.create_realm(s2sz=41, rtt_level_start=1, rtt_num_start=4, vmid=33, hash_algo=1)
    realm = h.rmm.realm_at(r.rd)
    p = r.params
    assert h.rmm.granule_state(r.rd) is GranuleState.RD and realm.state is RealmState.NEW
    assert (realm.rec_index, realm.num_recs) == (0, 0)
    assert (realm.rtt_base, realm.rtt_level_start, realm.rtt_num_start) == (
        p.rtt_base,
        1,
        4,
    )
    assert all(h.rmm.granule_state(g) is GranuleState.RTT for g in r.roots)
    entries = {(ipa < 1 << 40, e) for ipa, _, e in h.rmm.rtts(realm).leaves()}
    assert {(prot, e.hipas.value, e.ripas) for prot, e in entries} == {
        (True, "UNASSIGNED", Ripas.EMPTY),
        (False, "UNASSIGNED_NS", Ripas.EMPTY),
    }
    assert not realm.lpa2 and realm.s2sz == 41 and realm.hash_algo == 1
    assert realm.rim == Rim(realm.hash_algo).initial(p.measured_bytes())
    assert all(bytes(m) == bytes(64) for m in realm.measurements[1:])
    assert (realm.vmid, realm.rpv) == (33, bytes(p.rpv))
    return {
        "rd_state", "realm_state", "rec_index", "rtt_base", "rtt_state", "rtte_p_states",
        "rtte_up_states", "rtte_ripas", "lpa2", "ipa_width", "hash_algo", "rim", "rem",
        "rtt_level", "rtt_num", "vmid", "rpv", "num_recs",
    }  # fmt: skip


@success(F.REALM_DESTROY)
def _realm_destroy() -> set[str]:
    h = Host()
    r = h.create_realm(vmid=12)
    h.ok(F.REALM_DESTROY, r.rd)
    assert all(h.rmm.granule_state(g) is GranuleState.DELEGATED for g in (r.rd, *r.roots))
    h.vmid = 12
    h.create_realm()  # VmidIsFree(realm.vmid)
    return {"rtt_state", "rd_state", "vmid"}


@success(F.REC_AUX_COUNT)
def _aux_count() -> set[str]:
    h = Host(rec_aux_count=3)
    assert h.ok(F.REC_AUX_COUNT, h.create_realm().rd) == (3,)
    return {"aux_count"}


@success(F.REC_CREATE)
def _rec_create() -> set[str]:
    h = Host()
    r = h.create_realm()
    realm = h.rmm.realm_at(r.rd)
    rim = realm.rim
    recs = []
    for index, runnable in ((0, True), (1, False)):
        pa = h.delegate()
        p = h.rec_params(index, runnable=runnable, pc=0x1000 + index, gprs=list(range(1, 9)))
        h.ok(F.REC_CREATE, r.rd, pa, h.ns(p.to_bytes()))
        rec = h.rmm.rec_at(pa)
        assert rec is not None and rec.realm is realm and rec.index == index
        assert h.rmm.granule_state(pa) is GranuleState.REC and rec.state is RecState.READY
        assert rec.attest_state is AttestState.NO_ATTEST_IN_PROGRESS
        assert rec.mpidr == index and rec.runnable is runnable
        assert rec.context.gprs == [*range(1, 9), *[0] * 23] and rec.context.pc == 0x1000 + index
        assert rec.aux == tuple(p.aux) and all(
            h.rmm.granule_state(a) is GranuleState.REC_AUX for a in rec.aux
        )
        assert (rec.ripas_addr, rec.ripas_top, rec.host_call_pending) == (0, 0, False)
        if runnable:
            rim = Rim(realm.hash_algo).extend_rec(rim, p.measured_bytes())
        assert realm.rim == rim  # only a runnable REC is measured
        recs.append(rec)
        assert (realm.rec_index, realm.num_recs) == (index + 1, index + 1)
    return {
        "rec_index", "rec_gran_state", "rec_owner", "rec_attest", "rec_mpidr", "rec_state",
        "runnable", "not_runnable", "rec_gprs", "rec_pc", "rim", "rec_aux", "rec_aux_state",
        "ripas_addr", "ripas_top", "host_call", "num_recs",
    }  # fmt: skip


@success(F.REC_DESTROY)
def _rec_destroy() -> set[str]:
    w = World()
    rec = w.rmm.rec_at(w.rec1)
    realm = w.rmm.realm_at(w.rd)
    w.h.ok(F.REC_DESTROY, w.rec1)
    assert w.rmm.granule_state(w.rec1) is GranuleState.DELEGATED
    assert all(w.rmm.granule_state(a) is GranuleState.DELEGATED for a in rec.aux)
    assert realm.num_recs == 1
    return {"rec_gran_state", "rec_aux_state", "num_recs"}


@success(F.REC_ENTER)
def _rec_enter() -> set[str]:
    rr = RealmRun()
    assert rr.enter() is None
    mmio = R_UNPROT + 0x1000
    e = rr.exit_of(rr.trap(esr=dabt_esr(write=True), hpfar=mmio >> 8))
    assert RmiRecRun.unpack(rr.h.memory, rr.run_pa).exit == e  # rec_exit
    assert rr.rec().emulatable_abort is not None  # rec_emul_abt: updated
    assert rr.enter(flags=REC_ENTER_EMUL_MMIO) is None
    rr.exit_of(rr.trap(TrapKind.IRQ))
    assert rr.rec().emulatable_abort is None
    return {"rec_exit", "rec_emul_abt"}


@success(F.RTT_CREATE)
def _rtt_create() -> set[str]:
    w = World()
    w.h.ok(F.RTT_INIT_RIPAS, w.rd, P2M, 2 * P2M)  # an UNASSIGNED/RAM level-2 entry
    rtt = w.h.delegate()
    w.h.ok(F.RTT_CREATE, w.rd, rtt, P2M, 3)
    assert w.rmm.granule_state(rtt) is GranuleState.RTT
    assert _entry(w, w.rd, P2M, 2)[:3] == (2, RttEntryState.TABLE, rtt)
    rtts = w.rmm.rtts(w.rmm.realm_at(w.rd))
    assert {(e.hipas.value, e.ripas) for e in rtts.read_all(rtt, 3)} == {("UNASSIGNED", Ripas.RAM)}
    # unfolding an ASSIGNED_NS block: contiguous addresses, same attributes
    h = Host()
    r = h.create_realm()
    h.create_rtts(r.rd, UNPROT, 2)
    block = h.alloc(512, align=P2M)
    h.ok(F.RTT_MAP_UNPROTECTED, r.rd, UNPROT, 2, block | NS_DESC)
    h.ok(F.RTT_CREATE, r.rd, h.delegate(), UNPROT, 3)
    for i in (0, 1, 511):
        assert _entry(h, r.rd, UNPROT + i * G) == (3, 1, block + i * G | NS_DESC, Ripas.EMPTY)
    return {"rtt_state", "rtte_state", "rtte_addr", "rtte_c_ripas", "rtte_c_state", "rtte_c_addr"}


@success(F.RTT_DESTROY)
def _rtt_destroy() -> set[str]:
    w = World()
    l3 = w.h.create_rtts(w.rd, 4 * P2M, 3)[0]
    r = w.h.ret(F.RTT_DESTROY, w.rd, 4 * P2M, 3)
    assert r.x == (0, l3, 1 << 30)  # rtt; top: RttSkipNonLiveEntries of the L2 RTT
    assert w.rmm.granule_state(l3) is GranuleState.DELEGATED
    assert _entry(w, w.rd, 4 * P2M) == (2, RttEntryState.UNASSIGNED, 0, Ripas.DESTROYED)
    return {"rtte_state", "ripas", "rtt_state", "rtt", "top"}


@success(F.RTT_FOLD)
def _rtt_fold() -> set[str]:
    w = World()
    l3 = w.h.create_rtts(w.rd, 4 * P2M, 3)[0]
    w.h.ok(F.RTT_INIT_RIPAS, w.rd, 4 * P2M, 5 * P2M)
    assert w.h.ok(F.RTT_FOLD, w.rd, 4 * P2M, 3) == (l3,)
    assert w.rmm.granule_state(l3) is GranuleState.DELEGATED
    assert _entry(w, w.rd, 4 * P2M) == (2, RttEntryState.UNASSIGNED, 0, Ripas.RAM)
    # ASSIGNED_NS pages folded into a block keep address and attributes
    h = Host()
    r = h.create_realm()
    h.create_rtts(r.rd, UNPROT, 3)
    block = h.alloc(512, align=P2M)
    for i in range(512):
        h.ok(F.RTT_MAP_UNPROTECTED, r.rd, UNPROT + i * G, 3, block + i * G | 0x5C)
    h.ok(F.RTT_FOLD, r.rd, UNPROT, 3)
    assert _entry(h, r.rd, UNPROT, 3) == (2, 1, block | 0x5C, Ripas.EMPTY)
    return {"rtte_state", "rtte_addr", "rtte_attr", "rtte_ripas", "rtt_state", "rtt"}


@success(F.RTT_INIT_RIPAS)
def _init_ripas() -> set[str]:
    w = World()
    realm = w.rmm.realm_at(w.rd)
    rim = realm.rim
    assert w.h.ok(F.RTT_INIT_RIPAS, w.rd, P2M, 3 * P2M + G) == (3 * P2M,)  # aligned down
    for ipa in (P2M, 2 * P2M):
        assert _entry(w, w.rd, ipa)[3] == Ripas.RAM
        rim = Rim(realm.hash_algo).extend_ripas(rim, ipa, ipa + P2M)
    assert realm.rim == rim
    return {"rtte_ripas", "rim", "out_top"}


@success(F.RTT_MAP_UNPROTECTED)
def _map() -> set[str]:
    w = World()
    ns = w.h.ns()
    w.h.ok(F.RTT_MAP_UNPROTECTED, w.rd, UNPROT + G, 3, ns | 0x4C)
    assert _entry(w, w.rd, UNPROT + G) == (3, RttEntryState.ASSIGNED, ns | 0x4C, Ripas.EMPTY)
    return {"rtte_state", "rtte_contents"}


@success(F.RTT_READ_ENTRY)
def _read_entry() -> set[str]:
    w = World()
    assert _entry(w, w.rd, 0x2000) == (3, RttEntryState.UNASSIGNED, 0, Ripas.EMPTY)
    assert _entry(w, w.rd, UNPROT + G) == (3, RttEntryState.UNASSIGNED, 0, Ripas.EMPTY)
    assert _entry(w, w.rd, w.data_ipa) == (3, RttEntryState.ASSIGNED, w.data, Ripas.RAM)
    assert _entry(w, w.rd, 0, 2) == (2, RttEntryState.TABLE, w.l3, Ripas.EMPTY)
    assert _entry(w, w.rd, UNPROT) == (3, 1, w.ns_target | NS_DESC, Ripas.EMPTY)
    w.h.ok(F.RTT_INIT_RIPAS, w.rd, 0x2000, 0x3000)
    assert _entry(w, w.rd, 0x2000)[3] == Ripas.RAM
    return {"state", "state_invalid", "state_prot", "state_unprot", "ripas_prot", "ripas_unprot"}


@success(F.RTT_SET_RIPAS)
def _set_ripas() -> set[str]:
    w = World()
    rec = w.rmm.rec_at(w.rec)
    rec.ripas_addr, rec.ripas_top, rec.ripas_value = 0x2000, P2M + G, Ripas.RAM
    assert w.h.ok(F.RTT_SET_RIPAS, w.rd, w.rec, 0x2000, P2M + G) == (P2M,)  # end of the L3 RTT
    assert rec.ripas_addr == P2M
    assert {_entry(w, w.rd, ipa)[3] for ipa in range(0x2000, P2M, G)} == {Ripas.RAM}
    return {"rtte_ripas", "ripas_addr", "out_top"}


@success(F.RTT_UNMAP_UNPROTECTED)
def _unmap() -> set[str]:
    w = World()
    assert w.h.ok(F.RTT_UNMAP_UNPROTECTED, w.rd, UNPROT, 3) == (UNPROT + P2M,)
    assert _entry(w, w.rd, UNPROT) == (3, RttEntryState.UNASSIGNED, 0, Ripas.EMPTY)
    return {"rtte_state", "top"}


@success(F.VERSION)
def _version() -> set[str]:
    """B4.3.23 has no success conditions; its outcomes: a) a compatible request
    succeeds with lower == the request; c) a lower request fails with lower ==
    higher; b) a higher request gives the highest revision below it."""
    h = Host()
    assert h.ret(F.VERSION, 0x10000).x == (0, 0x10000, 0x10000)
    assert h.ret(F.VERSION, 0x20000).x == (RmiStatus.ERROR_INPUT, 0x10000, 0x10000)
    assert h.ret(F.VERSION, 0x0).x == (RmiStatus.ERROR_INPUT, 0x10000, 0x10000)
    return set()


@pytest.mark.parametrize("fid", list(RMI), ids=lambda f: f.name)
def test_rmi_success_conditions(fid: RmiFid) -> None:
    assert SUCCESS[fid]() == set(RMI[fid].success), RMI[fid].section


# == RSI ==============================================================================


def _rr() -> RealmRun:
    rr = RealmRun()
    assert rr.enter() is None
    return rr


def _attesting(rr: RealmRun) -> None:
    rr.call(R.ATTESTATION_TOKEN_INIT, *range(8))


def _token_failed(rr: RealmRun) -> None:
    """An INIT whose token could not be made (as with a bad platform key)."""
    _attesting(rr)
    rr.rec().attest_token = None


RsiRow = tuple[RsiFid, str, tuple[int, ...], int, Callable[[RealmRun], None] | None]
RSI_ROWS: list[RsiRow] = [
    (R.ATTESTATION_TOKEN_CONTINUE, "addr_align", (BUF + 8, 0, 16), INPUT, _attesting),
    (R.ATTESTATION_TOKEN_CONTINUE, "addr_bound", (R_UNPROT, 0, 16), INPUT, _attesting),
    (R.ATTESTATION_TOKEN_CONTINUE, "offset_bound", (BUF, G, 0), INPUT, _attesting),
    (R.ATTESTATION_TOKEN_CONTINUE, "size_overflow", (BUF, 8, 2**64 - 4), INPUT, _attesting),
    (R.ATTESTATION_TOKEN_CONTINUE, "size_bound", (BUF, 16, G), INPUT, _attesting),
    (R.ATTESTATION_TOKEN_CONTINUE, "state", (BUF, 0, 16), STATE, None),
    (
        R.ATTESTATION_TOKEN_CONTINUE,
        "unknown",
        (BUF, 0, 16),
        UNKNOWN,
        _token_failed,
    ),
    (R.HOST_CALL, "addr_align", (BUF + 0x80,), INPUT, None),
    (R.HOST_CALL, "addr_bound", (R_UNPROT,), INPUT, None),
    (R.IPA_STATE_GET, "base_align", (BUF + 8, BUF + G), INPUT, None),
    (R.IPA_STATE_GET, "end_align", (BUF, BUF + 8), INPUT, None),
    (R.IPA_STATE_GET, "size_valid", (BUF, BUF), INPUT, None),
    (R.IPA_STATE_GET, "rgn_bound", (BUF, R_UNPROT + G), INPUT, None),
    (R.IPA_STATE_SET, "base_align", (BUF + 8, BUF + G, 1, 0), INPUT, None),
    (R.IPA_STATE_SET, "top_align", (BUF, BUF + 8, 1, 0), INPUT, None),
    (R.IPA_STATE_SET, "size_valid", (BUF + G, BUF, 1, 0), INPUT, None),
    (R.IPA_STATE_SET, "rgn_bound", (R_UNPROT, R_UNPROT + G, 1, 0), INPUT, None),
    (R.IPA_STATE_SET, "ripas_valid", (BUF, BUF + G, Ripas.DESTROYED, 0), INPUT, None),
    (R.MEASUREMENT_EXTEND, "index_bound", (0, 8), INPUT, None),
    (R.MEASUREMENT_EXTEND, "size_bound", (1, 65), INPUT, None),
    (R.MEASUREMENT_READ, "index_bound", (5,), INPUT, None),
    (R.REALM_CONFIG, "addr_align", (BUF + 8,), INPUT, None),
    (R.REALM_CONFIG, "addr_bound", (R_UNPROT,), INPUT, None),
]
"""One situation per RSI failure condition (B5.3.N.2); none of the commands has
an ordering constraint."""


@pytest.mark.parametrize("fid", list(RSI), ids=lambda f: f.name)
def test_rsi_rows_cover_exactly_the_spec_conditions(fid: RsiFid) -> None:
    assert {row[1] for row in RSI_ROWS if row[0] is fid} == set(RSI[fid].labels)


@pytest.mark.parametrize("row", RSI_ROWS, ids=lambda r: f"{r[0].name}-{r[1]}")
def test_rsi_failure_condition(row: RsiRow) -> None:
    fid, _, args, status, setup = row
    rr = _rr()
    if setup is not None:
        setup(rr)
    out = rr.call(fid, *args)
    assert out[0] == status, RSI[fid].section


def _rsi_success() -> dict[RsiFid, Callable[[RealmRun], set[str]]]:
    def continue_(rr: RealmRun) -> set[str]:
        size = rr.call(R.ATTESTATION_TOKEN_INIT, *range(8))[1]
        assert rr.rec().attest_state is AttestState.ATTEST_IN_PROGRESS  # init: state
        assert rr.rec().attest_challenge == b"".join(i.to_bytes(8, "little") for i in range(8))
        assert rr.call(R.ATTESTATION_TOKEN_CONTINUE, BUF, 0, 16)[:2] == [INCOMPLETE, 16]
        assert rr.call(R.ATTESTATION_TOKEN_CONTINUE, BUF, 0, G)[:2] == [OK, size - 16]
        assert rr.rec().attest_state is AttestState.NO_ATTEST_IN_PROGRESS
        return {"incomplete", "complete"}

    def init(rr: RealmRun) -> set[str]:
        rr.call(R.ATTESTATION_TOKEN_INIT, *range(8, 16))
        rec = rr.rec()
        assert rec.attest_state is AttestState.ATTEST_IN_PROGRESS
        assert rec.attest_challenge == b"".join(i.to_bytes(8, "little") for i in range(8, 16))
        return {"state", "challenge"}

    def features(rr: RealmRun) -> set[str]:
        assert all(rr.call(R.FEATURES, i)[:2] == [OK, 0] for i in (0, 1, 2**64 - 1))
        return {"index"}

    def ipa_state_set(rr: RealmRun) -> set[str]:
        e = rr.exit_of(rr.smc(R.IPA_STATE_SET, RAM_TOP, RAM_TOP + 2 * G, Ripas.RAM, 0))
        assert (e.ripas_base, e.ripas_top) == (RAM_TOP, RAM_TOP + 2 * G)
        rr.h.ok(F.RTT_SET_RIPAS, rr.rd, rr.rec_pa(0), RAM_TOP, RAM_TOP + G)
        rr.enter()
        # "new_base == rec.ripas_addr", "response == RecRipasChangeResponse(rec)"
        assert rr.x[:3] == [OK, RAM_TOP + G, RsiResponse.ACCEPT]
        return {"new_base", "response"}

    def extend(rr: RealmRun) -> set[str]:
        realm = rr.realm
        old = bytes(realm.measurements[2])
        value = (0x0123456789ABCDEF).to_bytes(8, "little") * 8
        rr.call(R.MEASUREMENT_EXTEND, 2, 20, *[0x0123456789ABCDEF] * 8)
        assert bytes(realm.measurements[2]) == Rim(realm.hash_algo).extend_rem(old, value[:20])
        return {"realm_meas"}

    def config(rr: RealmRun) -> set[str]:
        assert rr.call(R.REALM_CONFIG, BUF)[0] == OK
        cfg = RsiRealmConfig.from_bytes(rr.read(BUF, G))
        assert (cfg.ipa_width, cfg.hash_algo) == (rr.realm.s2sz, rr.realm.hash_algo)
        return {"ipa_width", "hash_algo"}

    def ipa_state_get(rr: RealmRun) -> set[str]:
        """No success conditions; B5.3.5.1.3: out_top > base, out_top <= top and
        [base, out_top) all have the reported RIPAS."""
        out = rr.call(R.IPA_STATE_GET, UNBACKED - G, RAM_TOP + G)
        assert out[:3] == [OK, RAM_TOP, Ripas.RAM]
        return set()

    def version(rr: RealmRun) -> set[str]:
        assert rr.call(R.VERSION, 0x10000)[:3] == [OK, 0x10000, 0x10000]
        return set()

    def nothing(rr: RealmRun) -> set[str]:
        return set()

    return {
        R.ATTESTATION_TOKEN_CONTINUE: continue_,
        R.ATTESTATION_TOKEN_INIT: init,
        R.FEATURES: features,
        R.HOST_CALL: nothing,
        R.IPA_STATE_GET: ipa_state_get,
        R.IPA_STATE_SET: ipa_state_set,
        R.MEASUREMENT_EXTEND: extend,
        R.MEASUREMENT_READ: nothing,
        R.REALM_CONFIG: config,
        R.VERSION: version,
    }


@pytest.mark.parametrize("fid", list(RSI), ids=lambda f: f.name)
def test_rsi_success_conditions(fid: RsiFid) -> None:
    assert _rsi_success()[fid](_rr()) == set(RSI[fid].success), RSI[fid].section
