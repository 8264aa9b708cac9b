"""What a scenario run records: every RMI call the host made (arguments,
results, and the REC exit after each RMI_REC_ENTER) and named values (RSI
results, measurements, attestation claims, the guest's output...)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..host.rmi import RmiClient
from ..host.stub import HostStub
from ..memory import GuestMemory
from ..rmm.abi import RmiFid
from ..rmm.structs import RmiRecRun

EXIT_FIELDS = ("exit_reason", "esr", "far", "hpfar", "imm", "ripas_base", "ripas_top",
               "ripas_value")
EXIT_GPRS = 7
"""GPRs of a REC exit recorded (x0..x6: what a host call or PSCI exit passes)."""


@dataclass
class Call:
    fid: int
    args: tuple[int, ...]
    ret: tuple[int, ...]
    exit: dict[str, int] | None = None
    label: str = ""
    """What the scenario meant the call to test (its parameters are in memory)."""

    @property
    def name(self) -> str:
        try:
            return RmiFid(self.fid).rmi_name
        except ValueError:
            return f"SMC {self.fid:#x}"


@dataclass
class Recording:
    """One run of a scenario on one platform."""

    target: str
    calls: list[Call] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    aux: set[int] = field(default_factory=set)
    """REC auxiliary granules (their number is the RMM's choice)."""
    pool: tuple[int, int] = (0, 0)
    """The host's page pool [base, end): addresses in it are named, not compared."""
    error: str = ""
    label: str = ""
    """Attached to the next recorded call, then cleared."""

    def value(self, key: str, v: object) -> None:
        self.values[key] = _text(v)

    def rmi(self, stub: HostStub, memory: GuestMemory, cpu: int = 0) -> RmiClient:
        """An RMI client whose calls (real SMCs from the hoststub) are recorded."""

        def smc(fid: int, *args: int) -> tuple[int, ...]:
            ret = stub.smc(fid, *args, cpu=cpu).ret
            call = Call(fid, tuple(args), tuple(ret[:5]), label=self.label)
            self.label = ""
            if fid == RmiFid.REC_ENTER and ret[0] == 0 and len(args) >= 2:
                ex = RmiRecRun.unpack(memory, args[1]).exit
                call.exit = {f: getattr(ex, f) for f in EXIT_FIELDS}
                call.exit.update({f"x{i}": ex.gprs[i] for i in range(EXIT_GPRS)})
            self.calls.append(call)
            return ret

        return RmiClient(smc)


def _text(v: object) -> str:
    if isinstance(v, bytes):
        return v.hex() if v else "(empty)"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:#x}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_text(x) for x in v) + "]"
    return str(v)
