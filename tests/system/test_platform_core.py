"""Issue 2: the platform core, end to end with real QEMU (no mocks)."""

from __future__ import annotations

import threading
import time

import pytest

from cosim.arch.pas import World
from cosim.config import GptMode
from cosim.monitor.layout import SipFid
from cosim.rmm.abi import SMC_UNKNOWN, PsciFid, RmiFid

V1_0 = 0x10000
PSCI_1_1 = 0x10001
ALREADY_ON = (1 << 64) - 4
INVALID_PARAMETERS = (1 << 64) - 2


@pytest.mark.parametrize("cpus", [1, 4])
def test_smc_answers_on_every_cpu(make_platform, cpus: int) -> None:
    p = make_platform(cpus=cpus)
    p.stub.start_secondaries()
    assert p.monitor.cpus_up == set(range(cpus))
    for cpu in range(cpus):
        r = p.stub.smc(RmiFid.VERSION, V1_0, cpu=cpu)
        assert r.ret[:3] == (0, V1_0, V1_0), "RMI_VERSION(1.0) must succeed with 1.0/1.0"
        r = p.stub.smc(RmiFid.VERSION, 0x20000, cpu=cpu)
        assert r.ret[:3] == (1, V1_0, V1_0), "RMI_VERSION(2.0) is RMI_ERROR_INPUT on a 1.0 RMM"
        assert p.stub.smc(PsciFid.VERSION, cpu=cpu).x0 == PSCI_1_1
        for unknown in (0x8600FF01, 0xC2000FFF, 0xC4000156, 0xC400018F, 0x84000012):
            assert p.stub.smc(unknown, cpu=cpu).x0 == SMC_UNKNOWN, hex(unknown)


@pytest.mark.parametrize("cpus", [1, 4])
def test_concurrent_smcs_complete_correctly(make_platform, cpus: int) -> None:
    p = make_platform(cpus=cpus)
    p.stub.start_secondaries()
    errors: list[str] = []

    def worker(cpu: int) -> None:
        for i in range(150):
            args = [(cpu << 48) | (i << 16) | (n * 0x1111) for n in range(1, 18)]
            r = p.stub.smc(SipFid.ECHO, *args, cpu=cpu)
            want = (0, *[a ^ n for n, a in enumerate(args, start=1)])
            if r.ret != want:
                errors.append(f"cpu {cpu} call {i}: ECHO returned {r.ret}")
            r = p.stub.smc(RmiFid.VERSION, V1_0, cpu=cpu)
            if r.ret[:3] != (0, V1_0, V1_0):
                errors.append(f"cpu {cpu} call {i}: RMI_VERSION returned {r.ret[:3]}")

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(cpus)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:5]
    rmi = [e for e in p.trace.history("rmi") if e["name"] == "RMI_VERSION"]
    assert {e["cpu"] for e in rmi} == set(range(cpus))


def test_psci_for_the_host(make_platform) -> None:
    p = make_platform(cpus=2)
    stub = p.stub
    assert stub.smc(PsciFid.FEATURES, PsciFid.CPU_ON_64).x0 == 0
    assert stub.smc(PsciFid.FEATURES, PsciFid.CPU_SUSPEND_64).x0 == SMC_UNKNOWN
    assert stub.smc(PsciFid.FEATURES, 0x80000000).x0 == 0, "SMCCC_VERSION is implemented"
    assert stub.smc(0x80000000).x0 == 0x10002, "SMCCC 1.2"
    assert stub.smc(0x84000006).x0 == 2, "MIGRATE_INFO_TYPE: no Trusted OS"
    assert stub.smc(PsciFid.AFFINITY_INFO_64, 1, 0).x0 == 1, "CPU 1 is OFF"
    assert stub.smc(PsciFid.CPU_ON_64, 7, stub.secondary_entry, 7).x0 == INVALID_PARAMETERS
    assert stub.smc(PsciFid.CPU_ON_64, 1, 0x1000, 1).x0 == (1 << 64) - 9, "INVALID_ADDRESS"
    assert stub.smc(PsciFid.CPU_ON_64, 0, stub.secondary_entry, 0).x0 == ALREADY_ON
    stub.start_secondaries()
    assert stub.smc(PsciFid.AFFINITY_INFO_64, 1, 0).x0 == 0, "CPU 1 is ON"
    assert stub.smc(PsciFid.AFFINITY_INFO_64, 1, 1).x0 == INVALID_PARAMETERS
    assert stub.smc(PsciFid.CPU_ON_64, 1, stub.secondary_entry, 1).x0 == ALREADY_ON


def test_system_off_ends_the_run_cleanly(make_platform) -> None:
    p = make_platform(cpus=1)
    p.stub.smc_async(PsciFid.SYSTEM_OFF)
    p.machine.wait(p.machine.exited, 20, "QEMU power-off")
    assert p.machine.proc.returncode == 0
    assert p.machine.failure is None


def test_doorbell_below_el3_is_refused_and_reported(make_platform) -> None:
    p = make_platform(cpus=1)
    r = p.stub.doorbell()
    assert r.status == 0
    assert len(p.monitor.attacks) == 1
    attack = p.monitor.attacks[0]
    assert attack["el"] == 2 and attack["cpu"] == 0
    stub_elf_base = p.payload_address
    assert stub_elf_base <= attack["pc"] < stub_elf_base + 0x10000
    events = p.trace.history("attack")
    assert len(events) == 1 and "refused" in events[0]["message"]
    # the machine keeps running correctly
    assert p.stub.smc(RmiFid.VERSION, V1_0).ret[:3] == (0, V1_0, V1_0)
    assert p.stub.smc(SipFid.ECHO, 5).ret[1] == 5 ^ 1


def test_consoles_carry_both_worlds(make_platform) -> None:
    p = make_platform(cpus=1)
    p.machine.console.wait_for(r"hoststub: ready", 10, p.machine.check)
    p.machine.monitor_log.wait_for(r"EL3 up", 10, p.machine.check)


def test_monitor_reports_cpu_features(make_platform) -> None:
    p = make_platform(cpus=1, rme=True)
    f = p.monitor.features
    assert f.has_rme, "-cpu max,x-rme=on sets ID_AA64PFR0_EL1.RME"
    assert f["cntfrq_el0"] > 0
    assert f["sve_max_vl"] >= 16
    q = make_platform(cpus=1, rme=False)
    assert not q.monitor.features.has_rme


def test_load_and_store_from_ns(make_platform) -> None:
    p = make_platform(cpus=1)
    addr = p.ram_base + (64 << 20)
    p.memory.write_u64(addr, 0x1122334455667788)
    assert p.stub.load(addr, 8).x0 == 0x1122334455667788
    assert p.stub.load(addr + 1, 1).x0 == 0x77
    assert p.stub.store(addr + 4, 0xAABB, size=2).status == 0
    assert p.memory.read_u64(addr) == 0x1122AABB55667788
    assert World.NONSECURE == 1


def test_system_reset_reboots_with_a_fresh_rmm(make_platform) -> None:
    p = make_platform(cpus=2, gpt=GptMode.HW)
    p.stub.start_secondaries()
    g = p.pool.alloc()
    p.rmi().granule_delegate(g)
    old_rmm = p.rmm
    p.stub.smc_async(PsciFid.SYSTEM_RESET)
    deadline = time.monotonic() + 30
    while p.rmm is old_rmm:
        p.machine.check()
        assert time.monotonic() < deadline, "the board did not come back"
        time.sleep(0.05)
    p.stub.wait_ready(0)
    assert p.machine.failure is None
    assert p.stub.smc(RmiFid.VERSION, V1_0).x0 == 0
    assert p.rmm.granule_state(g).name == "UNDELEGATED", "a reset forgets every delegation"
    assert p.stub.load(g).status == 0, "and the granule is Non-secure again"
    p.stub.start_secondaries()
    assert p.stub.smc(PsciFid.VERSION, cpu=1).x0 == PSCI_1_1
    events = [e for e in p.trace.history("platform") if e.get("event") == "reset"]
    assert len(events) == 1


def test_cpu_off_parks_the_cpu_until_cpu_on(make_platform) -> None:
    p = make_platform(cpus=2)
    p.stub.start_secondaries()
    off = p.stub.smc_async(PsciFid.CPU_OFF, cpu=1)
    deadline = time.monotonic() + 20
    while p.stub.smc(PsciFid.AFFINITY_INFO_64, 1, 0).x0 != 1:
        assert time.monotonic() < deadline, "CPU 1 did not power off"
        time.sleep(0.01)
    assert not off.done.is_set(), "CPU_OFF does not return"
    assert p.stub.smc(PsciFid.CPU_ON_64, 1, p.stub.secondary_entry, 1).x0 == 0
    p.machine.wait(off.done, 20, "CPU 1 coming back")
    assert p.stub.smc(PsciFid.AFFINITY_INFO_64, 1, 0).x0 == 0
    assert p.stub.smc(RmiFid.VERSION, V1_0, cpu=1).x0 == 0
    ups = [e for e in p.trace.history("cpu") if e["cpu"] == 1 and e["event"] == "up"]
    assert len(ups) == 2, "CPU 1 entered the NS world twice"


def test_the_register_check_notices_a_clobber(make_platform) -> None:
    """smc_check is what the realm isolation test trusts: show it can fail."""
    p = make_platform(cpus=1)
    res, changed = p.stub.smc_check(SipFid.ECHO, 1, marker=0x1111_2222_3333_4444)
    assert res.x0 == 0 and changed == 0
    p.monitor.services[SipFid.CONSOLE_PUTC] = lambda cpu, args: (0,) * 18 + (1, 2, 3)
    res, changed = p.stub.smc_check(SipFid.CONSOLE_PUTC, 65, marker=0x1111_2222_3333_4444)
    assert changed == 3, "x18, x19 and x20 were overwritten by the service"
