"""PSCI calls from a realm (fact sheet section 6.11).

The RMM answers VERSION and FEATURES itself, completes CPU_SUSPEND, CPU_OFF,
SYSTEM_OFF and SYSTEM_RESET at once and tells the host with RMI_EXIT_PSCI,
and turns CPU_ON and AFFINITY_INFO naming another REC into a pending request
(``Rec.psci_pending``) that the host resolves with RMI_PSCI_COMPLETE
(``cmd_rec.psci_complete``), which writes the caller's X0..X3.  Callers hold
``realm.lock``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..arch.aarch64 import MPIDR_AFF1_SHIFT, MPIDR_AFF2_SHIFT, MPIDR_AFF3_SHIFT, MPIDR_AFF_MASK
from .abi import (
    PSCI_AFFINITY_INFO_FIDS,
    PSCI_CPU_ON_FIDS,
    PSCI_CPU_SUSPEND_FIDS,
    PSCI_REALM_FEATURES,
    PSCI_VERSION_1_1,
    REC_MPIDR_AFF0_MASK,
    SMCCC_SMC64,
    PsciAffinityState,
    PsciFid,
    PsciStatus,
    RecExitReason,
    u64,
)
from .exits import SmcResult, done
from .realm import RealmState
from .rec import PsciRequest, Rec, mpidr_el1_to_rec_mpidr, rec_mpidr_index
from .structs import RmiRecExit

MPIDR_AFF_FIELDS = (
    MPIDR_AFF_MASK
    | (MPIDR_AFF_MASK << MPIDR_AFF1_SHIFT)
    | (MPIDR_AFF_MASK << MPIDR_AFF2_SHIFT)
    | (MPIDR_AFF_MASK << MPIDR_AFF3_SHIFT)
)
"""The bits a PSCI target_cpu may have set: Aff0..Aff3 of MPIDR_EL1."""


def psci_name(fid: int) -> str:
    try:
        return PsciFid(fid).psci_name
    except ValueError:
        return f"PSCI_{fid:#x}"


def _result(fid: int, value: int) -> SmcResult:
    return done(psci_name(fid), u64(value))


def _exit(fid: int, *args: int) -> RmiRecExit:
    """RMI_EXIT_PSCI: gprs[0] = the function ID, then the arguments the host needs."""
    rec_exit = RmiRecExit(exit_reason=RecExitReason.PSCI)
    rec_exit.gprs[: 1 + len(args)] = [fid, *args]
    return rec_exit


def target_rec_index(rec: Rec, target: int) -> int | None:
    """The index of the REC a PSCI target_cpu names, None if it names none
    (MpidrIsUsed, B3.24: "identifies a REC in the current Realm")."""
    if target & ~MPIDR_AFF_FIELDS or target & MPIDR_AFF_MASK & ~REC_MPIDR_AFF0_MASK:
        return None
    index = rec_mpidr_index(mpidr_el1_to_rec_mpidr(target))
    return index if index in rec.realm.recs else None


def handle_psci(rec: Rec, fid: int, x: Sequence[int]) -> SmcResult:
    """`fid` is the function ID with the SVE hint removed; x = X0..X30."""
    args = list(x[1:4])
    if not fid & SMCCC_SMC64:  # SMC32: the arguments are W registers
        args = [a & 0xFFFF_FFFF for a in args]
    realm = rec.realm
    if fid == PsciFid.VERSION:
        return _result(fid, PSCI_VERSION_1_1)
    if fid == PsciFid.FEATURES:
        queried = args[0] & 0xFFFF_FFFF
        ok = queried in PSCI_REALM_FEATURES
        return _result(fid, PsciStatus.SUCCESS if ok else PsciStatus.NOT_SUPPORTED)
    if fid in PSCI_CPU_SUSPEND_FIDS:
        # Treated as standby: the call returns at once; the host may run others.
        return SmcResult(psci_name(fid), (PsciStatus.SUCCESS,), _exit(fid))
    if fid == PsciFid.CPU_OFF:
        rec.runnable = False
        return SmcResult(psci_name(fid), (PsciStatus.SUCCESS,), _exit(fid))
    if fid in (PsciFid.SYSTEM_OFF, PsciFid.SYSTEM_RESET):
        realm.state = RealmState.SYSTEM_OFF
        return SmcResult(psci_name(fid), (PsciStatus.SUCCESS,), _exit(fid))
    if fid in PSCI_CPU_ON_FIDS:
        target, entry, context_id = args
        if not realm.is_protected(entry):
            return _result(fid, PsciStatus.INVALID_ADDRESS)
        index = target_rec_index(rec, target)
        if index is None:
            return _result(fid, PsciStatus.INVALID_PARAMETERS)
        if index == rec.index:
            return _result(fid, PsciStatus.ALREADY_ON)
        rec.psci_pending = PsciRequest(fid, target, entry, context_id)
        return SmcResult(psci_name(fid), None, _exit(fid, target))
    if fid in PSCI_AFFINITY_INFO_FIDS:
        target, lowest_level = args[0], args[1]
        if lowest_level != 0:
            return _result(fid, PsciStatus.INVALID_PARAMETERS)
        index = target_rec_index(rec, target)
        if index is None:
            return _result(fid, PsciStatus.INVALID_PARAMETERS)
        if index == rec.index:
            return _result(fid, PsciAffinityState.ON)
        rec.psci_pending = PsciRequest(fid, target)
        return SmcResult(psci_name(fid), None, _exit(fid, target))
    return _result(fid, PsciStatus.NOT_SUPPORTED)
