"""The scenarios `cosim compare` runs on each platform.  Each takes a
started Platform and a Recording and drives the RMM through the hoststub,
recording every RMI call (record.py) and the values worth comparing.

- rmi-lifecycle: RMI_VERSION/FEATURES, commands that must fail (and with
  which status), a realm built, read back, run to its first host call and
  torn down to the last granule.
- realm-payload: the realm test payload (images/realm-tests) asked for every
  RSI service: versions, features, realm config, RIM and REMs (and that the
  RIM is the one the host computed), an MMIO exit, PSCI and SMCCC versions,
  an attestation token and its claims.
- linux: the Linux realm boot of `cosim realm run` (run.py drives it).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..arch import esr
from ..arch.pas import GRANULE_SIZE
from ..host.realm import HostRealm, RealmSpec
from ..host.realmstub import RealmStubDriver, RecRunner, build_realmstub_realm
from ..host.rmi import RmiClient
from ..monitor import layout as L
from ..rmm.abi import REC_ENTER_EMUL_MMIO, PsciFid, RecExitReason, Ripas, RmiFid, RsiFid
from ..rmm.structs import RmiRealmParams
from .record import Recording
from .tokens import token_values

if TYPE_CHECKING:
    from ..platform import Platform

V1_0 = 0x1_0000
RAM = L.REALMSTUB_IPA
RAM_SIZE = 2 << 20
OUTSIDE_RAM_PA = 0x1000_0000
"""A PA in the PCIe MMIO window of QEMU virt: no DRAM, so no granule."""
CHALLENGE = bytes(range(64, 128))
MMIO_IPA = (1 << 39) | 0x0900_0000
"""In the unprotected half of a 40-bit realm: an emulated MMIO access."""
SMCCC_VERSION = 0x8000_0000
UNKNOWN_SMC = 0xC400_0250
MAX_CONTINUES = 4096


def _realm(p: Platform, rec: Recording, rmi: RmiClient) -> HostRealm:
    realm = HostRealm(rmi, p.memory, p.pool, RealmSpec(ipa_bits=40))
    pool = p.pool
    rec.pool = (pool.base, pool.end)
    return realm


def rmi_lifecycle(p: Platform, rec: Recording) -> None:
    rmi = rec.rmi(p.stub, p.memory)  # type: ignore[arg-type]
    realm = _realm(p, rec, rmi)
    rmi.version(V1_0)
    rmi.version(0x2_0000)
    rmi._smc(RmiFid.FEATURES, 0)
    rmi._smc(RmiFid.FEATURES, 1)
    spare = p.pool.alloc()
    rmi._smc(RmiFid.GRANULE_DELEGATE, spare + 8)            # not aligned
    rmi._smc(RmiFid.GRANULE_DELEGATE, OUTSIDE_RAM_PA)       # not DRAM
    rmi._smc(RmiFid.GRANULE_UNDELEGATE, spare)              # not delegated
    rmi._smc(RmiFid.REALM_CREATE, spare, spare)             # RD not delegated
    _bad_realm_params(p, rec, rmi)
    realm.create()
    rmi._smc(RmiFid.REALM_CREATE, realm.rd, spare)          # RD in use
    rmi._smc(RmiFid.GRANULE_DELEGATE, realm.rd)             # delegated already
    recs = build_realmstub_realm(realm, RAM_SIZE, 1)
    rec.aux.update(recs[0].aux)
    for ipa, level in ((RAM, 3), (RAM, 2), (RAM + RAM_SIZE, 3), (MMIO_IPA, 3), (RAM, 4),
                       (RAM + 8, 3), (1 << 40, 3)):
        rmi._smc(RmiFid.RTT_READ_ENTRY, realm.rd, ipa, level)
    rmi._smc(RmiFid.RTT_CREATE, realm.rd, spare, RAM, 3)    # RTT granule not delegated
    rmi._smc(RmiFid.DATA_DESTROY, realm.rd, RAM + RAM_SIZE)  # nothing there
    rmi._smc(RmiFid.DATA_CREATE_UNKNOWN, realm.rd, spare, RAM)  # not delegated
    rmi._smc(RmiFid.RTT_INIT_RIPAS, realm.rd, RAM + 0x1000, RAM)  # top below base
    rmi._smc(RmiFid.RTT_FOLD, realm.rd, RAM, 3)              # not homogeneous
    rmi._smc(RmiFid.RTT_MAP_UNPROTECTED, realm.rd, RAM, 3, spare)  # protected IPA
    rmi._smc(RmiFid.REC_ENTER, recs[0].pa, recs[0].run)     # realm not active
    realm.activate()
    rmi._smc(RmiFid.RTT_INIT_RIPAS, realm.rd, RAM + RAM_SIZE, RAM + 2 * RAM_SIZE)  # active
    runner = RecRunner(rmi, p.memory, recs[0])
    ex = RealmStubDriver(runner, realm).start()
    rec.value("first host call imm", ex.imm)
    rmi._smc(RmiFid.REALM_DESTROY, realm.rd)                # RECs and RTTs still there
    realm.destroy()
    p.pool.free(spare)
    rec.value("granules left delegated", len(realm.delegated))


def _bad_realm_params(p: Platform, rec: Recording, rmi: RmiClient) -> None:
    """RMI_REALM_CREATE with parameters that must be refused, on a delegated RD."""
    rd, rtt = p.pool.alloc(), p.pool.alloc()
    page = p.pool.alloc()
    good = RmiRealmParams(s2sz=40, num_bps=1, num_wps=1, hash_algo=0, vmid=7, rtt_base=rtt,
                          rtt_level_start=1, rtt_num_start=1)
    rmi._smc(RmiFid.GRANULE_DELEGATE, rd)
    for change in ({"hash_algo": 7}, {"s2sz": 60}, {"s2sz": 20}, {"rtt_level_start": 3},
                   {"rtt_num_start": 17}, {"num_bps": 63}, {"flags": 1 << 5}, {}):
        params = dataclasses.replace(good, **change)
        p.memory.zero(page, GRANULE_SIZE)
        p.memory.write(page, params.to_bytes())
        rec.label = ", ".join(f"{k}={v}" for k, v in change.items()) or "RTT not delegated"
        rmi._smc(RmiFid.REALM_CREATE, rd, page)
    rmi._smc(RmiFid.GRANULE_UNDELEGATE, rd)
    for g in (rd, rtt, page):
        p.pool.free(g)


def realm_payload(p: Platform, rec: Recording) -> None:
    rmi = rec.rmi(p.stub, p.memory)  # type: ignore[arg-type]
    realm = _realm(p, rec, rmi)
    realm.create()
    recs = build_realmstub_realm(realm, RAM_SIZE, 1)
    rec.aux.update(recs[0].aux)
    realm.activate()
    mmio: list[str] = []

    def emulate(ex):  # type: ignore[no-untyped-def]
        if ex.exit_reason == RecExitReason.RIPAS_CHANGE:
            # Accept all of it, as KVM does (RMI_RTT_SET_RIPAS, RTTs as needed).
            realm.set_ripas(recs[0], ex.ripas_base, ex.ripas_top, Ripas(ex.ripas_value))
            return {"flags": 0}
        if ex.exit_reason != RecExitReason.SYNC or esr.ec_of(ex.esr) != esr.Ec.DABT_LOWER:
            return None
        ipa = ((ex.hpfar >> 4) << 12) | (ex.far & 0xFFF)
        if ipa < 1 << (realm.spec.ipa_bits - 1):
            return None  # protected and not backed yet: the driver backs it
        da = esr.DataAbort.decode(ex.esr)
        mmio.append(f"{'write' if da.write else 'read'} of {da.size} at {ipa:#x}"
                    + (f" value {ex.gprs[0]:#x}" if da.write else ""))
        if da.write:
            return {"flags": REC_ENTER_EMUL_MMIO}
        return {"flags": REC_ENTER_EMUL_MMIO, "gprs": [0x1234_5678_9ABC_DEF0]}

    driver = RealmStubDriver(RecRunner(rmi, p.memory, recs[0]), realm, on_exit=emulate)
    driver.start()
    try:
        _payload_requests(p, rec, realm, driver, mmio)
    finally:
        realm.destroy()
    rec.value("granules left delegated", len(realm.delegated))


def _payload_requests(p: Platform, rec: Recording, realm: HostRealm,
                      driver: RealmStubDriver, mmio: list[str]) -> None:
    def rsi(key: str, outs: int, *regs: int) -> list[int]:
        res = driver.smc(*regs)
        rec.value(key, res[:outs])
        return res

    def page(n: int) -> int:
        return RAM + RAM_SIZE - (n + 1) * GRANULE_SIZE

    rsi("RSI_VERSION(1.0)", 3, RsiFid.VERSION, V1_0)
    rsi("RSI_VERSION(2.0)", 3, RsiFid.VERSION, 0x2_0000)
    rsi("RSI_FEATURES(0)", 2, RsiFid.FEATURES, 0)
    rsi("RSI_FEATURES(7)", 2, RsiFid.FEATURES, 7)
    cfg = page(0)
    rsi("RSI_REALM_CONFIG", 1, RsiFid.REALM_CONFIG, cfg)
    pa = realm.pa_of(cfg)
    rec.value("realm config ipa_width", p.memory.read_u64(pa))
    rec.value("realm config hash_algo", p.memory.read_u8(pa + 8))
    rsi("RSI_REALM_CONFIG(unaligned)", 1, RsiFid.REALM_CONFIG, cfg + 8)
    measured = []
    for i in range(5):
        out = rsi(f"RSI_MEASUREMENT_READ({i})", 9, RsiFid.MEASUREMENT_READ, i)
        measured.append(b"".join(struct.pack("<Q", x) for x in out[1:9]))
    rec.value("RIM is the host's prediction",
              measured[0][:realm.rim_len] == realm.expected_rim[:realm.rim_len])
    rsi("RSI_MEASUREMENT_READ(5)", 1, RsiFid.MEASUREMENT_READ, 5)
    words = struct.unpack("<4Q", bytes(range(32)))
    rsi("RSI_MEASUREMENT_EXTEND(1, 32 bytes)", 1, RsiFid.MEASUREMENT_EXTEND, 1, 32, *words)
    rsi("RSI_MEASUREMENT_READ(1) after extend", 9, RsiFid.MEASUREMENT_READ, 1)
    rsi("RSI_MEASUREMENT_EXTEND(0)", 1, RsiFid.MEASUREMENT_EXTEND, 0, 32)
    rsi("RSI_MEASUREMENT_EXTEND(1, 65 bytes)", 1, RsiFid.MEASUREMENT_EXTEND, 1, 65)
    rsi("RSI_IPA_STATE_GET(image)", 3, RsiFid.IPA_STATE_GET, RAM, RAM + GRANULE_SIZE)
    rsi("RSI_IPA_STATE_GET(unaligned)", 1, RsiFid.IPA_STATE_GET, RAM + 8, RAM + GRANULE_SIZE)
    above = (RAM + RAM_SIZE, RAM + 2 * RAM_SIZE)
    rsi("RSI_IPA_STATE_GET(above the image)", 3, RsiFid.IPA_STATE_GET, *above)
    rsi("RSI_IPA_STATE_SET(above the image, RAM)", 3, RsiFid.IPA_STATE_SET, *above, 1, 0)
    rsi("RSI_IPA_STATE_GET(above the image) after", 3, RsiFid.IPA_STATE_GET, *above)
    rsi("RSI_IPA_STATE_SET(unaligned)", 1, RsiFid.IPA_STATE_SET, above[0] + 1, above[1], 1, 0)
    rsi("RSI_IPA_STATE_SET(bad RIPAS)", 1, RsiFid.IPA_STATE_SET, *above, 7, 0)
    rsi("SMCCC_VERSION", 1, SMCCC_VERSION)
    rsi("PSCI_VERSION", 1, PsciFid.VERSION)
    rsi("PSCI_FEATURES(SMCCC_VERSION)", 1, PsciFid.FEATURES, SMCCC_VERSION)
    rsi("unknown SMC", 1, UNKNOWN_SMC)
    res = driver.request(L.RealmOp.LOAD, MMIO_IPA + 0x10, 4)
    rec.value("MMIO read result", res[:2])
    res = driver.request(L.RealmOp.STORE, MMIO_IPA + 0x18, 8, 0xCAFEF00D)
    rec.value("MMIO write result", res[:1])
    rec.value("MMIO exits", mmio)
    init = rsi("RSI_ATTESTATION_TOKEN_INIT", 1, RsiFid.ATTESTATION_TOKEN_INIT,
               *struct.unpack("<8Q", CHALLENGE))
    rec.value("attestation token size bound", init[1])
    token = _token(p, realm, driver, page(1), rec)
    rec.value("token size", len(token))
    for key, value in token_values(token).items():
        rec.value(key, value)


def _token(p: Platform, realm: HostRealm, driver: RealmStubDriver, buf: int,
           rec: Recording) -> bytes:
    """RSI_ATTESTATION_TOKEN_CONTINUE into one granule, as often as it takes."""
    token = b""
    calls = 0
    while calls < MAX_CONTINUES:
        offset = 0
        while offset < GRANULE_SIZE and calls < MAX_CONTINUES:
            calls += 1
            res = driver.smc(RsiFid.ATTESTATION_TOKEN_CONTINUE, buf, offset,
                             GRANULE_SIZE - offset)
            status = res[0]
            if status not in (0, 3):  # RSI_SUCCESS, RSI_INCOMPLETE
                rec.value("RSI_ATTESTATION_TOKEN_CONTINUE failed", res[:2])
                return token
            token += p.memory.read(realm.pa_of(buf) + offset, res[1])
            offset += res[1]
            if status == 0:
                return token
    rec.value("RSI_ATTESTATION_TOKEN_CONTINUE", f"no end after {MAX_CONTINUES} calls")
    return token


SCENARIOS: dict[str, Callable[[Platform, Recording], None]] = {
    "rmi-lifecycle": rmi_lifecycle,
    "realm-payload": realm_payload,
}
"""The scenarios run through the hoststub; `linux` is run.py's."""
