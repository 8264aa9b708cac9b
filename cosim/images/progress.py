"""tqdm progress bars, one style for every step (hidden when stderr is not a terminal)."""

from __future__ import annotations

from tqdm import tqdm


def bar(desc: str, total: float | None, unit: str = "B") -> tqdm:
    """A bar over TOTAL units (bytes by default, scaled to kB/MB)."""
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B",
                unit_divisor=1000, disable=None, leave=False, dynamic_ncols=True)
