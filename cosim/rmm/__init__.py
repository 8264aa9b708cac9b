"""The Python RMM: RMI v1.0 over a GuestMemory, knowing nothing of QEMU."""

from .abi import RmiFid, RmiStatus
from .config import AttestationConfig, RmmConfig, SwComponent
from .el2_config import RealmEl2Config
from .exits import RealmTrap, RecExitDecision, Resume, TrapKind
from .granule import GranuleState
from .realm import Realm, RealmState
from .rec import Rec, RecState, VcpuContext
from .results import EnterRealm, RmiReturn, TlbInvalidation
from .rmm import Rmm
from .structs import RmiRealmParams, RmiRecEnter, RmiRecExit, RmiRecParams, RmiRecRun

__all__ = [
    "AttestationConfig",
    "EnterRealm",
    "GranuleState",
    "Realm",
    "RealmEl2Config",
    "RealmState",
    "RealmTrap",
    "Rec",
    "RecExitDecision",
    "RecState",
    "Resume",
    "RmiFid",
    "RmiRealmParams",
    "RmiRecEnter",
    "RmiRecExit",
    "RmiRecParams",
    "RmiRecRun",
    "RmiReturn",
    "RmiStatus",
    "Rmm",
    "RmmConfig",
    "SwComponent",
    "TlbInvalidation",
    "TrapKind",
    "VcpuContext",
]
