"""The main job, `cosim demo`: boot the platform and show the RMM at work
from a real NS-EL2 host, printing what happened at each step."""

from __future__ import annotations

import sys

from .cli_text import describe_platform
from .config import PlatformConfig
from .platform import Platform
from .rmm.abi import PsciFid, RmiFid
from .trace import Event, Trace


def _say(text: str) -> None:
    print(text, flush=True)


def run_demo(config: PlatformConfig, trace: Trace) -> int:
    rmi_events: list[Event] = []
    trace.subscribe(lambda e: rmi_events.append(e) if e["kind"] == "rmi" else None)
    with Platform(config, trace=trace) as p:
        assert p.stub is not None and p.monitor is not None and p.monitor.features is not None
        _say(describe_platform(config))
        _say(f"  monitor up at EL3; hoststub running at NS-EL2 "
             f"(RME {'present' if p.monitor.features.has_rme else 'absent'})")
        if config.cpus > 1:
            p.stub.start_secondaries()
            _say(f"  PSCI CPU_ON brought up CPUs 1..{config.cpus - 1}")
        res = p.stub.smc(PsciFid.VERSION)
        _say(f"  PSCI_VERSION -> {res.x0 >> 16}.{res.x0 & 0xFFFF} (answered by the monitor)")
        res = p.stub.smc(RmiFid.VERSION, 0x10000)
        status = "RMI_SUCCESS" if res.x0 == 0 else f"error {res.x0:#x}"
        _say(f"  RMI_VERSION(1.0) -> {status}, lower {res.ret[1] >> 16}.{res.ret[1] & 0xFFFF}, "
             f"higher {res.ret[2] >> 16}.{res.ret[2] & 0xFFFF}")
        res = p.stub.smc(RmiFid.FEATURES, 0)
        _say(f"  RMI_FEATURES(0) -> {res.ret[1]:#x}")
        for e in rmi_events:
            _say(f"    trace: cpu {e['cpu']} {e['name']} args {[hex(a) for a in e['args'][:2]]}"
                 f" -> {e['status']} in {e['duration_us']:.1f} us")
    _say("demo finished: the platform shut down cleanly")
    sys.stdout.flush()
    return 0
