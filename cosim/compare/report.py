"""Compare two normalised recordings and report the differences, each
marked known (with the reason, known.py) or unexplained."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

from .known import explain
from .normalise import Normalised


@dataclass
class Difference:
    key: str
    ours: str
    theirs: str
    known: str | None = None


@dataclass
class Report:
    scenario: str
    ours: str
    theirs: str
    calls: int = 0
    """RMI calls compared (up to the first divergence)."""
    values: int = 0
    differences: list[Difference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """A side whose scenario did not run to its end (the comparison is partial)."""

    @property
    def unexplained(self) -> list[Difference]:
        return [d for d in self.differences if d.known is None]

    def text(self) -> str:
        lines = [f"scenario {self.scenario}: {self.ours} vs {self.theirs}",
                 f"compared {self.calls} RMI calls one by one and {self.values} values"]
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"PROBLEM: {p}" for p in self.problems]
        if not self.differences:
            lines.append("no differences")
        for d in self.differences:
            tag = "known" if d.known else "UNEXPLAINED"
            lines.append(f"[{tag}] {d.key}")
            lines.append(f"    ours:   {d.ours}")
            lines.append(f"    theirs: {d.theirs}")
            if d.known:
                lines.append(f"    why:    {d.known}")
        n_known = len(self.differences) - len(self.unexplained)
        lines.append(f"differences: {len(self.differences)} ({n_known} known, "
                     f"{len(self.unexplained)} unexplained)")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def compare(scenario: str, ours_name: str, ours: Normalised, theirs_name: str,
            theirs: Normalised) -> Report:
    report = Report(scenario, ours_name, theirs_name)
    for side, n in (("ours", ours), ("theirs", theirs)):
        if n.error:
            report.problems.append(f"the scenario stopped early on {side}: {n.error}")
    diffs = report.differences
    for i, ((cmd_a, res_a), (cmd_b, res_b)) in enumerate(
            zip(ours.calls, theirs.calls, strict=False)):
        if cmd_a != cmd_b:
            diffs.append(Difference(f"call {i}: the call sequences diverge", cmd_a, cmd_b,
                                    explain(cmd_a)))
            break
        report.calls += 1
        if res_a != res_b:
            diffs.append(Difference(f"call {i}: {cmd_a}", res_a, res_b, explain(cmd_a)))
    else:
        if len(ours.calls) != len(theirs.calls):
            n = min(len(ours.calls), len(theirs.calls))
            longer = ours.calls if len(ours.calls) > n else theirs.calls
            diffs.append(Difference(
                f"call {n}: one side made more RMI calls",
                f"{len(ours.calls)} calls" + (f", next {longer[n][0]}" if longer is ours.calls
                                              else ""),
                f"{len(theirs.calls)} calls" + (f", next {longer[n][0]}"
                                                if longer is theirs.calls else "")))
    for key in sorted(set(ours.values) | set(theirs.values)):
        a = ours.values.get(key, "(absent)")
        b = theirs.values.get(key, "(absent)")
        report.values += 1
        if a != b:
            diffs.append(Difference(key, a, b, explain(key)))
    _relay_known(report, ours, theirs)
    _group(report, "platform.", "platform token claims")
    if ours.aux_calls != theirs.aux_calls:
        report.notes.append(f"REC auxiliary granule calls left out: ours {ours.aux_calls}, "
                            f"theirs {theirs.aux_calls}")
    if ours.irq_entries or theirs.irq_entries:
        report.notes.append(f"REC_ENTERs ended by an interrupt left out: ours "
                            f"{ours.irq_entries}, theirs {theirs.irq_entries}")
    return report


def _ints(text: str) -> list[int]:
    return [int(t, 16) for t in re.findall(r"0x[0-9a-f]+", text)]


def _relay_known(report: Report, ours: Normalised, theirs: Normalised) -> None:
    """A REC exit whose GPRs differ only where the realm passes on a result
    that is itself a known difference (the realm test payload hands each RSI
    result to the host in its next host call) is known for the same reason."""
    pairs: dict[tuple[int, int], str] = {}
    for d in report.differences:
        if d.known and len(_ints(d.ours)) == len(_ints(d.theirs)):
            for a, b in zip(_ints(d.ours), _ints(d.theirs), strict=True):
                if a != b:
                    pairs[(a, b)] = f"{d.key}: {d.known}"
    for d in report.differences:
        if d.known or "; exit " not in d.ours or "; exit " not in d.theirs:
            continue
        a, b = _ints(d.ours), _ints(d.theirs)
        if len(a) != len(b):
            continue
        changed = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
        if changed and all(pair in pairs for pair in changed):
            d.known = ("the realm passes on a result that differs for a known reason ("
                       + "; ".join(sorted({pairs[p] for p in changed})) + ")")


def _group(report: Report, prefix: str, what: str) -> None:
    """Differences under `prefix` that are all known for one reason become one."""
    group = [d for d in report.differences if d.key.startswith(prefix)]
    if len(group) < 2 or any(d.known != group[0].known for d in group):
        return
    report.differences = [d for d in report.differences if not d.key.startswith(prefix)]
    ours = sum(d.ours != "(absent)" for d in group)
    theirs = sum(d.theirs != "(absent)" for d in group)
    report.differences.append(Difference(
        f"{prefix}* ({what}: {len(group)} differ)",
        f"{ours} of them present, e.g. {group[0].key} = {group[0].ours[:60]}",
        f"{theirs} of them present, e.g. {group[0].key} = {group[0].theirs[:60]}",
        group[0].known))
