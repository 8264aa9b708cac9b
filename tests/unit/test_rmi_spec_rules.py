"""Rules of the RMM v1.0 text that the RMM once got wrong (issue 9), one test
each, quoting the condition it checks."""

from __future__ import annotations

from realm_harness import RealmRun
from rmi_conditions import NS_DESC, P2M, UNPROT, World
from rmm_host import G, Host

from cosim.arch import stage2
from cosim.rmm import GranuleState
from cosim.rmm.abi import Ripas, RmiFid, RsiFid, RttEntryState
from cosim.rmm.measurement import Rim

F = RmiFid
L1 = 1 << 30


# -- 1. RTT liveness (A5.5.8, B3.64) and realm liveness (A2.1.4) ------------------------------


def test_unprotected_rtt_with_ns_mappings_is_not_live() -> None:
    """A5.5.8: "An RTT is live if, for any of its entries, either of the following
    is true: The RTTE state is ASSIGNED; The RTTE state is TABLE" -- "an RTT can
    be non-live, even if one of its entries is live ... ASSIGNED_NS"."""
    w = World()  # an NS page is mapped at UNPROT in an L3 RTT
    l3 = w.h.ret(F.RTT_READ_ENTRY, w.rd, UNPROT, 2).x[3]
    r = w.h.ret(F.RTT_DESTROY, w.rd, UNPROT, 3)
    assert r.x == (0, l3, UNPROT + L1)  # rtt; top: no live entry left in the L2 RTT
    assert r.tlbi and (r.tlbi[0].ipa, r.tlbi[0].size) == (UNPROT, P2M)
    assert w.rmm.granule_state(l3) is GranuleState.DELEGATED and w.h.memory.is_zero(l3, G)
    # the parent entry of an unprotected RTT becomes UNASSIGNED_NS (docs/rmm.md)
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, UNPROT, 3).x == (0, 2, 0, 0, Ripas.EMPTY)
    w.h.ok(F.RTT_MAP_UNPROTECTED, w.rd, UNPROT, 2, w.h.ns() & ~(P2M - 1) | NS_DESC)


def test_realm_with_ns_block_in_starting_rtt_is_not_live() -> None:
    """A2.1.4: a Realm is live if "The number of RECs owned by the Realm is not
    zero" or "A starting level RTT of the Realm is live"; RMI_REALM_DESTROY
    "realm_live: RealmIsLive(rd)"."""
    h = Host()
    r = h.create_realm()
    h.ok(F.RTT_MAP_UNPROTECTED, r.rd, UNPROT, 1, h.ns() & ~(L1 - 1) | NS_DESC)
    assert h.ok(F.REALM_DESTROY, r.rd) == ()
    assert all(h.rmm.granule_state(pa) is GranuleState.DELEGATED for pa in (r.rd, *r.roots))


def test_top_outputs_still_count_ns_entries_as_live() -> None:
    """B3.76 RttSkipNonLiveEntries scans for ASSIGNED, ASSIGNED_NS and TABLE
    entries (RTTE liveness)."""
    w = World()
    ns = w.h.ns()
    w.h.ok(F.RTT_MAP_UNPROTECTED, w.rd, UNPROT + 5 * G, 3, ns | NS_DESC)
    assert w.h.ok(F.RTT_UNMAP_UNPROTECTED, w.rd, UNPROT, 3) == (UNPROT + 5 * G,)
    r = w.h.ret(F.RTT_UNMAP_UNPROTECTED, w.rd, UNPROT + G, 3)  # not mapped: rtte_state
    assert (r.condition, r.x[1]) == ("rtte_state", UNPROT + 5 * G)


# -- 2. RMI_RTT_READ_ENTRY desc (B4.3.20.3) ------------------------------------------------------


def test_read_entry_reports_the_address_of_every_assigned_entry() -> None:
    """B4.3.20.3 state_prot: "(walk.rtte.state == ASSIGNED || walk.rtte.state ==
    TABLE)" -> "rtte.MemAttr == Zeros() && rtte.S2AP == Zeros() && rtte.addr ==
    walk.rtte.addr", whatever the RIPAS."""
    w = World()
    ram = w.h.data_create(w.rd, 0x3000)
    empty = w.h.data_create(w.rd, 0x4000, unknown=True)
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, 0x3000, 3).x[2:] == (1, ram, Ripas.RAM)
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, 0x4000, 3).x[2:] == (1, empty, Ripas.EMPTY)
    rec = w.rmm.rec_at(w.rec)
    rec.ripas_addr, rec.ripas_top, rec.ripas_value = 0x3000, 0x4000, Ripas.EMPTY
    w.h.ok(F.RTT_SET_RIPAS, w.rd, w.rec, 0x3000, 0x4000)  # A/RAM -> A/EMPTY
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, 0x3000, 3).x[2:] == (1, ram, Ripas.EMPTY)


def test_read_entry_of_destroyed_assigned_entry() -> None:
    """An ASSIGNED entry with RIPAS DESTROYED (DATA_CREATE_UNKNOWN keeps the RIPAS
    of the UNASSIGNED/DESTROYED entry that DATA_DESTROY left): desc still
    carries the address."""
    w = World()
    w.h.ok(F.DATA_DESTROY, w.rd, w.data_ipa)
    d = w.h.data_create(w.rd, w.data_ipa, unknown=True)
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, w.data_ipa, 3).x == (0, 3, 1, d, Ripas.DESTROYED)


def test_read_entry_of_table_and_ns_entries() -> None:
    """state_prot for TABLE (the next RTT's address); state_unprot: "rtte.MemAttr
    == walk.rtte.MemAttr && rtte.S2AP == walk.rtte.S2AP && rtte.addr ==
    walk.rtte.addr"; ripas_unprot: "ripas == RMI_EMPTY"."""
    w = World()
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, 0, 2).x == (0, 2, RttEntryState.TABLE, w.l3, 0)
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, UNPROT, 3).x == (0, 3, 1, w.ns_target | NS_DESC, 0)


# -- 3. RMI_RTT_INIT_RIPAS (B4.3.18, B3.75) ----------------------------------------------------


def test_init_ripas_first_entry_destroyed_is_accepted() -> None:
    """B4.3.18 "rtte_state: walk.rtte.state != UNASSIGNED": RIPAS DESTROYED does
    not matter; the entry becomes RAM and is measured."""
    w = World()
    w.h.ok(F.DATA_DESTROY, w.rd, w.data_ipa)  # 0x1000: ASSIGNED/RAM -> UNASSIGNED/DESTROYED
    realm = w.rmm.realm_at(w.rd)
    rim = Rim(realm.hash_algo).extend_ripas(realm.rim, 0x1000, 0x2000)
    assert w.h.ok(F.RTT_INIT_RIPAS, w.rd, 0x1000, 0x2000) == (0x2000,)
    assert realm.rim == rim
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, 0x1000, 3).x[2:] == (0, 0, Ripas.RAM)


def test_init_ripas_turns_assigned_empty_into_ram() -> None:
    """B4.3.18.3 rtte_ripas: "RttEntriesInRangeRipas(Rtt(walk.rtt_addr),
    walk.level, base, walk_top, RAM)": an ASSIGNED/EMPTY entry after the first
    one becomes ASSIGNED/RAM (a valid mapping)."""
    w = World()
    d = w.h.data_create(w.rd, 0x3000, unknown=True)
    assert w.h.ok(F.RTT_INIT_RIPAS, w.rd, 0x2000, 0x5000) == (0x5000,)
    assert w.h.ret(F.RTT_READ_ENTRY, w.rd, 0x3000, 3).x[2:] == (1, d, Ripas.RAM)


def test_init_ripas_stops_at_a_table_entry() -> None:
    """B3.75: walk_top is "the IPA of the first entry whose state is TABLE", at
    most top, aligned down to the walk level's entry size."""
    w = World()  # L2 entry 0 is a TABLE, entries 1.. are UNASSIGNED at level 2
    w.h.create_rtts(w.rd, 3 * P2M, 3)
    assert w.h.ok(F.RTT_INIT_RIPAS, w.rd, P2M, 1 << 30) == (3 * P2M,)
    # an entry larger than [base, top): walk_top = AlignDown(top) == base
    r = w.h.ret(F.RTT_INIT_RIPAS, w.rd, 4 * P2M, 4 * P2M + G)
    assert (r.condition, r.x[0]) == ("no_progress", 0x204)


# -- 4. no failures the spec does not list (B1.6) ----------------------------------------------


def test_data_create_ignores_reserved_flag_bits() -> None:
    """RmiDataFlags bits [63:1] are "Reserved SBZ" (B4.4.2) and no failure
    condition reads them; B1.6 "If no failure pre-condition evaluates to true
    then the command succeeds".  The measured flags are the RmmDataFlags value
    (C1.11: unused bits MBZ)."""
    w = World()
    realm = w.rmm.realm_at(w.rd)
    m = Rim(realm.hash_algo)
    rim = realm.rim
    w.h.ok(F.DATA_CREATE, w.rd, w.h.delegate(), 0x3000, w.src, 0xFFFF_FFFF_FFFF_FFFE)
    rim = m.extend_data(rim, 0x3000, 0, None)
    w.h.ok(F.DATA_CREATE, w.rd, w.h.delegate(), 0x4000, w.src, 0x8000_0000_0000_0001)
    rim = m.extend_data(rim, 0x4000, 1, w.h.memory.read(w.src, G))
    assert realm.rim == rim


def test_rec_create_ignores_reserved_mpidr_bits() -> None:
    """RmiRecMpidr bits [7:4] and [63:32] are "Reserved SBZ" (B4.4.18); RecIndex
    (B3.38) reads only aff0..aff3."""
    w = World()
    rec = w.h.delegate()
    p = w.rec_params(2, mpidr=2 | 0xF0 | 0xABCD << 32)
    assert w.h.ok(F.REC_CREATE, w.rd, rec, p) == ()
    assert w.rmm.rec_at(rec).mpidr == 2  # MpidrEqual(Rec(rec).mpidr, params.mpidr)


def test_ipa_state_set_ignores_x3_upper_bits() -> None:
    """B5.3.6.1.1: "The following unused bits of RSI_IPA_STATE_SET input values
    SBZ: X3[63:8]"."""
    rr = RealmRun()
    rr.enter()
    e = rr.exit_of(rr.smc(RsiFid.IPA_STATE_SET, 0x100000, 0x102000, 0xFF00 | Ripas.RAM, 0))
    assert (e.ripas_base, e.ripas_top, e.ripas_value) == (0x100000, 0x102000, Ripas.RAM)


# -- 5. top outputs (B3.76) ------------------------------------------------------------------


def test_top_of_a_live_block_is_aligned_down() -> None:
    """B3.76: "The return value is aligned to the size of the address range
    described by an entry at RTT level" -- a live block at level 2 gives its base."""
    w = World()
    ns = w.h.ns() & ~(P2M - 1)
    w.h.ok(F.RTT_MAP_UNPROTECTED, w.rd, UNPROT + P2M, 2, ns | NS_DESC)
    r = w.h.ret(F.RTT_UNMAP_UNPROTECTED, w.rd, UNPROT + P2M + G, 3)
    assert (r.condition, r.x) == ("rtt_walk", (0x204, UNPROT + P2M))
    r = w.h.ret(F.RTT_DESTROY, w.rd, UNPROT + P2M, 3)
    assert (r.condition, r.x) == ("rtte_state", (0x204, 0, UNPROT + P2M))


def test_top_stops_at_the_end_of_one_starting_rtt() -> None:
    """C1.28 (an RmmRtt has 512 entries), A5.5.3 ("The number of starting level
    RTTs"), C1.31 (walk.rtt_addr is the RTT reached): RttSkipNonLiveEntries(
    Rtt(walk.rtt_addr), ...) scans one starting RTT, not the concatenation."""
    h = Host()
    r = h.create_realm(s2sz=41, rtt_level_start=1, rtt_num_start=4)  # protected: roots 0, 1
    root1 = 1 << 39
    h.create_rtts(r.rd, root1 + L1, 2)  # a TABLE (live) entry in starting RTT 1
    res = h.ret(F.DATA_DESTROY, r.rd, 5 * L1)  # the walk stops at level 1 in RTT 0
    assert (res.condition, res.x) == ("rtt_walk", (0x104, 0, root1))
    res = h.ret(F.DATA_DESTROY, r.rd, root1)
    assert (res.condition, res.x) == ("rtt_walk", (0x104, 0, root1 + L1))


# -- 6. labels: num_recs counts live RECs (B4.3.12) --------------------------------------------


def test_num_recs_counts_live_recs_and_rec_index_counts_up() -> None:
    """B4.3.12 "num_recs: realm.num_recs == (2 ^ ImplFeatures().max_recs_order) - 1"
    and "mpidr_index: RecIndex(params.mpidr) != realm.rec_index"; B4.3.13 success
    "num_recs: realm.num_recs == realm_pre.num_recs - 1"."""
    h = Host(max_recs_order=2)  # at most 3 RECs
    r = h.create_realm()
    recs = [h.create_rec(r) for _ in range(3)]
    p = h.ns(h.rec_params(3).to_bytes())
    assert h.ret(F.REC_CREATE, r.rd, h.delegate(), p).condition == "num_recs"
    h.ok(F.REC_DESTROY, recs[1])
    p = h.ns(h.rec_params(1).to_bytes())  # a freed index is not reused: rec_index is 3
    assert h.ret(F.REC_CREATE, r.rd, h.delegate(), p).condition == "mpidr_index"
    p = h.ns(h.rec_params(3).to_bytes())
    assert h.ok(F.REC_CREATE, r.rd, h.delegate(), p) == ()
    realm = h.rmm.realm_at(r.rd)
    assert (realm.num_recs, realm.rec_index) == (3, 4)


# -- 7. deliberate deviation: RMI_RTT_SET_RIPAS when the RIPAS already matches --------------------


def test_set_ripas_base_align_and_no_progress_even_when_ripas_matches() -> None:
    """B4.3.21 "base_align: (!AddrIsRttLevelAligned(base, walk.level) && ripas !=
    rec.ripas_value)" and "no_progress: (UInt(base) == UInt(walk_top) && ripas !=
    rec.ripas_value)".  Taken literally, a matching RIPAS makes both succeed with
    out_top = MinAddress(top, walk_top) <= base, a request that never advances;
    this RMM fails them whatever the RIPAS (docs/rmm.md, deliberate deviations)."""
    w = World()
    rec = w.rmm.rec_at(w.rec)
    # level-2 entry [2M, 4M) is UNASSIGNED/EMPTY: a request for EMPTY already matches
    rec.ripas_addr, rec.ripas_top, rec.ripas_value = P2M + G, P2M + 2 * G, Ripas.EMPTY
    r = w.h.ret(F.RTT_SET_RIPAS, w.rd, w.rec, P2M + G, P2M + 2 * G)
    assert (r.condition, r.x[0]) == ("base_align", 0x204)
    rec.ripas_addr = P2M
    r = w.h.ret(F.RTT_SET_RIPAS, w.rd, w.rec, P2M, P2M + G)
    assert (r.condition, r.x[0]) == ("no_progress", 0x204)
    assert stage2.entry_size(2) == P2M


# -- RMI_REALM_CREATE: alias and rtt_align as the pseudocode reads (B4.3.9.2, B3.1, B3.2) ------


def test_realm_create_alias_and_rtt_align_read_literally() -> None:
    """"alias: AddrInRange(rd, params.rtt_base, (params.rtt_num_start - 1) *
    RMM_GRANULE_SIZE)" with AddrInRange "within [base, base+size]"; "rtt_align:
    !AddrIsAligned(params.rtt_base, params.rtt_num_start * RMM_GRANULE_SIZE)"."""
    w = World()
    base = w.h.delegate(2, align=2 * G)
    r = w.h.ret(F.REALM_CREATE, base + G + 0x800, w.realm_params(rtt_base=base))
    assert r.condition == "rd_align"  # past the last starting RTT's base: not an alias
    r = w.h.ret(F.REALM_CREATE, base + G, w.realm_params(rtt_base=base))
    assert r.condition == "alias"
    three = w.h.delegate(4, align=4 * G) + G  # 4 KiB aligned, not 12 KiB aligned
    r = w.h.ret(F.REALM_CREATE, w.h.delegate(), w.realm_params(rtt_base=three, rtt_num_start=3))
    assert r.condition == "rtt_align" and three % (3 * G) != 0
