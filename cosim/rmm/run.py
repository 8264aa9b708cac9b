"""Realm entry and exit: what the RMM decides around each run of a REC.

The platform drives one RMI_REC_ENTER like this::

    r = rmm.handle_rmi(REC_ENTER, ...)           # EnterRealm(rec, run_pa, enter)
    d = rmm.realm_entry(r.rec, r.enter)          # completes the previous exit
    while d is None:
        load rec.context, rec.gic and rmm.realm_el2_config(rec, enter); run the realm
        save the realm's state into rec.context / rec.gic
        d = rmm.realm_exit(rec, RealmTrap(kind, esr, far, hpfar))
        if isinstance(d, Resume): d = None       # continue the realm
    return d.x0 to the host                      # the RecExit is already written

Everything here runs on the thread of the CPU that owns the RUNNING REC and
holds ``realm.lock`` while it looks at RTTs, measurements or other RECs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..arch import esr as E
from ..arch.aarch64 import INSTRUCTION_SIZE
from ..arch.gicv3 import ICH_HCR_EN
from ..arch.pas import Pas
from ..arch.sysreg import (
    ICC_ASGI1R_EL1,
    ICC_DIR_EL1,
    ICC_SGI0R_EL1,
    ICC_SGI1R_EL1,
    is_id_group3,
    sysreg_name,
)
from .abi import (
    REC_ENTER_EMUL_MMIO,
    REC_ENTER_INJECT_SEA,
    REC_ENTER_RIPAS_RESPONSE,
    RecExitReason,
    Ripas,
    RmiStatus,
    RsiResponse,
    RsiStatus,
    rmi_return,
)
from .cmd_rec import HOST_ICH_HCR_BITS
from .exits import (
    ESR_EMULATABLE_DABT_MASK,
    ESR_NONEMULATABLE_ABORT_MASK,
    ESR_SERROR_MASK,
    ESR_WFX_MASK,
    LR_NAMES,
    RealmTrap,
    RecExitDecision,
    Resume,
    TrapKind,
    emulated_stage2_abort,
    fill_common,
    sync_exit,
)
from .id_regs import realm_id_value
from .inject import inject_data_sea, inject_instruction_sea, inject_undefined
from .realm_memory import ipa_state
from .rec import EmulatableAbort, Rec, RecState, SysregExit, UnprotectedAbort
from .smc import apply_result, handle_realm_smc
from .structs import RmiRecEnter, RmiRecExit, RmiRecRun, RsiHostCall
from .timers import mask_on_exit, unmask_on_entry

if TYPE_CHECKING:
    from .rmm import Rmm

HOST_EXIT_SYSREGS = frozenset({ICC_SGI1R_EL1, ICC_SGI0R_EL1, ICC_ASGI1R_EL1, ICC_DIR_EL1})
"""Trapped writes the host emulates (SGI generation, deactivation): RMI_EXIT_SYNC."""


def _running(rec: Rec) -> None:
    if rec.state is not RecState.RUNNING:
        raise RuntimeError(f"REC {rec.index} of realm {rec.realm.id} is not RUNNING")


# == entry ==================================================================================


def realm_entry(rmm: Rmm, rec: Rec, enter: RmiRecEnter) -> RecExitDecision | None:
    """Load the host's GIC state and complete the previous exit; an exit decision
    if completing it needs the host again (the host-call buffer is unmapped)."""
    _running(rec)
    with rec.realm.lock:
        load_gic(rmm, rec, enter)
        unmask_on_entry(rec)
        complete_abort(rec, enter)
        complete_sysreg(rec, enter)
        complete_ripas_change(rec, enter)
        pending = complete_host_call(rmm, rec, enter)
    if rmm.trace.active:
        rmm.trace.emit(
            "enter",
            cpu=rec.cpu,
            realm=rec.realm.id,
            rec=rec.index,
            flags=enter.flags,
            pc=rec.context.pc,
            exit_pending=pending is not None,
        )
    return deliver(rmm, rec, pending) if pending is not None else None


def load_gic(rmm: Rmm, rec: Rec, enter: RmiRecEnter) -> None:
    """ICH_HCR_EL2 = the host's permitted bits with the interface enabled (EOIcount
    restarts at 0); ICH_LR<n>_EL2 from the host (validated by RMI_REC_ENTER)."""
    rec.gic["ICH_HCR_EL2"] = ICH_HCR_EN | (enter.gicv3_hcr & HOST_ICH_HCR_BITS)
    n = rmm.config.num_lrs
    rec.gic.update(zip(LR_NAMES[:n], enter.gicv3_lrs[:n], strict=True))


def complete_abort(rec: Rec, enter: RmiRecEnter) -> None:
    """After a data abort at an unprotected IPA: inject an SEA if the host asks
    (takes precedence), else finish an emulated MMIO access; without either
    flag the realm retries the access."""
    abort, unprotected = rec.emulatable_abort, rec.unprotected_abort
    rec.emulatable_abort = rec.unprotected_abort = None
    if unprotected is not None and enter.flags & REC_ENTER_INJECT_SEA:
        inject_data_sea(rec, unprotected.esr, unprotected.far)
        return
    if abort is not None and enter.flags & REC_ENTER_EMUL_MMIO:
        if not abort.write and abort.srt != E.XZR:
            access = E.DataAbort(
                isv=True,
                size=1 << abort.sas,
                sign_extend=abort.sse,
                register=abort.srt,
                sixty_four=abort.sf,
                write=False,
                fsc=0,
                s1ptw=False,
            )
            rec.context.gprs[abort.srt] = access.loaded_value(enter.gprs[0])
        rec.context.pc += INSTRUCTION_SIZE


def complete_sysreg(rec: Rec, enter: RmiRecEnter) -> None:
    """After a trapped MRS the host emulated: its value goes to Rt."""
    pending, rec.sysreg_exit = rec.sysreg_exit, None
    if pending is not None and pending.read and pending.rt != E.XZR:
        rec.context.gprs[pending.rt] = enter.gprs[0]


def complete_ripas_change(rec: Rec, enter: RmiRecEnter) -> None:
    """Finish RSI_IPA_STATE_SET: X1 = how far the host got, X2 = REJECT only if
    the host refused an incomplete change to RAM."""
    if not rec.ripas_pending:
        return
    rejected = (
        enter.flags & REC_ENTER_RIPAS_RESPONSE
        and rec.ripas_value is Ripas.RAM
        and rec.ripas_addr != rec.ripas_top
    )
    response = RsiResponse.REJECT if rejected else RsiResponse.ACCEPT
    rec.context.gprs[0:4] = [int(RsiStatus.SUCCESS), rec.ripas_addr, int(response), 0]
    rec.ripas_pending = False
    rec.ripas_addr = rec.ripas_top = 0


def complete_host_call(rmm: Rmm, rec: Rec, enter: RmiRecEnter) -> RmiRecExit | None:
    """Copy the host's X0..X30 into RsiHostCall.gprs and return RSI_SUCCESS; if the
    block is no longer mapped, exit with the emulated stage-2 abort and try
    again on the next entry."""
    if not rec.host_call_pending:
        return None
    state = ipa_state(rmm, rec.realm, rec.host_call_ipa)
    if state.pa is None:
        return emulated_stage2_abort(rec.host_call_ipa, state.level)
    rmm.memory.write_u64s(state.pa + RsiHostCall.GPRS_OFFSET, enter.gprs)
    rec.context.gprs[0] = int(RsiStatus.SUCCESS)
    rec.host_call_pending = False
    return None


# == exit ===================================================================================


def realm_exit(rmm: Rmm, rec: Rec, trap: RealmTrap) -> Resume | RecExitDecision:
    _running(rec)
    with rec.realm.lock:
        outcome = classify(rmm, rec, trap)
        if mask_on_exit(rec) and isinstance(outcome, Resume) and not outcome.sysregs_changed:
            # A timer fired while the RMM handled the trap: the host must hear
            # of it (the realm's state already holds the handled call's result).
            outcome = RmiRecExit(exit_reason=RecExitReason.IRQ)
    if isinstance(outcome, Resume):
        if rmm.trace.active and outcome.sysregs_changed:
            rmm.trace.emit(
                "inject",
                cpu=rec.cpu,
                realm=rec.realm.id,
                rec=rec.index,
                what=outcome.reason,
                esr=rec.context.sysregs.get("ESR_EL1"),
                pc=rec.context.pc,
            )
        return outcome
    return deliver(rmm, rec, outcome)


def classify(rmm: Rmm, rec: Rec, trap: RealmTrap) -> Resume | RmiRecExit:
    """Handle the trap inside the RMM, or build the exit the host must see."""
    if trap.kind is TrapKind.IRQ:
        return RmiRecExit(exit_reason=RecExitReason.IRQ)
    if trap.kind is TrapKind.FIQ:
        return RmiRecExit(exit_reason=RecExitReason.FIQ)
    if trap.kind is TrapKind.SERROR:
        return RmiRecExit(exit_reason=RecExitReason.SERROR, esr=trap.esr & ESR_SERROR_MASK)
    ec = E.ec_of(trap.esr)
    if ec == E.Ec.SMC64:
        return realm_smc(rmm, rec)
    if ec == E.Ec.HVC64:
        # ELR_EL2 of an HVC is the next instruction; the UNDEF is for the HVC itself.
        return inject_undefined(rec, rec.context.pc - INSTRUCTION_SIZE, "HVC")
    if ec == E.Ec.SYSREG:
        return sysreg_trap(rmm, rec, trap.esr)
    if ec == E.Ec.WFX:
        rec.context.pc += INSTRUCTION_SIZE
        return sync_exit(esr=trap.esr & ESR_WFX_MASK)
    if ec == E.Ec.DABT_LOWER:
        return data_abort(rmm, rec, trap)
    if ec == E.Ec.IABT_LOWER:
        return instruction_abort(rmm, rec, trap)
    # SVE/SME/FP and anything else trapped that the realm may not use
    return inject_undefined(rec, rec.context.pc, E.describe(trap.esr))


def realm_smc(rmm: Rmm, rec: Rec) -> Resume | RmiRecExit:
    args = list(rec.context.gprs[:11])
    result = handle_realm_smc(rmm, rec)
    apply_result(rec, result)
    rmm.rsi_counts[result.name] += 1
    if rmm.trace.active:
        rmm.trace.emit(
            "rsi",
            cpu=rec.cpu,
            realm=rec.realm.id,
            rec=rec.index,
            name=result.name,
            fid=args[0] & 0xFFFF_FFFF,
            args=args[1:],
            result=list(rec.context.gprs[:4]) if result.regs is not None else None,
            exit=RecExitReason(result.exit.exit_reason).name if result.exit else None,
        )
    if result.exit is not None:
        return result.exit
    return Resume(result.name)


def sysreg_trap(rmm: Rmm, rec: Rec, esr: int) -> Resume | RmiRecExit:
    access = E.SysregAccess.decode(esr)
    gprs = rec.context.gprs
    rec.context.pc += INSTRUCTION_SIZE
    if access.encoding in HOST_EXIT_SYSREGS and not access.read:
        rec.sysreg_exit = SysregExit(access.rt, access.read)
        rec_exit = sync_exit(esr=esr)
        rec_exit.gprs[0] = gprs[access.rt] if access.rt != E.XZR else 0
        return rec_exit
    name = sysreg_name(access.encoding)
    if access.read and access.rt != E.XZR:
        if is_id_group3(access.encoding):
            gprs[access.rt] = realm_id_value(rmm.config.cpu_id_regs, rec.realm, name)
        else:
            gprs[access.rt] = 0
    what = "ID register" if is_id_group3(access.encoding) else "RAZ/WI"
    return Resume(f"{'MRS' if access.read else 'MSR'} {name} ({what})")


def data_abort(rmm: Rmm, rec: Rec, trap: RealmTrap) -> Resume | RmiRecExit:
    """Unprotected IPA: exit for the host (emulatable MMIO if the syndrome is
    valid); protected IPA: RIPAS EMPTY gets an SEA, anything else exits so the
    host can map the page; outside the IPA space or not a stage-2 fault: SEA."""
    realm = rec.realm
    abort = E.DataAbort.decode(trap.esr)
    ipa = E.fault_ipa(trap.hpfar, trap.far)
    if not E.fsc_is_stage2_fault(abort.fsc) or ipa >= realm.ipa_limit:
        return inject_data_sea(rec, trap.esr, trap.far)
    if realm.is_unprotected(ipa):
        rec.unprotected_abort = UnprotectedAbort(trap.esr, trap.far, ipa)
        if abort.isv and not abort.s1ptw:
            rec.emulatable_abort = EmulatableAbort(
                ipa=ipa,
                write=abort.write,
                srt=abort.register,
                sas=(trap.esr >> E.DABT_SAS_SHIFT) & 3,
                sse=abort.sign_extend,
                sf=abort.sixty_four,
            )
            rec_exit = sync_exit(
                esr=trap.esr & ESR_EMULATABLE_DABT_MASK,
                far=trap.far & E.PAGE_OFFSET_MASK,
                hpfar=trap.hpfar,
            )
            if abort.write and abort.register != E.XZR:
                rec_exit.gprs[0] = rec.context.gprs[abort.register] & abort.access_mask
            return rec_exit
        return sync_exit(esr=trap.esr & ESR_NONEMULATABLE_ABORT_MASK, hpfar=trap.hpfar)
    if ipa_state(rmm, realm, ipa).ripas is Ripas.EMPTY:
        return inject_data_sea(rec, trap.esr, trap.far)
    return sync_exit(esr=trap.esr & ESR_NONEMULATABLE_ABORT_MASK, hpfar=trap.hpfar)


def instruction_abort(rmm: Rmm, rec: Rec, trap: RealmTrap) -> Resume | RmiRecExit:
    """Fetching from an unprotected IPA, outside the IPA space or from RIPAS EMPTY
    gets an SEA; a protected page the host has not mapped exits."""
    realm = rec.realm
    ipa = E.fault_ipa(trap.hpfar, trap.far)
    if (
        not E.fsc_is_stage2_fault(trap.esr & E.FSC_MASK)
        or not realm.is_protected(ipa)
        or ipa_state(rmm, realm, ipa).ripas is Ripas.EMPTY
    ):
        return inject_instruction_sea(rec, trap.far)
    return sync_exit(esr=trap.esr & ESR_NONEMULATABLE_ABORT_MASK, hpfar=trap.hpfar)


# == delivering an exit =====================================================================


def deliver(rmm: Rmm, rec: Rec, rec_exit: RmiRecExit) -> RecExitDecision:
    """Complete the exit: common fields, write it to the run granule (if that is
    still Non-secure), make the REC READY, trace it."""
    fill_common(rec, rec_exit, rmm.config.num_lrs)
    with rmm.locked(pas=[rec.run_pa]):
        if rmm.gpt.covers(rec.run_pa) and rmm.gpt.get(rec.run_pa) is Pas.NONSECURE:
            RmiRecRun.write_exit(rmm.memory, rec.run_pa, rec_exit)
            x0 = rmi_return(RmiStatus.SUCCESS)
        else:
            x0 = rmi_return(RmiStatus.ERROR_INPUT)
    rmm.rec_enter_complete(rec)
    if rmm.trace.active:
        _trace_exit(rmm, rec, rec_exit, x0)
    return RecExitDecision(rec, rec_exit, x0)


def _trace_exit(rmm: Rmm, rec: Rec, e: RmiRecExit, x0: int) -> None:
    reason = RecExitReason(e.exit_reason)
    extra: dict[str, object] = {}
    if reason is RecExitReason.SYNC:
        extra["what"] = E.describe(e.esr)
        extra["gprs0"] = e.gprs[0]
    elif reason is RecExitReason.PSCI:
        extra["gprs"] = e.gprs[:2]
    elif reason is RecExitReason.RIPAS_CHANGE:
        extra.update(ripas_base=e.ripas_base, ripas_top=e.ripas_top, ripas_value=e.ripas_value)
    elif reason is RecExitReason.HOST_CALL:
        extra["imm"] = e.imm
    rmm.trace.emit(
        "exit",
        cpu=rec.cpu,
        realm=rec.realm.id,
        rec=rec.index,
        reason=reason.name,
        esr=e.esr,
        far=e.far,
        hpfar=e.hpfar,
        pc=rec.context.pc,
        status=RmiStatus(x0 & 0xFF).rmi_name,
        **extra,
    )
