"""ABI structures at the spec's offsets, the feature register, config, entry encoding."""

from __future__ import annotations

import random
import struct

import pytest
from rmm_host import Host

from cosim.arch import stage2
from cosim.memory import GuestMemory
from cosim.rmm import RmmConfig
from cosim.rmm.abi import Ripas, RmiStatus, rmi_index, rmi_return, rmi_status
from cosim.rmm.features import FeatureRegister0
from cosim.rmm.rtt import RttWalk
from cosim.rmm.rtte import (
    UNASSIGNED_EMPTY,
    Hipas,
    Rtte,
    decode,
    desc_is_live,
    desc_makes_rtt_live,
    encode,
)
from cosim.rmm.structs import RmiRealmParams, RmiRecExit, RmiRecParams, RmiRecRun


def test_return_packing() -> None:
    x0 = rmi_return(RmiStatus.ERROR_RTT, 2)
    assert x0 == 0x204 and rmi_status(x0) == 4 and rmi_index(x0) == 2


def test_realm_params_offsets() -> None:
    buf = bytearray(0x1000)
    struct.pack_into("<Q", buf, 0x000, 6)
    buf[0x008], buf[0x010], buf[0x018], buf[0x020], buf[0x028], buf[0x030] = 40, 3, 5, 3, 4, 1
    buf[0x400:0x440] = bytes(range(64))
    struct.pack_into("<HQqI", buf, 0x800, 7, 0, 0, 0)
    struct.pack_into("<Q", buf, 0x808, 0x4000_0000)
    struct.pack_into("<q", buf, 0x810, -1)
    struct.pack_into("<I", buf, 0x818, 16)
    p = RmiRealmParams.from_bytes(buf)
    assert (p.flags, p.s2sz, p.sve_vl, p.num_bps, p.num_wps, p.pmu_num_ctrs, p.hash_algo) == (
        6,
        40,
        3,
        5,
        3,
        4,
        1,
    )
    assert (p.rpv, p.vmid, p.rtt_base, p.rtt_level_start, p.rtt_num_start) == (
        bytes(range(64)),
        7,
        0x4000_0000,
        -1,
        16,
    )
    assert p.to_bytes() == bytes(buf)
    measured = p.measured_bytes()
    assert measured[:0x31] == bytes(buf[:0x31]) and not any(measured[0x31:])


def test_rec_params_offsets_and_measured_form() -> None:
    p = RmiRecParams(
        flags=1, mpidr=0x0102, pc=0x8000, gprs=list(range(1, 9)), num_aux=2, aux=[0x1000, 0x2000]
    )
    b = p.to_bytes()
    assert struct.unpack_from("<Q", b, 0x100)[0] == 0x0102
    assert struct.unpack_from("<8Q", b, 0x300) == tuple(range(1, 9))
    assert struct.unpack_from("<3Q", b, 0x800) == (2, 0x1000, 0x2000)
    m = p.measured_bytes()
    assert struct.unpack_from("<Q", m, 0x100)[0] == 0 and struct.unpack_from("<Q", m, 0x800)[0] == 0
    assert struct.unpack_from("<Q", m, 0x200)[0] == 0x8000


def test_rec_run_offsets() -> None:
    mem = GuestMemory.anonymous(0, 0x2000)
    mem.write(0x1000, b"\xff" * 0x1000)
    run = RmiRecRun()
    run.enter.gprs[30] = 0x1234
    run.exit = RmiRecExit(
        exit_reason=4,
        esr=1,
        far=2,
        hpfar=3,
        ripas_base=0x10,
        ripas_top=0x20,
        ripas_value=1,
        imm=0xBEEF,
        pmu_ovf_status=1,
        cntv_cval=9,
        gicv3_vmcr=5,
    )
    run.pack(mem, 0x1000)
    assert mem.read_u64(0x1000 + 0x2F0) == 0x1234
    assert mem.read_u8(0x1800) == 4 and mem.read_u8(0x1801) == 0
    assert [mem.read_u64(0x1000 + o) for o in (0x900, 0x908, 0x910)] == [1, 2, 3]
    assert mem.read_u64(0x1B90) == 5 and mem.read_u64(0x1C18) == 9
    assert (mem.read_u64(0x1D00), mem.read_u64(0x1D08), mem.read_u8(0x1D10)) == (0x10, 0x20, 1)
    assert mem.read_u16(0x1E00) == 0xBEEF and mem.read_u8(0x1F00) == 1
    assert RmiRecRun.unpack(mem, 0x1000) == run


def test_feature_register_roundtrip() -> None:
    reg = RmmConfig().feature_register0()
    f = FeatureRegister0.unpack(reg)
    assert (f.s2sz, f.lpa2, f.sve_en, f.sve_vl, f.num_bps, f.num_wps) == (48, 0, 1, 15, 5, 3)
    assert (f.pmu_en, f.pmu_num_ctrs, f.gicv3_num_lrs, f.max_recs_order) == (1, 6, 3, 10)
    assert f.pack() == reg == 0x28F34317E30


@pytest.mark.parametrize(
    "kw",
    [
        {"abi_version": (2, 0)},
        {"abi_version": (1, 1)},
        {"lpa2": True},
        {"pa_width": 52},
        {"rec_aux_count": 17},
        {"vmid_bits": 12},
        {"dram": [(0x1000, 0x800)]},
    ],
)
def test_config_rejects(kw: dict) -> None:
    with pytest.raises(ValueError):
        RmmConfig(**kw)


ENTRIES = [
    UNASSIGNED_EMPTY,
    Rtte(Hipas.UNASSIGNED, Ripas.RAM),
    Rtte(Hipas.UNASSIGNED, Ripas.DESTROYED),
    Rtte(Hipas.UNASSIGNED_NS),
    Rtte(Hipas.ASSIGNED, Ripas.EMPTY, 0x8000_0000),
    Rtte(Hipas.ASSIGNED, Ripas.RAM, 0x8000_0000),
    Rtte(Hipas.ASSIGNED, Ripas.DESTROYED, 0x8000_0000),
    Rtte(Hipas.ASSIGNED_NS, addr=0x4000_0000, attrs=0xD8),
    Rtte(Hipas.TABLE, addr=0x4000_1000),
]


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: f"{e.hipas.value}-{e.ripas.name}")
@pytest.mark.parametrize("level", [1, 2, 3])
def test_entry_encoding_roundtrip(entry: Rtte, level: int) -> None:
    if entry.hipas is Hipas.TABLE and level == 3:
        return
    desc = encode(entry, level)
    assert decode(desc, level) == entry
    valid = entry.hipas in (Hipas.TABLE, Hipas.ASSIGNED_NS) or (
        entry.hipas is Hipas.ASSIGNED and entry.ripas is Ripas.RAM
    )
    assert stage2.is_valid(desc) == valid


def test_protected_page_descriptor_is_the_measured_one() -> None:
    assert encode(Rtte(Hipas.ASSIGNED, Ripas.RAM, 0x4000_0000), 3) == 0x4000_0000 | 0x7FF | 1 << 56


def test_rtt_scans_agree_with_the_entry_rules() -> None:
    """The byte-wise scans of Rtts (RTT liveness, B3.64; first live RTTE, B3.76)
    give what decoding every descriptor gives."""
    h = Host()
    r = h.create_realm()
    rtts = h.rmm.rtts(h.rmm.realm_at(r.rd))
    table = h.ns()
    rng = random.Random(9)
    for level in (2, 3):
        pool = [encode(e, level) for e in ENTRIES if not (e.hipas is Hipas.TABLE and level == 3)]
        for _ in range(200):
            descs = [rng.choice(pool) if rng.random() < 0.05 else 0 for _ in range(512)]
            h.memory.write_u64s(table, descs)
            slow = any(desc_makes_rtt_live(d, level) for d in descs)
            assert rtts.rtt_is_live(table, level) == slow
            first = rng.randrange(512)
            live = [i for i in range(first, 512) if desc_is_live(descs[i])]
            w = RttWalk(level, table, 512, 0, first, decode(descs[first], level))
            expected = w.entry_ipa(live[0]) if live else w.top
            assert rtts.skip_non_live(w) == expected
