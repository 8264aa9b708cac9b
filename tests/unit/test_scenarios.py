"""Whole life cycles, checked against an independent stage-2 walk of the RTTs."""

from __future__ import annotations

import hashlib

from rmi_conditions import NS_DESC
from rmm_host import G, Host, RealmHandle
from s2walker import Fault, Mapping, Stage2

from cosim.arch.pas import Pas
from cosim.rmm import GranuleState
from cosim.rmm.abi import Ripas, RmiFid
from cosim.rmm.measurement import Rim
from cosim.trace import Trace

F = RmiFid
RAM = 1
EMPTY = 0
DESTROYED = 2


def stage2(h: Host, r: RealmHandle) -> Stage2:
    return Stage2(h.memory, r.params.rtt_base, r.params.rtt_level_start, r.params.s2sz)


def assert_protected_page(s2: Stage2, ipa: int, pa: int, level: int = 3) -> None:
    m = s2.translate(ipa)
    assert isinstance(m, Mapping), f"IPA {ipa:#x} not mapped: {m}"
    assert (m.pa, m.level, m.ns) == (pa, level, False)
    assert m.readable and m.writable and m.executable
    assert (m.memattr, m.sh, m.ripas) == (0xF, 3, RAM)


def assert_unmapped(s2: Stage2, ipa: int, ripas: int) -> None:
    f = s2.translate(ipa)
    assert isinstance(f, Fault), f"IPA {ipa:#x} unexpectedly mapped: {f}"
    assert f.ripas == ripas


def test_two_recs_64_measured_pages_full_teardown() -> None:
    trace = Trace()
    h = Host(trace=trace)
    undelegated_before = bytes(h.gpt._table)
    r = h.create_realm()
    s2 = stage2(h, r)
    base = 0x8000_0000 % (1 << 39)  # 2 GiB, protected
    rtts = h.create_rtts(r.rd, base, 3)
    assert h.ok(F.RTT_INIT_RIPAS, r.rd, base, base + 64 * G) == (base + 64 * G,)
    pages = {}
    for i in range(64):
        content = hashlib.sha256(i.to_bytes(4, "little")).digest() * 128
        pages[base + i * G] = (h.data_create(r.rd, base + i * G, content), content)
    recs = [h.create_rec(r, pc=base), h.create_rec(r, runnable=False)]
    h.ok(F.REALM_ACTIVATE, r.rd)
    for ipa, (pa, content) in pages.items():
        assert_protected_page(s2, ipa, pa)
        assert h.memory.read(pa, G) == content
        assert h.gpt.get(pa) is Pas.REALM
    assert_unmapped(s2, base + 64 * G, EMPTY)
    assert_unmapped(s2, 0, EMPTY)
    # teardown, the way KVM does it
    for rec in recs:
        aux = h.rmm.rec_at(rec).aux
        h.ok(F.REC_DESTROY, rec)
        for pa in (rec, *aux):
            h.ok(F.GRANULE_UNDELEGATE, pa)
    for ipa, (pa, _) in pages.items():
        assert h.ok(F.DATA_DESTROY, r.rd, ipa)[0] == pa
        h.ok(F.GRANULE_UNDELEGATE, pa)
        assert_unmapped(s2, ipa, DESTROYED)
    for level, rtt in reversed(list(enumerate(rtts, start=2))):
        assert (
            h.ok(F.RTT_DESTROY, r.rd, base & ~((1 << (12 + 9 * (4 - level))) - 1), level)[0] == rtt
        )
        h.ok(F.GRANULE_UNDELEGATE, rtt)
    h.ok(F.REALM_DESTROY, r.rd)
    for pa in (r.rd, *r.roots):
        h.ok(F.GRANULE_UNDELEGATE, pa)
    assert h.rmm.granules() == {}
    assert h.rmm.realms == {}
    assert bytes(h.gpt._table) == undelegated_before
    held = {e["pa"] for e in trace.history("granule")}
    assert len(held) == 1 + 2 + len(rtts) + 64 + 2 * 17
    assert all(h.memory.is_zero(pa, G) for pa in held)  # nothing of the realm survives


def test_rim_sequence_matches_vectors() -> None:
    """The fact sheet's section 7.7 sequence through the real commands."""
    h = Host()
    r = h.create_realm(s2sz=40, num_bps=5, num_wps=3)
    realm = h.rmm.realm_at(r.rd)
    assert (
        realm.rim[:32].hex() == "f33498f22eed8d51fb28b95769b27275a8c69a469e26b0050f1e809c4e0146b4"
    )
    ipa = 0x8000_0000
    h.create_rtts(r.rd, ipa, 2)
    h.ok(F.RTT_INIT_RIPAS, r.rd, ipa, ipa + 0x20_0000)
    assert (
        realm.rim[:32].hex() == "f1716fdda6e64db71c74619256e348fab4818fd547d9abc6b8cab34ab5a8001c"
    )
    h.create_rtts(r.rd, ipa, 3)
    h.data_create(r.rd, ipa, bytes(G), measure=True)
    assert (
        realm.rim[:32].hex() == "8cbaed33d061fc264761d792450db5d483cb14a285bdd0083ab0433a57af8b2b"
    )
    h.data_create(r.rd, ipa + G, b"\x5a" * G, measure=False)
    assert (
        realm.rim[:32].hex() == "785b719c494bda73b4d8516a3375818b6313d20ea36f50f8c09c85f44cb27727"
    )
    h.create_rec(r, pc=0x8000_0000, gprs=[0x8800_0000] + [0] * 7)
    assert (
        realm.rim[:32].hex() == "90c8da504e9d1eba1cda4923747c84cbb1f310d9ac692989f15976b45f55de66"
    )
    assert realm.rim[32:] == bytes(32)


def test_sha512_realm() -> None:
    h = Host()
    r = h.create_realm(hash_algo=1)
    realm = h.rmm.realm_at(r.rd)
    p = r.params
    assert realm.rim == hashlib.sha512(p.measured_bytes()).digest()
    h.create_rtts(r.rd, 0, 3)
    h.data_create(r.rd, 0, b"\1" * G)
    assert realm.rim == Rim(realm.hash_algo).extend_data(
        hashlib.sha512(p.measured_bytes()).digest(), 0, 1, b"\1" * G
    )


def _rtts_at_every_level(h: Host) -> None:
    r = h.create_realm(s2sz=48, rtt_level_start=0, rtt_num_start=1)
    s2 = stage2(h, r)
    ipa = 0x40_0000_0000 + 0x4000_0000 + 0x20_0000  # 256 GiB + 1 GiB + 2 MiB
    l1, l2, l3 = h.create_rtts(r.rd, ipa, 3)
    assert [
        h.ret(F.RTT_READ_ENTRY, r.rd, ipa & ~((1 << (12 + 9 * (3 - lv))) - 1), lv).x[1:3]
        for lv in (0, 1, 2, 3)
    ] == [(0, 2), (1, 2), (2, 2), (3, 0)]
    # fold the empty tables back up, level by level: UNASSIGNED/EMPTY everywhere
    assert h.ok(F.RTT_FOLD, r.rd, ipa & ~(0x20_0000 - 1), 3) == (l3,)
    assert h.ok(F.RTT_FOLD, r.rd, ipa & ~(0x4000_0000 - 1), 2) == (l2,)
    assert h.ok(F.RTT_FOLD, r.rd, ipa & ~((1 << 39) - 1), 1) == (l1,)
    assert h.ret(F.RTT_READ_ENTRY, r.rd, ipa, 3).x[1:] == (0, 0, 0, Ripas.EMPTY)
    assert_unmapped(s2, ipa, EMPTY)
    # and destroy them at every level
    l1, l2, l3 = h.create_rtts(r.rd, ipa, 3)
    assert h.ok(F.RTT_DESTROY, r.rd, ipa & ~(0x20_0000 - 1), 3)[0] == l3
    assert h.ok(F.RTT_DESTROY, r.rd, ipa & ~(0x4000_0000 - 1), 2)[0] == l2
    assert h.ok(F.RTT_DESTROY, r.rd, ipa & ~((1 << 39) - 1), 1)[0] == l1
    assert h.ret(F.RTT_READ_ENTRY, r.rd, ipa, 3).x[1:] == (0, 0, 0, Ripas.DESTROYED)
    assert_unmapped(s2, ipa, DESTROYED)
    for pa in (l1, l2, l3):
        assert h.rmm.granule_state(pa) is GranuleState.DELEGATED


def test_rtt_create_fold_destroy_every_level() -> None:
    _rtts_at_every_level(Host())


def test_fold_assigned_block_and_unfold() -> None:
    h = Host()
    r = h.create_realm()
    s2 = stage2(h, r)
    ipa = 0x4000_0000  # 1 GiB
    h.create_rtts(r.rd, ipa, 3)
    block = h.delegate(512, align=0x20_0000)
    src = h.ns(b"\xab" * G)
    for i in range(512):
        h.ok(F.GRANULE_UNDELEGATE, block + i * G)  # re-delegate one by one through DATA_CREATE
        h.ok(F.GRANULE_DELEGATE, block + i * G)
        h.ok(F.DATA_CREATE, r.rd, block + i * G, ipa + i * G, src, 0)
    l3 = h.ret(F.RTT_READ_ENTRY, r.rd, ipa, 2).x[3]
    r_fold = h.ret(F.RTT_FOLD, r.rd, ipa, 3)
    assert r_fold.x == (0, l3) and r_fold.tlbi
    assert h.ret(F.RTT_READ_ENTRY, r.rd, ipa, 3).x[1:] == (2, 1, block, Ripas.RAM)
    m = s2.translate(ipa + 0x12345)
    assert isinstance(m, Mapping) and (m.pa, m.level, m.ns, m.ripas) == (
        block + 0x12345,
        2,
        False,
        RAM,
    )
    # DATA_DESTROY inside a block: the walk stops at level 2 on a live entry, and
    # top = RttSkipNonLiveEntries(...) is "aligned to the size of the address range
    # described by an entry at RTT level" (B3.76): the block's base, below ipa.
    assert h.ret(F.DATA_DESTROY, r.rd, ipa + G).x == (0x204, 0, ipa)
    # RTT_DESTROY refuses a block (not a table) at level 2
    assert h.ret(F.RTT_DESTROY, r.rd, ipa, 3).condition == "rtte_state"
    # unfold: the new L3 table holds 512 pages again
    rtt = h.delegate()
    h.ok(F.RTT_CREATE, r.rd, rtt, ipa, 3)
    for i in (0, 1, 511):
        assert_protected_page(s2, ipa + i * G, block + i * G)
    assert h.ok(F.DATA_DESTROY, r.rd, ipa + G)[0] == block + G
    # not homogeneous any more
    assert h.ret(F.RTT_FOLD, r.rd, ipa, 3).condition == "rtt_homo"


def test_fold_requires_aligned_contiguous_pages() -> None:
    h = Host()
    r = h.create_realm()
    h.create_rtts(r.rd, 0, 3)
    first = h.delegate(513, align=0x20_0000)
    for i in range(512):
        h.ok(F.GRANULE_UNDELEGATE, first + (i + 1) * G)
        h.ok(F.GRANULE_DELEGATE, first + (i + 1) * G)
        h.ok(F.DATA_CREATE_UNKNOWN, r.rd, first + (i + 1) * G, i * G)  # PA not 2 MiB aligned
    assert h.ret(F.RTT_FOLD, r.rd, 0, 3).condition == "rtt_homo"


def test_unprotected_mappings_and_ns_block_fold() -> None:
    h = Host()
    r = h.create_realm()
    s2 = stage2(h, r)
    unprot = 1 << 39
    h.create_rtts(r.rd, unprot, 3)
    ns = h.ns()
    h.ok(F.RTT_MAP_UNPROTECTED, r.rd, unprot + 3 * G, 3, ns | NS_DESC)
    m = s2.translate(unprot + 3 * G + 0x10)
    assert isinstance(m, Mapping)
    assert (m.pa, m.ns, m.executable, m.readable, m.writable, m.memattr, m.sh) == (
        ns + 0x10,
        True,
        False,
        True,
        True,
        0b0110,
        3,
    )
    ro = h.ns()
    h.ok(F.RTT_MAP_UNPROTECTED, r.rd, unprot + 4 * G, 3, ro | 0x18 | 0x40)  # read-only
    m = s2.translate(unprot + 4 * G)
    assert isinstance(m, Mapping) and (m.readable, m.writable) == (True, False)
    h.ok(F.RTT_UNMAP_UNPROTECTED, r.rd, unprot + 3 * G, 3)
    h.ok(F.RTT_UNMAP_UNPROTECTED, r.rd, unprot + 4 * G, 3)
    assert isinstance(s2.translate(unprot + 3 * G), Fault)
    # a 2 MiB NS block at level 2 (after folding the empty L3 away) ...
    h.ok(F.RTT_FOLD, r.rd, unprot, 3)
    h.ok(F.RTT_MAP_UNPROTECTED, r.rd, unprot, 2, 0x8000_0000 | NS_DESC)
    m = s2.translate(unprot + 0x1234)
    assert isinstance(m, Mapping) and (m.pa, m.level, m.ns) == (0x8000_1234, 2, True)
    # ... and 512 contiguous 2 MiB NS blocks fold into a 1 GiB block at level 1
    for i in range(1, 512):
        h.ok(
            F.RTT_MAP_UNPROTECTED,
            r.rd,
            unprot + i * 0x20_0000,
            2,
            (0x8000_0000 + i * 0x20_0000) | NS_DESC,
        )
    h.ok(F.RTT_FOLD, r.rd, unprot, 2)
    m = s2.translate(unprot + 0x3000_0000)
    assert isinstance(m, Mapping) and (m.pa, m.level, m.ns) == (0xB000_0000, 1, True)
    assert h.ret(F.RTT_READ_ENTRY, r.rd, unprot, 1).x[1:] == (1, 1, 0x8000_0000 | NS_DESC, 0)
    h.ok(F.RTT_UNMAP_UNPROTECTED, r.rd, unprot, 1)
    assert h.ret(F.RTT_READ_ENTRY, r.rd, unprot, 1).x[1:] == (1, 0, 0, 0)


def test_ripas_paths_seen_by_the_walker() -> None:
    h = Host()
    r = h.create_realm()
    s2 = stage2(h, r)
    h.create_rtts(r.rd, 0, 3)
    h.ok(F.RTT_INIT_RIPAS, r.rd, 0, 4 * G)
    assert_unmapped(s2, 0, RAM)  # RAM but UNASSIGNED: faults (host must back it)
    assert_unmapped(s2, 4 * G, EMPTY)
    d = h.data_create(r.rd, 0, unknown=True)
    assert_protected_page(s2, 0, d)
    d2 = h.data_create(r.rd, 4 * G, unknown=True)  # EMPTY: assigned but not mapped
    assert_unmapped(s2, 4 * G, EMPTY)
    h.create_rec(r)
    rec = h.rmm.rec_at(r.recs[0])
    rec.ripas_addr, rec.ripas_top, rec.ripas_value = 0, 8 * G, Ripas.EMPTY
    h.ok(F.RTT_SET_RIPAS, r.rd, r.recs[0], 0, 8 * G)
    assert_unmapped(s2, 0, EMPTY)
    rec.ripas_addr, rec.ripas_top, rec.ripas_value = 0, 8 * G, Ripas.RAM
    h.ok(F.RTT_SET_RIPAS, r.rd, r.recs[0], 0, 8 * G)
    assert_protected_page(s2, 0, d)
    assert_protected_page(s2, 4 * G, d2)
    h.ok(F.DATA_DESTROY, r.rd, 0)
    assert_unmapped(s2, 0, DESTROYED)
