"""The claims of a CCA token (RMM spec A7): the realm token's and the platform
token's, how they are encoded as CBOR maps, and how a decoded map is checked."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .abi import (
    HASH_ALGO_IDS,
    NUM_REMS,
    PLATFORM_TOKEN_PROFILE,
    REALM_CHALLENGE_SIZE,
    REALM_TOKEN_PROFILE,
    PlatformClaim,
    RealmClaim,
    SwComponentClaim,
)
from .config import SwComponent
from .structs import RPV_SIZE

INSTANCE_ID_TYPE_RAND = 0x01
"""First byte of a UEID: 0x01 = a random/hash-derived 32-byte identifier."""

_HASHES: dict[str, Callable[[], Any]] = {
    "sha-256": hashlib.sha256,
    "sha-384": hashlib.sha384,
    "sha-512": hashlib.sha512,
}
_LIFECYCLE = {
    0x0000: "unknown",
    0x1000: "assembly and test",
    0x2000: "PSA RoT provisioning",
    0x3000: "secured",
    0x4000: "non-PSA-RoT debug",
    0x5000: "recoverable PSA-RoT debug",
    0x6000: "decommissioned",
}


class TokenError(Exception):
    """A CCA token that is malformed, badly signed or not bound together."""


# == claims ================================================================================


@dataclass(frozen=True)
class RealmClaims:
    challenge: bytes
    personalization_value: bytes
    public_key: bytes
    """The RAK as a CBOR-encoded EC2 COSE_Key."""
    hash_algo_id: str
    public_key_hash_algo_id: str
    profile: str
    initial_measurement: bytes
    extensible_measurements: tuple[bytes, ...]

    def to_map(self) -> dict[int, Any]:
        """The claims map, in the order TF-RMM emits it."""
        return {
            RealmClaim.CHALLENGE: self.challenge,
            RealmClaim.PERSONALIZATION_VALUE: self.personalization_value,
            RealmClaim.PUBLIC_KEY: self.public_key,
            RealmClaim.HASH_ALGO_ID: self.hash_algo_id,
            RealmClaim.PUBLIC_KEY_HASH_ALGO_ID: self.public_key_hash_algo_id,
            RealmClaim.PROFILE: self.profile,
            RealmClaim.INITIAL_MEASUREMENT: self.initial_measurement,
            RealmClaim.EXTENSIBLE_MEASUREMENTS: list(self.extensible_measurements),
        }

    @classmethod
    def from_map(cls, m: Any) -> RealmClaims:
        c = _Claims(m, "realm")
        claims = cls(
            challenge=c.bstr(RealmClaim.CHALLENGE, {REALM_CHALLENGE_SIZE}),
            personalization_value=c.bstr(RealmClaim.PERSONALIZATION_VALUE, {RPV_SIZE}),
            public_key=c.bstr(RealmClaim.PUBLIC_KEY),
            hash_algo_id=c.tstr(RealmClaim.HASH_ALGO_ID),
            public_key_hash_algo_id=c.tstr(RealmClaim.PUBLIC_KEY_HASH_ALGO_ID),
            profile=c.tstr(RealmClaim.PROFILE),
            initial_measurement=c.bstr(RealmClaim.INITIAL_MEASUREMENT),
            extensible_measurements=c.bstr_list(RealmClaim.EXTENSIBLE_MEASUREMENTS),
        )
        if claims.profile != REALM_TOKEN_PROFILE:
            raise TokenError(f"realm token profile {claims.profile!r} is not {REALM_TOKEN_PROFILE}")
        if claims.hash_algo_id not in HASH_ALGO_IDS.values():
            raise TokenError(f"unknown realm hash algorithm {claims.hash_algo_id!r}")
        size = _HASHES[claims.hash_algo_id]().digest_size
        if len(claims.initial_measurement) != size:
            raise TokenError(f"the RIM is not a {claims.hash_algo_id} digest")
        rems = claims.extensible_measurements
        if len(rems) != NUM_REMS or any(len(r) != size for r in rems):
            raise TokenError(f"the REMs are not {NUM_REMS} {claims.hash_algo_id} digests")
        if claims.public_key_hash_algo_id not in _HASHES:
            raise TokenError(
                f"unknown public key hash algorithm {claims.public_key_hash_algo_id!r}"
            )
        return claims


@dataclass(frozen=True)
class PlatformClaims:
    profile: str
    challenge: bytes
    implementation_id: bytes
    instance_id: bytes
    config: bytes
    lifecycle: int
    sw_components: tuple[SwComponent, ...]
    verification_service: str | None
    hash_algo_id: str

    def to_map(self) -> dict[int, Any]:
        m: dict[int, Any] = {
            PlatformClaim.PROFILE: self.profile,
            PlatformClaim.CHALLENGE: self.challenge,
            PlatformClaim.IMPLEMENTATION_ID: self.implementation_id,
            PlatformClaim.INSTANCE_ID: self.instance_id,
            PlatformClaim.CONFIGURATION: self.config,
            PlatformClaim.SECURITY_LIFECYCLE: self.lifecycle,
            PlatformClaim.SW_COMPONENTS: [_sw_component_map(c) for c in self.sw_components],
        }
        if self.verification_service is not None:
            m[PlatformClaim.VERIFICATION_SERVICE] = self.verification_service
        m[PlatformClaim.HASH_ALGO_ID] = self.hash_algo_id
        return m

    @classmethod
    def from_map(cls, m: Any) -> PlatformClaims:
        c = _Claims(m, "platform")
        raw_components = c.get(PlatformClaim.SW_COMPONENTS, (list, tuple))
        claims = cls(
            profile=c.tstr(PlatformClaim.PROFILE),
            challenge=c.bstr(PlatformClaim.CHALLENGE, {32, 48, 64}),
            implementation_id=c.bstr(PlatformClaim.IMPLEMENTATION_ID, {32}),
            instance_id=c.bstr(PlatformClaim.INSTANCE_ID, {33}),
            config=c.bstr(PlatformClaim.CONFIGURATION),
            lifecycle=c.integer(PlatformClaim.SECURITY_LIFECYCLE),
            sw_components=tuple(_sw_component(x) for x in raw_components),
            verification_service=c.optional_tstr(PlatformClaim.VERIFICATION_SERVICE),
            hash_algo_id=c.tstr(PlatformClaim.HASH_ALGO_ID),
        )
        if claims.profile != PLATFORM_TOKEN_PROFILE:
            raise TokenError(
                f"platform token profile {claims.profile!r} is not {PLATFORM_TOKEN_PROFILE}"
            )
        if claims.instance_id[0] != INSTANCE_ID_TYPE_RAND:
            raise TokenError("the platform instance ID is not a type-0x01 UEID")
        if not 0 <= claims.lifecycle <= 0xFFFF:
            raise TokenError("the platform security lifecycle is not a 16-bit value")
        if not claims.sw_components:
            raise TokenError("the platform token lists no software components")
        return claims


def _sw_component_map(c: SwComponent) -> dict[int, Any]:
    m: dict[int, Any] = {SwComponentClaim.TYPE: c.type}
    m[SwComponentClaim.MEASUREMENT_VALUE] = c.measurement
    if c.version:
        m[SwComponentClaim.VERSION] = c.version
    m[SwComponentClaim.SIGNER_ID] = c.signer_id
    m[SwComponentClaim.HASH_ALGO_ID] = c.hash_algo
    return m


def _sw_component(m: Any) -> SwComponent:
    c = _Claims(m, "software component")
    return SwComponent(
        type=c.optional_tstr(SwComponentClaim.TYPE) or "",
        measurement=c.bstr(SwComponentClaim.MEASUREMENT_VALUE),
        version=c.optional_tstr(SwComponentClaim.VERSION) or "",
        signer_id=c.bstr(SwComponentClaim.SIGNER_ID),
        hash_algo=c.optional_tstr(SwComponentClaim.HASH_ALGO_ID) or "",
    )


class _Claims:
    """Typed access to a claims map, raising TokenError with the claim's name."""

    def __init__(self, m: Any, what: str) -> None:
        if not isinstance(m, Mapping):
            raise TokenError(f"the {what} claims are not a CBOR map")
        self.m = m
        self.what = what

    def get(self, key: int, kind: type | tuple[type, ...]) -> Any:
        if key not in self.m:
            raise TokenError(f"the {self.what} claims lack claim {key}")
        value = self.m[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise TokenError(f"{self.what} claim {key} has the wrong type")
        return value

    def bstr(self, key: int, sizes: set[int] | None = None) -> bytes:
        value: bytes = self.get(key, bytes)
        if sizes is not None and len(value) not in sizes:
            raise TokenError(f"{self.what} claim {key} has {len(value)} bytes")
        return value

    def tstr(self, key: int) -> str:
        value: str = self.get(key, str)
        return value

    def optional_tstr(self, key: int) -> str | None:
        return self.tstr(key) if key in self.m else None

    def integer(self, key: int) -> int:
        value: int = self.get(key, int)
        return value

    def bstr_list(self, key: int) -> tuple[bytes, ...]:
        items = self.get(key, (list, tuple))
        if not all(isinstance(x, bytes) for x in items):
            raise TokenError(f"{self.what} claim {key} is not an array of byte strings")
        return tuple(items)


@dataclass(frozen=True)
class Claims:
    """What a verified CCA token says."""

    platform: PlatformClaims
    realm: RealmClaims
    platform_key_simulated: bool
    """The platform token was signed with cca-cosim's published simulated key."""

    def describe(self) -> str:
        p, r = self.platform, self.realm
        signer = (
            "the cca-cosim SIMULATED platform key (published; no hardware root of trust)"
            if self.platform_key_simulated
            else "the platform key given to the verifier"
        )
        lifecycle = _LIFECYCLE.get(p.lifecycle & 0xF000, "reserved")
        lines = [
            "CCA attestation token: both signatures valid, realm token bound to platform token",
            f"Platform token (signed by {signer})",
            f"  profile:               {p.profile}",
            f"  challenge:             {p.challenge.hex()}",
            f"                         (= {r.public_key_hash_algo_id} of the realm public key)",
            f"  implementation ID:     {p.implementation_id.hex()}",
            f"  instance ID:           {p.instance_id.hex()}",
            f"  security lifecycle:    {p.lifecycle:#06x} ({lifecycle})",
            f"  configuration:         {p.config.hex()}",
            f"  hash algorithm:        {p.hash_algo_id}",
            f"  verification service:  {p.verification_service or '-'}",
        ]
        for i, c in enumerate(p.sw_components):
            label = " ".join(x for x in (c.type or "?", c.version) if x)
            lines.append(
                f"  software component {i}: {label}: {c.hash_algo or '?'} {c.measurement.hex()}"
            )
            lines.append(f"                         signer {c.signer_id.hex()}")
        lines += [
            "Realm token (signed by the realm attestation key below)",
            f"  profile:               {r.profile}",
            f"  challenge:             {r.challenge.hex()}",
            f"  personalization value: {r.personalization_value.hex()}",
            f"  hash algorithm:        {r.hash_algo_id}",
            f"  initial measurement:   {r.initial_measurement.hex()}",
        ]
        for i, rem in enumerate(r.extensible_measurements):
            lines.append(f"  REM[{i}]:                {rem.hex()}")
        lines.append(
            f"  public key:            EC2 P-384 COSE_Key ({len(r.public_key)} bytes), "
            f"{r.public_key_hash_algo_id} {digest(r.public_key_hash_algo_id, r.public_key).hex()}"
        )
        return "\n".join(lines)


def digest(algo: str, data: bytes) -> bytes:
    h = _HASHES[algo]()
    h.update(data)
    return bytes(h.digest())
