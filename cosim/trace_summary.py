"""Summaries of a trace: how many of each command, how they ended, how long
they took.  Events are counted as they stream past, so a trace of any size
is summarised in constant memory."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from .trace import Event

CALL_KINDS = ("rmi", "rsi", "smc")


@dataclass
class _Calls:
    count: int = 0
    timed: int = 0
    total_us: float = 0.0
    results: Counter[str] = field(default_factory=Counter)


def summarise(events: Iterable[Event]) -> str:
    kinds: Counter[str] = Counter()
    calls: dict[str, _Calls] = defaultdict(_Calls)
    total = 0
    for e in events:
        total += 1
        kind = e.get("kind", "?")
        kinds[str(kind)] += 1
        if kind not in CALL_KINDS:
            continue
        c = calls[str(e.get("name", e.get("fid")))]
        c.count += 1
        if "duration_us" in e:
            try:
                c.total_us += float(e["duration_us"])
                c.timed += 1
            except (TypeError, ValueError):
                pass
        c.results[str(e.get("status", e.get("ret", "?")))] += 1
    lines = [f"{total} events: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common())]
    if calls:
        lines.append("")
        lines.append(f"{'command':32} {'calls':>7} {'mean us':>9}  results")
        for name, c in sorted(calls.items(), key=lambda kv: -kv[1].count):
            mean = f"{c.total_us / c.timed:9.1f}" if c.timed else f"{'-':>9}"
            res = ", ".join(f"{r} x{n}" for r, n in c.results.most_common(4))
            lines.append(f"{name:32} {c.count:7d} {mean}  {res}")
    return "\n".join(lines)
