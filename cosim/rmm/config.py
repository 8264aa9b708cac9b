"""What the RMM is configured with: ABI version, delegable memory, CPU features."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ..arch import stage2
from ..arch.gicv3 import MAX_LIST_REGISTERS
from ..arch.pas import GRANULE_SIZE
from .abi import MAX_REC_AUX_GRANULES, HashAlgorithm
from .features import FeatureRegister0

SUPPORTED_ABI_VERSIONS = ((1, 0),)

SIMULATED_PLATFORM_KEY = bytes.fromhex(
    "02ab1b1429315e6313feb843ead765d7b4f367e08198f234b7f4c2673492c709"
    "471da9181ad7a4405a9bfd5af4028dd9"
)
"""The default platform attestation key: a P-384 private scalar that is published
here, so tokens signed with it prove nothing about any hardware.  It exists so
that tokens have the real structure and verify end to end."""
SIMULATED_IMPLEMENTATION_ID = hashlib.sha256(b"cca-cosim: simulated Arm CCA platform").digest()
LIFECYCLE_SECURED = 0x3000


@dataclass(frozen=True)
class SwComponent:
    """One entry of the platform token's software-components claim."""

    type: str
    measurement: bytes
    version: str = ""
    signer_id: bytes = bytes(32)
    hash_algo: str = "sha-256"


@dataclass
class AttestationConfig:
    """What the (simulated) CCA platform puts into attestation tokens.

    The platform token is signed with `platform_key`; each realm's token with a
    P-384 key derived from `realm_key_secret` (default: the platform key's
    scalar) and the realm's identity, see ``attestation.realm_key``.
    """

    platform_key: bytes = SIMULATED_PLATFORM_KEY
    """P-384 private key: a 48-byte big-endian scalar, or PEM (PKCS#8 / SEC1)."""
    realm_key_secret: bytes | None = None
    implementation_id: bytes = SIMULATED_IMPLEMENTATION_ID
    lifecycle: int = LIFECYCLE_SECURED
    verification_service: str = "https://veraison.example/.well-known/veraison/verification"
    sw_components: tuple[SwComponent, ...] | None = None
    """None: one component measuring the Python RMM's own source (type "RMM")."""
    platform_config: bytes | None = None
    """None: RmiFeatureRegister0 as 8 little-endian bytes."""

    def __post_init__(self) -> None:
        if len(self.implementation_id) != 32:
            raise ValueError("the CCA implementation ID is 32 bytes")
        if not 0 <= self.lifecycle <= 0xFFFF:
            raise ValueError("the security lifecycle is a 16-bit value")


@dataclass
class RmmConfig:
    """Configuration of one RMM instance.

    Counts are natural numbers (``num_bps = 6`` means six breakpoints); the
    feature register encodes some of them minus one.  The defaults describe
    QEMU's ``-cpu max`` (6 breakpoints, 4 watchpoints, 6 PMU counters, 4 GIC
    list registers, SVE up to 2048 bits) without FEAT_LPA2 (which QEMU's
    ``-cpu max`` has: the platform turns it on from the CPU's ID registers).
    """

    abi_version: tuple[int, int] = (1, 0)
    dram: list[tuple[int, int]] = field(default_factory=list)
    """(base, size) ranges of delegable RAM; everything else is not delegable."""
    pa_width: int = 48
    s2sz_max: int = 48
    lpa2: bool = False
    """FEAT_LPA2 for realms (RmiFeatureRegister0.LPA2): 52-bit IPAs and PAs,
    level -1 starting RTTs.  Needs pa_width 52."""
    sve_en: bool = True
    sve_vl: int = 15
    """Largest SVE vector length as VQ - 1 (15: 2048 bits)."""
    num_bps: int = 6
    num_wps: int = 4
    pmu_en: bool = True
    pmu_num_ctrs: int = 6
    pmu_hpmn0: bool = True
    """FEAT_HPMN0: a realm may ask for zero PMU event counters."""
    num_lrs: int = 4
    """GICv3 list registers (ICH_VTR_EL2.ListRegs + 1)."""
    max_recs_order: int = 10
    hash_algorithms: tuple[HashAlgorithm, ...] = (HashAlgorithm.SHA_256, HashAlgorithm.SHA_512)
    vmid_bits: int = 16
    rec_aux_count: int = MAX_REC_AUX_GRANULES
    """RMI_REC_AUX_COUNT: 16, as TF-RMM, so hosts exercise the auxiliary-granule path."""
    cpu_id_regs: dict[str, int] = field(default_factory=dict)
    """The CPU's real ID registers by lower-case name ("id_aa64pfr0_el1", "midr_el1",
    "pmcr_el0", ...), as the EL3 monitor read them; the realm's view is derived
    from them (``id_regs``).  A missing register reads as zero."""
    attestation: AttestationConfig = field(default_factory=AttestationConfig)

    def __post_init__(self) -> None:
        if tuple(self.abi_version) not in SUPPORTED_ABI_VERSIONS:
            raise ValueError(
                f"RMI ABI version {self.abi_version[0]}.{self.abi_version[1]} is not implemented "
                f"(supported: {', '.join(f'{a}.{b}' for a, b in SUPPORTED_ABI_VERSIONS)})"
            )
        self.abi_version = tuple(self.abi_version)  # type: ignore[assignment]
        self.cpu_id_regs = {k.lower(): v for k, v in self.cpu_id_regs.items()}
        oa_bits = stage2.max_oa_bits(self.lpa2)
        if self.lpa2 and self.pa_width != stage2.MAX_OA_BITS_LPA2:
            raise ValueError(
                f"lpa2 needs a {stage2.MAX_OA_BITS_LPA2}-bit PA range, not pa_width {self.pa_width}"
            )
        if not 32 <= self.pa_width <= oa_bits:
            raise ValueError(f"pa_width {self.pa_width} must be 32..{oa_bits}")
        if not 32 <= self.s2sz_max <= oa_bits:
            raise ValueError(
                f"s2sz_max {self.s2sz_max} must be 32..{oa_bits}"
                + ("" if self.lpa2 else " without lpa2")
            )
        if not 0 <= self.rec_aux_count <= MAX_REC_AUX_GRANULES:
            raise ValueError(f"rec_aux_count must be 0..{MAX_REC_AUX_GRANULES}")
        if not 1 <= self.num_lrs <= MAX_LIST_REGISTERS:
            raise ValueError(f"num_lrs must be 1..{MAX_LIST_REGISTERS}")
        if not 2 <= self.num_bps <= 64 or not 2 <= self.num_wps <= 64:
            raise ValueError("num_bps and num_wps must be 2..64")
        if self.vmid_bits not in (8, 16):
            raise ValueError("vmid_bits must be 8 or 16")
        if not self.hash_algorithms:
            raise ValueError("at least one measurement hash algorithm is required")
        for base, size in self.dram:
            if base % GRANULE_SIZE or size % GRANULE_SIZE or size <= 0:
                raise ValueError(f"DRAM range {base:#x}+{size:#x} is not granule aligned")
            if base + size > 1 << self.pa_width:
                raise ValueError(
                    f"DRAM range {base:#x}+{size:#x} exceeds the {self.pa_width}-bit PA"
                )

    @property
    def abi_version_value(self) -> int:
        major, minor = self.abi_version
        return (major << 16) | minor

    @property
    def max_recs(self) -> int:
        return (1 << self.max_recs_order) - 1

    def features0(self) -> FeatureRegister0:
        return FeatureRegister0(
            s2sz=self.s2sz_max,
            lpa2=int(self.lpa2),
            sve_en=int(self.sve_en),
            sve_vl=self.sve_vl if self.sve_en else 0,
            num_bps=self.num_bps - 1,
            num_wps=self.num_wps - 1,
            pmu_en=int(self.pmu_en),
            pmu_num_ctrs=self.pmu_num_ctrs if self.pmu_en else 0,
            hash_sha_256=int(HashAlgorithm.SHA_256 in self.hash_algorithms),
            hash_sha_512=int(HashAlgorithm.SHA_512 in self.hash_algorithms),
            gicv3_num_lrs=self.num_lrs - 1,
            max_recs_order=self.max_recs_order,
        )

    def feature_register0(self) -> int:
        return self.features0().pack()
