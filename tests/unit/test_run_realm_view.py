"""What a realm sees of the machine: its feature ID registers (the realm
feature rules) and the EL2 configuration it runs under."""

from __future__ import annotations

import pytest
from realm_harness import RealmRun
from rmm_host import Host

from cosim.arch import el2 as R
from cosim.arch.idregs import (
    ID_AA64DFR0_EL1,
    ID_AA64MMFR0_EL1,
    ID_AA64MMFR1_EL1,
    ID_AA64PFR0_EL1,
    ID_AA64PFR1_EL1,
    get_field,
    set_field,
)
from cosim.arch.stage2 import num_start_tables
from cosim.rmm.abi import REALM_FLAG_PMU, REALM_FLAG_SVE, REC_ENTER_TRAP_WFE, REC_ENTER_TRAP_WFI
from cosim.rmm.structs import RmiRecEnter


def _reg(fields: dict[str, int], values: dict[str, int]) -> int:
    v = 0
    for name, value in values.items():
        v = set_field(v, fields[name], value)
    return v


HOST = {
    "midr_el1": 0x000F_0510,
    "id_aa64pfr0_el1": _reg(
        ID_AA64PFR0_EL1,
        {
            "EL0": 2,
            "EL1": 2,
            "EL2": 2,
            "EL3": 2,
            "FP": 1,
            "AdvSIMD": 1,
            "GIC": 1,
            "RAS": 2,
            "SVE": 1,
            "SEL2": 1,
            "MPAM": 1,
            "AMU": 1,
            "DIT": 1,
            "RME": 1,
            "CSV2": 2,
            "CSV3": 1,
        },
    ),
    "id_aa64pfr1_el1": _reg(
        ID_AA64PFR1_EL1,
        {
            "BT": 1,
            "SSBS": 2,
            "MTE": 3,
            "RAS_frac": 1,
            "MPAM_frac": 1,
            "SME": 2,
            "RNDR_trap": 1,
            "CSV2_frac": 2,
            "NMI": 1,
            "GCS": 1,
        },
    ),
    "id_aa64pfr2_el1": 0x111,
    "id_aa64zfr0_el1": 0x0110_0110_0011,
    "id_aa64smfr0_el1": 0x8000_0000_0000_0000,
    "id_aa64dfr0_el1": _reg(
        ID_AA64DFR0_EL1,
        {
            "DebugVer": 0xB,
            "TraceVer": 1,
            "PMUVer": 8,
            "BRPs": 5,
            "PMSS": 1,
            "WRPs": 3,
            "SEBEP": 1,
            "CTX_CMPs": 1,
            "PMSVer": 3,
            "DoubleLock": 0xF,
            "TraceFilt": 1,
            "TraceBuffer": 1,
            "MTPMU": 1,
            "BRBE": 1,
            "ExtTrcBuff": 1,
            "HPMN0": 1,
        },
    ),
    "id_aa64dfr1_el1": 0x1,
    "id_aa64isar0_el1": 0x1221_1111_2112_1120,
    "id_aa64isar1_el1": 0x1011_2111_0021_1001 | 1 << 60,
    "id_aa64isar2_el1": 0x1 | 1 << 32 | 1 << 36,
    "id_aa64mmfr0_el1": _reg(
        ID_AA64MMFR0_EL1, {"PARange": 6, "ASIDBits": 2, "TGran4": 1, "FGT": 1, "ECV": 2}
    ),
    "id_aa64mmfr1_el1": _reg(
        ID_AA64MMFR1_EL1,
        {
            "HAFDBS": 2,
            "VMIDBits": 2,
            "VH": 1,
            "HPDS": 2,
            "LO": 1,
            "PAN": 3,
            "XNX": 1,
            "TWED": 1,
            "HCX": 1,
            "AFP": 1,
        },
    ),
    "id_aa64mmfr2_el1": 0x1221_0011_0011_1011,
    "id_aa64mmfr3_el1": 0x1111,
    "id_pfr0_el1": 0x131,
    "mvfr0_el1": 0x1011_1111,
    "pmcr_el0": 0x4100_0041 | 6 << 11,
}


def run(**realm: int) -> RealmRun:
    return RealmRun(recs=2, cpu_id_regs=dict(HOST), realm=realm)


def idreg(rr: RealmRun, name: str) -> int:
    return rr.rmm.realm_id_register(rr.realm, name)


# -- ID registers ------------------------------------------------------------------------


def test_pfr0() -> None:
    f = ID_AA64PFR0_EL1
    v = idreg(run(), "ID_AA64PFR0_EL1")
    assert {n: get_field(v, s) for n, s in f.items()} == {
        "EL0": 1,
        "EL1": 1,
        "EL2": 0,
        "EL3": 2,
        "FP": 1,
        "AdvSIMD": 1,
        "GIC": 1,
        "RAS": 2,
        "SVE": 0,
        "SEL2": 0,
        "MPAM": 0,
        "AMU": 0,
        "DIT": 1,
        "RME": 0,
        "CSV2": 2,
        "CSV3": 1,
    }
    sve = idreg(run(flags=REALM_FLAG_SVE, sve_vl=3), "id_aa64pfr0_el1")
    assert get_field(sve, f["SVE"]) == 1


def test_pfr1_keeps_only_what_realms_can_use() -> None:
    v = idreg(run(), "ID_AA64PFR1_EL1")
    assert v == _reg(ID_AA64PFR1_EL1, {"BT": 1, "SSBS": 2, "RAS_frac": 1, "CSV2_frac": 2})


def test_sve_registers_follow_the_realm() -> None:
    assert idreg(run(), "ID_AA64ZFR0_EL1") == 0
    assert idreg(run(flags=REALM_FLAG_SVE, sve_vl=3), "ID_AA64ZFR0_EL1") == HOST["id_aa64zfr0_el1"]
    assert idreg(run(flags=REALM_FLAG_SVE), "ID_AA64SMFR0_EL1") == 0


def test_dfr0_breakpoints_watchpoints_and_pmu() -> None:
    f = ID_AA64DFR0_EL1
    v = idreg(run(num_bps=1, num_wps=2), "ID_AA64DFR0_EL1")
    assert v == _reg(f, {"DebugVer": 6, "BRPs": 1, "WRPs": 2, "DoubleLock": 0xF})
    v = idreg(run(flags=REALM_FLAG_PMU, pmu_num_ctrs=3, num_bps=3), "id_aa64dfr0_el1")
    assert v == _reg(
        f,
        {
            "DebugVer": 6,
            "BRPs": 3,
            "WRPs": 1,
            "DoubleLock": 0xF,
            "PMUVer": 8,
            "MTPMU": 1,
            "HPMN0": 1,
        },
    )


def test_pmcr_n_is_the_realms_counter_count() -> None:
    assert idreg(run(flags=REALM_FLAG_PMU, pmu_num_ctrs=3), "PMCR_EL0") == 0x4100_0041 | 3 << 11
    assert idreg(run(), "PMCR_EL0") == 0x4100_0041


@pytest.mark.parametrize("s2sz, parange", [(40, 2), (41, 3), (44, 4), (36, 1), (32, 0)])
def test_parange_is_the_ipa_width(s2sz: int, parange: int) -> None:
    level = 0 if s2sz >= 44 else 1
    h = Host(cpu_id_regs=dict(HOST))
    rd = h.create_realm(
        s2sz=s2sz, rtt_level_start=level, rtt_num_start=num_start_tables(s2sz, level)
    ).rd
    realm = h.rmm.realm_at(rd)
    assert realm is not None
    v = h.rmm.realm_id_register(realm, "ID_AA64MMFR0_EL1")
    f = ID_AA64MMFR0_EL1
    assert get_field(v, f["PARange"]) == parange
    assert get_field(v, f["FGT"]) == 0 and get_field(v, f["ECV"]) == 1
    assert get_field(v, f["TGran4"]) == 1 and get_field(v, f["ASIDBits"]) == 2


def test_mmfr1_and_others() -> None:
    rr = run()
    assert idreg(rr, "ID_AA64MMFR1_EL1") == _reg(
        ID_AA64MMFR1_EL1, {"HAFDBS": 2, "HPDS": 2, "PAN": 3, "AFP": 1}
    )
    assert idreg(rr, "ID_AA64ISAR0_EL1") == HOST["id_aa64isar0_el1"]
    assert idreg(rr, "ID_AA64ISAR1_EL1") == HOST["id_aa64isar1_el1"] & ~(0xF << 60)
    assert idreg(rr, "ID_AA64ISAR2_EL1") == 0x1
    assert idreg(rr, "ID_AA64MMFR2_EL1") == HOST["id_aa64mmfr2_el1"] & ~(
        0xF << 24 | 0xF << 40 | 0xF << 56
    )
    for hidden in (
        "ID_AA64PFR2_EL1",
        "ID_AA64DFR1_EL1",
        "ID_AA64MMFR3_EL1",
        "ID_AA64AFR0_EL1",
        "ID_PFR0_EL1",
        "MVFR0_EL1",
        "S3_0_C0_C7_7",
        "S3_0_C0_C3_7",
    ):
        assert idreg(rr, hidden) == 0, hidden
    assert idreg(rr, "MIDR_EL1") == HOST["midr_el1"]
    with pytest.raises(KeyError):
        idreg(rr, "SCTLR_EL1")


def test_missing_cpu_registers_read_as_zero() -> None:
    rr = RealmRun(recs=1)
    assert idreg(rr, "ID_AA64ISAR0_EL1") == 0
    assert get_field(idreg(rr, "ID_AA64DFR0_EL1"), ID_AA64DFR0_EL1["BRPs"]) == 1


# -- EL2 configuration ------------------------------------------------------------------------


def test_hcr_el2() -> None:
    rr = run()
    cfg = rr.rmm.realm_el2_config(rr.rec(0), RmiRecEnter())
    hcr = cfg.hcr_el2
    for bit in (
        R.HCR_VM,
        R.HCR_SWIO,
        R.HCR_FMO,
        R.HCR_IMO,
        R.HCR_AMO,
        R.HCR_TSC,
        R.HCR_TID3,
        R.HCR_TIDCP,
        R.HCR_TACR,
        R.HCR_RW,
        R.HCR_API,
        R.HCR_APK,
        R.HCR_TEA,
        R.HCR_TERR,
        R.HCR_TLOR,
        R.HCR_FB,
    ):
        assert hcr & bit, hex(bit)
    for bit in (R.HCR_E2H, R.HCR_TGE, R.HCR_TWI, R.HCR_TWE, R.HCR_TID1):
        assert not hcr & bit, hex(bit)
    bare = RealmRun(recs=1)  # no RAS or LORegions on this "CPU": those bits are RES0
    assert bare.rmm.realm_el2_config(bare.rec(0), RmiRecEnter()).hcr_el2 == hcr & ~(
        R.HCR_TERR | R.HCR_TEA | R.HCR_TLOR
    )
    wfi = rr.rmm.realm_el2_config(rr.rec(0), RmiRecEnter(flags=REC_ENTER_TRAP_WFI)).hcr_el2
    wfe = rr.rmm.realm_el2_config(rr.rec(0), RmiRecEnter(flags=REC_ENTER_TRAP_WFE)).hcr_el2
    assert wfi == hcr | R.HCR_TWI and wfe == hcr | R.HCR_TWE


def test_stage2_registers() -> None:
    rr = run()
    cfg = rr.rmm.realm_el2_config(rr.rec(0), RmiRecEnter())
    # T0SZ 24, SL0 = 1 (level 1), inner WB RA WA, outer WB RA WA, inner shareable, 4K,
    # PS = 48 bits, 16-bit VMIDs, RES1 bit 31
    assert cfg.vtcr_el2 == 24 | 1 << 6 | 1 << 8 | 1 << 10 | 3 << 12 | 5 << 16 | 1 << 19 | 1 << 31
    assert cfg.vttbr_el2 == rr.realm.rtt_base | rr.realm.vmid << 48
    assert dict(cfg)["VTTBR_EL2"] == cfg.vttbr_el2 and cfg["vtcr_el2"] == cfg.vtcr_el2
    assert set(cfg) == {
        "HCR_EL2",
        "VTCR_EL2",
        "VTTBR_EL2",
        "CPTR_EL2",
        "MDCR_EL2",
        "VPIDR_EL2",
        "VMPIDR_EL2",
        "ZCR_EL2",
        "CNTHCTL_EL2",
        "CNTVOFF_EL2",
        "HCRX_EL2",
    }


def test_mops_enabled_when_the_realm_sees_it() -> None:
    """ID_AA64ISAR2_EL1.MOPS reaches the realm, so HCRX_EL2.MSCEn must let the
    CPY*/SET* instructions run at EL1 (Arm ARM "HCRX_EL2.MSCEn": UNDEFINED
    otherwise); Linux 7.x memmove uses them."""
    from cosim.rmm.config import RmmConfig
    from cosim.rmm.el2_config import hcrx_el2

    with_mops = RmmConfig(dram=[(0, 1 << 30)], cpu_id_regs={"id_aa64isar2_el1": 1 << 16})
    without = RmmConfig(dram=[(0, 1 << 30)], cpu_id_regs={"id_aa64isar2_el1": 0})
    assert hcrx_el2(with_mops) == 1 << 11
    assert hcrx_el2(without) == 0
