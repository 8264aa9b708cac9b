"""`cosim bench channel [--firmware FLASH]`: host requests per second through
the hoststub's SiP channel and its polling channel (docs/firmware.md).

Each request is one RMI_VERSION SMC the stub issues for Python: the figure is
the whole round trip Python -> stub -> EL3 -> RMM -> stub -> Python, from a
host program on the CPU's own thread (the realm VMM's path).  With
--firmware the polling channel also runs under that firmware, and the SMC
loop on the CPU shows the firmware's own RMI round trip.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import Figure, report

from cosim.cli_args import OneLineParser, positive_int, readable_file
from cosim.config import GptMode, PlatformConfig
from cosim.platform import Platform
from cosim.rmm.abi import RmiFid
from cosim.trace import Trace


def _rates(cfg: PlatformConfig, requests: int, runs: int, loop: int) -> tuple[float, float]:
    """(host requests per second, RMI round trips per second in an SMC loop)."""
    rates = []
    with Platform(cfg, trace=Trace(history=0)) as p:
        assert p.stub is not None

        def program() -> float:
            t0 = time.perf_counter()
            for _ in range(requests):
                p.stub.smc(RmiFid.VERSION, 0x10000)  # type: ignore[union-attr]
            return requests / (time.perf_counter() - t0)

        for _ in range(runs):
            prog = p.stub.start_program(0, program, "bench")
            rates.append(prog.wait(p.machine, 300))  # type: ignore[arg-type]
        r = p.stub.smc_loop(RmiFid.VERSION, 0x10000, count=loop)
        assert r.x0 == 0, f"RMI_VERSION failed: {r.x0:#x}"
        native = loop * p.counter_hz / r.ticks
    return statistics.median(rates), native


def main(argv: list[str]) -> int:
    ap = OneLineParser(prog="cosim bench channel")
    ap.add_argument("--requests", type=positive_int, default=2000)
    ap.add_argument("--runs", type=positive_int, default=3)
    ap.add_argument("--loop", type=positive_int, default=2000)
    ap.add_argument("--firmware", type=readable_file, default=None, metavar="FLASH")
    args = ap.parse_args(argv)

    def cfg(**kw: object) -> PlatformConfig:
        return PlatformConfig(cpus=1, gpt=GptMode.OFF, **kw)  # type: ignore[arg-type]

    sip, rmm = _rates(cfg(), args.requests, args.runs, args.loop)
    poll, _ = _rates(cfg(host_channel="poll"), args.requests, args.runs, args.loop)
    figures = [
        Figure("sip_requests_per_s", sip, "/s", "host requests, SiP channel"),
        Figure("poll_requests_per_s", poll, "/s", "host requests, polling channel"),
        Figure("poll_vs_sip", poll / sip, "x", "polling / SiP", 2),
        Figure("python_rmm_rmi_per_s", rmm, "/s", "RMI_VERSION loop on the CPU, Python RMM"),
    ]
    if args.firmware is not None:
        fw_poll, fw_rmm = _rates(PlatformConfig(cpus=1, firmware=args.firmware),
                                 args.requests, args.runs, args.loop)
        figures += [
            Figure("firmware_poll_requests_per_s", fw_poll, "/s",
                   "host requests, polling channel, firmware"),
            Figure("firmware_rmi_per_s", fw_rmm, "/s", "RMI_VERSION loop on the CPU, firmware"),
        ]
    report(f"hoststub channels (median of {args.runs} runs of {args.requests} requests)",
           figures, notes=["a request: Python -> hoststub -> SMC RMI_VERSION -> back to "
                           "Python, from a host program (the realm VMM's path)"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
