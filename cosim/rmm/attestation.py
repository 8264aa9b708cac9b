"""CCA attestation tokens (RMM spec A7, fact sheet section 8): made for
RSI_ATTESTATION_TOKEN_INIT and checked by ``verify_token``.

A token is ``tag 399 {44234: bstr(platform COSE_Sign1), 44241: bstr(realm
COSE_Sign1)}``.  Both tokens are ES384-signed COSE_Sign1 messages:

* the realm token carries the realm's claims and is signed with the realm
  attestation key (RAK), a P-384 key derived per realm (``realm_key``);
* the platform token carries the CCA platform claims and is signed with the
  platform key of ``AttestationConfig`` (by default a published, simulated
  key); its challenge is the SHA-256 of the RAK's COSE_Key, which binds the
  two tokens together.

The claims and their checks are in ``claims``; ``TokenError`` is re-exported here.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .abi import (
    CCA_TOKEN_TAG,
    HASH_ALGO_IDS,
    NUM_REMS,
    PLATFORM_TOKEN_PROFILE,
    REALM_TOKEN_PROFILE,
    CcaTokenKey,
    RealmClaim,
)
from .claims import (
    INSTANCE_ID_TYPE_RAND,
    Claims,
    PlatformClaims,
    RealmClaims,
    TokenError,
    digest,
)
from .config import AttestationConfig, SwComponent
from .cose import (
    CoseError,
    decode_cose_key,
    decode_sign1,
    encode_cose_key,
    load_private_key,
    private_key_from_seed,
    sign1,
    strict_loads,
)
from .measurement import RIM_INDEX, hash_len
from .realm import Realm

REALM_KEY_SALT = b"cca-cosim realm attestation key v1"
RAK_HASH_ALGO_ID = "sha-256"
"""The realm token's cca-realm-public-key-hash-algo-id: how the platform challenge
is computed from the RAK (TF-RMM uses SHA-256 too)."""

__all__ = [
    "Attestation",
    "Claims",
    "PlatformClaims",
    "RealmAttestation",
    "RealmClaims",
    "TokenError",
    "realm_key",
    "verify_token",
]

# == making tokens ===========================================================================


@dataclass
class RealmAttestation:
    """Per-realm attestation material, made once the realm's RIM is frozen."""

    key: ec.EllipticCurvePrivateKey
    cose_key: bytes
    platform_token: bytes


def realm_key(secret: bytes, realm: Realm) -> ec.EllipticCurvePrivateKey:
    """The realm attestation key: HKDF-SHA-384 (salt REALM_KEY_SALT) over the
    secret, keyed by what identifies the realm: its measurement algorithm, its
    (frozen) RIM and its RPV.  Deterministic, so two realms built alike get
    the same key, as they would from an RMM keeping one RAK per platform."""
    info = bytes([realm.hash_algo]) + realm.rim + realm.rpv
    seed = HKDF(algorithm=hashes.SHA384(), length=64, salt=REALM_KEY_SALT, info=info).derive(secret)
    return private_key_from_seed(seed)


@cache
def _rmm_sourcedigest() -> bytes:
    """SHA-256 over the Python RMM's own sources: the default "RMM" component."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.digest()


def _package_version() -> str:
    try:
        return importlib.metadata.version("cca-cosim")
    except importlib.metadata.PackageNotFoundError:
        return "0"


class Attestation:
    """Makes CCA tokens for the realms of one RMM."""

    def __init__(self, config: AttestationConfig, feature_register0: int) -> None:
        self.config = config
        self.platform_key = load_private_key(config.platform_key)
        self.platform_cose_key = encode_cose_key(self.platform_key.public_key())
        self.realm_secret = (
            config.realm_key_secret
            if config.realm_key_secret is not None
            else self.platform_key.private_numbers().private_value.to_bytes(48, "big")
        )
        self.platform_config = (
            config.platform_config
            if config.platform_config is not None
            else feature_register0.to_bytes(8, "little")
        )
        self.sw_components = (
            config.sw_components
            if config.sw_components is not None
            else (SwComponent("RMM", _rmm_sourcedigest(), _package_version()),)
        )

    @property
    def instance_id(self) -> bytes:
        return bytes([INSTANCE_ID_TYPE_RAND]) + hashlib.sha256(self.platform_cose_key).digest()

    def platform_claims(self, challenge: bytes) -> PlatformClaims:
        return PlatformClaims(
            profile=PLATFORM_TOKEN_PROFILE,
            challenge=challenge,
            implementation_id=self.config.implementation_id,
            instance_id=self.instance_id,
            config=self.platform_config,
            lifecycle=self.config.lifecycle,
            sw_components=self.sw_components,
            verification_service=self.config.verification_service,
            hash_algo_id="sha-256",
        )

    def for_realm(self, realm: Realm) -> RealmAttestation:
        """The realm's key and platform token (made once; the caller holds realm.lock)."""
        if realm.attestation is None:
            key = realm_key(self.realm_secret, realm)
            cose_key = encode_cose_key(key.public_key())
            challenge = digest(RAK_HASH_ALGO_ID, cose_key)
            payload = cbor2.dumps(self.platform_claims(challenge).to_map())
            realm.attestation = RealmAttestation(key, cose_key, sign1(payload, self.platform_key))
        return realm.attestation

    def realm_claims(self, realm: Realm, challenge: bytes, cose_key: bytes) -> RealmClaims:
        size = hash_len(realm.hash_algo)
        return RealmClaims(
            challenge=challenge,
            personalization_value=realm.rpv,
            public_key=cose_key,
            hash_algo_id=HASH_ALGO_IDS[realm.hash_algo],
            public_key_hash_algo_id=RAK_HASH_ALGO_ID,
            profile=REALM_TOKEN_PROFILE,
            initial_measurement=bytes(realm.measurements[RIM_INDEX][:size]),
            extensible_measurements=tuple(
                bytes(realm.measurements[RIM_INDEX + 1 + i][:size]) for i in range(NUM_REMS)
            ),
        )

    def token(self, realm: Realm, challenge: bytes) -> bytes:
        """A complete CCA token with the realm's current measurements (caller
        holds realm.lock)."""
        material = self.for_realm(realm)
        claims = self.realm_claims(realm, challenge, material.cose_key)
        realm_token = sign1(cbor2.dumps(claims.to_map()), material.key)
        return cbor2.dumps(
            cbor2.CBORTag(
                CCA_TOKEN_TAG,
                {CcaTokenKey.PLATFORM: material.platform_token, CcaTokenKey.REALM: realm_token},
            )
        )


@cache
def simulated_platform_public_key() -> ec.EllipticCurvePublicKey:
    return load_private_key(AttestationConfig().platform_key).public_key()


# == verifying tokens ==========================================================================


def verify_token(data: bytes, platform_key: ec.EllipticCurvePublicKey | None = None) -> Claims:
    """Check a CCA token completely and return its claims.

    Checks: the CBOR structure (tag 399, exactly the platform and realm
    entries, no trailing bytes), both COSE_Sign1 messages (tag 18, ES384),
    the platform signature against `platform_key` (default: the simulated
    platform key), the realm signature against the key in the realm token,
    every claim's presence, type and size, and the binding: the platform
    challenge equals the hash of the realm public key's COSE_Key encoding.
    Raises TokenError on the first problem.
    """
    try:
        return _verify(data, platform_key)
    except TokenError:
        raise
    except CoseError as exc:
        raise TokenError(str(exc)) from exc
    except Exception as exc:  # anything a malformed token provokes
        raise TokenError(f"malformed token: {exc}") from exc


def _verify(data: bytes, platform_key: ec.EllipticCurvePublicKey | None) -> Claims:
    simulated = simulated_platform_public_key()
    key = platform_key if platform_key is not None else simulated
    platform_raw, realm_raw = split_token(data)
    platform_msg = decode_sign1(platform_raw)
    try:
        platform_msg.verify(key)
    except CoseError as exc:
        raise TokenError(f"platform token: {exc}") from None
    platform = PlatformClaims.from_map(strict_loads(platform_msg.payload))
    realm = verify_realm_token(realm_raw)
    check_binding(platform.challenge, realm)
    return Claims(platform, realm, platform_key_simulated=_same_key(key, simulated))


def split_token(data: bytes) -> tuple[bytes, bytes]:
    """The (platform, realm) tokens of a CCA token: tag 399 around a map of
    exactly those two byte strings."""
    outer = strict_loads(bytes(data))
    if not isinstance(outer, cbor2.CBORTag) or outer.tag != CCA_TOKEN_TAG:
        raise TokenError(f"not a CCA token (CBOR tag {CCA_TOKEN_TAG})")
    collection = outer.value
    if not isinstance(collection, Mapping) or set(collection) != {
        CcaTokenKey.PLATFORM,
        CcaTokenKey.REALM,
    }:
        raise TokenError("a CCA token holds exactly a platform token and a realm token")
    platform_raw, realm_raw = collection[CcaTokenKey.PLATFORM], collection[CcaTokenKey.REALM]
    if not isinstance(platform_raw, bytes) or not isinstance(realm_raw, bytes):
        raise TokenError("the platform and realm tokens must be byte strings")
    return platform_raw, realm_raw


def verify_realm_token(realm_raw: bytes) -> RealmClaims:
    """The realm token's claims, its signature checked against the realm
    public key it carries."""
    realm_msg = decode_sign1(realm_raw)
    realm_payload = strict_loads(realm_msg.payload)
    if not isinstance(realm_payload, Mapping) or not isinstance(
        realm_payload.get(RealmClaim.PUBLIC_KEY), bytes
    ):
        raise TokenError("the realm token carries no public key")
    rak = decode_cose_key(realm_payload[RealmClaim.PUBLIC_KEY])
    try:
        realm_msg.verify(rak)
    except CoseError as exc:
        raise TokenError(f"realm token: {exc}") from None
    return RealmClaims.from_map(realm_payload)


def check_binding(platform_challenge: object, realm: RealmClaims) -> None:
    """The binding: the platform token's challenge is the hash of the realm
    public key's COSE_Key encoding."""
    if platform_challenge != digest(realm.public_key_hash_algo_id, realm.public_key):
        raise TokenError(
            "the platform token is not bound to the realm token: its challenge is not the "
            f"{realm.public_key_hash_algo_id} of the realm public key"
        )


def _same_key(a: ec.EllipticCurvePublicKey, b: ec.EllipticCurvePublicKey) -> bool:
    return encode_cose_key(a) == encode_cose_key(b)
