"""PSCI from a realm: calls the RMM answers, exits to the host, and the flows
across RECs that RMI_PSCI_COMPLETE resolves."""

from __future__ import annotations

import pytest
from realm_harness import BUF, UNPROT, RealmRun

from cosim.arch.aarch64 import SCTLR_EL1_EE, SCTLR_EL1_RESET
from cosim.rmm.abi import (
    SMC_UNKNOWN,
    PsciAffinityState,
    PsciFid,
    PsciStatus,
    RecExitReason,
    RmiFid,
    RmiStatus,
    rmi_index,
    rmi_status,
    u64,
)
from cosim.rmm.realm import RealmState
from cosim.rmm.results import RmiReturn

P = PsciFid
ENTRY = BUF + 0x100


@pytest.fixture
def rr() -> RealmRun:
    run = RealmRun(recs=3)
    assert run.enter() is None
    return run


def _psci_exit(rr: RealmRun, fid: int, *args: int) -> list[int]:
    pc = rr.current.context.pc  # type: ignore[union-attr]
    e = rr.exit_of(rr.smc(fid, *args))
    assert e.exit_reason == RecExitReason.PSCI
    assert rr.rec().context.pc == pc + 4
    return e.gprs


def test_version(rr: RealmRun) -> None:
    assert rr.call(P.VERSION) == [0x10001, 0, 0, 0]


@pytest.mark.parametrize(
    "fid",
    [
        P.VERSION,
        P.CPU_SUSPEND_32,
        P.CPU_SUSPEND_64,
        P.CPU_OFF,
        P.CPU_ON_32,
        P.CPU_ON_64,
        P.AFFINITY_INFO_32,
        P.AFFINITY_INFO_64,
        P.SYSTEM_OFF,
        P.SYSTEM_RESET,
        P.FEATURES,
        0x80000000,
    ],
)
def test_features_supported(rr: RealmRun, fid: int) -> None:
    assert rr.call(P.FEATURES, fid)[0] == PsciStatus.SUCCESS


@pytest.mark.parametrize(
    "fid",
    [
        P.MIGRATE_32,
        P.MIGRATE_INFO_TYPE,
        P.SYSTEM_SUSPEND_64,
        P.SYSTEM_RESET2_64,
        0x80000001,
        0xC4000190,
        0x8400001F,
    ],
)
def test_features_unsupported(rr: RealmRun, fid: int) -> None:
    assert rr.call(P.FEATURES, fid)[0] == u64(PsciStatus.NOT_SUPPORTED)


@pytest.mark.parametrize(
    "fid",
    [P.MIGRATE_INFO_TYPE, P.MIGRATE_64, P.SYSTEM_RESET2_32, 0x8400000B, 0xC4000014, 0x8400001F],
)
def test_other_psci_calls_not_supported(rr: RealmRun, fid: int) -> None:
    assert rr.call(fid, 1, 2, 3) == [SMC_UNKNOWN, 0, 0, 0]


@pytest.mark.parametrize("fid", [P.CPU_SUSPEND_32, P.CPU_SUSPEND_64])
def test_cpu_suspend(rr: RealmRun, fid: int) -> None:
    gprs = _psci_exit(rr, fid, 0x10000, ENTRY, 9)
    assert gprs == [fid] + [0] * 30
    assert rr.x[:4] == [PsciStatus.SUCCESS, 0, 0, 0]
    assert rr.enter() is None  # nothing pending: the REC simply continues


def test_cpu_off(rr: RealmRun) -> None:
    assert _psci_exit(rr, P.CPU_OFF) == [P.CPU_OFF] + [0] * 30
    assert not rr.rec().runnable
    r = rr.rec_enter()
    assert isinstance(r, RmiReturn) and r.condition == "rec_runnable"


@pytest.mark.parametrize("fid", [P.SYSTEM_OFF, P.SYSTEM_RESET])
def test_system_off_and_reset(rr: RealmRun, fid: int) -> None:
    assert _psci_exit(rr, fid) == [fid] + [0] * 30
    assert rr.realm.state is RealmState.SYSTEM_OFF
    r = rr.rec_enter()
    assert isinstance(r, RmiReturn)
    assert (rmi_status(r.x[0]), rmi_index(r.x[0])) == (RmiStatus.ERROR_REALM, 1)


def _complete(rr: RealmRun, calling: int, target: int, status: int) -> RmiReturn:
    return rr.h.ret(RmiFid.PSCI_COMPLETE, rr.rec_pa(calling), rr.rec_pa(target), u64(status))


@pytest.mark.parametrize("fid", [P.CPU_ON_64, P.CPU_ON_32])
def test_cpu_on_flow(rr: RealmRun, fid: int) -> None:
    rr.rec().context.sysregs["SCTLR_EL1"] = SCTLR_EL1_RESET | SCTLR_EL1_EE
    gprs = _psci_exit(rr, fid, 1, ENTRY, 0xC0FFEE)
    assert gprs == [fid, 1] + [0] * 29
    caller = rr.rec(0)
    assert caller.psci_pending is not None and caller.context.gprs[0] == fid
    # the caller cannot run until the host completes the request
    r = rr.rec_enter(0)
    assert isinstance(r, RmiReturn) and r.condition == "rec_psci"
    assert _complete(rr, 0, 1, PsciStatus.SUCCESS).x[0] == 0
    target = rr.rec(1)
    assert target.runnable and target.context.pc == ENTRY
    assert target.context.gprs[0] == 0xC0FFEE and target.context.gprs[1:] == [0] * 30
    assert target.context.sysregs["SCTLR_EL1"] == SCTLR_EL1_RESET | SCTLR_EL1_EE
    assert rr.enter(0) is None
    assert rr.x[:4] == [PsciStatus.SUCCESS, 0, 0, 0] and caller.psci_pending is None
    rr.leave()
    assert rr.enter(1) is None  # the new vCPU runs
    assert rr.current is target


def test_cpu_on_denied_then_already_on(rr: RealmRun) -> None:
    _psci_exit(rr, P.CPU_ON_64, 2, ENTRY, 0)
    assert _complete(rr, 0, 2, PsciStatus.DENIED).x[0] == 0
    rr.enter(0)
    assert rr.x[0] == u64(PsciStatus.DENIED) and not rr.rec(2).runnable
    # REC 1 is already on: the host may only say SUCCESS, the realm gets ALREADY_ON
    rr.rec(1).runnable = True
    _psci_exit(rr, P.CPU_ON_64, 1, ENTRY, 0)
    assert _complete(rr, 0, 1, PsciStatus.DENIED).condition == "status"
    assert _complete(rr, 0, 1, PsciStatus.SUCCESS).x[0] == 0
    rr.enter(0)
    assert rr.x[0] == u64(PsciStatus.ALREADY_ON)


def test_psci_complete_checks_the_target(rr: RealmRun) -> None:
    _psci_exit(rr, P.CPU_ON_64, 2, ENTRY, 0)
    assert _complete(rr, 0, 1, PsciStatus.SUCCESS).condition == "target"
    assert _complete(rr, 1, 2, PsciStatus.SUCCESS).condition == "pending"


@pytest.mark.parametrize(
    "target, entry, status",
    [
        (1, UNPROT + 0x1000, PsciStatus.INVALID_ADDRESS),  # entry outside the PAR
        (1, 1 << 40, PsciStatus.INVALID_ADDRESS),
        (3, ENTRY, PsciStatus.INVALID_PARAMETERS),  # no REC 3
        (0x100, ENTRY, PsciStatus.INVALID_PARAMETERS),  # Aff1 = 1: REC 16
        (0x10, ENTRY, PsciStatus.INVALID_PARAMETERS),  # Aff0 beyond 15
        (1 << 31 | 1, ENTRY, PsciStatus.INVALID_PARAMETERS),  # bits outside Aff0..3
        (0, ENTRY, PsciStatus.ALREADY_ON),  # itself
    ],
)
def test_cpu_on_answered_by_the_rmm(rr: RealmRun, target: int, entry: int, status: int) -> None:
    assert rr.call(P.CPU_ON_64, target, entry, 0)[0] == u64(status)
    assert rr.rec().psci_pending is None


def test_cpu_on_32_uses_w_registers(rr: RealmRun) -> None:
    gprs = _psci_exit(rr, P.CPU_ON_32, (1 << 32) | 1, (1 << 40) | ENTRY, 0)
    assert gprs[1] == 1
    assert rr.rec().psci_pending.entry == ENTRY  # type: ignore[union-attr]


@pytest.mark.parametrize("fid", [P.AFFINITY_INFO_64, P.AFFINITY_INFO_32])
def test_affinity_info_flow(rr: RealmRun, fid: int) -> None:
    assert rr.call(fid, 0, 0)[0] == PsciAffinityState.ON  # itself
    assert rr.call(fid, 1, 1)[0] == u64(PsciStatus.INVALID_PARAMETERS)  # level != 0
    assert rr.call(fid, 7, 0)[0] == u64(PsciStatus.INVALID_PARAMETERS)
    assert _psci_exit(rr, fid, 2, 0) == [fid, 2] + [0] * 29
    assert _complete(rr, 0, 2, PsciStatus.DENIED).condition == "status"
    assert _complete(rr, 0, 2, PsciStatus.SUCCESS).x[0] == 0
    rr.enter(0)
    assert rr.x[:4] == [PsciAffinityState.OFF, 0, 0, 0]
    rr.rec(2).runnable = True
    _psci_exit(rr, fid, 2, 0)
    _complete(rr, 0, 2, PsciStatus.SUCCESS)
    rr.enter(0)
    assert rr.x[0] == PsciAffinityState.ON


def test_psci_trace() -> None:
    from cosim.trace import Trace

    trace = Trace()
    run = RealmRun(trace=trace)
    run.enter()
    run.call(P.VERSION)
    run.smc(P.CPU_ON_64, 1, ENTRY, 0)
    names = [e["name"] for e in trace.history("rsi")]
    assert names == ["PSCI_VERSION", "PSCI_CPU_ON_64"]
    assert trace.history("exit")[-1]["gprs"] == [P.CPU_ON_64, 1]
