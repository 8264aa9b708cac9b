"""The Python RMM: RMI v1.0 over a GuestMemory, knowing nothing of QEMU."""

from .abi import RmiFid, RmiStatus
from .config import RmmConfig
from .granule import GranuleState
from .realm import Realm, RealmState
from .rec import Rec, RecState, VcpuContext
from .results import EnterRealm, RmiReturn, TlbInvalidation
from .rmm import Rmm
from .structs import RmiRealmParams, RmiRecEnter, RmiRecExit, RmiRecParams, RmiRecRun

__all__ = [
    "EnterRealm",
    "GranuleState",
    "Realm",
    "RealmState",
    "Rec",
    "RecState",
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
    "TlbInvalidation",
    "VcpuContext",
]
