"""RSI v1.0 from a running realm: every command's success path and each failure code."""

from __future__ import annotations

import struct

import pytest
from realm_harness import (
    BUF,
    EMPTY,
    RAM_TOP,
    S2SZ,
    UNBACKED,
    UNPROT,
    RealmRun,
    smc_esr,
)
from rmm_host import G

from cosim.rmm.abi import (
    SMC_UNKNOWN,
    HashAlgorithm,
    RecExitReason,
    Ripas,
    RmiFid,
    RsiFid,
    RsiResponse,
    RsiStatus,
)
from cosim.rmm.exits import RecExitDecision, Resume
from cosim.rmm.measurement import Rim
from cosim.rmm.structs import RsiHostCall, RsiRealmConfig
from cosim.trace import Trace

R = RsiFid
OK, INPUT, STATE, INCOMPLETE = (
    RsiStatus.SUCCESS,
    RsiStatus.ERROR_INPUT,
    RsiStatus.ERROR_STATE,
    RsiStatus.INCOMPLETE,
)
S2_ABORT_L3 = (0x24 << 26) | 0x07
"""The RMM-generated stage-2 abort: data abort, translation fault level 3."""


@pytest.fixture
def rr() -> RealmRun:
    run = RealmRun()
    assert run.enter() is None
    return run


def _s2_abort(rr: RealmRun, fid: int, *args: int, ipa: int, level: int = 3) -> None:
    pc = rr.current.context.pc  # type: ignore[union-attr]
    d = rr.smc(fid, *args)
    e = rr.exit_of(d)
    assert e.exit_reason == RecExitReason.SYNC
    assert e.esr == (0x24 << 26) | (0x04 + level) and e.far == 0 and e.hpfar == ipa >> 8
    assert rr.rec().context.pc == pc  # the call is retried


# -- RSI_VERSION / RSI_FEATURES -----------------------------------------------------------


def test_version(rr: RealmRun) -> None:
    assert rr.call(R.VERSION, 0x10000) == [OK, 0x10000, 0x10000, 0]
    for requested in (0x20000, 0x10001, 0x0, 0xFFFF_FFFF):
        assert rr.call(R.VERSION, requested) == [INPUT, 0x10000, 0x10000, 0]


def test_features_are_all_zero(rr: RealmRun) -> None:
    for index in (0, 1, 0xFFFF):
        assert rr.call(R.FEATURES, index) == [OK, 0, 0, 0]


# -- RSI_REALM_CONFIG ------------------------------------------------------------------------


def test_realm_config(rr: RealmRun) -> None:
    rr.h.memory.fill(rr.data[BUF + G], G, 0xAA)
    assert rr.call(R.REALM_CONFIG, BUF + G) == [OK, 0, 0, 0]
    cfg = RsiRealmConfig.from_bytes(rr.read(BUF + G, G))
    assert cfg.ipa_width == S2SZ and cfg.hash_algo == HashAlgorithm.SHA_256
    assert cfg.rpv == bytes(range(64))
    assert rr.read(BUF + G + 8, 8) == bytes([0] * 8)  # hash_algo reads as a u64 too


@pytest.mark.parametrize(
    "addr", [BUF + 8, BUF + 0x800, UNPROT, UNPROT + BUF, 1 << S2SZ, EMPTY, RAM_TOP]
)
def test_realm_config_input_errors(rr: RealmRun, addr: int) -> None:
    assert rr.call(R.REALM_CONFIG, addr)[0] == INPUT


def test_realm_config_unbacked_page_exits_then_retries(rr: RealmRun) -> None:
    _s2_abort(rr, R.REALM_CONFIG, UNBACKED, ipa=UNBACKED)
    page = rr.h.data_create(rr.rd, UNBACKED, unknown=True)
    assert rr.enter() is None
    r = rr.trap(esr=smc_esr())  # the same SMC again
    assert isinstance(r, Resume) and rr.x[0] == OK
    assert RsiRealmConfig.unpack(rr.h.memory, page).ipa_width == S2SZ


def test_realm_config_destroyed_page_exits(rr: RealmRun) -> None:
    rr.leave()
    rr.h.ok(RmiFid.DATA_DESTROY, rr.rd, BUF + 7 * G)  # RIPAS becomes DESTROYED
    assert rr.enter() is None
    _s2_abort(rr, R.REALM_CONFIG, BUF + 7 * G, ipa=BUF + 7 * G)


# -- measurements ------------------------------------------------------------------------------


def test_measurement_read(rr: RealmRun) -> None:
    rr.call(R.MEASUREMENT_READ, 0)
    rim = struct.pack("<8Q", *rr.x[1:9])
    assert rim == rr.realm.rim and rim[32:] == bytes(32)
    for index in range(1, 5):
        assert rr.call(R.MEASUREMENT_READ, index)[0] == OK and rr.x[1:9] == [0] * 8
    assert rr.call(R.MEASUREMENT_READ, 5)[0] == INPUT
    assert rr.call(R.MEASUREMENT_READ, 1 << 63)[0] == INPUT


def test_measurement_extend_fact_sheet_vector(rr: RealmRun) -> None:
    value = bytes(range(32))
    words = struct.unpack("<8Q", value + bytes(32))
    assert rr.call(R.MEASUREMENT_EXTEND, 1, 32, *words)[0] == OK
    rr.call(R.MEASUREMENT_READ, 1)
    rem = struct.pack("<8Q", *rr.x[1:9])
    assert rem[:32].hex() == "bb2275c49f28ad52cae6d55e34a974a58c7a3ba26f976e8ecbbe7a536918dc73"
    assert rem[32:] == bytes(32)


def test_measurement_extend_sizes_and_slots(rr: RealmRun) -> None:
    words = list(range(1, 9))
    raw = struct.pack("<8Q", *words)
    expected = bytes(64)
    for size in (0, 1, 64):
        expected = Rim(HashAlgorithm.SHA_256).extend_rem(expected, raw[:size])
        assert rr.call(R.MEASUREMENT_EXTEND, 4, size, *words)[0] == OK
    assert bytes(rr.realm.measurements[4]) == expected
    assert bytes(rr.realm.measurements[1]) == bytes(64)  # other REMs untouched
    rim = rr.realm.rim
    for index, size in ((0, 8), (5, 8), (1, 65), (2, 1 << 63)):
        assert rr.call(R.MEASUREMENT_EXTEND, index, size, *words)[0] == INPUT
    assert rr.realm.rim == rim  # the RIM is frozen


def test_measurement_sha512_uses_all_64_bytes() -> None:
    rr = RealmRun(realm={"hash_algo": HashAlgorithm.SHA_512})
    rr.enter()
    rr.call(R.MEASUREMENT_READ, 0)
    rim = struct.pack("<8Q", *rr.x[1:9])
    assert rim == rr.realm.rim and rim[32:] != bytes(32)
    rr.call(R.MEASUREMENT_EXTEND, 2, 3, 0x030201)
    assert bytes(rr.realm.measurements[2]) == Rim(HashAlgorithm.SHA_512).extend_rem(
        bytes(64), b"\x01\x02\x03"
    )


# -- attestation ---------------------------------------------------------------------------------


def _challenge_words() -> list[int]:
    return list(struct.unpack("<8Q", bytes(range(100, 164))))


def test_attestation_init_and_continue(rr: RealmRun) -> None:
    from cosim.rmm.attestation import verify_token

    assert rr.call(R.ATTESTATION_TOKEN_INIT, *_challenge_words())[0] == OK
    size = rr.x[1]
    assert 0 < size <= 4096
    chunks, sizes = [], [100, 0, 1, 4096 - 300, 4096]
    offset = 200
    for want in sizes:
        want = min(want, G - offset)
        status, n = rr.call(R.ATTESTATION_TOKEN_CONTINUE, BUF + 2 * G, offset, want)[:2]
        chunks.append(rr.read(BUF + 2 * G + offset, n))
        if status == OK:
            break
        assert status == INCOMPLETE and n == want
    assert status == OK
    token = b"".join(chunks)
    assert len(token) == size
    claims = verify_token(token)
    assert claims.realm.challenge == bytes(range(100, 164))
    assert claims.realm.initial_measurement == rr.realm.rim[:32]
    # the operation is over
    assert rr.call(R.ATTESTATION_TOKEN_CONTINUE, BUF, 0, G)[0] == STATE


def test_attestation_continue_failures(rr: RealmRun) -> None:
    assert rr.call(R.ATTESTATION_TOKEN_CONTINUE, BUF, 0, G)[0] == STATE  # no INIT
    rr.call(R.ATTESTATION_TOKEN_INIT, *_challenge_words())
    for addr, offset, size in (
        (BUF + 1, 0, 16),  # not granule aligned
        (UNPROT, 0, 16),  # not protected
        (BUF, G, 0),  # offset beyond the granule
        (BUF, 16, G),  # offset + size beyond the granule
        (BUF, 0, 1 << 64 - 1),
        (EMPTY, 0, 16),  # RIPAS EMPTY
    ):
        assert rr.call(R.ATTESTATION_TOKEN_CONTINUE, addr, offset, size)[0] == INPUT
    _s2_abort(rr, R.ATTESTATION_TOKEN_CONTINUE, UNBACKED, 0, 16, ipa=UNBACKED)
    # the operation survives the exit
    rr.h.data_create(rr.rd, UNBACKED, unknown=True)
    rr.enter()
    rr.trap(esr=smc_esr())
    assert rr.x[0] == INCOMPLETE and rr.x[1] == 16


def test_attestation_init_restarts(rr: RealmRun) -> None:
    rr.call(R.ATTESTATION_TOKEN_INIT, *_challenge_words())
    rr.call(R.ATTESTATION_TOKEN_CONTINUE, BUF, 0, 10)
    assert rr.call(R.ATTESTATION_TOKEN_INIT, *range(8))[0] == OK
    size = rr.x[1]
    assert rr.call(R.ATTESTATION_TOKEN_CONTINUE, BUF, 0, G)[:2] == [OK, size]


# -- RSI_IPA_STATE_SET -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base, top, ripas",
    [
        (0x1001, 0x3000, 1),  # base_align
        (0x1000, 0x3001, 1),  # top_align
        (0x3000, 0x3000, 1),  # size_valid
        (0x4000, 0x3000, 0),
        (0x1000, UNPROT + G, 1),  # rgn_bound
        (UNPROT, UNPROT + G, 0),
        (0x1000, 0x3000, 2),  # ripas_valid (DESTROYED cannot be requested)
        (0x1000, 0x3000, 3),
    ],
)
def test_ipa_state_set_input_errors(rr: RealmRun, base: int, top: int, ripas: int) -> None:
    assert rr.call(R.IPA_STATE_SET, base, top, ripas, 0) == [INPUT, 0, 0, 0]
    assert not rr.rec().ripas_pending


def _ripas_exit(rr: RealmRun, base: int, top: int, ripas: int, flags: int = 0) -> None:
    pc = rr.current.context.pc  # type: ignore[union-attr]
    e = rr.exit_of(rr.smc(R.IPA_STATE_SET, base, top, ripas, flags))
    assert e.exit_reason == RecExitReason.RIPAS_CHANGE
    assert (e.ripas_base, e.ripas_top, e.ripas_value) == (base, top, ripas)
    rec = rr.rec()
    assert rec.context.pc == pc + 4 and rec.ripas_pending
    assert (rec.ripas_addr, rec.ripas_top, rec.ripas_destroyed) == (base, top, bool(flags & 1))


def test_ipa_state_set_accepted(rr: RealmRun) -> None:
    _ripas_exit(rr, RAM_TOP, RAM_TOP + 4 * G, Ripas.RAM)
    assert rr.h.ok(RmiFid.RTT_SET_RIPAS, rr.rd, rr.rec_pa(0), RAM_TOP, RAM_TOP + 4 * G)
    rr.enter()
    assert rr.x[:4] == [OK, RAM_TOP + 4 * G, RsiResponse.ACCEPT, 0]
    assert not rr.rec().ripas_pending
    assert rr.call(R.IPA_STATE_GET, RAM_TOP, RAM_TOP + 8 * G)[:3] == [OK, RAM_TOP + 4 * G, 1]


def test_ipa_state_set_partial_and_rejected(rr: RealmRun) -> None:
    _ripas_exit(rr, RAM_TOP, RAM_TOP + 4 * G, Ripas.RAM)
    rr.h.ok(RmiFid.RTT_SET_RIPAS, rr.rd, rr.rec_pa(0), RAM_TOP, RAM_TOP + G)
    rr.enter(flags=1 << 4)  # RIPAS_RESPONSE = REJECT
    assert rr.x[:3] == [OK, RAM_TOP + G, RsiResponse.REJECT]
    # nothing done, rejected
    _ripas_exit(rr, RAM_TOP + G, RAM_TOP + 4 * G, Ripas.RAM)
    rr.enter(flags=1 << 4)
    assert rr.x[:3] == [OK, RAM_TOP + G, RsiResponse.REJECT]
    # nothing done, not rejected: ACCEPT with no progress
    _ripas_exit(rr, RAM_TOP + G, RAM_TOP + 4 * G, Ripas.RAM)
    rr.enter()
    assert rr.x[:3] == [OK, RAM_TOP + G, RsiResponse.ACCEPT]


def test_ipa_state_set_to_empty_cannot_be_rejected(rr: RealmRun) -> None:
    _ripas_exit(rr, BUF, BUF + 2 * G, Ripas.EMPTY, flags=1)
    rr.h.ok(RmiFid.RTT_SET_RIPAS, rr.rd, rr.rec_pa(0), BUF, BUF + G)
    rr.enter(flags=1 << 4)
    assert rr.x[:3] == [OK, BUF + G, RsiResponse.ACCEPT]
    # RTT_SET_RIPAS after completion: no request any more
    rr.rmm.rec_enter_complete(rr.rec())
    r = rr.h.ret(RmiFid.RTT_SET_RIPAS, rr.rd, rr.rec_pa(0), BUF + G, BUF + 2 * G)
    assert r.condition == "base_bound"


# -- RSI_IPA_STATE_GET --------------------------------------------------------------------------


def test_ipa_state_get(rr: RealmRun) -> None:
    assert rr.call(R.IPA_STATE_GET, 0, 1 << 30) == [OK, RAM_TOP, Ripas.RAM, 0]
    assert rr.call(R.IPA_STATE_GET, BUF, BUF + G) == [OK, BUF + G, Ripas.RAM, 0]
    assert rr.call(R.IPA_STATE_GET, RAM_TOP - G, RAM_TOP + 8 * G)[:3] == [OK, RAM_TOP, 1]
    # EMPTY to the end of the last-level RTT (2 MiB) that maps the base
    assert rr.call(R.IPA_STATE_GET, RAM_TOP, 1 << 30)[:3] == [OK, 0x200000, Ripas.EMPTY]
    # the walk stops at level 2 (no RTT below): EMPTY up to the end of that level-2 RTT
    assert rr.call(R.IPA_STATE_GET, 0x400000, 1 << 31)[:3] == [OK, 1 << 30, Ripas.EMPTY]
    assert rr.call(R.IPA_STATE_GET, 0x400000, 0x600000)[:3] == [OK, 0x600000, Ripas.EMPTY]


def test_ipa_state_get_destroyed(rr: RealmRun) -> None:
    rr.leave()
    rr.h.ok(RmiFid.DATA_DESTROY, rr.rd, BUF + 3 * G)
    rr.enter()
    assert rr.call(R.IPA_STATE_GET, BUF + 3 * G, RAM_TOP)[:3] == [OK, BUF + 4 * G, 2]


@pytest.mark.parametrize(
    "base, top",
    [(1, G), (0, G + 1), (G, G), (2 * G, G), (0, UNPROT + G), (UNPROT, UNPROT + G)],
)
def test_ipa_state_get_input_errors(rr: RealmRun, base: int, top: int) -> None:
    assert rr.call(R.IPA_STATE_GET, base, top) == [INPUT, 0, 0, 0]


# -- RSI_HOST_CALL --------------------------------------------------------------------------------


def test_host_call_round_trip(rr: RealmRun) -> None:
    block = BUF + 4 * G + 0x300
    call = RsiHostCall(imm=0x1234, gprs=[0x100 + i for i in range(31)])
    rr.h.memory.write(rr.data[BUF + 4 * G] + 0x300, call.to_bytes())
    pc = rr.current.context.pc  # type: ignore[union-attr]
    e = rr.exit_of(rr.smc(R.HOST_CALL, block))
    assert e.exit_reason == RecExitReason.HOST_CALL
    assert e.imm == 0x1234 and e.gprs == [0x100 + i for i in range(31)]
    assert rr.rec().context.pc == pc + 4 and rr.rec().host_call_pending
    assert rr.enter(gprs=[0x900 + i for i in range(31)]) is None
    assert rr.x[0] == OK
    done = RsiHostCall.from_bytes(rr.read(block, 0x100))
    assert done.imm == 0x1234 and done.gprs == [0x900 + i for i in range(31)]
    assert not rr.rec().host_call_pending


@pytest.mark.parametrize("addr", [BUF + 0x80, BUF + 1, UNPROT, UNPROT + 0x100, EMPTY])
def test_host_call_input_errors(rr: RealmRun, addr: int) -> None:
    assert rr.call(R.HOST_CALL, addr) == [INPUT, 0, 0, 0]


def test_host_call_unbacked_buffer(rr: RealmRun) -> None:
    _s2_abort(rr, R.HOST_CALL, UNBACKED + 0x100, ipa=UNBACKED)


def test_host_call_completion_needs_the_page(rr: RealmRun) -> None:
    block = BUF + 5 * G
    rr.exit_of(rr.smc(R.HOST_CALL, block))
    rr.h.ok(RmiFid.DATA_DESTROY, rr.rd, block)  # the host took the page away
    for _ in range(2):  # every entry exits again at once with the emulated stage-2 abort
        e = rr.exit_of(rr.enter(gprs=[7] * 31))
        assert e.exit_reason == RecExitReason.SYNC and e.hpfar == block >> 8
        assert e.esr == S2_ABORT_L3 and rr.rec().host_call_pending
    assert rr.rec().context.gprs[0] == R.HOST_CALL  # X0 not yet written


# -- SMCCC and unknown calls ----------------------------------------------------------------------


def test_smccc_version_and_arch_features(rr: RealmRun) -> None:
    assert rr.call(0x80000000) == [0x10002, 0, 0, 0]
    assert rr.call(0x80000001, 0x80008000)[0] == SMC_UNKNOWN
    assert rr.call(0x80000001, 0x80000000)[0] == SMC_UNKNOWN


@pytest.mark.parametrize(
    "fid", [0xC400019A, 0xC40001AF, 0xC4000150, 0x8600FF01, 0x84000050, 0xC2000001, 0]
)
def test_unknown_smc(rr: RealmRun, fid: int) -> None:
    assert rr.call(fid, 1, 2, 3) == [SMC_UNKNOWN, 0, 0, 0]


def test_fid_upper_bits_and_sve_hint_ignored(rr: RealmRun) -> None:
    assert rr.call((0xFFFF << 32) | R.VERSION | 1 << 16, 0x10000)[0] == OK


def test_rsi_trace_events() -> None:
    trace = Trace()
    rr = RealmRun(trace=trace)
    rr.enter()
    rr.call(R.VERSION, 0x10000)
    rr.smc(R.IPA_STATE_SET, BUF, BUF + G, 0, 0)
    events = trace.history("rsi")
    assert [e["name"] for e in events] == ["RSI_VERSION", "RSI_IPA_STATE_SET"]
    assert events[0]["result"] == [0, 0x10000, 0x10000, 0] and events[0]["args"][0] == 0x10000
    assert events[0]["realm"] == rr.realm.id and events[0]["rec"] == 0 and events[0]["exit"] is None
    assert events[1]["exit"] == "RIPAS_CHANGE" and events[1]["result"] is None
    exits = trace.history("exit")
    assert exits[-1]["reason"] == "RIPAS_CHANGE" and exits[-1]["ripas_top"] == BUF + G


def test_no_trace_work_when_inactive() -> None:
    trace = Trace(history=0)
    rr = RealmRun(trace=trace)
    rr.enter()
    rr.call(R.VERSION, 0x10000)
    assert isinstance(rr.smc(R.IPA_STATE_SET, BUF, BUF + G, 0, 0), RecExitDecision)
    assert trace.count == 0
