"""Summaries of a trace: how many of each command, how they ended, how long
they took."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from .trace import Event


def summarise(events: Iterable[Event]) -> str:
    events = list(events)
    kinds = Counter(e.get("kind", "?") for e in events)
    lines = [f"{len(events)} events: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common())]
    calls: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        if e.get("kind") in ("rmi", "rsi", "smc"):
            calls[str(e.get("name", e.get("fid")))].append(e)
    if calls:
        lines.append("")
        lines.append(f"{'command':32} {'calls':>7} {'mean us':>9}  results")
        for name, evs in sorted(calls.items(), key=lambda kv: -len(kv[1])):
            durations = [float(e["duration_us"]) for e in evs if "duration_us" in e]
            mean = f"{sum(durations) / len(durations):9.1f}" if durations else f"{'-':>9}"
            results = Counter(str(e.get("status", e.get("ret", "?"))) for e in evs)
            res = ", ".join(f"{r} x{n}" for r, n in results.most_common(4))
            lines.append(f"{name:32} {len(evs):7d} {mean}  {res}")
    return "\n".join(lines)
