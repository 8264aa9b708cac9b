"""The EL2 register values under which a REC runs (E2H = 0, non-VHE layout).

``Rmm.realm_el2_config(rec, enter)`` computes them for one RMI_REC_ENTER;
the platform loads them into the CPU before it enters the realm.  Each
choice is explained next to the bit in ``hcr_el2`` etc. below.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields

from ..arch import el2 as R
from ..arch import stage2
from ..arch.idregs import (
    ID_AA64DFR0_EL1,
    ID_AA64ISAR2_EL1,
    ID_AA64MMFR1_EL1,
    ID_AA64PFR0_EL1,
    PMCR_EL0_N_MASK,
    PMCR_EL0_N_SHIFT,
    PMUVER_IMPDEF,
    PMUVER_V3P1,
    PMUVER_V3P5,
    get_field,
    parange_for,
)
from .abi import REC_ENTER_TRAP_WFE, REC_ENTER_TRAP_WFI
from .config import RmmConfig
from .realm import Realm
from .rec import Rec
from .structs import RmiRecEnter


@dataclass(frozen=True)
class RealmEl2Config(Mapping[str, int]):
    """The values by field, and as a read-only mapping from the upper-case
    register names ("HCR_EL2", ...) the platform loads."""

    hcr_el2: int
    vtcr_el2: int
    vttbr_el2: int
    cptr_el2: int
    mdcr_el2: int
    vpidr_el2: int
    vmpidr_el2: int
    zcr_el2: int
    cnthctl_el2: int
    cntvoff_el2: int
    hcrx_el2: int

    def __getitem__(self, name: str) -> int:
        if name.lower() not in _FIELDS:
            raise KeyError(name)
        value: int = getattr(self, name.lower())
        return value

    def __iter__(self) -> Iterator[str]:
        return (f.upper() for f in _FIELDS)

    def __len__(self) -> int:
        return len(_FIELDS)


_FIELDS = tuple(f.name for f in fields(RealmEl2Config))


HCR_REALM = (
    R.HCR_VM  # stage 2 translation through the realm's RTTs
    | R.HCR_SWIO  # DC ISW acts as DC CISW: set/way invalidation cannot drop others' data
    | R.HCR_FMO  # physical FIQs go to R-EL2 (exits) ...
    | R.HCR_IMO  # ... and IRQs; the realm gets virtual ones from the GIC list registers
    | R.HCR_AMO  # ... and SErrors
    | R.HCR_FB  # TLB and I-cache maintenance broadcast: a REC may move between CPUs
    | R.HCR_BSU_INNER_SHAREABLE  # barriers at least inner shareable, for the same reason
    | R.HCR_TID3  # feature ID registers: answered by the RMM (id_regs)
    | R.HCR_TSC  # SMC: RSI, PSCI and SMCCC calls reach the RMM
    | R.HCR_TIDCP  # IMPLEMENTATION DEFINED registers: RAZ/WI
    | R.HCR_TACR  # ACTLR_EL1 (IMPLEMENTATION DEFINED controls): RAZ/WI
    | R.HCR_RW  # EL1 is AArch64
    | R.HCR_APK  # pointer authentication keys are the realm's own (the world switch
    | R.HCR_API  # saves them), and PAC instructions are not trapped
)
"""HCR_EL2 for every REC, before the CPU-dependent bits below and the per-entry
TWI/TWE.  Not set: TID1 (AIDR,
REVIDR are harmless), TID2 (cache geometry is the real one), TVM/TRVM (the
realm owns its stage 1), TSW (SWIO covers set/way), TGE and E2H (the realm runs
under a non-VHE R-EL2), TTLB, TPC/TPU (maintenance needs no emulation)."""

HCR_WITH_RAS = (
    R.HCR_TERR  # RAS error records: RAZ/WI
    | R.HCR_TEA  # synchronous external aborts come to the RMM, which reflects them
)
HCR_WITH_LOR = R.HCR_TLOR
"""LORegions are hidden: their registers are RAZ/WI."""


def hcr_el2(config: RmmConfig, enter: RmiRecEnter) -> int:
    """HCR_REALM, the RAS and LOR traps where the CPU has those features (the
    bits are RES0 otherwise), TWI/TWE as the host asked in RmiRecEnter.flags."""
    hcr = HCR_REALM
    regs = config.cpu_id_regs
    if get_field(regs.get("id_aa64pfr0_el1", 0), ID_AA64PFR0_EL1["RAS"]):
        hcr |= HCR_WITH_RAS
    if get_field(regs.get("id_aa64mmfr1_el1", 0), ID_AA64MMFR1_EL1["LO"]):
        hcr |= HCR_WITH_LOR
    if enter.flags & REC_ENTER_TRAP_WFI:
        hcr |= R.HCR_TWI
    if enter.flags & REC_ENTER_TRAP_WFE:
        hcr |= R.HCR_TWE
    return hcr


CNTHCTL_REALM = R.CNTHCTL_EL1PCTEN | R.CNTHCTL_EL1PCEN
"""The realm uses the EL1 physical counter and timer directly."""


def _pmuver(config: RmmConfig) -> int:
    pmuver = get_field(config.cpu_id_regs.get("id_aa64dfr0_el1", 0), ID_AA64DFR0_EL1["PMUVer"])
    return 0 if pmuver == PMUVER_IMPDEF else pmuver


def mdcr_el2(config: RmmConfig, realm: Realm) -> int:
    """HPMN = the realm's event counters, so PMCR_EL0.N reads as that and higher
    counters trap; PMU registers trapped (RAZ/WI) for a realm without a PMU;
    OS lock / double lock and the debug ROM trapped (they would change the
    physical debug state); SPE, TRBE and trace filter controls trapped and
    owned by EL2; counting at EL2 prohibited where the PMU can (HPMD, HCCD).
    Breakpoint and watchpoint registers are the realm's own."""
    value = R.MDCR_TDOSA | R.MDCR_TDRA | R.MDCR_TPMS | R.MDCR_TTRF
    if realm.pmu_en:
        value |= realm.pmu_num_ctrs & R.MDCR_HPMN_MASK
    else:
        value |= R.MDCR_TPM | R.MDCR_TPMCR
        host_n = (config.cpu_id_regs.get("pmcr_el0", 0) & PMCR_EL0_N_MASK) >> PMCR_EL0_N_SHIFT
        value |= 0 if config.pmu_hpmn0 else host_n & R.MDCR_HPMN_MASK
    pmuver = _pmuver(config)
    if pmuver >= PMUVER_V3P1:
        value |= R.MDCR_HPMD
    if pmuver >= PMUVER_V3P5:
        value |= R.MDCR_HCCD
    return value


def vtcr_el2(config: RmmConfig, realm: Realm) -> int:
    """4 KiB granule, T0SZ and starting level from the realm's RTT geometry,
    inner-shareable write-back walks, PS = the PA size the RMM was configured
    with (at most 48 bits for a realm without LPA2), 16-bit VMIDs when the RMM
    uses them.  An LPA2 realm's RTTs use the 52-bit descriptor format: DS = 1,
    level -1 through SL2, and SH0 is then the shareability of every mapping
    (A5.5.11: "If LPA2 is enabled at stage 2 then the RMM is expected to set
    VTCR_EL2.DS == '1'")."""
    value = (
        (64 - realm.s2sz) << R.VTCR_T0SZ_SHIFT
        | R.vtcr_start_level(realm.rtt_level_start)
        | R.CACHE_WB_RA_WA << R.VTCR_IRGN0_SHIFT
        | R.CACHE_WB_RA_WA << R.VTCR_ORGN0_SHIFT
        | R.SH_INNER_SHAREABLE << R.VTCR_SH0_SHIFT
        | R.TG0_4K << R.VTCR_TG0_SHIFT
        | parange_for(min(config.pa_width, stage2.max_oa_bits(realm.lpa2))) << R.VTCR_PS_SHIFT
        | R.VTCR_RES1
    )
    if config.vmid_bits == 16:
        value |= R.VTCR_VS
    if realm.lpa2:
        value |= R.VTCR_DS
    return value


def hcrx_el2(config: RmmConfig) -> int:
    """HCRX_EL2 (FEAT_HCX; the world switch loads it only on CPUs that have it):
    MSCEn where the CPU has FEAT_MOPS, which the realm's ID_AA64ISAR2_EL1 shows,
    so that the memory copy and set instructions it is told about work (Linux
    uses them for memcpy and friends once it sees MOPS).  Every other HCRX
    control stays 0: the features they enable are hidden from realms."""
    isar2 = config.cpu_id_regs.get("id_aa64isar2_el1", 0)
    return R.HCRX_MSCEN if get_field(isar2, ID_AA64ISAR2_EL1["MOPS"]) else 0


def realm_el2_config(config: RmmConfig, rec: Rec, enter: RmiRecEnter) -> RealmEl2Config:
    realm = rec.realm
    cptr = R.CPTR_RES1 | R.CPTR_TTA | R.CPTR_TAM  # FP/SIMD not trapped; trace, AMU trapped
    if not realm.sve_en:
        cptr |= R.CPTR_TZ
    return RealmEl2Config(
        hcr_el2=hcr_el2(config, enter),
        vtcr_el2=vtcr_el2(config, realm),
        vttbr_el2=R.vttbr_baddr(realm.rtt_base, realm.lpa2) | realm.vmid << R.VTTBR_VMID_SHIFT,
        cptr_el2=cptr,
        mdcr_el2=mdcr_el2(config, realm),
        vpidr_el2=config.cpu_id_regs.get("midr_el1", 0),
        vmpidr_el2=rec.vmpidr_el1 | R.MPIDR_RES1,
        zcr_el2=realm.sve_vl & R.ZCR_LEN_MASK if realm.sve_en else 0,
        cnthctl_el2=CNTHCTL_REALM | rec.timer_mask,
        cntvoff_el2=0,
        hcrx_el2=hcrx_el2(config),
    )
