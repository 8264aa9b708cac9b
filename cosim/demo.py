"""The main job, `cosim demo`: boot the platform, build a realm from the
host side with real RMI calls, run it, have it attest, verify the token, and
tear everything down again, printing what happened at each step.

(When the Linux realm boot lands, it takes this place.)"""

from __future__ import annotations

import struct
from collections import Counter

from .cli_text import describe_platform
from .config import PlatformConfig
from .host.realm import HostRealm, RealmSpec
from .host.realmstub import RealmStubDriver, RecRunner, build_realmstub_realm
from .platform import Platform, PlatformDebugger
from .rmm import GranuleState
from .rmm.abi import PsciFid, RmiFid, RsiFid
from .rmm.attestation import verify_token
from .trace import Event, Trace

RSI_SUCCESS, RSI_INCOMPLETE = 0, 3


def _say(text: str) -> None:
    print(text, flush=True)


def _token(driver: RealmStubDriver, realm: HostRealm, memory, buf_ipa: int,
           challenge: bytes) -> bytes:
    out = driver.smc(RsiFid.ATTESTATION_TOKEN_INIT, *struct.unpack("<8Q", challenge))
    if out[0] != RSI_SUCCESS:
        raise RuntimeError(f"RSI_ATTESTATION_TOKEN_INIT failed: {out[0]:#x}")
    token = b""
    while True:
        offset = 0
        while offset < 0x1000:
            res = driver.smc(RsiFid.ATTESTATION_TOKEN_CONTINUE, buf_ipa, offset, 0x1000 - offset)
            if res[0] not in (RSI_SUCCESS, RSI_INCOMPLETE):
                raise RuntimeError(f"RSI_ATTESTATION_TOKEN_CONTINUE failed: {res[0]:#x}")
            token += memory.read(realm.pa_of(buf_ipa) + offset, res[1])
            offset += res[1]
            if res[0] == RSI_SUCCESS:
                return token


def run_demo(config: PlatformConfig, trace: Trace,
             debugger: PlatformDebugger | None = None) -> int:
    rmi_calls: list[Event] = []
    trace.subscribe(lambda e: rmi_calls.append(e) if e["kind"] in ("rmi", "rsi") else None)
    with Platform(config, trace=trace, debugger=debugger) as p:
        assert p.stub is not None and p.monitor is not None and p.monitor.features is not None
        _say(describe_platform(config))
        _say(f"  EL3 monitor up; hoststub running at NS-EL2 "
             f"(FEAT_RME {'present' if p.monitor.features.has_rme else 'absent'})")
        if config.cpus > 1:
            p.stub.start_secondaries()
            _say(f"  PSCI CPU_ON brought up CPUs 1..{config.cpus - 1}")
        res = p.stub.smc(PsciFid.VERSION)
        _say(f"  PSCI_VERSION -> {res.x0 >> 16}.{res.x0 & 0xFFFF} (answered at EL3)")
        res = p.stub.smc(RmiFid.VERSION, 0x10000)
        _say(f"  RMI_VERSION(1.0) -> {'RMI_SUCCESS' if res.x0 == 0 else hex(res.x0)}, "
             f"lower {res.ret[1] >> 16}.{res.ret[1] & 0xFFFF}, "
             f"higher {res.ret[2] >> 16}.{res.ret[2] & 0xFFFF} (the Python RMM, via EL3)")

        rmi = p.rmi()
        realm = HostRealm(rmi, p.memory, p.pool, RealmSpec(ipa_bits=40)).create()
        [rec] = build_realmstub_realm(realm)
        realm.activate()
        model = p.rmm.realm_at(realm.rd) if p.rmm else None
        _say(f"  realm 1 built from NS-EL2: RD {realm.rd:#x}, {len(realm.roots)} starting "
             f"RTTs, {len(realm.data)} measured DATA granules, REC at {rec.pa:#x}; active")
        if model is not None:
            _say(f"    RIM {model.rim[:32].hex()}")
        driver = RealmStubDriver(RecRunner(rmi, p.memory, rec), realm)
        driver.start()
        _say("  the realm runs at EL1 in the Realm security state and asks its host for work")
        out = driver.smc(RsiFid.VERSION, 0x10000)
        _say(f"    RSI_VERSION -> {'RSI_SUCCESS' if out[0] == 0 else hex(out[0])} "
             f"(answered inside the RMM)")
        cfg = 0x8000_0000 + (2 << 20) - 0x1000
        driver.smc(RsiFid.REALM_CONFIG, cfg)
        _say(f"    RSI_REALM_CONFIG -> IPA width {p.memory.read_u64(realm.pa_of(cfg))} bits "
             f"(after the host backed the page on a stage-2 fault)")
        out = driver.smc(RsiFid.MEASUREMENT_READ, 0)
        rim = b"".join(struct.pack("<Q", x) for x in out[1:5])
        _say(f"    RSI_MEASUREMENT_READ(RIM) -> {rim.hex()}")
        challenge = bytes(range(64))
        token = _token(driver, realm, p.memory, cfg - 0x1000, challenge)
        claims = verify_token(token)
        ok = claims.realm.challenge == challenge and claims.realm.initial_measurement == rim
        _say(f"    attestation token: {len(token)} bytes, signatures and binding verified; "
             f"challenge and RIM {'match' if ok else 'DO NOT match'}")
        driver.runner.enter(gprs=[1, PsciFid.SYSTEM_OFF])
        _say("    PSCI SYSTEM_OFF from the realm: RMI_EXIT_PSCI; the realm is off")
        granules = [realm.rd, *realm.roots, rec.pa, *rec.aux, *realm.rtts.values(),
                    *realm.data.values()]
        realm.destroy()
        left = [g for g in granules if p.rmm and p.rmm.granule_state(g) != GranuleState.UNDELEGATED]
        _say(f"  realm torn down: {len(granules)} granules back to UNDELEGATED"
             + (f", {len(left)} left behind!" if left else ""))
        counts = Counter(e.get("name", "?") for e in rmi_calls)
        _say(f"  {sum(counts.values())} RMI/RSI commands traced; most frequent: "
             + ", ".join(f"{n} x{c}" for n, c in counts.most_common(4)))
        if p.guard is not None and p.guard.violations:
            _say(f"  GPT violations: {len(p.guard.violations)}")
    _say("demo finished: the platform shut down cleanly")
    return 0 if ok and not left else 1
