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
SMCCC_ARCH_FEATURES_FID = 0x80000001
"""Answered SMC_UNKNOWN from a realm (fact sheet section 1, TF-RMM behaviour)."""
SMCCC_FID_MASK = 0xFFFF_FFFF
"""A function ID is the 32-bit W0; bits [63:32] of X0 are ignored."""
SMCCC_SMC64 = 1 << 30
"""Function IDs with bit 30 set use the SMC64 convention; SMC32 arguments are W registers."""
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

# -- RSI function IDs (v1.0) ------------------------------------------------------------

RSI_ABI_VERSION_1_0 = abi_version(1, 0)


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

    @property
    def rsi_name(self) -> str:
        return "RSI_" + self.name


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

    @property
    def rsi_name(self) -> str:
        return "RSI_" + self.name


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


class RsiResponse(IntEnum):
    """What RSI_IPA_STATE_SET reports in X2 once the host has answered."""

    ACCEPT = 0
    REJECT = 1


RSI_CHANGE_DESTROYED = 1 << 0
"""RsiRipasChangeFlags bit 0: the request may change DESTROYED entries."""
RSI_HOST_CALL_ALIGN = 0x100
"""RsiHostCall must be 256-byte aligned (so it never crosses a granule)."""
RSI_MEASUREMENT_EXTEND_MAX = 64
"""RSI_MEASUREMENT_EXTEND takes at most 64 bytes (X3..X10)."""


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
    MIGRATE_32 = 0x84000005
    MIGRATE_64 = 0xC4000005
    MIGRATE_INFO_TYPE = 0x84000006
    SYSTEM_OFF = 0x84000008
    SYSTEM_RESET = 0x84000009
    FEATURES = 0x8400000A
    SYSTEM_SUSPEND_32 = 0x8400000E
    SYSTEM_SUSPEND_64 = 0xC400000E
    SYSTEM_RESET2_32 = 0x84000012
    SYSTEM_RESET2_64 = 0xC4000012

    @property
    def psci_name(self) -> str:
        return "PSCI_" + self.name


PSCI_CPU_ON_FIDS = frozenset({PsciFid.CPU_ON_32, PsciFid.CPU_ON_64})
PSCI_AFFINITY_INFO_FIDS = frozenset({PsciFid.AFFINITY_INFO_32, PsciFid.AFFINITY_INFO_64})
PSCI_CPU_SUSPEND_FIDS = frozenset({PsciFid.CPU_SUSPEND_32, PsciFid.CPU_SUSPEND_64})
PSCI_VERSION_1_1 = 0x10001
PSCI_FID_FIRST = 0x84000000
PSCI_FNUM_MASK = 0x1F
"""PSCI owns function numbers 0x00..0x1F of the standard service, SMC32 and SMC64."""
PSCI_REALM_FEATURES = frozenset(
    {
        PsciFid.VERSION,
        *PSCI_CPU_SUSPEND_FIDS,
        PsciFid.CPU_OFF,
        *PSCI_CPU_ON_FIDS,
        *PSCI_AFFINITY_INFO_FIDS,
        PsciFid.SYSTEM_OFF,
        PsciFid.SYSTEM_RESET,
        PsciFid.FEATURES,
        SMCCC_VERSION_FID,
    }
)
"""The functions PSCI_FEATURES reports as implemented to a realm."""


def is_psci_fid(fid: int) -> bool:
    return fid & ~SMCCC_SMC64 & ~PSCI_FNUM_MASK == PSCI_FID_FIRST


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


# -- the CCA attestation token (RMM spec A7; fact sheet section 8) ------------------------

CCA_TOKEN_TAG = 399
"""CBOR tag of the CCA token collection {platform, realm}."""


class CcaTokenKey(IntEnum):
    PLATFORM = 44234
    REALM = 44241


class RealmClaim(IntEnum):
    CHALLENGE = 10
    PERSONALIZATION_VALUE = 44235
    HASH_ALGO_ID = 44236
    PUBLIC_KEY = 44237
    INITIAL_MEASUREMENT = 44238
    EXTENSIBLE_MEASUREMENTS = 44239
    PUBLIC_KEY_HASH_ALGO_ID = 44240
    PROFILE = 265


class PlatformClaim(IntEnum):
    CHALLENGE = 10
    INSTANCE_ID = 256
    PROFILE = 265
    SECURITY_LIFECYCLE = 2395
    IMPLEMENTATION_ID = 2396
    SW_COMPONENTS = 2399
    VERIFICATION_SERVICE = 2400
    CONFIGURATION = 2401
    HASH_ALGO_ID = 2402


class SwComponentClaim(IntEnum):
    TYPE = 1
    MEASUREMENT_VALUE = 2
    VERSION = 4
    SIGNER_ID = 5
    HASH_ALGO_ID = 6


REALM_TOKEN_PROFILE = "tag:arm.com,2023:realm#1.0.0"
PLATFORM_TOKEN_PROFILE = "tag:arm.com,2023:cca_platform#1.0.0"
REALM_CHALLENGE_SIZE = 64
NUM_REMS = 4
HASH_ALGO_IDS = {HashAlgorithm.SHA_256: "sha-256", HashAlgorithm.SHA_512: "sha-512"}
"""Realm measurement algorithms as the token names them (IANA named-information names)."""


U64_MASK = (1 << 64) - 1


def u64(value: int) -> int:
    """A (possibly negative) Python int as the 64-bit register value."""
    return value & ((1 << 64) - 1)


def s64(value: int) -> int:
    """A 64-bit register value read as a signed integer (e.g. an RTT level)."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >> 63 else value
