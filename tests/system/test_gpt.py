"""Issue 4: GPT enforcement, the same matrix in both modes."""

from __future__ import annotations

import time

import pytest

from cosim.arch import esr
from cosim.arch.pas import Pas
from cosim.config import GptMode, ViolationPolicy
from cosim.host.realm import HostRealm, RealmSpec
from cosim.monitor import layout as L
from cosim.rmm import GranuleState
from cosim.rmm.abi import RmiFid

MODES = [pytest.param(GptMode.HW, id="hw"), pytest.param(GptMode.PLUGIN, id="plugin")]


def start(make_platform, mode: GptMode, **kw):
    policy = ViolationPolicy.LOG if mode == GptMode.PLUGIN else ViolationPolicy.DEFAULT
    return make_platform(gpt=mode, on_violation=kw.pop("on_violation", policy), **kw)


def blocked(p, mode: GptMode, pa: int, *, write: bool = False) -> None:
    """Assert that an NS access to `pa` is stopped (hw) or detected (plugin),
    reported exactly once with the right granule, PC and direction."""
    before = len(p.guard.violations)
    r = p.stub.store(pa, 0x5A5A, size=8) if write else p.stub.load(pa, 8)
    new = p.guard.violations[before:]
    assert len(new) == 1, f"expected one report for {pa:#x}, got {len(new)}"
    v = new[0]
    assert v.granule == pa & ~0xFFF and v.pa == pa
    assert v.write == write and v.world == 1 and v.el == 2
    fn = "stub_store8" if write else "stub_load8"
    assert v.symbol and v.symbol.startswith(fn), v.symbol
    if mode == GptMode.HW:
        assert r.faulted, "the stub must see a fault, not the data"
        assert esr.ec_of(r.fault_esr) == esr.Ec.DABT_CURRENT
        assert r.fault_esr & 0x3F == esr.FSC_SYNC_EXTERNAL
        assert r.fault_elr == v.pc
    else:
        assert not r.faulted, "plugin mode detects after the access"


@pytest.mark.parametrize("mode", MODES)
def test_delegated_granule_is_unreachable_then_scrubbed(make_platform, mode) -> None:
    p = start(make_platform, mode)
    g = p.pool.alloc()
    p.memory.write_u64(g, 0x0123456789ABCDEF)
    assert p.stub.load(g).x0 == 0x0123456789ABCDEF
    p.rmi().granule_delegate(g)
    assert p.gpt.get(g) == Pas.REALM
    blocked(p, mode, g)
    blocked(p, mode, g + 0x10, write=True)
    report = p.guard.violations[-1].report()
    assert "RMI_GRANULE_DELEGATE: UNDELEGATED -> DELEGATED" in report
    assert "RMM state: DELEGATED" in report
    events = p.trace.history("gpt_violation")
    assert len(events) == 2 and events[0]["granule"] == g
    p.rmi().granule_undelegate(g)
    n = len(p.guard.violations)
    r = p.stub.load(g)
    assert not r.faulted and r.x0 == 0, "undelegated granules read as zeros"
    assert p.stub.load(g + 0x10).x0 == 0, "the plugin-mode store never reached the caller"
    assert len(p.guard.violations) == n


@pytest.mark.parametrize("mode", MODES)
def test_every_rmm_state_and_the_carveout_are_unreachable(make_platform, mode) -> None:
    p = start(make_platform, mode)
    realm = HostRealm(p.rmi(), p.memory, p.pool, RealmSpec(ipa_bits=40)).create()
    src = bytes(range(256)) * 16
    [data] = realm.populate(0x1000_0000, src)
    rec = realm.create_rec(pc=0x1000_0000)
    spare = p.pool.alloc()
    p.rmi().granule_delegate(spare)
    states = {
        GranuleState.RD: realm.rd,
        GranuleState.RTT: realm.roots[0],
        GranuleState.REC: rec.pa,
        GranuleState.REC_AUX: rec.aux[0],
        GranuleState.DATA: data,
        GranuleState.DELEGATED: spare,
    }
    for state, pa in states.items():
        assert p.rmm.granule_state(pa) == state
        blocked(p, mode, pa)
        v = p.guard.violations[-1]
        assert v.pas == "Realm"
    assert "DATA of realm 1 at IPA 0x10000000" in p.guard.violations[-2].rmm_state
    for off in (0, 0x1000, p.config.carveout_size - 0x1000 - 8):
        blocked(p, mode, p.carveout_base + off)
        assert p.guard.violations[-1].pas == "Root"
        assert "carve-out" in p.guard.violations[-1].rmm_state
    blocked(p, mode, p.rel2_vectors_address)
    assert p.guard.violations[-1].pas == "Realm"
    assert "EL2 vector page" in p.guard.violations[-1].rmm_state
    realm.destroy()
    p.rmi().granule_undelegate(spare)
    assert all(p.rmm.granule_state(pa) == GranuleState.UNDELEGATED for pa in states.values())


@pytest.mark.parametrize("mode", MODES)
def test_data_create_copies_without_exposing_the_copy(make_platform, mode) -> None:
    p = start(make_platform, mode)
    realm = HostRealm(p.rmi(), p.memory, p.pool).create()
    content = bytes((i * 7) & 0xFF for i in range(4096))
    src = p.pool.alloc()
    p.memory.write(src, content)
    dst = p.pool.alloc()
    p.rmi().granule_delegate(dst)
    realm.ensure_rtts(0x2000)
    p.rmi().data_create(realm.rd, dst, 0x2000, src, 1)
    realm.data[0x2000] = dst
    assert p.memory.read(dst, 4096) == content, "the realm's copy holds the source content"
    assert p.memory.read(src, 4096) == content, "the NS source is unchanged"
    assert p.stub.load(src + 8).x0 == int.from_bytes(content[8:16], "little")
    blocked(p, mode, dst + 8)
    if mode == GptMode.HW:
        assert p.stub.load(dst + 8).x0 != int.from_bytes(content[8:16], "little")
    realm.destroy()


def test_plugin_log_reports_every_access(make_platform) -> None:
    p = start(make_platform, GptMode.PLUGIN)
    pages = [p.pool.alloc() for _ in range(100)]
    for g in pages:
        p.rmi().granule_delegate(g)
    for g in pages:
        p.stub.load(g + 0x40, 4)
    assert len(p.guard.violations) == 100
    assert sorted(v.granule for v in p.guard.violations) == sorted(pages)
    assert len(p.trace.history("gpt_violation")) == 100


def _stub_page(p, cpu: int) -> int:
    return p.stub._cpus[cpu].page


def test_plugin_halt_holds_the_offender_at_the_violating_instruction(make_platform) -> None:
    """Issue 10: the halt used to be an asynchronous QMP stop, and the offending
    vCPU ran on (more loads, stores, even an SMC served) before it took hold.
    Now the plugin holds it inside the violating access: in 20 halts out of 20
    nothing after that load ran on CPU 0 (the stub's store of the result and
    its next SMC are still to come), CPU 1 (busy with SMCs) is held too, and
    after resume() the load completes normally."""
    p = make_platform(cpus=2, gpt=GptMode.PLUGIN)
    p.stub.start_secondaries()
    g = p.pool.alloc()
    p.rmi().granule_delegate(g)
    p.memory.write_u64(g, 0x600D_DA7A)
    ret0 = L.STUB_REQUEST["ret"]
    for run in range(20):
        busy = p.stub.smc_async(RmiFid.VERSION, 0x10000, cpu=1) if run % 2 else None
        page = _stub_page(p, 0)
        p.memory.write_u64(page + ret0, 0x5E_7117E1)  # where the stub stores the value
        doorbells = sum(1 for e in p.trace.history("rmi") if e["cpu"] == 0)
        req = p.stub.load_async(g, cpu=0)
        p.machine.wait(p.guard.halted, 20, "the violation halt")
        v = p.guard.violations[-1]
        assert v.symbol.startswith("stub_load8+0x0"), v.symbol
        deadline = time.monotonic() + 10
        while set(p.guard.held) != {0, 1}:
            assert time.monotonic() < deadline, f"run {run}: held {p.guard.held}"
            time.sleep(0.01)
        assert p.guard.held[0] == v.pc, "CPU 0 is held at the violating instruction"
        time.sleep(0.05)
        assert p.memory.read_u64(page + ret0) == 0x5E_7117E1, f"run {run}: the stub went on"
        assert not req.done.is_set()
        assert sum(1 for e in p.trace.history("rmi") if e["cpu"] == 0) == doorbells
        assert p.machine.status()["status"] == "running", "QEMU itself is not paused"
        p.resume()
        assert p.stub.result(req).x0 == 0x600D_DA7A, "plugin mode: the access happened"
        if busy is not None:
            assert p.stub.result(busy).x0 == 0
    assert len(p.guard.violations) == 20
    assert "held inside this access" in p.guard.violations[0].action


def test_plugin_halt_then_stop_runs_nothing_more(make_platform) -> None:
    """Stopping a halted plugin-mode machine kills QEMU rather than releasing
    the offender into the rest of its program."""
    p = make_platform(gpt=GptMode.PLUGIN)
    g = p.pool.alloc()
    p.rmi().granule_delegate(g)
    page = _stub_page(p, 0)
    p.memory.write_u64(page + L.STUB_REQUEST["ret"], 0x5E_7117E1)
    p.stub.load_async(g)
    p.machine.wait(p.guard.halted, 20, "the violation halt")
    p.stop()
    assert p.machine.proc.returncode is not None
    assert p.machine.failure is None, "a deliberate end, not a failure"


def test_hw_halt_policy_preserves_the_offender(make_platform) -> None:
    p = make_platform(gpt=GptMode.HW, on_violation=ViolationPolicy.HALT)
    g = p.pool.alloc()
    p.rmi().granule_delegate(g)
    p.stub.load_async(g)
    p.machine.wait(p.guard.halted, 20, "the violation stop")
    v = p.guard.violations[0]
    assert v.mode == "hw" and "halted" in v.action and v.symbol.startswith("stub_load8")
