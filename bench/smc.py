"""`cosim bench smc`: SMC round trips from the hoststub at NS-EL2.

- RMI_VERSION: hoststub -> EL3 monitor -> doorbell -> plugin -> Python RMM
  and back, in a tight loop on the CPU (the loop is timed with the generic
  timer, so only the round trips are counted).
- PSCI_VERSION: answered by the monitor at EL3 without Python.
The ratio shows what the Python round trip costs.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import Figure, report

from cosim.cli_args import OneLineParser, positive_int
from cosim.config import GptMode, PlatformConfig
from cosim.platform import Platform
from cosim.rmm.abi import PsciFid, RmiFid
from cosim.trace import Trace


def main(argv: list[str]) -> int:
    ap = OneLineParser(prog="cosim bench smc")
    ap.add_argument("--rmi-calls", type=positive_int, default=20000)
    ap.add_argument("--psci-calls", type=positive_int, default=200000)
    ap.add_argument("--runs", type=positive_int, default=3)
    args = ap.parse_args(argv)

    rmi_rates, psci_rates = [], []
    with Platform(PlatformConfig(cpus=1, gpt=GptMode.OFF), trace=Trace(history=0)) as p:
        assert p.stub is not None and p.monitor is not None and p.monitor.features is not None
        freq = p.monitor.features["cntfrq_el0"]
        p.stub.smc_loop(RmiFid.VERSION, 0x10000, count=1000)  # warm up translation
        for _ in range(args.runs):
            r = p.stub.smc_loop(RmiFid.VERSION, 0x10000, count=args.rmi_calls)
            assert r.x0 == 0, f"RMI_VERSION failed: {r.x0:#x}"
            rmi_rates.append(args.rmi_calls * freq / r.ticks)
            r = p.stub.smc_loop(PsciFid.VERSION, count=args.psci_calls)
            assert r.x0 == 0x10001, f"PSCI_VERSION returned {r.x0:#x}"
            psci_rates.append(args.psci_calls * freq / r.ticks)
    rmi = statistics.median(rmi_rates)
    psci = statistics.median(psci_rates)
    report(f"SMC round trips from NS-EL2 (median of {args.runs} runs)", [
        Figure("rmi_round_trips_per_s", rmi, "/s", "RMI_VERSION via Python RMM"),
        Figure("monitor_smc_per_s", psci, "/s", "PSCI_VERSION in the monitor"),
        Figure("python_round_trip_ratio", psci / rmi, "x", "Python round trip cost ratio", 1),
    ], notes=[f"RMI per run: {', '.join(f'{r:,.0f}' for r in rmi_rates)}",
              f"one RMI round trip: {1e6 / rmi:.1f} us; goal >= 30,000/s "
              "(reference TF-A + TF-RMM: 12,900/s; 141,000/s at EL3)"])
    return 0
