"""RMI ABI constants of RMM specification DEN0137 1.0-rel0.

Every number of the host-visible ABI is defined here once (fact sheet
Appendix A); the rest of cosim.rmm refers to these names.  Structures with
byte offsets are in ``structs``; the feature register in ``features``.
"""

from __future__ import annotations

from enum import IntEnum

# -- SMCCC ---------------------------------------------------------------------

SMC_UNKNOWN = (1 << 64) - 1
"""SMCCC NOT_SUPPORTED (-1): the answer to an unknown function ID."""
SMCCC_SVE_HINT = 1 << 16
"""SMCCC v1.3: the caller has no live SVE state; stripped before dispatch."""
SMCCC_VERSION_FID = 0x80000000
SMCCC_VERSION_VALUE = 0x10002
SMC64_STD_SERVICE_BASE = 0xC4000000
"""Fast call, SMC64, owning entity 4 (standard secure service)."""


def abi_version(major: int, minor: int) -> int:
    """RMI/RSI version encoding: (major << 16) | minor."""
    return (major << 16) | minor


RMI_ABI_VERSION_1_0 = abi_version(1, 0)

# -- RMI function IDs (v1.0) -----------------------------------------------------


class RmiFid(IntEnum):
    VERSION = 0xC4000150
    GRANULE_DELEGATE = 0xC4000151
    GRANULE_UNDELEGATE = 0xC4000152
    DATA_CREATE = 0xC4000153
    DATA_CREATE_UNKNOWN = 0xC4000154
    DATA_DESTROY = 0xC4000155
    REALM_ACTIVATE = 0xC4000157
    REALM_CREATE = 0xC4000158
    REALM_DESTROY = 0xC4000159
    REC_CREATE = 0xC400015A
    REC_DESTROY = 0xC400015B
    REC_ENTER = 0xC400015C
    RTT_CREATE = 0xC400015D
    RTT_DESTROY = 0xC400015E
    RTT_MAP_UNPROTECTED = 0xC400015F
    RTT_READ_ENTRY = 0xC4000161
    RTT_UNMAP_UNPROTECTED = 0xC4000162
    PSCI_COMPLETE = 0xC4000164
    FEATURES = 0xC4000165
    RTT_FOLD = 0xC4000166
    REC_AUX_COUNT = 0xC4000167
    RTT_INIT_RIPAS = 0xC4000168
    RTT_SET_RIPAS = 0xC4000169

    @property
    def rmi_name(self) -> str:
        return "RMI_" + self.name


RMI_FID_FIRST_V1_0 = 0xC4000150
RMI_FID_LAST_V1_0 = 0xC4000169
"""The RMI function-number range of v1.0 (holes answer SMC_UNKNOWN)."""

# -- RSI function IDs (v1.0); the RSI handlers belong to the realm-execution issue


class RsiFid(IntEnum):
    VERSION = 0xC4000190
    FEATURES = 0xC4000191
    MEASUREMENT_READ = 0xC4000192
    MEASUREMENT_EXTEND = 0xC4000193
    ATTESTATION_TOKEN_INIT = 0xC4000194
    ATTESTATION_TOKEN_CONTINUE = 0xC4000195
    REALM_CONFIG = 0xC4000196
    IPA_STATE_SET = 0xC4000197
    IPA_STATE_GET = 0xC4000198
    HOST_CALL = 0xC4000199


# -- return codes ------------------------------------------------------------------


class RmiStatus(IntEnum):
    """RmiCommandReturnCode, packed into X0[7:0]."""

    SUCCESS = 0
    ERROR_INPUT = 1
    ERROR_REALM = 2
    ERROR_REC = 3
    ERROR_RTT = 4

    @property
    def rmi_name(self) -> str:
        return "RMI_" + self.name


RMI_STATUS_MASK = 0xFF
RMI_INDEX_SHIFT = 8
RMI_INDEX_MASK = 0xFF


def rmi_return(status: int, index: int = 0) -> int:
    """X0 of an RMI command: status in [7:0], index (e.g. an RTT level) in [15:8]."""
    return (status & RMI_STATUS_MASK) | ((index & RMI_INDEX_MASK) << RMI_INDEX_SHIFT)


def rmi_status(x0: int) -> int:
    return x0 & RMI_STATUS_MASK


def rmi_index(x0: int) -> int:
    return (x0 >> RMI_INDEX_SHIFT) & RMI_INDEX_MASK


REALM_ERROR_INDEX_NEW = 0
REALM_ERROR_INDEX_SYSTEM_OFF = 1
"""Index of RMI_ERROR_REALM from RMI_REC_ENTER: realm NEW, realm SYSTEM_OFF."""


class RsiStatus(IntEnum):
    SUCCESS = 0
    ERROR_INPUT = 1
    ERROR_STATE = 2
    INCOMPLETE = 3
    ERROR_UNKNOWN = 4


# -- enumerations ------------------------------------------------------------------


class Ripas(IntEnum):
    EMPTY = 0
    RAM = 1
    DESTROYED = 2


class RttEntryState(IntEnum):
    """RmiRttEntryState as RMI_RTT_READ_ENTRY reports it."""

    UNASSIGNED = 0
    ASSIGNED = 1
    TABLE = 2


class HashAlgorithm(IntEnum):
    SHA_256 = 0
    SHA_512 = 1


class RmiResponse(IntEnum):
    ACCEPT = 0
    REJECT = 1


class RecExitReason(IntEnum):
    SYNC = 0
    IRQ = 1
    FIQ = 2
    PSCI = 3
    RIPAS_CHANGE = 4
    HOST_CALL = 5
    SERROR = 6


class PmuOverflowStatus(IntEnum):
    NOT_ACTIVE = 0
    ACTIVE = 1


# RmiRealmFlags (RmiRealmParams.flags)
REALM_FLAG_LPA2 = 1 << 0
REALM_FLAG_SVE = 1 << 1
REALM_FLAG_PMU = 1 << 2
REALM_FLAGS_V1_0 = REALM_FLAG_LPA2 | REALM_FLAG_SVE | REALM_FLAG_PMU

# RmiRecCreateFlags (RmiRecParams.flags)
REC_FLAG_RUNNABLE = 1 << 0

# RmiDataFlags (RMI_DATA_CREATE flags)
RMI_NO_MEASURE_CONTENT = 0
RMI_MEASURE_CONTENT = 1

# RmiRecEnterFlags (RmiRecEnter.flags)
REC_ENTER_EMUL_MMIO = 1 << 0
REC_ENTER_INJECT_SEA = 1 << 1
REC_ENTER_TRAP_WFI = 1 << 2
REC_ENTER_TRAP_WFE = 1 << 3
REC_ENTER_RIPAS_RESPONSE = 1 << 4

# RmiRecMpidr: the affinity fields a REC's MPIDR may carry
REC_MPIDR_AFF0_MASK = 0xF
REC_MPIDR_AFF1_SHIFT = 8
REC_MPIDR_AFF2_SHIFT = 16
REC_MPIDR_AFF3_SHIFT = 24
REC_MPIDR_VALID_MASK = 0xF | (0xFF << 8) | (0xFF << 16) | (0xFF << 24)

MAX_REC_AUX_GRANULES = 16
"""RmiRecParams has room for 16 auxiliary granule addresses."""

# -- PSCI (realm-visible values the RMM completes with) ---------------------------


class PsciFid(IntEnum):
    VERSION = 0x84000000
    CPU_SUSPEND_32 = 0x84000001
    CPU_SUSPEND_64 = 0xC4000001
    CPU_OFF = 0x84000002
    CPU_ON_32 = 0x84000003
    CPU_ON_64 = 0xC4000003
    AFFINITY_INFO_32 = 0x84000004
    AFFINITY_INFO_64 = 0xC4000004
    SYSTEM_OFF = 0x84000008
    SYSTEM_RESET = 0x84000009
    FEATURES = 0x8400000A


PSCI_CPU_ON_FIDS = frozenset({PsciFid.CPU_ON_32, PsciFid.CPU_ON_64})
PSCI_AFFINITY_INFO_FIDS = frozenset({PsciFid.AFFINITY_INFO_32, PsciFid.AFFINITY_INFO_64})
PSCI_VERSION_1_1 = 0x10001


class PsciStatus(IntEnum):
    SUCCESS = 0
    NOT_SUPPORTED = -1
    INVALID_PARAMETERS = -2
    DENIED = -3
    ALREADY_ON = -4
    ON_PENDING = -5
    INTERNAL_FAILURE = -6
    NOT_PRESENT = -7
    DISABLED = -8
    INVALID_ADDRESS = -9


class PsciAffinityState(IntEnum):
    ON = 0
    OFF = 1
    ON_PENDING = 2


def u64(value: int) -> int:
    """A (possibly negative) Python int as the 64-bit register value."""
    return value & ((1 << 64) - 1)


def s64(value: int) -> int:
    """A 64-bit register value read as a signed integer (e.g. an RTT level)."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >> 63 else value
