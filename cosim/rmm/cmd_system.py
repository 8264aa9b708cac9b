"""RMI_VERSION and RMI_FEATURES."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .abi import RmiStatus
from .errors import fail
from .results import Call

if TYPE_CHECKING:
    from .rmm import Rmm


def rmi_version(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    """X1 = requested version; X1/X2 out = lowest/highest implemented revision."""
    implemented = rmm.config.abi_version_value
    if a[0] != implemented:
        fail("version", RmiStatus.ERROR_INPUT, out=(implemented, implemented))
    return (implemented, implemented)


def rmi_features(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    """X1 = index; X1 out = feature register `index` (only register 0 exists)."""
    return (rmm.feature_register0 if a[0] == 0 else 0,)
