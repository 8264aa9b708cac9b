"""What commands return: output registers, the REC to run, TLB maintenance."""

from __future__ import annotations

from dataclasses import dataclass, field

from .abi import SMC_UNKNOWN
from .rec import Rec
from .structs import RmiRecEnter


@dataclass(frozen=True)
class TlbInvalidation:
    """Stage-2 TLB entries of `vmid` for IPAs [ipa, ipa + size) must be invalidated
    before the command's result is returned to the host (break-before-make)."""

    vmid: int
    ipa: int
    size: int


@dataclass
class RmiReturn:
    """Output registers of a completed RMI call: x[0] = X0 (packed status), x[1:] = X1..Xn."""

    x: tuple[int, ...]
    condition: str | None = None
    """The failure condition that decided the result (None on success)."""
    tlbi: tuple[TlbInvalidation, ...] = ()

    @property
    def status(self) -> int:
        return self.x[0] & 0xFF if self.x[0] != SMC_UNKNOWN else SMC_UNKNOWN

    @property
    def index(self) -> int:
        return (self.x[0] >> 8) & 0xFF if self.x[0] != SMC_UNKNOWN else 0


@dataclass
class EnterRealm:
    """RMI_REC_ENTER passed every check: the REC is RUNNING.  The platform runs it
    through ``Rmm.realm_entry`` / ``Rmm.realm_exit``, which deliver the exit and
    complete the REC_ENTER themselves (see ``run.py``)."""

    rec: Rec
    run_pa: int
    enter: RmiRecEnter = field(default_factory=RmiRecEnter)
    """The RmiRecEnter the host wrote, as read once the checks passed."""
    tlbi: tuple[TlbInvalidation, ...] = ()


@dataclass
class Call:
    """What one command accumulates while it runs (for its result and trace)."""

    name: str
    cpu: int
    realm: int | None = None
    tlbi: list[TlbInvalidation] = field(default_factory=list)
