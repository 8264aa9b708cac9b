"""RSI v1.0: the realm's calls to the RMM (fact sheet section 6).

Each handler takes the RMM, the calling REC (RUNNING, its registers in
``rec.context``) and X0..X30, checks its failure conditions in the fact
sheet's order and returns an ``SmcResult``.  Callers hold ``realm.lock``.
Calls that read or write realm memory translate the IPA through the realm's
RTTs: RIPAS EMPTY is RSI_ERROR_INPUT, RIPAS RAM (or DESTROYED) without a
mapping becomes the RMM-generated stage-2 abort exit and the call is retried
after the host has mapped the page.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..arch import stage2
from ..arch.pas import GRANULE_SIZE
from .abi import (
    RSI_ABI_VERSION_1_0,
    RSI_CHANGE_DESTROYED,
    RSI_HOST_CALL_ALIGN,
    RSI_MEASUREMENT_EXTEND_MAX,
    RecExitReason,
    Ripas,
    RsiFid,
    RsiStatus,
)
from .exits import SmcResult, done, emulated_stage2_abort
from .measurement import NUM_MEASUREMENTS, RIM_INDEX, Rim
from .realm_memory import ipa_state
from .rec import AttestState, Rec
from .structs import RmiRecExit, RsiHostCall, RsiRealmConfig

if TYPE_CHECKING:
    from .rmm import Rmm

Regs = Sequence[int]
RsiHandler = Callable[["Rmm", Rec, Regs], SmcResult]

_SLOT_REGS = struct.Struct("<8Q")
"""A 64-byte value in eight registers, byte 0 in bits [7:0] of the first."""


def _status(fid: RsiFid, status: RsiStatus, *out: int) -> SmcResult:
    return done(fid.rsi_name, status, *out)


def _realm_page(rmm: Rmm, rec: Rec, fid: RsiFid, ipa: int) -> int | SmcResult:
    """The PA of a protected realm IPA the call must access, or the result
    the call ends with: RSI_ERROR_INPUT for RIPAS EMPTY, or the emulated
    stage-2 abort exit (PC not advanced) for a page the host has not mapped."""
    state = ipa_state(rmm, rec.realm, ipa)
    pa = state.pa
    if pa is not None:
        return pa
    if state.ripas is Ripas.EMPTY:
        return _status(fid, RsiStatus.ERROR_INPUT)
    return SmcResult(
        fid.rsi_name,
        regs=None,
        exit=emulated_stage2_abort(ipa & ~(GRANULE_SIZE - 1), state.level),
        advance=False,
    )


# -- RSI_VERSION, RSI_FEATURES, RSI_REALM_CONFIG -----------------------------------------


def rsi_version(rmm: Rmm, rec: Rec, x: Regs) -> SmcResult:
    status = RsiStatus.SUCCESS if x[1] == RSI_ABI_VERSION_1_0 else RsiStatus.ERROR_INPUT
    return _status(RsiFid.VERSION, status, RSI_ABI_VERSION_1_0, RSI_ABI_VERSION_1_0)


def rsi_features(rmm: Rmm, rec: Rec, x: Regs) -> SmcResult:
    return _status(RsiFid.FEATURES, RsiStatus.SUCCESS, 0)


def rsi_realm_config(rmm: Rmm, rec: Rec, x: Regs) -> SmcResult:
    addr, realm = x[1], rec.realm
    if addr % GRANULE_SIZE or not realm.is_protected(addr):
        return _status(RsiFid.REALM_CONFIG, RsiStatus.ERROR_INPUT)
    page = _realm_page(rmm, rec, RsiFid.REALM_CONFIG, addr)
    if isinstance(page, SmcResult):
        return page
    RsiRealmConfig(ipa_width=realm.s2sz, hash_algo=realm.hash_algo, rpv=realm.rpv).pack(
        rmm.memory, page
    )
    return _status(RsiFid.REALM_CONFIG, RsiStatus.SUCCESS)


# -- measurements --------------------------------------------------------------------------


def rsi_measurement_read(rmm: Rmm, rec: Rec, x: Regs) -> SmcResult:
    index = x[1]
    if index >= NUM_MEASUREMENTS:
        return _status(RsiFid.MEASUREMENT_READ, RsiStatus.ERROR_INPUT)
    value = _SLOT_REGS.unpack(bytes(rec.realm.measurements[index]))
    return _status(RsiFid.MEASUREMENT_READ, RsiStatus.SUCCESS, *value)


def rsi_measurement_extend(rmm: Rmm, rec: Rec, x: Regs) -> SmcResult:
    index, size = x[1], x[2]
    if index == RIM_INDEX or index >= NUM_MEASUREMENTS or size > RSI_MEASUREMENT_EXTEND_MAX:
        return _status(RsiFid.MEASUREMENT_EXTEND, RsiStatus.ERROR_INPUT)
    value = _SLOT_REGS.pack(*x[3:11])[:size]
    realm = rec.realm
    slot = realm.measurements[index]
    slot[:] = Rim(realm.hash_algo).extend_rem(bytes(slot), value)
    return _status(RsiFid.MEASUREMENT_EXTEND, RsiStatus.SUCCESS)


# -- attestation ------------------------------------------------------------------------------


ATTEST_TOKEN_SIZE_BOUND = 0x1000
"""RSI_ATTESTATION_TOKEN_INIT's size when no token could be made: a bound
(the tokens made here are about 1.2 KiB); CONTINUE then reports `unknown`."""


def rsi_attestation_token_init(rmm: Rmm, rec: Rec, x: Regs) -> SmcResult:
    """Start a token for a 64-byte challenge.  The whole CCA token is built and
    signed here, with the measurements of this moment; X1 is its exact size.
    B5.3.2: INIT has no failure conditions ("state: rec.attest_state ==
    ATTEST_IN_PROGRESS"): if the token cannot be made (a misconfigured
    platform key), the failure is CONTINUE's "unknown: Token generation failed
    for an unknown or IMPDEF reason"."""
    challenge = _SLOT_REGS.pack(*x[1:9])
    rec.attest_state = AttestState.ATTEST_IN_PROGRESS
    rec.attest_challenge = challenge
    rec.attest_offset = 0
    try:
        token: bytes | None = rmm.attestation.token(rec.realm, challenge)
    except Exception:  # a misconfigured platform key must not crash the RMM
        token = None
    rec.attest_token = token
    size = len(token) if token is not None else ATTEST_TOKEN_SIZE_BOUND
    return _status(RsiFid.ATTESTATION_TOKEN_INIT, RsiStatus.SUCCESS, size)


def rsi_attestation_token_continue(rmm: Rmm, rec: Rec, x: Regs) -> SmcResult:
    addr, offset, size = x[1], x[2], x[3]
    fid = RsiFid.ATTESTATION_TOKEN_CONTINUE
    if (
        addr % GRANULE_SIZE
        or not rec.realm.is_protected(addr)
        or offset >= GRANULE_SIZE
        or size > GRANULE_SIZE - offset
    ):
        return _status(fid, RsiStatus.ERROR_INPUT)
    if rec.attest_state is not AttestState.ATTEST_IN_PROGRESS:
        return _status(fid, RsiStatus.ERROR_STATE)
    if rec.attest_token is None:
        return _status(fid, RsiStatus.ERROR_UNKNOWN)
    page = _realm_page(rmm, rec, fid, addr)
    if isinstance(page, SmcResult):
        return page
    chunk = rec.attest_token[rec.attest_offset : rec.attest_offset + size]
    rmm.memory.write(page + offset, chunk)
    rec.attest_offset += len(chunk)
    if rec.attest_offset < len(rec.attest_token):
        return _status(fid, RsiStatus.INCOMPLETE, len(chunk))
    rec.attest_state = AttestState.NO_ATTEST_IN_PROGRESS
    rec.attest_token, rec.attest_offset = b"", 0
    return _status(fid, RsiStatus.SUCCESS, len(chunk))


# -- RIPAS --------------------------------------------------------------------------------------


def rsi_ipa_state_set(rmm: Rmm, rec: Rec, x: Regs) -> SmcResult:
    """Record the request and exit RMI_EXIT_RIPAS_CHANGE; X0..X2 are written when
    the host re-enters the REC (``run.complete_ripas_change``)."""
    # X3[7:0] is the RsiRipas; X3[63:8] are SBZ (B5.3.6.1.1), not a failure.
    base, top, ripas, flags = x[1], x[2], x[3] & 0xFF, x[4]
    realm = rec.realm
    if (
        base % GRANULE_SIZE
        or top % GRANULE_SIZE
        or top <= base
        or top > realm.par_top
        or ripas > Ripas.RAM
    ):
        return _status(RsiFid.IPA_STATE_SET, RsiStatus.ERROR_INPUT)
    rec.ripas_addr, rec.ripas_top = base, top
    rec.ripas_value = Ripas(ripas)
    rec.ripas_destroyed = bool(flags & RSI_CHANGE_DESTROYED)
    rec.ripas_pending = True
    rec_exit = RmiRecExit(
        exit_reason=RecExitReason.RIPAS_CHANGE, ripas_base=base, ripas_top=top, ripas_value=ripas
    )
    return SmcResult(RsiFid.IPA_STATE_SET.rsi_name, regs=None, exit=rec_exit)


def rsi_ipa_state_get(rmm: Rmm, rec: Rec, x: Regs) -> SmcResult:
    """The RIPAS at `base` and how far it extends, within the last-level RTT
    that maps `base`, clamped to `top`."""
    base, top = x[1], x[2]
    realm = rec.realm
    if base % GRANULE_SIZE or top % GRANULE_SIZE or base >= top or top > realm.par_top:
        return _status(RsiFid.IPA_STATE_GET, RsiStatus.ERROR_INPUT)
    rtts = rmm.rtts(realm)
    w = rtts.walk(base, stage2.PAGE_LEVEL)
    ripas = w.entry.ripas
    size = stage2.entry_size(w.level)
    end = w.entry_ipa(w.index) + size
    for i in range(w.index + 1, w.entries):
        if end >= top:
            break
        e = rtts.read(w.table, i, w.level)
        if not e.has_ripas or e.ripas is not ripas:
            break
        end += size
    return _status(RsiFid.IPA_STATE_GET, RsiStatus.SUCCESS, min(end, top), ripas)


# -- host calls ---------------------------------------------------------------------------------


def rsi_host_call(rmm: Rmm, rec: Rec, x: Regs) -> SmcResult:
    """Exit RMI_EXIT_HOST_CALL with the RsiHostCall block; the host's answer is
    copied back when it re-enters the REC (``run.complete_host_call``)."""
    addr = x[1]
    if addr % RSI_HOST_CALL_ALIGN or not rec.realm.is_protected(addr):
        return _status(RsiFid.HOST_CALL, RsiStatus.ERROR_INPUT)
    page = _realm_page(rmm, rec, RsiFid.HOST_CALL, addr)
    if isinstance(page, SmcResult):
        return page
    call = RsiHostCall.unpack(rmm.memory, page)
    rec.host_call_pending = True
    rec.host_call_ipa = addr
    rec_exit = RmiRecExit(exit_reason=RecExitReason.HOST_CALL, imm=call.imm, gprs=list(call.gprs))
    return SmcResult(RsiFid.HOST_CALL.rsi_name, regs=None, exit=rec_exit)


RSI_HANDLERS: dict[int, RsiHandler] = {
    RsiFid.VERSION: rsi_version,
    RsiFid.FEATURES: rsi_features,
    RsiFid.MEASUREMENT_READ: rsi_measurement_read,
    RsiFid.MEASUREMENT_EXTEND: rsi_measurement_extend,
    RsiFid.ATTESTATION_TOKEN_INIT: rsi_attestation_token_init,
    RsiFid.ATTESTATION_TOKEN_CONTINUE: rsi_attestation_token_continue,
    RsiFid.REALM_CONFIG: rsi_realm_config,
    RsiFid.IPA_STATE_SET: rsi_ipa_state_set,
    RsiFid.IPA_STATE_GET: rsi_ipa_state_get,
    RsiFid.HOST_CALL: rsi_host_call,
}
