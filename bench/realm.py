"""`cosim bench realm`: the cost of running a realm.

- Realm exit round trips: the realmstub makes RSI_HOST_CALLs back to back;
  each one exits to the host, and the hoststub re-enters it with
  RMI_REC_ENTER in a tight loop (two world switches per round trip).
- RSI calls handled inside the RMM without leaving the realm (RSI_VERSION
  in a loop in the realm).
- For comparison, the platform's SMC round trip (RMI_VERSION from the host).
All are timed on the CPU with the generic timer.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import Figure, report

from cosim.cli_args import OneLineParser, positive_int
from cosim.config import GptMode, PlatformConfig
from cosim.host.realm import HostRealm, RealmSpec
from cosim.host.realmstub import RealmStubDriver, RecRunner, build_realmstub_realm
from cosim.monitor import layout as L
from cosim.platform import Platform
from cosim.rmm.abi import RmiFid, RsiFid
from cosim.trace import Trace


def main(argv: list[str]) -> int:
    ap = OneLineParser(prog="cosim bench realm")
    ap.add_argument("--exits", type=positive_int, default=2000)
    ap.add_argument("--rsi-calls", type=positive_int, default=5000)
    ap.add_argument("--runs", type=positive_int, default=3)
    ap.add_argument("--gpt", choices=[m.value for m in GptMode], default="hw")
    args = ap.parse_args(argv)

    exit_rates, rsi_rates, rmi_rates = [], [], []
    with Platform(PlatformConfig(gpt=GptMode(args.gpt)), trace=Trace(history=0)) as p:
        assert p.stub is not None and p.monitor is not None and p.monitor.features is not None
        freq = p.monitor.features["cntfrq_el0"]
        realm = HostRealm(p.rmi(), p.memory, p.pool, RealmSpec(ipa_bits=40)).create()
        [rec] = build_realmstub_realm(realm)
        realm.activate()
        driver = RealmStubDriver(RecRunner(p.rmi(), p.memory, rec), realm)
        driver.start()
        for _ in range(args.runs):
            ex = driver.runner.enter(gprs=[L.RealmOp.HOST_CALL_LOOP, args.exits])
            assert ex.imm == L.REALMSTUB_LOOP, f"expected the loop's host call, got {ex.imm:#x}"
            r = p.stub.smc_loop(RmiFid.REC_ENTER, rec.pa, rec.run, count=args.exits - 1)
            assert r.x0 == 0, f"RMI_REC_ENTER failed: {r.x0:#x}"
            exit_rates.append((args.exits - 1) * freq / r.ticks)
            driver.run_until_call()  # the last host call, then NEXT with the results
            res = driver.request(L.RealmOp.SMC_LOOP, args.rsi_calls, RsiFid.VERSION, 0x10000)
            assert res[1] == 0, f"RSI_VERSION failed: {res[1]:#x}"
            rsi_rates.append(args.rsi_calls * freq / res[2])
            r = p.stub.smc_loop(RmiFid.VERSION, 0x10000, count=5000)
            rmi_rates.append(5000 * freq / r.ticks)
    report(f"Realm round trips, --gpt {args.gpt} (median of {args.runs} runs)", [
        Figure("realm_exit_round_trips_per_s", statistics.median(exit_rates), "/s",
               "REC_ENTER + host-call exit round trips"),
        Figure("rsi_calls_per_s", statistics.median(rsi_rates), "/s",
               "RSI_VERSION answered inside the RMM"),
        Figure("rmi_round_trips_per_s", statistics.median(rmi_rates), "/s",
               "RMI_VERSION from the host (platform SMC)"),
    ], notes=["a realm exit round trip = host SMC -> EL3 -> Python -> world switch into the "
              "realm -> host call -> EL3 -> Python -> world switch back -> host"])
    return 0
