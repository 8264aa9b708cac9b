"""Shared output format of the benchmarks: a readable table, then one
`key=value` line per figure for scripts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Figure:
    key: str
    value: float
    unit: str
    label: str
    decimals: int = 0


def report(title: str, figures: list[Figure], notes: list[str] | None = None) -> None:
    print(title)
    print("-" * len(title))
    width = max(len(f.label) for f in figures)
    for f in figures:
        print(f"  {f.label:<{width}}  {f.value:>14,.{f.decimals}f} {f.unit}")
    for note in notes or []:
        print(f"  {note}")
    print()
    for f in figures:
        value = f"{f.value:.{f.decimals}f}" if f.decimals else f"{round(f.value)}"
        print(f"{f.key}={value}")
