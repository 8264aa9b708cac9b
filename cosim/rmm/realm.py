"""Realms: the object an RD granule stands for."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from ..arch import stage2
from ..arch.pas import GRANULE_SIZE
from .abi import HashAlgorithm
from .measurement import MEASUREMENT_SLOT_SIZE, NUM_MEASUREMENTS, RIM_INDEX

if TYPE_CHECKING:
    from .attestation import RealmAttestation
    from .rec import Rec


class RealmState(Enum):
    NEW = "NEW"
    ACTIVE = "ACTIVE"
    SYSTEM_OFF = "SYSTEM_OFF"


@dataclass(eq=False)
class Realm:
    """Everything a world switch and the RMM commands need to know about a realm."""

    id: int
    """Small integer in creation order (1, 2, ...), used in reports and traces."""
    rd: int
    vmid: int
    s2sz: int
    """IPA width in bits: IPAs are [0, 2**s2sz), the protected half [0, 2**(s2sz-1))."""
    rtt_base: int
    rtt_level_start: int
    rtt_num_start: int
    hash_algo: HashAlgorithm
    rpv: bytes
    flags: int
    lpa2: bool = False
    sve_en: bool = False
    sve_vl: int = 0
    pmu_en: bool = False
    pmu_num_ctrs: int = 0
    num_bps: int = 0
    """Breakpoints minus 1, as in RmiRealmParams."""
    num_wps: int = 0
    state: RealmState = RealmState.NEW
    measurements: list[bytearray] = field(
        default_factory=lambda: [bytearray(MEASUREMENT_SLOT_SIZE) for _ in range(NUM_MEASUREMENTS)],
        repr=False,
    )
    """Slot 0 is the RIM, slots 1..4 the REMs; each 64 bytes, digest then zeros."""
    rec_index: int = 0
    """Index of the next REC to be created (A2.1.3 rec_index)."""
    recs: dict[int, Rec] = field(default_factory=dict, repr=False)
    """Live RECs by index; their number is the realm's num_recs (A2.1.3)."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    attestation: RealmAttestation | None = field(default=None, repr=False)
    """The realm's attestation key and platform token, made on first use."""

    # -- geometry --------------------------------------------------------------------

    @property
    def ipa_limit(self) -> int:
        return 1 << self.s2sz

    @property
    def par_top(self) -> int:
        """End of the protected address range: the top IPA bit clear."""
        return 1 << (self.s2sz - 1)

    def is_protected(self, ipa: int) -> bool:
        return 0 <= ipa < self.par_top

    def is_unprotected(self, ipa: int) -> bool:
        return self.par_top <= ipa < self.ipa_limit

    @property
    def root_rtts(self) -> list[int]:
        return [self.rtt_base + i * GRANULE_SIZE for i in range(self.rtt_num_start)]

    def root_entry_count(self) -> int:
        """Entries of the starting level (all starting RTTs) inside [0, 2**s2sz)."""
        return stage2.start_table_entries(self.s2sz, self.rtt_level_start)

    @property
    def num_recs(self) -> int:
        """Number of RECs owned by this Realm (A2.1.3 num_recs)."""
        return len(self.recs)

    # -- measurements ----------------------------------------------------------------

    @property
    def rim(self) -> bytes:
        return bytes(self.measurements[RIM_INDEX])
