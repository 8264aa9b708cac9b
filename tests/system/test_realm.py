"""Issue 5: realms run on the CPU, and everything they may ask of the RMM works.

Every test drives the realmstub (images/realm-tests) from the host side with
real RMI_REC_ENTER SMCs issued by the hoststub at NS-EL2."""

from __future__ import annotations

import hashlib
import struct
import threading

import pytest

from cosim.arch import esr
from cosim.arch.timer import VIRTUAL_TIMER_PPI
from cosim.config import GptMode
from cosim.host.realm import HostRealm, RealmSpec
from cosim.host.realmstub import (
    RealmStubDriver,
    RecRunner,
    build_realmstub_realm,
    realmstub_image,
)
from cosim.host.rmi import RmiError
from cosim.monitor import layout as L
from cosim.rmm.abi import REC_ENTER_EMUL_MMIO as ENTER_EMUL_MMIO
from cosim.rmm.abi import PsciFid, RecExitReason, RmiFid, RmiStatus, RsiFid
from cosim.rmm.attestation import TokenError, verify_token
from cosim.rmm.structs import RmiRealmParams, RmiRecParams

RAM = L.REALMSTUB_IPA
RAM_SIZE = 2 << 20
V1_0 = 0x10000
RSI_SUCCESS, RSI_ERROR_INPUT, RSI_ERROR_STATE, RSI_INCOMPLETE = 0, 1, 2, 3
PSCI_SUCCESS = 0
SMC_UNKNOWN = (1 << 64) - 1


class RealmRun:
    def __init__(self, p, recs: int = 1, cpu: int = 0, **spec) -> None:
        self.p = p
        self.realm = HostRealm(p.rmi(cpu), p.memory, p.pool, RealmSpec(**spec)).create()
        self.recs = build_realmstub_realm(self.realm, RAM_SIZE, recs)
        self.realm.activate()
        self.drivers: dict[int, RealmStubDriver] = {}
        for c in range(p.config.cpus):
            if p.monitor.cpus_up >= {c}:
                p.stub.gic_enable_ppi(VIRTUAL_TIMER_PPI, cpu=c)
        self.driver(0, cpu).start()

    def driver(self, index: int, cpu: int) -> RealmStubDriver:
        if index not in self.drivers:
            runner = RecRunner(self.p.rmi(cpu), self.p.memory, self.recs[index])
            self.drivers[index] = RealmStubDriver(runner, self.realm)
        return self.drivers[index]

    @property
    def d0(self) -> RealmStubDriver:
        return self.drivers[0]

    def rsi(self, *regs: int) -> list[int]:
        return self.d0.smc(*regs)

    def page(self, n: int) -> int:
        """A realm RAM page past the image (RIPAS RAM, not yet backed)."""
        return RAM + RAM_SIZE - (n + 1) * 0x1000


@pytest.fixture(params=[GptMode.HW, GptMode.PLUGIN], ids=["hw", "plugin"])
def gpt_mode(request) -> GptMode:
    return request.param


def _platform(make_platform, gpt=GptMode.HW, cpus=1):
    from cosim.config import ViolationPolicy

    return make_platform(cpus=cpus, gpt=gpt, rme=gpt == GptMode.HW,
                         on_violation=ViolationPolicy.LOG if gpt == GptMode.PLUGIN
                         else ViolationPolicy.DEFAULT)


def test_rsi_version_features_and_realm_config(make_platform, gpt_mode) -> None:
    p = _platform(make_platform, gpt_mode)
    r = RealmRun(p, ipa_bits=40)
    assert r.rsi(RsiFid.VERSION, V1_0)[:3] == [RSI_SUCCESS, V1_0, V1_0]
    assert r.rsi(RsiFid.VERSION, 0x20000)[:3] == [RSI_ERROR_INPUT, V1_0, V1_0]
    assert r.rsi(RsiFid.FEATURES, 0)[:2] == [RSI_SUCCESS, 0]
    assert r.rsi(RsiFid.FEATURES, 7)[:2] == [RSI_SUCCESS, 0]
    cfg = r.page(0)
    assert r.rsi(RsiFid.REALM_CONFIG, cfg)[0] == RSI_SUCCESS
    assert cfg in r.d0.backed, "the unbacked page made an emulated stage-2 exit first"
    pa = r.realm.pa_of(cfg)
    assert p.memory.read_u64(pa) == 40, "ipa_width"
    assert p.memory.read_u8(pa + 8) == 0, "hash algorithm SHA-256"
    assert r.rsi(RsiFid.REALM_CONFIG, cfg + 8)[0] == RSI_ERROR_INPUT
    assert r.rsi(0xC4000250)[0] == SMC_UNKNOWN
    assert r.rsi(0x80000000)[0] == 0x10002, "SMCCC_VERSION 1.2"
    assert r.rsi(PsciFid.VERSION)[0] == 0x10001, "PSCI 1.1"
    assert r.rsi(PsciFid.FEATURES, 0x80000000)[0] == 0, "SMCCC_VERSION is implemented"


def _rim_expected(spec: RealmSpec, realm: HostRealm) -> bytes:
    """The RIM, computed here from what the host loaded (fact sheet §7)."""
    h = hashlib.sha256
    params = RmiRealmParams(flags=spec.flags, s2sz=spec.ipa_bits, sve_vl=spec.sve_vl,
                            num_bps=spec.num_bps - 1, num_wps=spec.num_wps - 1,
                            pmu_num_ctrs=spec.pmu_num_ctrs, hash_algo=0)
    measured = bytearray(0x1000)
    for name in RmiRealmParams.MEASURED:
        field = next(f for f in RmiRealmParams.LAYOUT if f.name == name)
        struct.pack_into("<" + field.fmt, measured, field.offset, getattr(params, name))
    rim = h(bytes(measured)).digest()

    def extend(desc_type: int, body: bytes) -> bytes:
        d = bytearray(0x100)
        d[0] = desc_type
        struct.pack_into("<Q", d, 8, 0x100)
        d[0x10:0x10 + 32] = rim
        d[0x50:0x50 + len(body)] = body
        return h(bytes(d)).digest()

    # RTT_INIT_RIPAS over [RAM, RAM + 2 MiB): one level-2 entry
    rim = extend(2, struct.pack("<QQ", RAM, RAM + RAM_SIZE))
    image = realmstub_image()
    for off in range(0, len(image), 0x1000):
        page = image[off:off + 0x1000].ljust(0x1000, b"\0")
        rim = extend(0, struct.pack("<QQ", RAM + off, 1) + h(page).digest())
    rec = RmiRecParams(flags=1, pc=RAM, gprs=[0] * 8)
    rim = extend(1, h(rec.measured_bytes()).digest())
    return rim


def test_measurements(make_platform) -> None:
    p = _platform(make_platform)
    r = RealmRun(p, ipa_bits=40)
    out = r.rsi(RsiFid.MEASUREMENT_READ, 0)
    assert out[0] == RSI_SUCCESS
    rim = b"".join(struct.pack("<Q", x) for x in out[1:5])
    assert rim == _rim_expected(r.realm.spec, r.realm), "RIM as the host computes it"
    assert out[5:9] == [0, 0, 0, 0], "SHA-256: the upper half is zero"
    value = bytes(range(32))
    words = struct.unpack("<4Q", value)
    assert r.rsi(RsiFid.MEASUREMENT_EXTEND, 1, 32, *words)[0] == RSI_SUCCESS
    rem = b"".join(struct.pack("<Q", x) for x in r.rsi(RsiFid.MEASUREMENT_READ, 1)[1:5])
    assert rem == hashlib.sha256(bytes(32) + value).digest()
    assert r.rsi(RsiFid.MEASUREMENT_EXTEND, 0, 32)[0] == RSI_ERROR_INPUT, "the RIM is frozen"
    assert r.rsi(RsiFid.MEASUREMENT_EXTEND, 1, 65)[0] == RSI_ERROR_INPUT
    assert r.rsi(RsiFid.MEASUREMENT_READ, 5)[0] == RSI_ERROR_INPUT


@pytest.mark.slow
def test_attestation_token_verifies_and_every_byte_matters(make_platform) -> None:
    p = _platform(make_platform)
    r = RealmRun(p, ipa_bits=40)
    challenge = bytes(range(64, 128))
    out = r.rsi(RsiFid.ATTESTATION_TOKEN_INIT, *struct.unpack("<8Q", challenge))
    assert out[0] == RSI_SUCCESS and out[1] > 0
    token = b""
    buf = r.page(1)
    for _ in range(8):
        offset = 0
        while True:
            res = r.rsi(RsiFid.ATTESTATION_TOKEN_CONTINUE, buf, offset, 0x1000 - offset)
            assert res[0] in (RSI_SUCCESS, RSI_INCOMPLETE)
            token += p.memory.read(r.realm.pa_of(buf) + offset, res[1])
            offset += res[1]
            if res[0] == RSI_SUCCESS or offset == 0x1000:
                break
        if res[0] == RSI_SUCCESS:
            break
    assert res[0] == RSI_SUCCESS
    assert r.rsi(RsiFid.ATTESTATION_TOKEN_CONTINUE, buf, 0, 16)[0] == RSI_ERROR_STATE
    claims = verify_token(token)
    assert claims.realm.challenge == challenge
    assert claims.realm.initial_measurement == r.p.rmm.realm_at(r.realm.rd).rim[:32]
    assert claims.platform.challenge == hashlib.sha256(claims.realm.public_key).digest()
    for i in range(len(token)):
        bad = bytearray(token)
        bad[i] ^= 0x01
        with pytest.raises(TokenError):
            verify_token(bytes(bad))


def test_mmio_round_trip_through_the_host(make_platform, gpt_mode) -> None:
    p = _platform(make_platform, gpt_mode)
    r = RealmRun(p, ipa_bits=40)
    mmio = (1 << 39) | 0x0900_0000
    seen = []

    def emulate(ex):
        if ex.exit_reason != RecExitReason.SYNC or esr.ec_of(ex.esr) != esr.Ec.DABT_LOWER:
            return None
        da = esr.DataAbort.decode(ex.esr)
        ipa = ((ex.hpfar >> 4) << 12) | ex.far
        seen.append((ipa, da.write, da.size, ex.gprs[0]))
        if da.write:
            return {"flags": ENTER_EMUL_MMIO}
        return {"flags": ENTER_EMUL_MMIO, "gprs": [0x1234_5678_9ABC_DEF0]}

    r.d0.on_exit = emulate
    res = r.d0.request(L.RealmOp.LOAD, mmio + 0x10, 4)
    assert res[0] == 0 and res[1] == 0x9ABC_DEF0, "the read value, masked to 32 bits"
    res = r.d0.request(L.RealmOp.STORE, mmio + 0x18, 8, 0xCAFEF00D)
    assert res[0] == 0
    assert seen == [(mmio + 0x10, False, 4, 0), (mmio + 0x18, True, 8, 0xCAFEF00D)]


def test_empty_ripas_gets_an_external_abort(make_platform) -> None:
    p = _platform(make_platform)
    r = RealmRun(p, ipa_bits=40)
    res = r.d0.request(L.RealmOp.LOAD, 0x1000_0000, 8)
    assert res[0] == L.RealmStatus.FAULT
    assert esr.ec_of(res[3]) == esr.Ec.DABT_CURRENT
    assert res[3] & esr.FSC_MASK == esr.FSC_SYNC_EXTERNAL
    assert res[4] == 0x1000_0000


def test_ripas_change_flow(make_platform) -> None:
    p = _platform(make_platform)
    r = RealmRun(p, ipa_bits=40)
    base, top = RAM + RAM_SIZE, RAM + RAM_SIZE + (2 << 20)
    assert r.rsi(RsiFid.IPA_STATE_GET, base, top)[:3] == [RSI_SUCCESS, top, 0], "EMPTY"
    changes = []

    def apply(ex):
        if ex.exit_reason != RecExitReason.RIPAS_CHANGE:
            return None
        changes.append((ex.ripas_base, ex.ripas_top, ex.ripas_value))
        ipa = ex.ripas_base
        while ipa < ex.ripas_top:
            try:
                ipa = r.realm.rmi.rtt_set_ripas(r.realm.rd, r.recs[0].pa, ipa, ex.ripas_top)
            except RmiError as e:
                if e.status != RmiStatus.ERROR_RTT:
                    raise
                r.realm.ensure_rtts(ipa, e.index + 1)
        return {"flags": 0}

    r.d0.on_exit = apply
    out = r.rsi(RsiFid.IPA_STATE_SET, base, top, 1, 0)
    assert out[:3] == [RSI_SUCCESS, top, 0], "accepted, all of it"
    assert changes == [(base, top, 1)]
    assert r.rsi(RsiFid.IPA_STATE_GET, base, top)[:3] == [RSI_SUCCESS, top, 1], "RAM"
    assert r.rsi(RsiFid.IPA_STATE_SET, base + 1, top, 1, 0)[0] == RSI_ERROR_INPUT


def test_host_call_fp_and_isolation(make_platform, gpt_mode) -> None:
    p = _platform(make_platform, gpt_mode)
    r = RealmRun(p, ipa_bits=40)
    assert r.d0.request(L.RealmOp.FP_SUM, 1000)[1] == 32 * 1000 + sum(range(32))
    realm_marker = 0x5EA1_5EA1_0000_0001
    host_marker = 0x4057_4057_0000_0002
    checks = []

    def enter_checked(rec_pa: int, run: int) -> None:
        res, changed = p.stub.smc_check(RmiFid.REC_ENTER, rec_pa, run, marker=host_marker)
        assert res.x0 == 0
        checks.append((res.ret, changed))

    r.d0.runner.enter_smc = enter_checked
    res = r.d0.request(L.RealmOp.MARKED_CALL, realm_marker)
    r.d0.runner.enter_smc = None
    assert r.d0.marked_exit.imm == L.REALMSTUB_MARKED
    for ret, changed in checks:
        assert changed == 0, "the host's registers are intact after REC_ENTER"
        assert realm_marker not in ret, "no realm value in the host's x0..x17"
    assert res[1] == 0, "the realm's own registers survived the exit to the host"


def test_timer_interrupt_through_the_virtual_gic(make_platform) -> None:
    p = _platform(make_platform)
    r = RealmRun(p, ipa_bits=40)
    res = r.d0.request(L.RealmOp.TIMER, 200_000)
    assert res[0] == 0 and res[1] == VIRTUAL_TIMER_PPI, "the virtual timer's PPI arrived"
    assert res[2] >= 200_000
    reasons = [e.exit_reason for e in r.d0.runner.exits]
    assert RecExitReason.IRQ in reasons


def test_id_registers_follow_the_realm_parameters(make_platform) -> None:
    p = _platform(make_platform)
    r = RealmRun(p, ipa_bits=40, num_bps=2, num_wps=2)
    pfr0 = r.d0.request(L.RealmOp.READ_SYSREG, L.RealmSysreg.ID_AA64PFR0_EL1)[1]
    assert (pfr0 >> 32) & 0xF == 0, "no SVE for a realm that did not ask"
    assert (pfr0 >> 52) & 0xF == 0, "no RME inside a realm"
    dfr0 = r.d0.request(L.RealmOp.READ_SYSREG, L.RealmSysreg.ID_AA64DFR0_EL1)[1]
    assert (dfr0 >> 12) & 0xF == 1 and (dfr0 >> 20) & 0xF == 1, "2 breakpoints, 2 watchpoints"
    el = r.d0.request(L.RealmOp.READ_SYSREG, L.RealmSysreg.CURRENT_EL)[1]
    assert el == 1 << 2, "the realm runs at EL1"
    mpidr = r.d0.request(L.RealmOp.READ_SYSREG, L.RealmSysreg.MPIDR_EL1)[1]
    assert mpidr & 0xFF_00FF_FFFF == 0


def test_psci_cpu_on_two_recs_at_once_and_system_off(make_platform) -> None:
    p = _platform(make_platform, cpus=2)
    p.stub.start_secondaries()
    r = RealmRun(p, recs=2, ipa_bits=40)
    secondary = RAM + 8  # the realmstub's secondary_entry

    def complete(ex):
        if ex.exit_reason != RecExitReason.PSCI:
            return None
        assert ex.gprs[0] in (PsciFid.CPU_ON_64, PsciFid.AFFINITY_INFO_64)
        assert ex.gprs[1] == 1, "the target is REC 1's MPIDR"
        r.realm.rmi.psci_complete(r.recs[0].pa, r.recs[1].pa, PSCI_SUCCESS)
        return {}

    r.d0.on_exit = complete
    assert r.rsi(PsciFid.CPU_ON_64, 1, secondary, 1)[0] == PSCI_SUCCESS
    assert r.rsi(PsciFid.AFFINITY_INFO_64, 1, 0)[0] == 0, "ON once CPU_ON completed"
    d1 = r.driver(1, cpu=1)
    first = d1.start()
    assert first.gprs[30] == 1, "REC 1 started at the entry point with its context id"
    results: dict[int, list[int]] = {}

    def spin(index: int, driver: RealmStubDriver) -> None:
        results[index] = driver.request(L.RealmOp.SMC_LOOP, 500, RsiFid.VERSION, V1_0)

    threads = [threading.Thread(target=spin, args=(i, d)) for i, d in ((0, r.d0), (1, d1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results[0][1] == RSI_SUCCESS and results[1][1] == RSI_SUCCESS
    runs = {e["cpu"] for e in p.trace.history("world") if e["event"] == "enter"}
    assert runs == {0, 1}, "the two RECs ran on two vCPUs"

    def off(ex):
        if ex.exit_reason == RecExitReason.PSCI:
            return {}
        return None

    r.d0.on_exit = off
    ex = r.d0.runner.enter(gprs=[int(L.RealmOp.SMC), PsciFid.SYSTEM_OFF])
    assert ex.exit_reason == RecExitReason.PSCI and ex.gprs[0] == PsciFid.SYSTEM_OFF
    with pytest.raises(RmiError) as info:
        r.d0.runner.enter()
    assert info.value.status == RmiStatus.ERROR_REALM and info.value.index == 1


def test_a_recs_fp_state_survives_another_rec_and_a_move_to_another_cpu(make_platform) -> None:
    """A REC's FP/SIMD and thread registers stay in the CPU it last ran on
    until another REC needs that CPU or the REC runs elsewhere: both paths
    must give the REC back exactly what it had (the realmstub's marked call
    checks its registers after the host had control)."""
    p = _platform(make_platform, cpus=2)
    p.stub.start_secondaries()
    r = RealmRun(p, recs=2, ipa_bits=40)

    def complete(ex):
        if ex.exit_reason != RecExitReason.PSCI:
            return None
        r.realm.rmi.psci_complete(r.recs[0].pa, r.recs[1].pa, PSCI_SUCCESS)
        return {}

    r.d0.on_exit = complete
    assert r.rsi(PsciFid.CPU_ON_64, 1, RAM + 8, 1)[0] == PSCI_SUCCESS
    r.d0.on_exit = None
    d1 = r.driver(1, cpu=0)  # REC 1 shares CPU 0 with REC 0
    d1.start()
    enters: list[int] = []

    def enter_on(cpus: list[int]):
        def enter(rec_pa: int, run: int) -> None:
            cpu = cpus[min(len(enters), len(cpus) - 1)]
            if len(enters) == 1:  # the re-entry after the marked call: REC 1 runs on CPU 0 first
                assert d1.request(L.RealmOp.FP_SUM, 7)[1] == 32 * 7 + sum(range(32))
            enters.append(cpu)
            p.rmi(cpu).rec_enter(rec_pa, run)
        return enter

    # CPU 0, then (after REC 1 took CPU 0) CPU 1: REC 0's state comes from its snapshot.
    r.d0.runner.enter_smc = enter_on([0, 1])
    res = r.d0.request(L.RealmOp.MARKED_CALL, 0x5EA1_5EA1_0000_0003)
    assert res[1] == 0, "REC 0's registers survived REC 1 on its CPU and a move to CPU 1"
    # CPU 1, then CPU 0: REC 0's state comes from CPU 1's context.
    enters.clear()
    r.d0.runner.enter_smc = enter_on([1, 0])
    res = r.d0.request(L.RealmOp.MARKED_CALL, 0x5EA1_5EA1_0000_0004)
    r.d0.runner.enter_smc = None
    assert res[1] == 0, "REC 0's registers survived a move back to CPU 0"
    assert d1.request(L.RealmOp.FP_SUM, 3)[1] == 32 * 3 + sum(range(32))


def test_sve_only_for_realms_that_ask(make_platform) -> None:
    p = _platform(make_platform)
    plain = RealmRun(p, ipa_bits=40)
    res = plain.d0.request(L.RealmOp.SVE_VL)
    assert res[0] == L.RealmStatus.FAULT and esr.ec_of(res[3]) == esr.Ec.UNKNOWN, \
        "SVE is an undefined instruction in a realm without it"
    vq = 2  # 256-bit vectors
    sve = RealmRun(p, ipa_bits=40, vmid=2, flags=1 << 1, sve_vl=vq - 1)
    pfr0 = sve.d0.request(L.RealmOp.READ_SYSREG, L.RealmSysreg.ID_AA64PFR0_EL1)[1]
    assert (pfr0 >> 32) & 0xF != 0, "SVE is visible to the realm that enabled it"
    res = sve.d0.request(L.RealmOp.SVE_VL)
    assert res[0] == 0 and res[1] == 16 * vq, "the realm's vector length"
    assert sve.d0.request(L.RealmOp.FP_SUM, 7)[1] == 32 * 7 + sum(range(32))


def test_pmu_counters_as_configured(make_platform) -> None:
    p = _platform(make_platform)
    none = RealmRun(p, ipa_bits=40)
    assert none.d0.request(L.RealmOp.READ_SYSREG, L.RealmSysreg.PMCR_EL0)[1] == 0, \
        "a realm without a PMU reads PMCR_EL0 as zero"
    two = RealmRun(p, ipa_bits=40, vmid=2, flags=1 << 2, pmu_num_ctrs=2)
    pmcr = two.d0.request(L.RealmOp.READ_SYSREG, L.RealmSysreg.PMCR_EL0)[1]
    assert (pmcr >> 11) & 0x1F == 2, "PMCR_EL0.N shows the realm's counters"


RSI_FAILURES = [
    ("HOST_CALL, buffer not 0x100 aligned", (RsiFid.HOST_CALL, RAM + 0x80), RSI_ERROR_INPUT),
    ("HOST_CALL, buffer outside the protected range", (RsiFid.HOST_CALL, 1 << 39), RSI_ERROR_INPUT),
    ("REALM_CONFIG outside the protected range", (RsiFid.REALM_CONFIG, 1 << 39), RSI_ERROR_INPUT),
    ("TOKEN_CONTINUE with no TOKEN_INIT", (RsiFid.ATTESTATION_TOKEN_CONTINUE, RAM, 0, 8),
     RSI_ERROR_STATE),
    ("IPA_STATE_GET, base after top", (RsiFid.IPA_STATE_GET, RAM + 0x2000, RAM), RSI_ERROR_INPUT),
    ("IPA_STATE_GET, top beyond the protected range",
     (RsiFid.IPA_STATE_GET, RAM, (1 << 39) + 0x1000), RSI_ERROR_INPUT),
    ("IPA_STATE_SET, RIPAS value not EMPTY or RAM", (RsiFid.IPA_STATE_SET, RAM, RAM + 0x1000, 2, 0),
     RSI_ERROR_INPUT),
    ("MEASUREMENT_READ index 5", (RsiFid.MEASUREMENT_READ, 5), RSI_ERROR_INPUT),
]


def test_rsi_failure_codes(make_platform) -> None:
    p = _platform(make_platform)
    r = RealmRun(p, ipa_bits=40)
    for what, call, status in RSI_FAILURES:
        assert r.rsi(*call)[0] == status, what


def test_realm_touching_a_granule_the_host_delegated_under_it(make_platform) -> None:
    """A realm's unprotected mapping points at an NS granule the host then
    delegates: the realm's access (Non-secure PAS, from the Realm world) is
    a GPF, reported and turned into an external abort inside the realm."""
    p = _platform(make_platform)
    r = RealmRun(p, ipa_bits=40)
    shared = p.pool.alloc()
    ipa = (1 << 39) | 0x4000_0000
    r.realm.ensure_rtts(ipa, 3)
    r.realm.rmi.rtt_map_unprotected(r.realm.rd, ipa, 3, shared | 0xD8)
    p.memory.write_u64(shared, 0xFEED)
    assert r.d0.request(L.RealmOp.LOAD, ipa, 8)[:2] == [0, 0xFEED], "shared memory works"
    p.rmi().granule_delegate(shared)
    res = r.d0.request(L.RealmOp.LOAD, ipa, 8)
    assert res[0] == L.RealmStatus.FAULT, "the realm sees an abort, not the data"
    v = p.guard.violations[-1]
    assert v.world == 3 and v.el == 1 and v.pa == shared and not v.write
    assert "DELEGATED" in v.rmm_state
    p.rmi().granule_undelegate(shared)
    r.realm.rmi.rtt_unmap_unprotected(r.realm.rd, ipa, 3)
