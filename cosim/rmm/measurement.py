"""Realm measurements: the RIM and the four REMs, and the measurement descriptors
the RIM is extended with (fact sheet section 7).

Every measurement is a 64-byte slot holding the digest followed by zeros.
Extending the RIM hashes a 256-byte descriptor that embeds the current RIM.
"""

from __future__ import annotations

import hashlib
import struct

from .abi import HashAlgorithm

NUM_MEASUREMENTS = 5
RIM_INDEX = 0
MEASUREMENT_SLOT_SIZE = 64
DESCRIPTOR_SIZE = 0x100


class MeasurementDescType:
    DATA = 0
    REC = 1
    RIPAS = 2


_HASHES = {HashAlgorithm.SHA_256: hashlib.sha256, HashAlgorithm.SHA_512: hashlib.sha512}


_HASH_LEN = {algo: h().digest_size for algo, h in _HASHES.items()}


def hash_len(algo: HashAlgorithm) -> int:
    return _HASH_LEN[algo]


def digest(algo: HashAlgorithm, *parts: bytes | bytearray | memoryview) -> bytes:
    h = _HASHES[algo]()
    for p in parts:
        h.update(p)
    return h.digest()


def slot(value: bytes) -> bytes:
    """A digest as a 64-byte measurement value (zero padded)."""
    return value.ljust(MEASUREMENT_SLOT_SIZE, b"\0")


def _descriptor(desc_type: int, rim: bytes) -> bytearray:
    d = bytearray(DESCRIPTOR_SIZE)
    d[0] = desc_type
    struct.pack_into("<Q", d, 0x08, DESCRIPTOR_SIZE)
    d[0x10:0x50] = slot(rim)
    return d


def data_descriptor(rim: bytes, ipa: int, flags: int, content: bytes) -> bytes:
    """RmmMeasurementDescriptorData: content is the 64-byte slot (zeros if unmeasured)."""
    d = _descriptor(MeasurementDescType.DATA, rim)
    struct.pack_into("<QQ", d, 0x50, ipa, flags)
    d[0x60:0xA0] = slot(content)
    return bytes(d)


def rec_descriptor(rim: bytes, content: bytes) -> bytes:
    """RmmMeasurementDescriptorRec: content = H(measured RmiRecParams)."""
    d = _descriptor(MeasurementDescType.REC, rim)
    d[0x50:0x90] = slot(content)
    return bytes(d)


def ripas_descriptor(rim: bytes, base: int, top: int) -> bytes:
    """RmmMeasurementDescriptorRipas for one RTT entry [base, top)."""
    d = _descriptor(MeasurementDescType.RIPAS, rim)
    struct.pack_into("<QQ", d, 0x50, base, top)
    return bytes(d)


class Rim:
    """RIM arithmetic for one hash algorithm; values are 64-byte slots."""

    def __init__(self, algo: HashAlgorithm) -> None:
        self.algo = algo
        self.len = hash_len(algo)

    def initial(self, measured_realm_params: bytes) -> bytes:
        return slot(digest(self.algo, measured_realm_params))

    def _extend(self, descriptor: bytes) -> bytes:
        return slot(digest(self.algo, descriptor))

    def extend_data(
        self, rim: bytes, ipa: int, flags: int, content: bytes | memoryview | None
    ) -> bytes:
        """content: the 4 KiB copied into the DATA granule, or None when not measured."""
        measured = digest(self.algo, content) if content is not None else b""
        return self._extend(data_descriptor(rim[: self.len], ipa, flags, measured))

    def extend_rec(self, rim: bytes, measured_rec_params: bytes) -> bytes:
        content = digest(self.algo, measured_rec_params)
        return self._extend(rec_descriptor(rim[: self.len], content))

    def extend_ripas(self, rim: bytes, base: int, top: int) -> bytes:
        return self._extend(ripas_descriptor(rim[: self.len], base, top))

    def extend_rem(self, rem: bytes, value: bytes) -> bytes:
        """RSI_MEASUREMENT_EXTEND: H(REM[0:hash_len] || value)."""
        return slot(digest(self.algo, rem[: self.len], value))
