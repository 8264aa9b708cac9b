"""The success path of every RMI command: outputs, state changes, trace."""

from __future__ import annotations

from rmi_conditions import NS_DESC, P2M, UNPROT, World
from rmm_host import RAM_BASE, G, Host

from cosim.arch.pas import Pas
from cosim.rmm import EnterRealm, GranuleState, RealmState, RecState
from cosim.rmm.abi import (
    SMC_UNKNOWN,
    PsciAffinityState,
    PsciFid,
    PsciStatus,
    Ripas,
    RmiFid,
    RttEntryState,
    u64,
)
from cosim.rmm.measurement import Rim
from cosim.rmm.rec import PsciRequest
from cosim.rmm.structs import RmiRecEnter
from cosim.trace import Trace

F = RmiFid


def test_version() -> None:
    h = Host()
    assert h.ret(F.VERSION, 0x10000).x == (0, 0x10000, 0x10000)


def test_features() -> None:
    h = Host()
    reg = h.ok(F.FEATURES, 0)[0]
    assert reg == h.config.feature_register0()
    assert reg & 0xFF == 48 and (reg >> 8) & 1 == 0  # S2SZ 48, no LPA2
    assert (reg >> 32) & 3 == 3  # SHA-256 and SHA-512
    assert reg >> 42 == 0
    assert h.ok(F.FEATURES, 1) == (0,)
    assert h.ok(F.FEATURES, 0xFF) == (0,)


def test_unknown_fids() -> None:
    h = Host()
    for fid in (0xC4000156, 0xC4000160, 0xC4000163, 0xC400016A, 0xC4000190, 0x84000000, 0):
        assert h.call(fid).x == (SMC_UNKNOWN,)


def test_sve_hint_bit_is_ignored() -> None:
    h = Host()
    assert h.call(F.VERSION | 1 << 16, 0x10000).x == (0, 0x10000, 0x10000)


def test_delegate_undelegate() -> None:
    h = Host()
    pa = h.alloc()
    h.memory.write(pa, b"host secret" * 100)
    h.ok(F.GRANULE_DELEGATE, pa)
    assert h.rmm.granule_state(pa) is GranuleState.DELEGATED
    assert h.gpt.get(pa) is Pas.REALM
    assert h.memory.is_zero(pa, G)
    h.memory.write(pa, b"realm data")  # as if a realm had written it
    h.ok(F.GRANULE_UNDELEGATE, pa)
    assert h.rmm.granule_state(pa) is GranuleState.UNDELEGATED
    assert h.gpt.get(pa) is Pas.NONSECURE
    assert h.memory.is_zero(pa, G)


def test_realm_create_and_rim() -> None:
    h = Host()
    r = h.create_realm(s2sz=40, num_bps=5, num_wps=3)
    realm = h.rmm.realm_at(r.rd)
    assert realm is not None and realm.id == 1 and realm.state is RealmState.NEW
    assert h.rmm.granule_state(r.rd) is GranuleState.RD
    assert [h.rmm.granule_state(x) for x in r.roots] == [GranuleState.RTT] * 2
    assert realm.rim.hex().startswith(
        "f33498f22eed8d51fb28b95769b27275a8c69a469e26b0050f1e809c4e0146b4"
    )
    assert realm.measurements[1:] == [bytearray(64)] * 4
    assert realm.rpv == bytes(range(64))
    assert h.rmm.describe_granule(r.rd) == "RD of realm 1"
    assert (
        h.rmm.describe_granule(r.roots[1])
        == "RTT level 1 of realm 1 covering IPA [0x8000000000, 0x10000000000)"
    )
    # root entries: protected half UNASSIGNED/EMPTY, unprotected half UNASSIGNED_NS
    assert h.ret(F.RTT_READ_ENTRY, r.rd, 0, 1).x == (0, 1, RttEntryState.UNASSIGNED, 0, Ripas.EMPTY)
    assert h.ret(F.RTT_READ_ENTRY, r.rd, UNPROT, 1).x == (
        0,
        1,
        RttEntryState.UNASSIGNED,
        0,
        Ripas.EMPTY,
    )


def test_realm_create_geometries() -> None:
    h = Host()
    for s2sz, sl, num in [(48, 0, 1), (40, 0, 1), (39, 1, 1), (43, 1, 16), (32, 2, 4), (34, 2, 16)]:
        r = h.create_realm(s2sz=s2sz, rtt_level_start=sl, rtt_num_start=num)
        realm = h.rmm.realm_at(r.rd)
        assert realm is not None and realm.rtt_num_start == num
        top = 1 << (s2sz - 1)
        assert h.ret(F.RTT_READ_ENTRY, r.rd, top, sl).x[4] == Ripas.EMPTY


def test_realm_ids_and_vmid_reuse() -> None:
    h = Host()
    a = h.create_realm(vmid=5)
    b = h.create_realm(vmid=6)
    assert [h.rmm.realm_at(x.rd).id for x in (a, b)] == [1, 2]  # type: ignore[union-attr]
    h.ok(F.REALM_DESTROY, a.rd)
    assert h.rmm.granule_state(a.rd) is GranuleState.DELEGATED
    assert all(h.rmm.granule_state(x) is GranuleState.DELEGATED for x in a.roots)
    assert h.memory.is_zero(a.roots[0], G)
    c = h.create_realm(vmid=5)
    assert h.rmm.realm_at(c.rd).id == 3  # type: ignore[union-attr]


def test_realm_activate() -> None:
    h = Host()
    r = h.create_realm()
    h.ok(F.REALM_ACTIVATE, r.rd)
    assert h.rmm.realm_at(r.rd).state is RealmState.ACTIVE  # type: ignore[union-attr]


def test_rec_aux_count() -> None:
    h = Host()
    r = h.create_realm()
    assert h.ok(F.REC_AUX_COUNT, r.rd) == (16,)
    h2 = Host(rec_aux_count=0)
    assert h2.ok(F.REC_AUX_COUNT, h2.create_realm().rd) == (0,)


def test_rec_create_destroy() -> None:
    h = Host()
    r = h.create_realm()
    rim0 = h.rmm.realm_at(r.rd).rim  # type: ignore[union-attr]
    gprs = [0x88000000, 1, 2, 3, 4, 5, 6, 7]
    rec0 = h.create_rec(r, pc=0x80000000, gprs=gprs)
    rec1 = h.create_rec(r, runnable=False, pc=0x1234)
    realm = h.rmm.realm_at(r.rd)
    assert realm is not None
    o0, o1 = h.rmm.rec_at(rec0), h.rmm.rec_at(rec1)
    assert o0 is not None and o1 is not None
    assert (o0.index, o0.runnable, o0.state, o0.context.pc) == (0, True, RecState.READY, 0x80000000)
    assert o0.context.gprs[:8] == gprs and o0.context.gprs[8:] == [0] * 23
    assert o0.context.pstate == 0x3C5 and o0.context.sysregs["SCTLR_EL1"] == 0x30D00800
    assert (o1.index, o1.runnable, o1.mpidr) == (1, False, 1)
    assert h.rmm.describe_granule(rec1) == "REC 1 (MPIDR 0x1) of realm 1"
    assert all(h.rmm.granule_state(a) is GranuleState.REC_AUX for a in o0.aux) and len(o0.aux) == 16
    # the runnable REC extended the RIM, the non-runnable one did not
    expected = Rim(realm.hash_algo).extend_rec(
        rim0, h.rec_params(0, pc=0x80000000, gprs=gprs, aux=[]).measured_bytes()
    )
    assert realm.rim == expected
    aux = o0.aux
    h.ok(F.REC_DESTROY, rec0)
    assert h.rmm.granule_state(rec0) is GranuleState.DELEGATED
    assert all(h.rmm.granule_state(a) is GranuleState.DELEGATED for a in aux)
    assert list(realm.recs) == [1]


def test_rec_mpidr_and_index() -> None:
    h = Host(max_recs_order=6)
    r = h.create_realm()
    for _ in range(18):
        h.create_rec(r, runnable=False)
    rec = h.rmm.rec_at(r.recs[17])
    assert rec is not None and rec.mpidr == (1 | 1 << 8) and rec.vmpidr_el1 == 0x101


def test_rec_enter_and_complete() -> None:
    w = World()
    e = w.h.call(
        F.REC_ENTER,
        w.arec,
        w.h.memory.write(w.run, RmiRecEnter(flags=4, gicv3_hcr=2).to_bytes()) or w.run,
    )
    assert isinstance(e, EnterRealm)
    assert e.rec is w.rmm.rec_at(w.arec) and e.run_pa == w.run
    assert e.enter.flags == 4 and e.enter.gicv3_hcr == 2
    assert e.rec.state is RecState.RUNNING
    assert w.h.ret(F.REC_ENTER, w.arec, w.run).condition == "rec_state"
    w.rmm.rec_enter_complete(e.rec)
    assert e.rec.state is RecState.READY


def _psci_world(fid: int = PsciFid.CPU_ON_64) -> tuple[World, PsciRequest]:
    w = World()
    req = PsciRequest(fid, target_mpidr=1, entry=0x8000_0000, context_id=0x77)
    caller = w.rmm.rec_at(w.rec)
    caller.psci_pending = req
    caller.context.sysregs["SCTLR_EL1"] |= 1 << 25
    return w, req


def test_psci_complete_cpu_on() -> None:
    w, _ = _psci_world()
    w.h.ok(F.PSCI_COMPLETE, w.rec, w.rec1, 0)
    caller, target = w.rmm.rec_at(w.rec), w.rmm.rec_at(w.rec1)
    assert caller.psci_pending is None and caller.context.gprs[:4] == [0, 0, 0, 0]
    assert target.runnable and target.context.pc == 0x8000_0000 and target.context.gprs[0] == 0x77
    assert (
        target.context.pstate == 0x3C5
        and target.context.sysregs["SCTLR_EL1"] == 0x30D00800 | 1 << 25
    )


def test_psci_complete_cpu_on_denied_and_already_on() -> None:
    w, _ = _psci_world()
    w.h.ok(F.PSCI_COMPLETE, w.rec, w.rec1, u64(PsciStatus.DENIED))
    assert w.rmm.rec_at(w.rec).context.gprs[0] == u64(PsciStatus.DENIED)
    assert not w.rmm.rec_at(w.rec1).runnable
    w.rmm.rec_at(w.rec1).runnable = True
    w.rmm.rec_at(w.rec).psci_pending = PsciRequest(PsciFid.CPU_ON_64, 1, 0, 0)
    w.h.ok(F.PSCI_COMPLETE, w.rec, w.rec1, 0)
    assert w.rmm.rec_at(w.rec).context.gprs[0] == u64(PsciStatus.ALREADY_ON)


def test_psci_complete_affinity_info() -> None:
    w, _ = _psci_world(PsciFid.AFFINITY_INFO_64)
    w.h.ok(F.PSCI_COMPLETE, w.rec, w.rec1, 0)
    assert w.rmm.rec_at(w.rec).context.gprs[0] == PsciAffinityState.OFF
    w.rmm.rec_at(w.rec1).psci_pending = PsciRequest(PsciFid.AFFINITY_INFO_32, 0, 0, 0)
    w.h.ok(F.PSCI_COMPLETE, w.rec1, w.rec, 0)
    assert w.rmm.rec_at(w.rec1).context.gprs[0] == PsciAffinityState.ON


def test_rtt_create_destroy_outputs() -> None:
    w = World()
    rtt = w.h.delegate()
    w.h.ok(F.RTT_CREATE, w.rd, rtt, P2M, 3)
    assert w.rmm.granule_state(rtt) is GranuleState.RTT
    assert w.rmm.describe_granule(rtt) == "RTT level 3 of realm 1 covering IPA [0x200000, 0x400000)"
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, P2M, 2).x == (0, 2, RttEntryState.TABLE, rtt, 0)
    out = w.h.ok(F.RTT_DESTROY, w.rd, P2M, 3)
    assert out == (rtt, 1 << 30)  # no live entry after it: the end of the L2 table
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, P2M, 3).x == (
        0,
        2,
        RttEntryState.UNASSIGNED,
        0,
        Ripas.DESTROYED,
    )
    assert w.rmm.granule_state(rtt) is GranuleState.DELEGATED


def test_data_create_measured_and_destroy() -> None:
    w = World()
    realm = w.rmm.realm_at(w.rd)
    rim = realm.rim
    content = bytes(range(256)) * 16
    data = w.h.data_create(w.rd, 0x3000, content)
    assert w.h.memory.read(data, G) == content
    assert w.rmm.describe_granule(data) == "DATA of realm 1 at IPA 0x3000"
    assert realm.rim == Rim(realm.hash_algo).extend_data(rim, 0x3000, 1, content)
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, 0x3000, 3).x == (
        0,
        3,
        RttEntryState.ASSIGNED,
        data,
        Ripas.RAM,
    )
    out = w.h.ok(F.DATA_DESTROY, w.rd, 0x3000)
    assert out == (data, P2M)  # nothing live after it in the L3 table
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, 0x3000, 3).x[2:] == (
        RttEntryState.UNASSIGNED,
        0,
        Ripas.DESTROYED,
    )
    assert w.h.memory.is_zero(data, G) and w.rmm.granule_state(data) is GranuleState.DELEGATED
    assert w.h.ret(F.DATA_DESTROY, w.rd, 0x3000).x == (0x304, 0, P2M)  # (RTT, 3), top = end of L3


def test_data_create_unmeasured() -> None:
    w = World()
    realm = w.rmm.realm_at(w.rd)
    rim = realm.rim
    w.h.data_create(w.rd, 0x3000, b"\x55" * G, measure=False)
    assert realm.rim == Rim(realm.hash_algo).extend_data(rim, 0x3000, 0, None)


def test_data_create_unknown_keeps_ripas_and_no_measurement() -> None:
    w = World()
    realm = w.rmm.realm_at(w.rd)
    rim = realm.rim
    d_empty = w.h.data_create(w.rd, 0x5000, unknown=True)
    w.h.ok(F.RTT_INIT_RIPAS, w.rd, 0x6000, 0x7000)
    d_ram = w.h.data_create(w.rd, 0x6000, unknown=True)
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, 0x5000, 3).x[2:] == (1, d_empty, Ripas.EMPTY)
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, 0x6000, 3).x[2:] == (1, d_ram, Ripas.RAM)
    assert realm.rim == Rim(realm.hash_algo).extend_ripas(rim, 0x6000, 0x7000)
    # allowed after activation
    w.h.create_rtts(w.ard, 0, 3)
    w.h.data_create(w.ard, 0, unknown=True)
    out = w.h.ok(F.DATA_DESTROY, w.rd, 0x5000)
    assert out[0] == d_empty
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, 0x5000, 3).x[4] == Ripas.EMPTY


def test_map_unmap_unprotected() -> None:
    w = World()
    ns = w.h.ns()
    w.h.ok(F.RTT_MAP_UNPROTECTED, w.rd, UNPROT + G, 3, ns | NS_DESC)
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, UNPROT + G, 3).x == (0, 3, 1, ns | NS_DESC, 0)
    r = w.h.ret(F.RTT_UNMAP_UNPROTECTED, w.rd, UNPROT + G, 3)
    assert r.x == (0, UNPROT + P2M)  # no live entry after it in the L3 table
    assert r.tlbi and r.tlbi[0].ipa == UNPROT + G and r.tlbi[0].size == G
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, UNPROT + G, 3).x == (0, 3, 0, 0, 0)
    r = w.h.ret(F.RTT_UNMAP_UNPROTECTED, w.rd, UNPROT + G, 3)
    assert r.x == (0x304, UNPROT + P2M)


def test_unmap_top_points_at_next_live_entry() -> None:
    w = World()
    ns = w.h.ns()
    w.h.ok(F.RTT_MAP_UNPROTECTED, w.rd, UNPROT + 5 * G, 3, ns | NS_DESC)
    w.h.ok(F.RTT_MAP_UNPROTECTED, w.rd, UNPROT + 2 * G, 3, ns | NS_DESC)
    assert w.h.ok(F.RTT_UNMAP_UNPROTECTED, w.rd, UNPROT + 2 * G, 3) == (UNPROT + 5 * G,)


def test_init_ripas_loop_and_measurement() -> None:
    w = World()
    realm = w.rmm.realm_at(w.rd)
    rim = realm.rim
    # L3 entries 2..7 (0x1000 is ASSIGNED and would stop the loop)
    assert w.h.ok(F.RTT_INIT_RIPAS, w.rd, 0x2000, 0x8000) == (0x8000,)
    m = Rim(realm.hash_algo)
    for ipa in range(0x2000, 0x8000, G):
        rim = m.extend_ripas(rim, ipa, ipa + G)
    assert realm.rim == rim
    for ipa in range(0x2000, 0x8000, G):
        assert w.h.ret(F.RTT_READ_ENTRY, w.rd, ipa, 3).x[4] == Ripas.RAM
    # an L2 entry [2M, 4M) is one step; the loop stops at the end of the L2 table (1 GiB)
    assert w.h.ok(F.RTT_INIT_RIPAS, w.rd, P2M, 1 << 31) == (1 << 30,)
    # B4.3.18: only the first entry must be UNASSIGNED ("rtte_state: walk.rtte.state
    # != UNASSIGNED"); walk_top = RttSkipEntriesWithRipas(..., FALSE) stops only at
    # a TABLE entry, so the ASSIGNED page at 0x1000 is processed and measured too.
    rim = realm.rim
    assert w.h.ok(F.RTT_INIT_RIPAS, w.rd, 0, 0x3000) == (0x3000,)
    for ipa in (0, 0x1000, 0x2000):
        rim = m.extend_ripas(rim, ipa, ipa + G)
    assert realm.rim == rim
    # already RAM: processed (and measured) again
    assert w.h.ok(F.RTT_INIT_RIPAS, w.rd, 0x2000, 0x3000) == (0x3000,)


def test_set_ripas_paths() -> None:
    w = World()
    rec = w.rmm.rec_at(w.rec)
    w.h.ok(F.RTT_INIT_RIPAS, w.rd, 0x2000, 0x4000)
    d = w.h.data_create(w.rd, 0x4000, unknown=True)  # ASSIGNED / EMPTY
    # to RAM over [0x2000, 0x6000): U/RAM no-op, U/RAM no-op, A/EMPTY -> A/RAM, U/EMPTY -> U/RAM
    rec.ripas_addr, rec.ripas_top, rec.ripas_value = 0x2000, 0x6000, Ripas.RAM
    assert w.h.ok(F.RTT_SET_RIPAS, w.rd, w.rec, 0x2000, 0x6000) == (0x6000,)
    assert rec.ripas_addr == 0x6000
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, 0x4000, 3).x[2:] == (1, d, Ripas.RAM)
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, 0x5000, 3).x[2:] == (0, 0, Ripas.RAM)
    # to EMPTY: A/RAM -> A/EMPTY invalidates the mapping
    rec.ripas_addr, rec.ripas_top, rec.ripas_value = 0x4000, 0x5000, Ripas.EMPTY
    r = w.h.ret(F.RTT_SET_RIPAS, w.rd, w.rec, 0x4000, 0x5000)
    assert r.x == (0, 0x5000) and r.tlbi
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, 0x4000, 3).x[2:] == (1, d, Ripas.EMPTY)
    # DESTROYED needs change_destroyed
    w.h.ok(F.DATA_DESTROY, w.rd, w.data_ipa)  # 0x1000: A/RAM -> U/DESTROYED
    rec.ripas_addr, rec.ripas_top, rec.ripas_value = 0x1000, 0x2000, Ripas.RAM
    assert w.h.ret(F.RTT_SET_RIPAS, w.rd, w.rec, 0x1000, 0x2000).condition == "no_progress"
    rec.ripas_destroyed = True
    assert w.h.ok(F.RTT_SET_RIPAS, w.rd, w.rec, 0x1000, 0x2000) == (0x2000,)
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, 0x1000, 3).x[4] == Ripas.RAM
    # partial progress: stops at the end of the L3 table
    rec.ripas_addr, rec.ripas_top, rec.ripas_value = P2M - G, P2M + G, Ripas.RAM
    assert w.h.ok(F.RTT_SET_RIPAS, w.rd, w.rec, P2M - G, P2M + G) == (P2M,)


def test_trace_events() -> None:
    trace = Trace()
    h = Host(trace=trace)
    pa = h.alloc()
    h.ok(F.GRANULE_DELEGATE, pa)
    h.ret(F.GRANULE_DELEGATE, pa)
    rmi = trace.history("rmi")
    assert rmi[0]["name"] == "RMI_GRANULE_DELEGATE" and rmi[0]["status"] == "RMI_SUCCESS"
    assert rmi[0]["args"] == [pa] and rmi[0]["cpu"] == 0 and rmi[0]["duration_us"] >= 0
    assert rmi[1]["status"] == "RMI_ERROR_INPUT" and rmi[1]["condition"] == "gran_state"
    g = trace.history("granule")
    assert g == [
        {
            **g[0],
            "pa": pa,
            "old": "UNDELEGATED",
            "new": "DELEGATED",
            "cmd": "RMI_GRANULE_DELEGATE",
            "realm": None,
            "ipa": None,
        }
    ]
    r = h.create_realm()
    h.create_rtts(r.rd, 0, 3)
    h.data_create(r.rd, 0x1000)
    ev = trace.history("granule")[-1]
    assert (ev["new"], ev["realm"], ev["ipa"], ev["cmd"]) == ("DATA", 1, 0x1000, "RMI_DATA_CREATE")
    assert trace.history("rmi")[-1]["realm"] == 1


def test_describe_undelegated_and_not_delegable() -> None:
    h = Host()
    assert h.rmm.describe_granule(RAM_BASE) == "UNDELEGATED"
    assert h.rmm.describe_granule(RAM_BASE - G) == "not delegable memory"
    assert h.rmm.describe_granule(RAM_BASE + 0x10).startswith("UNDELEGATED")
