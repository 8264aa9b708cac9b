"""FEAT_LPA2 realms: 52-bit IPAs and output addresses, level -1 starting RTTs,
the 52-bit descriptor format (OA[51:50] in bits [9:8]) and the `*_bound2`
conditions (A3.1.2, B4.3.1/2/15/19), over test RAM placed around 2**50 so
that granules have output-address bits above 48 (and bit 50)."""

from __future__ import annotations

import pytest
from realm_harness import RealmRun
from rmm_host import G, Host, RealmHandle
from s2walker import Fault, Mapping, Stage2

from cosim.arch import el2 as R
from cosim.arch import stage2
from cosim.rmm import GranuleState
from cosim.rmm.abi import REALM_FLAG_LPA2, Ripas, RmiFid, rmi_index, rmi_status
from cosim.rmm.features import FeatureRegister0
from cosim.rmm.rec import Rec
from cosim.rmm.structs import RmiRecEnter

F = RmiFid
HIGH = 1 << 50
"""A PA with bit 50 set: in the DS = 1 format, OA[51:50] go to bits [9:8]."""
NS_DESC = 0xD8
LPA2 = {"lpa2": True, "pa_width": 52, "s2sz_max": 52}


def high_host(**kw: object) -> Host:
    """An LPA2 RMM over 6 MiB of RAM from 2**50 - 2 MiB: granules allocated
    first lie below 2**50, those from `at_high` at and above it."""
    return Host(ram_base=HIGH - (2 << 20), ram_size=6 << 20, **LPA2, **kw)  # type: ignore[arg-type]


def lpa2_realm(h: Host, s2sz: int = 52, level: int = -1, num: int = 1) -> RealmHandle:
    return h.create_realm(
        flags=REALM_FLAG_LPA2, s2sz=s2sz, rtt_level_start=level, rtt_num_start=num
    )


def walker(h: Host, r: RealmHandle) -> Stage2:
    p = r.params
    return Stage2(h.memory, p.rtt_base, p.rtt_level_start, p.s2sz, ds=True)


def test_feature_register_advertises_lpa2() -> None:
    """RmiFeatureRegister0 (B4.4.6): S2SZ "Maximum Realm IPA width supported",
    LPA2 "Whether LPA2 is supported"."""
    f = FeatureRegister0.unpack(high_host().ret(F.FEATURES, 0).x[1])
    assert (f.s2sz, f.lpa2) == (52, 1)


@pytest.mark.parametrize(
    "s2sz, level, num",
    [(52, -1, 1), (49, -1, 1), (52, 0, 16), (49, 0, 2), (48, 0, 1), (43, 1, 16), (40, 1, 2)],
)
def test_lpa2_realm_geometries(s2sz: int, level: int, num: int) -> None:
    """RttConfigIsValid (B3.55) with DS = 1: level -1 covers 49..52 bits with one
    table of up to 16 entries; level 0 up to 52 bits with 16 concatenated tables."""
    h = high_host()
    r = lpa2_realm(h, s2sz, level, num)
    realm = h.rmm.realm_at(r.rd)
    assert realm.lpa2 and realm.root_entry_count() == 1 << (s2sz - stage2.level_shift(level))
    # B4.3.9.3: protected entries UNASSIGNED/EMPTY, unprotected ones UNASSIGNED_NS
    unprot = 1 << (s2sz - 1)
    assert h.ret(F.RTT_READ_ENTRY, r.rd, 0, level).x == (0, level & (2**64 - 1), 0, 0, 0)
    assert h.ret(F.RTT_READ_ENTRY, r.rd, unprot, level).x[2:] == (0, 0, Ripas.EMPTY)


@pytest.mark.parametrize(
    "flags, s2sz, level, num, label",
    [
        (0, 49, 0, 2, "params_supp"),  # more than 48 bits needs the realm's LPA2 flag
        (REALM_FLAG_LPA2, 48, -1, 1, "rtt_num_level"),  # level -1 is for 49..52 bits
        (REALM_FLAG_LPA2, 52, -1, 2, "rtt_num_level"),
        (REALM_FLAG_LPA2, 52, 0, 8, "rtt_num_level"),
        (REALM_FLAG_LPA2, 53, -1, 1, "params_valid"),
    ],
)
def test_lpa2_realm_create_failures(
    flags: int, s2sz: int, level: int, num: int, label: str
) -> None:
    h = high_host()
    p = h.realm_params(flags=flags, s2sz=s2sz, rtt_level_start=level, rtt_num_start=num)
    p.rtt_base = h.delegate(num, align=num * G)
    r = h.ret(F.REALM_CREATE, h.delegate(), h.ns(p.to_bytes()))
    assert r.condition == label


def test_level_minus_one_is_invalid_without_lpa2() -> None:
    """Without FEAT_LPA2 (and 52-bit PAs) a walk cannot start at level -1
    (AArch64.S2InvalidSL), nor does RMI_FEATURES offer more than 48 bits."""
    h = Host()
    p = h.realm_params(flags=REALM_FLAG_LPA2, s2sz=52, rtt_level_start=-1, rtt_num_start=1)
    p.rtt_base = h.delegate()
    assert h.ret(F.REALM_CREATE, h.delegate(), h.ns(p.to_bytes())).condition == "params_supp"


def _map_protected_page(h: Host, r: RealmHandle, ipa: int, data: int, level: int = -1) -> None:
    made = []
    for lvl in range(level + 1, 4):
        rtt = h.delegate()
        h.ok(F.RTT_CREATE, r.rd, rtt, ipa & ~(stage2.entry_size(lvl - 1) - 1), lvl)
        made.append(rtt)
    src = h.ns(b"\x5a" * G)
    h.ok(F.DATA_CREATE, r.rd, data, ipa, src, 1)


def test_52_bit_ipa_and_output_addresses_seen_by_the_walker() -> None:
    """An LPA2 realm (s2sz 52, starting level -1) maps a DATA granule at PA 2**50
    at an IPA above 2**50; RTTs above 2**48 are accepted (no rtt_bound2 for an
    LPA2 realm); the CPU's DS = 1 walk finds the page, and READ_ENTRY reports
    the address in that format (OA[51:50] in bits [9:8])."""
    h = high_host()
    r = lpa2_realm(h)
    s2 = walker(h, r)
    ipa = (1 << 50) + 0x1234_5000
    data = h.delegate_at(HIGH)
    _map_protected_page(h, r, ipa, data)
    m = s2.translate(ipa + 0x10)
    assert isinstance(m, Mapping) and (m.pa, m.level, m.ns, m.sh) == (HIGH + 0x10, 3, False, -1)
    assert m.readable and m.writable and m.executable
    state, desc, ripas = h.ret(F.RTT_READ_ENTRY, r.rd, ipa, 3).x[2:]
    assert (state, desc, ripas) == (1, stage2.oa_field(HIGH, lpa2=True), Ripas.RAM)
    assert desc == 1 << 8  # PA 2**50: OA[51:50] = 0b01 in bits [9:8], nothing in [49:12]
    # the starting RTT at level -1: entry 4 (IPA bits [51:48] = 4) is a TABLE
    assert h.ret(F.RTT_READ_ENTRY, r.rd, 1 << 50, -1).x[1:3] == (2**64 - 1, 2)
    # DATA_DESTROY: top is the next live entry of the level-3 RTT (none: its end)
    res = h.ret(F.DATA_DESTROY, r.rd, ipa)
    assert res.x == (0, data, (ipa | (stage2.entry_size(2) - 1)) + 1)
    assert isinstance(s2.translate(ipa), Fault)


def test_unprotected_mappings_in_the_52_bit_format() -> None:
    """RMI_RTT_MAP_UNPROTECTED takes the host's descriptor in the realm's format
    (ADDR, MemAttr[2:0], S2AP are the Host-controlled attributes, A5.5.11); for
    an LPA2 realm OA[51:50] are bits [9:8] and bits [51:50] are not ADDR."""
    h = high_host()
    r = lpa2_realm(h)
    s2 = walker(h, r)
    unprot = 1 << 51
    ipa = unprot + (1 << 50)
    for lvl in range(0, 4):
        h.ok(F.RTT_CREATE, r.rd, h.delegate(), ipa & ~(stage2.entry_size(lvl - 1) - 1), lvl)
    ns = h.alloc_at(HIGH + G)
    desc = stage2.oa_field(ns, lpa2=True) | NS_DESC
    bad = h.ret(F.RTT_MAP_UNPROTECTED, r.rd, ipa, 3, (ns & ~(3 << 50)) | 1 << 50 | NS_DESC)
    assert bad.condition == "attr_valid"
    h.ok(F.RTT_MAP_UNPROTECTED, r.rd, ipa, 3, desc)
    m = s2.translate(ipa + 8)
    assert isinstance(m, Mapping) and (m.pa, m.ns, m.executable) == (ns + 8, True, False)
    assert h.ret(F.RTT_READ_ENTRY, r.rd, ipa, 3).x[2:] == (1, desc, Ripas.EMPTY)


def test_non_lpa2_realm_on_an_lpa2_platform() -> None:
    """A3.1.2: "If LPA2 is not enabled for a Realm then passing a PA greater than
    or equal to 2^48 to any of the following commands causes an error":
    rtt_bound2, data_bound2 (B4.3.1, B4.3.2), addr_bound (B4.3.19); and SH is
    in the descriptor, not an address field."""
    h = Host(ram_base=(1 << 48) - (2 << 20), ram_size=4 << 20, **LPA2)  # type: ignore[arg-type]
    r = h.create_realm(s2sz=40)
    h.create_rtts(r.rd, 0, 3)
    high = h.delegate_at(1 << 48)
    assert h.ret(F.RTT_CREATE, r.rd, high, 1 << 30, 2).condition == "rtt_bound2"
    assert h.ret(F.DATA_CREATE_UNKNOWN, r.rd, high, 0).condition == "data_bound2"
    assert h.ret(F.DATA_CREATE, r.rd, high, 0, h.ns(), 0).condition == "data_bound2"
    unprot = 1 << 39
    h.create_rtts(r.rd, unprot, 3)
    r_addr = h.ret(F.RTT_MAP_UNPROTECTED, r.rd, unprot, 3, (1 << 48) | NS_DESC)
    assert r_addr.condition == "addr_bound"
    r_sh = h.ret(F.RTT_MAP_UNPROTECTED, r.rd, unprot, 3, 0x1000 | 3 << 8 | NS_DESC)
    assert r_sh.condition == "attr_valid"


def test_error_index_of_level_minus_one() -> None:
    """ResultEqual(result, RMI_ERROR_RTT, walk.level) with walk.level -1: the
    index field [15:8] (UInt8) holds it in two's complement, 0xFF."""
    h = high_host()
    r = lpa2_realm(h)
    res = h.ret(F.DATA_CREATE_UNKNOWN, r.rd, h.delegate(), 0)
    assert (res.condition, rmi_status(res.x[0]), rmi_index(res.x[0])) == ("rtt_walk", 4, 0xFF)
    h.ok(F.RTT_CREATE, r.rd, h.delegate(), 0, 0)
    res = h.ret(F.RTT_CREATE, r.rd, h.delegate(), 0, 0)
    assert (res.condition, rmi_index(res.x[0])) == ("rtte_state", 0xFF)
    res = h.ret(F.RTT_DESTROY, r.rd, 1 << 48, 0)  # entry 1 of the level -1 RTT: UNASSIGNED
    assert (res.condition, rmi_index(res.x[0]), res.x[2]) == ("rtte_state", 0xFF, 1 << 52)
    h.ok(F.RTT_DESTROY, r.rd, 0, 0)
    assert h.rmm.granule_state(r.roots[0]) is GranuleState.RTT


def test_el2_configuration_of_an_lpa2_realm() -> None:
    """VTCR_EL2: DS = 1 (A5.5.11), SL2 = 1 / SL0 = 0 for level -1, T0SZ = 64 - 52,
    PS = 52 bits; VTTBR_EL2: BADDR[51:48] in bits [5:2]."""
    rr = RealmRun(realm={"flags": REALM_FLAG_LPA2}, **LPA2)
    rec: Rec = rr.rec()
    cfg = rr.rmm.realm_el2_config(rec, RmiRecEnter())
    assert cfg.vtcr_el2 & R.VTCR_DS and not cfg.vtcr_el2 & R.VTCR_SL2  # s2sz 40: level 1
    assert (cfg.vtcr_el2 >> R.VTCR_PS_SHIFT) & 7 == 6
    realm = rr.realm
    assert realm.lpa2 and cfg.vttbr_el2 & ((1 << 48) - 1) == realm.rtt_base
    h = high_host()
    r = lpa2_realm(h)
    realm = h.rmm.realm_at(r.rd)
    vtcr = R.VTCR_SL2 | (64 - 52) << R.VTCR_T0SZ_SHIFT
    assert R.vtcr_start_level(-1) | (64 - 52) == vtcr
    assert R.vttbr_baddr(HIGH + 0x5000, True) == 0x5000 | (HIGH >> 48) << 2
    assert R.vttbr_baddr(realm.rtt_base, True) & ~0x3C == realm.rtt_base & ((1 << 48) - 1)
