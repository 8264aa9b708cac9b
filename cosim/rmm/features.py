"""RmiFeatureRegister0, the value RMI_FEATURES returns for index 0 (1.0-rel0 layout)."""

from __future__ import annotations

from dataclasses import dataclass, fields

# (shift, width) of each field; bits 63:42 are zero in v1.0.
FEATURE0_FIELDS: dict[str, tuple[int, int]] = {
    "s2sz": (0, 8),
    "lpa2": (8, 1),
    "sve_en": (9, 1),
    "sve_vl": (10, 4),
    "num_bps": (14, 6),
    "num_wps": (20, 6),
    "pmu_en": (26, 1),
    "pmu_num_ctrs": (27, 5),
    "hash_sha_256": (32, 1),
    "hash_sha_512": (33, 1),
    "gicv3_num_lrs": (34, 4),
    "max_recs_order": (38, 4),
}


@dataclass(frozen=True)
class FeatureRegister0:
    """Field values exactly as encoded (num_bps, num_wps and gicv3_num_lrs are
    "count minus 1", sve_vl is VQ - 1, max_recs_order gives 2**order - 1 RECs)."""

    s2sz: int
    lpa2: int
    sve_en: int
    sve_vl: int
    num_bps: int
    num_wps: int
    pmu_en: int
    pmu_num_ctrs: int
    hash_sha_256: int
    hash_sha_512: int
    gicv3_num_lrs: int
    max_recs_order: int

    def pack(self) -> int:
        value = 0
        for f in fields(self):
            shift, width = FEATURE0_FIELDS[f.name]
            v = getattr(self, f.name)
            if not 0 <= v < 1 << width:
                raise ValueError(f"RmiFeatureRegister0.{f.name} = {v} does not fit {width} bits")
            value |= v << shift
        return value

    @classmethod
    def unpack(cls, value: int) -> FeatureRegister0:
        return cls(
            **{name: (value >> s) & ((1 << w) - 1) for name, (s, w) in FEATURE0_FIELDS.items()}
        )
