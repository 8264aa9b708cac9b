"""`cosim bench rmm`: what the RMM's own work costs, from the hoststub.

- Realm lifecycle: DELEGATE the RD and 2 starting RTTs, RMI_REALM_CREATE
  (s2sz 40, starting level 1), RMI_REALM_DESTROY, UNDELEGATE all three:
  8 SMCs issued back to back by the hoststub from one request
  (StubOp.SMC_BATCH, repeated), timed on the CPU with the generic timer.
- DELEGATE + UNDELEGATE pairs of one granule (StubOp.SMC_PAIR_LOOP).
- RMI_VERSION round trips: the transport alone (monitor, doorbell, plugin,
  Python dispatch) with no RMM work, the floor of every SMC above.
- The same lifecycle issued as 8 separate host requests (one HOSTSTUB_NEXT
  round trip each): what the host's request protocol adds.
- The same lifecycle against the Python RMM in this process, over a
  bytearray: the RMM's own Python time, without QEMU.

Runs are interleaved (each run measures every figure once) because the
machine is shared; the table gives medians and the spread over runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import Figure, report

from cosim.arch.gpt import PasTable
from cosim.arch.pas import GRANULE_SIZE
from cosim.config import GptMode, PlatformConfig
from cosim.memory import GuestMemory
from cosim.platform import Platform
from cosim.rmm import Rmm, RmmConfig
from cosim.rmm.abi import RmiFid
from cosim.rmm.structs import RmiRealmParams
from cosim.trace import Trace

F = RmiFid
VMID = 77


def realm_params(rtt_base: int) -> RmiRealmParams:
    """The small realm of the lifecycle: 40-bit IPA, starting level 1, 2 tables."""
    return RmiRealmParams(s2sz=40, num_bps=1, num_wps=1, hash_algo=0, vmid=VMID,
                          rtt_base=rtt_base, rtt_level_start=1, rtt_num_start=2)


def lifecycle(rd: int, rtt: int, params: int) -> list[tuple[int, ...]]:
    """The 8 SMCs of one realm lifecycle (RD and roots are NS before and after)."""
    granules = (rd, rtt, rtt + GRANULE_SIZE)
    return [
        *[(F.GRANULE_DELEGATE, g) for g in granules],
        (F.REALM_CREATE, rd, params),
        (F.REALM_DESTROY, rd),
        *[(F.GRANULE_UNDELEGATE, g) for g in granules],
    ]


def in_process_lifecycles(count: int) -> float:
    """Lifecycles per second of the Python RMM called directly (no QEMU)."""
    base, size = 0x4000_0000, 1 << 20
    memory = GuestMemory.anonymous(base, size)
    rmm = Rmm(memory, PasTable(base, size), RmmConfig(dram=[(base, size)]), Trace(history=0))
    rtt, rd, params = base, base + 2 * GRANULE_SIZE, base + 3 * GRANULE_SIZE
    memory.write(params, realm_params(rtt).to_bytes())
    calls = lifecycle(rd, rtt, params)
    t0 = time.perf_counter()
    for _ in range(count):
        for fid, *args in calls:
            r = rmm.handle_rmi(fid, args)
            assert r.x[0] == 0, f"{F(fid).name} failed in process: {r.x[0]:#x}"  # type: ignore[union-attr]
    return count / (time.perf_counter() - t0)


def spread(values: list[float]) -> str:
    return f"{min(values):,.0f}..{max(values):,.0f}"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="cosim bench rmm")
    ap.add_argument("--lifecycles", type=int, default=1000)
    ap.add_argument("--pairs", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--gpt", choices=[m.value for m in GptMode], default="hw")
    args = ap.parse_args(argv)

    figs: dict[str, list[float]] = {k: [] for k in
                                    ("life", "pairs", "version", "life_requests", "python")}
    with Platform(PlatformConfig(gpt=GptMode(args.gpt)), trace=Trace(history=0)) as p:
        assert p.stub is not None and p.monitor is not None and p.monitor.features is not None
        freq = p.monitor.features["cntfrq_el0"]
        rtt = p.pool.alloc(2, align=2 * GRANULE_SIZE)
        rd = p.pool.alloc()
        params = p.pool.alloc()
        p.memory.write(params, realm_params(rtt).to_bytes())
        calls = lifecycle(rd, rtt, params)
        g = p.pool.alloc()
        pair = (F.GRANULE_DELEGATE, g), (F.GRANULE_UNDELEGATE, g)
        p.stub.smc_batch(calls, repeat=20)  # warm up translation
        p.stub.smc_pair_loop(*pair, count=200)
        for _ in range(args.runs):
            r = p.stub.smc_batch(calls, repeat=args.lifecycles)
            assert r.x0 == 0 and r.done == len(calls) * args.lifecycles, (
                f"lifecycle SMC {(r.done - 1) % len(calls)} failed: {r.x0:#x}")
            figs["life"].append(args.lifecycles * freq / r.ticks)
            r = p.stub.smc_pair_loop(*pair, count=args.pairs)
            assert r.x0 == 0, f"delegate/undelegate failed: {r.x0:#x}"
            figs["pairs"].append(args.pairs * freq / r.ticks)
            r = p.stub.smc_loop(F.VERSION, 0x10000, count=args.pairs)
            figs["version"].append(args.pairs * freq / r.ticks)
            n = max(args.lifecycles // 10, 10)
            t0 = time.perf_counter()
            for _ in range(n):
                for regs in calls:
                    res = p.stub.smc(*regs)
                    assert res.x0 == 0, f"{F(regs[0]).name} failed: {res.x0:#x}"
            figs["life_requests"].append(n / (time.perf_counter() - t0))
            figs["python"].append(in_process_lifecycles(args.lifecycles))
    med = {k: statistics.median(v) for k, v in figs.items()}
    smc_us = 1e6 / med["version"]
    life_us = 1e6 / med["life"]
    python_us = 1e6 / med["python"]
    report(f"RMM costs from the hoststub, --gpt {args.gpt} (median of {args.runs} "
           "interleaved runs)", [
        Figure("rmi_round_trips_per_s", med["version"], "/s", "RMI_VERSION round trips"),
        Figure("realm_lifecycles_requests_per_s", med["life_requests"], "/s",
               "lifecycles, one host request per SMC"),
        Figure("realm_lifecycles_python_per_s", med["python"], "/s",
               "lifecycles, Python RMM in process"),
        Figure("delegate_pairs_per_s", med["pairs"], "/s", "DELEGATE+UNDELEGATE pairs"),
        Figure("realm_lifecycles_per_s", med["life"], "/s",
               "realm lifecycles (8 SMCs, one request)"),
    ], notes=[
        f"spread over runs: lifecycles {spread(figs['life'])}, pairs {spread(figs['pairs'])}, "
        f"RMI_VERSION {spread(figs['version'])}, "
        f"per-request lifecycles {spread(figs['life_requests'])}, "
        f"in-process lifecycles {spread(figs['python'])}",
        f"one lifecycle: {life_us:.0f} us = 8 x {smc_us:.1f} us transport "
        f"+ {python_us:.0f} us RMM Python + {max(life_us - 8 * smc_us - python_us, 0):.0f} us "
        "other (GPT maintenance, TLB invalidation, cache effects)",
        "goals: realm_lifecycles_per_s >= 2,000, delegate_pairs_per_s >= 10,000 "
        "(reference TF-A + TF-RMM on this QEMU: about 1,100 and 4,900)",
    ])
    return 0
