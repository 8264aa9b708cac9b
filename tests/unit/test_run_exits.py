"""Realm exits: every trap class with its exact RmiRecExit, exceptions injected
into the realm, entry completion for each RmiRecEnter flag, and the run granule."""

from __future__ import annotations

import pytest
from realm_harness import (
    BUF,
    EMPTY,
    PSTATE_EL1H,
    S2SZ,
    UNBACKED,
    UNPROT,
    VBAR,
    RealmRun,
    dabt_esr,
)
from rmm_host import G

from cosim.arch import esr as E
from cosim.arch.esr import Ec, SysregAccess
from cosim.arch.sysreg import sysreg_encoding
from cosim.rmm.abi import (
    REC_ENTER_EMUL_MMIO,
    REC_ENTER_INJECT_SEA,
    PmuOverflowStatus,
    RecExitReason,
    RmiFid,
    RmiStatus,
    rmi_return,
)
from cosim.rmm.exits import (
    ESR_EMULATABLE_DABT_MASK,
    ESR_NONEMULATABLE_ABORT_MASK,
    ESR_SERROR_MASK,
    RealmTrap,
    RecExitDecision,
    Resume,
    TrapKind,
)
from cosim.rmm.rec import RecState
from cosim.rmm.results import RmiReturn
from cosim.rmm.structs import RmiRecRun
from cosim.trace import Trace

MMIO = UNPROT + 0x0900_0000
PC = 0x4000


@pytest.fixture
def rr() -> RealmRun:
    run = RealmRun()
    assert run.enter() is None
    ctx = run.current.context  # type: ignore[union-attr]
    ctx.pc = PC
    ctx.sysregs.update(VBAR_EL1=VBAR, SCTLR_EL1=0x30D00800)
    return run


def sysreg_esr(name: str, rt: int, read: bool) -> int:
    op0, op1, crn, crm, op2 = sysreg_encoding(name)
    return E.make(Ec.SYSREG, SysregAccess(op0, op1, crn, crm, op2, rt, read).iss())


def test_masks_match_the_fact_sheet() -> None:
    assert ESR_EMULATABLE_DABT_MASK == 0xFDC09E7F
    assert ESR_NONEMULATABLE_ABORT_MASK == 0xFC001E3F
    assert ESR_SERROR_MASK == 0x01001E3F
    assert TrapKind.from_vector_offset(0x400) is TrapKind.SYNC
    assert TrapKind.from_vector_offset(0x480) is TrapKind.IRQ
    assert TrapKind.from_vector_offset(0x500) is TrapKind.FIQ
    assert TrapKind.from_vector_offset(0x580) is TrapKind.SERROR


# -- interrupts and SError ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, reason", [(TrapKind.IRQ, RecExitReason.IRQ), (TrapKind.FIQ, RecExitReason.FIQ)]
)
def test_interrupt_exits(rr: RealmRun, kind: TrapKind, reason: RecExitReason) -> None:
    e = rr.exit_of(rr.trap(kind))
    assert e.exit_reason == reason and (e.esr, e.far, e.hpfar) == (0, 0, 0)
    assert e.gprs == [0] * 31
    assert rr.rec().context.pc == PC and rr.rec().state is RecState.READY


def test_serror_exit(rr: RealmRun) -> None:
    esr = E.make(Ec.SERROR, E.SERROR_IDS | 0x1C00 | E.DABT_EA | 0x11 | 0x6000)
    e = rr.exit_of(rr.trap(TrapKind.SERROR, esr=esr))
    assert e.exit_reason == RecExitReason.SERROR
    assert e.esr == E.SERROR_IDS | 0x1C00 | E.DABT_EA | 0x11


def test_every_exit_reports_timers_gic_and_pmu(rr: RealmRun) -> None:
    rec = rr.current
    assert rec is not None
    rec.context.sysregs.update(
        CNTP_CTL_EL0=5, CNTP_CVAL_EL0=0x1111, CNTV_CTL_EL0=1, CNTV_CVAL_EL0=0x2222
    )
    rec.gic.update(
        ICH_HCR_EL2=0x1 | 0x2 | (1 << 10) | (3 << 27) | (1 << 14),
        ICH_VMCR_EL2=0xF00001,
        ICH_MISR_EL2=0x4,
        ICH_LR0_EL2=0xA,
        ICH_LR3_EL2=0xB,
        ICH_LR4_EL2=0xC,  # beyond the 4 list registers the RMM reports
    )
    e = rr.leave()
    assert (e.cntp_ctl, e.cntp_cval, e.cntv_ctl, e.cntv_cval) == (5, 0x1111, 1, 0x2222)
    assert e.gicv3_hcr == 0x2 | (3 << 27) | (1 << 14)  # EN and TC-like bits hidden
    assert e.gicv3_lrs == [0xA, 0, 0, 0xB] + [0] * 12
    assert (e.gicv3_misr, e.gicv3_vmcr) == (0x4, 0xF00001)
    assert e.pmu_ovf_status == PmuOverflowStatus.NOT_ACTIVE


def test_pmu_overflow_status() -> None:
    rr = RealmRun(realm={"flags": 4, "pmu_num_ctrs": 2})
    rr.enter()
    rr.current.context.sysregs.update(  # type: ignore[union-attr]
        PMOVSSET_EL0=0b10, PMINTENSET_EL1=0b10, PMCNTENSET_EL0=0b11, PMCR_EL0=1
    )
    assert rr.leave().pmu_ovf_status == PmuOverflowStatus.ACTIVE
    rr.enter()
    rr.current.context.sysregs.update(PMCR_EL0=0)  # type: ignore[union-attr]
    assert rr.leave().pmu_ovf_status == PmuOverflowStatus.NOT_ACTIVE


def test_entry_loads_gic_state() -> None:
    rr = RealmRun()
    lrs = [(1 << 62) | 27, (1 << 62) | 30] + [0] * 14
    assert rr.enter(gicv3_hcr=(1 << 2) | (1 << 14), gicv3_lrs=lrs) is None
    gic = rr.rec().gic
    assert gic["ICH_HCR_EL2"] == 1 | (1 << 2) | (1 << 14)
    assert [gic[f"ICH_LR{i}_EL2"] for i in range(4)] == lrs[:4]
    assert "ICH_LR4_EL2" not in gic


# -- the run granule ------------------------------------------------------------------------


def test_exit_is_written_and_rec_is_ready(rr: RealmRun) -> None:
    rr.h.memory.fill(rr.run_pa + 0x800, 0x800, 0xEE)
    d = rr.trap(TrapKind.IRQ)
    assert isinstance(d, RecExitDecision) and d.x0 == 0 and d.reason is RecExitReason.IRQ
    assert RmiRecRun.unpack(rr.h.memory, rr.run_pa).exit == d.exit
    assert rr.h.memory.is_zero(rr.run_pa + 0x900, 0x700 - 0x300)  # reserved bytes zeroed too
    assert rr.rec().state is RecState.READY


def test_run_granule_delegated_while_running(rr: RealmRun) -> None:
    rr.h.ok(RmiFid.GRANULE_DELEGATE, rr.run_pa)
    rec = rr.current
    assert rec is not None
    d = rr.rmm.realm_exit(rec, RealmTrap(TrapKind.IRQ))
    assert isinstance(d, RecExitDecision)
    assert d.x0 == rmi_return(RmiStatus.ERROR_INPUT) and rec.state is RecState.READY
    assert rr.h.memory.is_zero(rr.run_pa, G)  # nothing written into the realm granule


def test_exit_of_a_rec_that_is_not_running(rr: RealmRun) -> None:
    rr.leave()
    with pytest.raises(RuntimeError, match="not RUNNING"):
        rr.rmm.realm_exit(rr.rec(), RealmTrap(TrapKind.IRQ))
    with pytest.raises(RuntimeError):
        rr.rmm.realm_entry(rr.rec(), rr.entered.enter)  # type: ignore[union-attr]


# -- WFI / WFE ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ti, expect", [(0b00, 0), (0b01, 1), (0b10, 0), (0b11, 1)])
def test_wfx_exit(rr: RealmRun, ti: int, expect: int) -> None:
    e = rr.exit_of(rr.trap(esr=E.make(Ec.WFX, ti | (5 << 5))))
    assert e.exit_reason == RecExitReason.SYNC
    assert e.esr == (Ec.WFX << 26) | expect
    assert rr.rec().context.pc == PC + 4


# -- HVC and other undefined instructions ----------------------------------------------------


def test_hvc_injects_undefined(rr: RealmRun) -> None:
    rec = rr.current
    assert rec is not None
    rec.context.pstate = 0x60000005  # EL1h, Z and C set, interrupts unmasked
    d = rr.trap(esr=E.make(Ec.HVC64, 0))  # ELR_EL2 = the instruction after the HVC
    assert isinstance(d, Resume)
    assert set(d.sysregs_changed) == {"ESR_EL1", "ELR_EL1", "SPSR_EL1"}
    s = rec.context.sysregs
    assert s["ESR_EL1"] == 1 << 25 and s["ELR_EL1"] == PC - 4 and s["SPSR_EL1"] == 0x60000005
    assert rec.context.pc == VBAR + 0x200
    assert rec.context.pstate == 0x60000000 | PSTATE_EL1H
    assert rec.state is RecState.RUNNING


@pytest.mark.parametrize("pstate, offset", [(0x0, 0x400), (0x4, 0x000), (0x5, 0x200)])
def test_injection_vector_depends_on_mode(rr: RealmRun, pstate: int, offset: int) -> None:
    rr.current.context.pstate = pstate  # type: ignore[union-attr]
    rr.trap(esr=E.make(Ec.SVE, 0))
    assert rr.rec().context.pc == VBAR + offset
    assert rr.rec().context.sysregs["ELR_EL1"] == PC


def test_injection_sets_pan_when_span_is_clear(rr: RealmRun) -> None:
    rr.current.context.sysregs["SCTLR_EL1"] = 0x30D00800 & ~(1 << 23)  # type: ignore[union-attr]
    rr.trap(esr=E.make(Ec.HVC64, 0))
    assert rr.rec().context.pstate == PSTATE_EL1H | 1 << 22


@pytest.mark.parametrize("ec", [Ec.SVE, Ec.SME, Ec.FP_ASIMD, Ec.PAUTH, Ec.LS64, 0x3F])
def test_other_traps_inject_undefined(rr: RealmRun, ec: int) -> None:
    assert isinstance(rr.trap(esr=E.make(ec, 0)), Resume)
    assert rr.rec().context.sysregs["ESR_EL1"] == 1 << 25


# -- data aborts at unprotected IPAs (MMIO) ------------------------------------------------------


def test_emulatable_mmio_write(rr: RealmRun) -> None:
    rr.x[7] = 0xDEAD_BEEF_CAFE_F00D
    esr = dabt_esr(write=True, srt=7, sas=1, sse=True) | (1 << 14)  # AR set
    e = rr.exit_of(rr.trap(esr=esr, far=0xFFFF_0000_1234_5678, hpfar=(MMIO >> 8) & ~0xF))
    assert e.exit_reason == RecExitReason.SYNC
    assert e.esr == esr & 0xFDC09E7F and not e.esr & (E.DABT_SSE | 0x1F << 16 | 1 << 14)
    assert e.far == 0x678 and e.hpfar == (MMIO >> 8) & ~0xF
    assert e.gprs[0] == 0xF00D and e.gprs[1:] == [0] * 30
    abort = rr.rec().emulatable_abort
    assert abort is not None and abort.write and abort.srt == 7 and abort.ipa == MMIO + 0x678
    assert rr.enter(flags=REC_ENTER_EMUL_MMIO, gprs=[0x55] * 31) is None
    assert rr.x[7] == 0xDEAD_BEEF_CAFE_F00D and rr.rec().context.pc == PC + 4
    assert rr.rec().emulatable_abort is None


@pytest.mark.parametrize(
    "sas, sse, sf, value, expect",
    [
        (0, False, True, 0x1_2345_6780, 0x80),
        (0, True, True, 0x80, 0xFFFF_FFFF_FFFF_FF80),
        (0, True, False, 0x80, 0xFFFF_FF80),
        (1, True, True, 0x7FFF, 0x7FFF),
        (2, False, False, 0xAAAA_BBBB_CCCC_DDDD, 0xCCCC_DDDD),
        (2, True, True, 0x8000_0000, 0xFFFF_FFFF_8000_0000),
        (3, False, True, 0xAAAA_BBBB_CCCC_DDDD, 0xAAAA_BBBB_CCCC_DDDD),
    ],
)
def test_emulatable_mmio_read(
    rr: RealmRun, sas: int, sse: bool, sf: bool, value: int, expect: int
) -> None:
    rr.x[3] = 0x1111
    e = rr.exit_of(
        rr.trap(
            esr=dabt_esr(write=False, srt=3, sas=sas, sse=sse, sf=sf), far=0x10, hpfar=MMIO >> 8
        )
    )
    assert e.gprs[0] == 0
    assert rr.enter(flags=REC_ENTER_EMUL_MMIO, gprs=[value] + [0] * 30) is None
    assert rr.x[3] == expect and rr.rec().context.pc == PC + 4


def test_mmio_read_into_xzr(rr: RealmRun) -> None:
    rr.exit_of(rr.trap(esr=dabt_esr(write=False, srt=31), hpfar=MMIO >> 8))
    before = list(rr.rec().context.gprs)
    rr.enter(flags=REC_ENTER_EMUL_MMIO, gprs=[9] * 31)
    assert rr.x == before and rr.rec().context.pc == PC + 4


def test_mmio_write_from_xzr(rr: RealmRun) -> None:
    e = rr.exit_of(rr.trap(esr=dabt_esr(write=True, srt=31), hpfar=MMIO >> 8))
    assert e.gprs[0] == 0


def test_mmio_without_emul_flag_retries(rr: RealmRun) -> None:
    rr.exit_of(rr.trap(esr=dabt_esr(write=False), hpfar=MMIO >> 8))
    rr.enter()
    assert rr.rec().context.pc == PC and rr.rec().emulatable_abort is None
    # and EMUL_MMIO is now refused: the last exit was an IRQ
    rr.leave()
    r = rr.rec_enter(flags=REC_ENTER_EMUL_MMIO)
    assert isinstance(r, RmiReturn) and r.condition == "rec_mmio"


def test_non_emulatable_unprotected_abort(rr: RealmRun) -> None:
    esr = dabt_esr(write=True, isv=False) | E.DABT_S1PTW
    e = rr.exit_of(rr.trap(esr=esr, far=0x123, hpfar=MMIO >> 8))
    assert e.esr == esr & 0xFC001E3F and e.far == 0 and e.hpfar == MMIO >> 8
    assert e.gprs == [0] * 31
    r = rr.rec_enter(flags=REC_ENTER_EMUL_MMIO)
    assert isinstance(r, RmiReturn) and r.condition == "rec_mmio"
    assert r.x[0] == RmiStatus.ERROR_REC


def test_inject_sea_after_mmio_abort(rr: RealmRun) -> None:
    rr.exit_of(rr.trap(esr=dabt_esr(write=True), far=0xFFFF_8000_0000_0010, hpfar=MMIO >> 8))
    # INJECT_SEA takes precedence over EMUL_MMIO
    assert rr.enter(flags=REC_ENTER_INJECT_SEA | REC_ENTER_EMUL_MMIO) is None
    s = rr.rec().context.sysregs
    assert s["ESR_EL1"] == E.make(Ec.DABT_CURRENT, E.FSC_SYNC_EXTERNAL | E.DABT_WNR)
    assert s["FAR_EL1"] == 0xFFFF_8000_0000_0010 and s["ELR_EL1"] == PC
    assert rr.rec().context.pc == VBAR + 0x200
    assert rr.rec().emulatable_abort is None and rr.rec().unprotected_abort is None


def test_inject_sea_without_an_abort_is_ignored(rr: RealmRun) -> None:
    rr.leave()
    assert rr.enter(flags=REC_ENTER_INJECT_SEA) is None
    assert rr.rec().context.pc == PC and "ESR_EL1" not in rr.rec().context.sysregs


# -- data aborts at protected IPAs ---------------------------------------------------------------


def test_abort_on_empty_injects_sea(rr: RealmRun) -> None:
    d = rr.trap(esr=dabt_esr(write=False, fsc=0x06), far=0x4567, hpfar=EMPTY >> 8)
    assert isinstance(d, Resume)
    s = rr.rec().context.sysregs
    assert s["ESR_EL1"] == E.make(Ec.DABT_CURRENT, 0x10) and s["FAR_EL1"] == 0x4567


def test_abort_from_el0_injects_lower_el_sea(rr: RealmRun) -> None:
    rr.current.context.pstate = 0  # type: ignore[union-attr]
    rr.trap(esr=dabt_esr(write=False), hpfar=EMPTY >> 8)
    assert rr.rec().context.sysregs["ESR_EL1"] == E.make(Ec.DABT_LOWER, 0x10)
    assert rr.rec().context.pc == VBAR + 0x400 and rr.rec().context.pstate == PSTATE_EL1H


def test_abort_on_unbacked_ram_exits(rr: RealmRun) -> None:
    esr = dabt_esr(write=True, srt=4)
    e = rr.exit_of(rr.trap(esr=esr, far=0x8, hpfar=UNBACKED >> 8))
    assert e.exit_reason == RecExitReason.SYNC
    assert e.esr == esr & 0xFC001E3F and e.far == 0 and e.hpfar == UNBACKED >> 8
    assert e.gprs == [0] * 31 and rr.rec().context.pc == PC
    assert rr.rec().emulatable_abort is None and rr.rec().unprotected_abort is None
    rr.h.data_create(rr.rd, UNBACKED, unknown=True)
    assert rr.enter() is None and rr.rec().context.pc == PC  # the access is retried
    r = rr.leave()
    assert r.exit_reason == RecExitReason.IRQ
    r2 = rr.rec_enter(flags=REC_ENTER_EMUL_MMIO)
    assert isinstance(r2, RmiReturn) and r2.condition == "rec_mmio"


def test_abort_on_destroyed_exits(rr: RealmRun) -> None:
    rr.leave()
    rr.h.ok(RmiFid.DATA_DESTROY, rr.rd, BUF)
    rr.enter()
    e = rr.exit_of(rr.trap(esr=dabt_esr(write=False), hpfar=BUF >> 8))
    assert e.exit_reason == RecExitReason.SYNC and e.hpfar == BUF >> 8


def test_abort_on_mapped_page_exits(rr: RealmRun) -> None:
    e = rr.exit_of(rr.trap(esr=dabt_esr(write=False, fsc=0x0F), hpfar=BUF >> 8))
    assert e.esr == (Ec.DABT_LOWER << 26) | 0x0F


def test_abort_beyond_ipa_space_injects_sea(rr: RealmRun) -> None:
    assert isinstance(rr.trap(esr=dabt_esr(write=False), hpfar=(1 << S2SZ) >> 8), Resume)
    assert rr.rec().context.sysregs["ESR_EL1"] == E.make(Ec.DABT_CURRENT, 0x10)


def test_external_abort_is_reflected(rr: RealmRun) -> None:
    esr = dabt_esr(write=True, fsc=E.FSC_SYNC_EXTERNAL)
    assert isinstance(rr.trap(esr=esr, far=0x99, hpfar=MMIO >> 8), Resume)
    assert rr.rec().context.sysregs["FAR_EL1"] == 0x99


# -- instruction aborts -----------------------------------------------------------------------


def test_instruction_abort_on_unbacked_ram_exits(rr: RealmRun) -> None:
    esr = E.make(Ec.IABT_LOWER, 0x07 | E.DABT_EA)
    e = rr.exit_of(rr.trap(esr=esr, far=UNBACKED, hpfar=UNBACKED >> 8))
    assert e.exit_reason == RecExitReason.SYNC and e.esr == esr & 0xFC001E3F
    assert e.hpfar == UNBACKED >> 8 and e.far == 0


@pytest.mark.parametrize("ipa", [MMIO, EMPTY, 1 << S2SZ])
def test_instruction_abort_injects_sea(rr: RealmRun, ipa: int) -> None:
    d = rr.trap(esr=E.make(Ec.IABT_LOWER, 0x07), far=0xFFFF_0000_0000_4000, hpfar=ipa >> 8)
    assert isinstance(d, Resume)
    s = rr.rec().context.sysregs
    assert s["ESR_EL1"] == E.make(Ec.IABT_CURRENT, 0x10)
    assert s["FAR_EL1"] == 0xFFFF_0000_0000_4000 and s["ELR_EL1"] == PC


# -- trapped system registers -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["ICC_SGI1R_EL1", "ICC_SGI0R_EL1", "ICC_ASGI1R_EL1", "ICC_DIR_EL1"]
)
def test_gic_sysreg_writes_exit(rr: RealmRun, name: str) -> None:
    rr.x[9] = 0x0001_0000_0000_0003
    esr = sysreg_esr(name, 9, read=False)
    e = rr.exit_of(rr.trap(esr=esr))
    assert e.exit_reason == RecExitReason.SYNC and e.esr == esr
    assert e.gprs[0] == 0x0001_0000_0000_0003 and e.gprs[1:] == [0] * 30
    assert rr.rec().context.pc == PC + 4
    assert rr.enter(gprs=[5] * 31) is None  # nothing to complete for a write
    assert rr.x[9] == 0x0001_0000_0000_0003 and rr.rec().context.pc == PC + 4


def test_trapped_sysreg_read_completion(rr: RealmRun) -> None:
    from cosim.rmm.rec import SysregExit

    rr.leave()
    rr.rec().sysreg_exit = SysregExit(rt=6, read=True)  # a read the host emulated
    rr.enter(gprs=[0xABC] + [0] * 30)
    assert rr.x[6] == 0xABC and rr.rec().sysreg_exit is None


@pytest.mark.parametrize(
    "name", ["ACTLR_EL1", "S3_0_C15_C2_0", "ERXSTATUS_EL1", "LORID_EL1", "PMCR_EL0", "OSLAR_EL1"]
)
def test_other_sysregs_are_raz_wi(rr: RealmRun, name: str) -> None:
    rr.x[2] = 77
    d = rr.trap(esr=sysreg_esr(name, 2, read=True))
    assert isinstance(d, Resume) and rr.x[2] == 0 and rr.rec().context.pc == PC + 4
    rr.x[2] = 78
    assert isinstance(rr.trap(esr=sysreg_esr(name, 2, read=False)), Resume)
    assert rr.x[2] == 78 and rr.rec().context.pc == PC + 8


def test_id_register_read(rr: RealmRun) -> None:
    rr.rmm.config.cpu_id_regs["id_aa64isar0_el1"] = 0x1234_5678
    d = rr.trap(esr=sysreg_esr("ID_AA64ISAR0_EL1", 11, read=True))
    assert isinstance(d, Resume) and "ID_AA64ISAR0_EL1" in d.reason
    assert rr.x[11] == 0x1234_5678 and rr.rec().context.pc == PC + 4
    rr.trap(esr=sysreg_esr("ID_AA64DFR0_EL1", 31, read=True))  # to XZR: nothing written
    assert rr.rec().context.pc == PC + 8


# -- trace ------------------------------------------------------------------------------------


def test_exit_and_injection_trace_events() -> None:
    trace = Trace()
    rr = RealmRun(trace=trace)
    rr.enter()
    rr.current.context.pc = PC  # type: ignore[union-attr]
    rr.trap(esr=dabt_esr(write=True, srt=2), far=0x40, hpfar=MMIO >> 8)
    rr.enter(flags=REC_ENTER_EMUL_MMIO)
    rr.trap(esr=E.make(Ec.HVC64, 0))
    (exit_event,) = trace.history("exit")
    assert exit_event["reason"] == "SYNC" and exit_event["hpfar"] == MMIO >> 8
    assert exit_event["status"] == "RMI_SUCCESS" and "data abort" in exit_event["what"]
    (inject,) = trace.history("inject")
    assert "HVC" in inject["what"] and inject["esr"] == 1 << 25
    enters = trace.history("enter")
    assert [e["flags"] for e in enters] == [0, REC_ENTER_EMUL_MMIO]
