"""How a command reports one of the spec's failure conditions.

A command checks its failure conditions in the spec's order; the first that
holds raises ``RmiFailure`` with the condition's label (the name the spec and
the ACS give it, e.g. ``rd_state``), the status, the index and any output
values the command defines for that failure.  Only the dispatcher catches it.
"""

from __future__ import annotations

from typing import NoReturn

from .abi import RmiStatus


class RmiFailure(Exception):
    def __init__(
        self, condition: str, status: RmiStatus, index: int = 0, out: tuple[int, ...] = ()
    ) -> None:
        super().__init__(f"{condition}: {status.rmi_name} index {index}")
        self.condition = condition
        self.status = status
        self.index = index
        self.out = out


def fail(
    condition: str,
    status: RmiStatus = RmiStatus.ERROR_INPUT,
    index: int = 0,
    out: tuple[int, ...] = (),
) -> NoReturn:
    raise RmiFailure(condition, status, index, out)


def check(
    failed: bool,
    condition: str,
    status: RmiStatus = RmiStatus.ERROR_INPUT,
    index: int = 0,
    out: tuple[int, ...] = (),
) -> None:
    """Raise the failure `condition` if `failed`."""
    if failed:
        raise RmiFailure(condition, status, index, out)
