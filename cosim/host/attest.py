"""What the host side checks of a realm's attestation token: the token's
signatures and binding (cosim.rmm.attestation.verify_token), then that it
answers the challenge the verifier sent and that the realm's initial
measurement is the one the host computed from the images it loaded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import cbor2

from ..rmm.abi import CCA_TOKEN_TAG, CcaTokenKey, PlatformClaim, RealmClaim
from ..rmm.attestation import verify_token
from ..rmm.claims import Claims, RealmClaims, TokenError, digest
from ..rmm.cose import CoseError, decode_cose_key, decode_sign1


@dataclass
class AttestationCheck:
    claims: Claims | RealmPart | None
    problems: list[str] = field(default_factory=list)
    """Empty when every check passed."""

    @property
    def ok(self) -> bool:
        return self.claims is not None and not self.problems


def check_realm_token(token: bytes, challenge: bytes, rim: bytes,
                      platform_key_known: bool = True) -> AttestationCheck:
    """`rim` is the expected Realm Initial Measurement (the hash length of the
    realm's algorithm); `challenge` the 64 bytes sent.  With
    `platform_key_known` False (a user's firmware signs the platform token with
    a key we do not have) the platform token's signature is not checked; its
    binding to the realm key, the realm token's signature and claims are."""
    try:
        claims = verify_token(token) if platform_key_known else _verify_realm_part(token)
    except TokenError as exc:
        return AttestationCheck(None, [f"the token does not verify: {exc}"])
    problems = []
    if claims.realm.challenge != challenge:
        problems.append("the token answers another challenge")
    if claims.realm.initial_measurement != rim:
        problems.append(f"the realm's RIM {claims.realm.initial_measurement.hex()} is not "
                        f"the one the VMM computed ({rim.hex()})")
    return AttestationCheck(claims, problems)


@dataclass
class RealmPart:
    """The realm token's verified claims (the platform token only checked for binding)."""

    realm: RealmClaims


def _verify_realm_part(token: bytes) -> RealmPart:
    try:
        outer = cbor2.loads(token)
    except Exception as exc:  # any CBOR decoding failure means the same to the user
        raise TokenError(f"not CBOR: {exc}") from None
    if not isinstance(outer, cbor2.CBORTag) or outer.tag != CCA_TOKEN_TAG \
            or not isinstance(outer.value, Mapping):
        raise TokenError(f"not a CCA token (CBOR tag {CCA_TOKEN_TAG})")
    realm_raw = outer.value.get(CcaTokenKey.REALM)
    platform_raw = outer.value.get(CcaTokenKey.PLATFORM)
    if not isinstance(realm_raw, bytes) or not isinstance(platform_raw, bytes):
        raise TokenError("a CCA token holds a platform token and a realm token")
    try:
        msg = decode_sign1(realm_raw)
        payload = cbor2.loads(msg.payload)
        if not isinstance(payload, Mapping) or not isinstance(
                payload.get(RealmClaim.PUBLIC_KEY), bytes):
            raise TokenError("the realm token carries no public key")
        msg.verify(decode_cose_key(payload[RealmClaim.PUBLIC_KEY]))
        platform = cbor2.loads(decode_sign1(platform_raw).payload)
    except (CoseError, ValueError) as exc:
        raise TokenError(f"realm token: {exc}") from None
    realm = RealmClaims.from_map(payload)
    if not isinstance(platform, Mapping) or platform.get(PlatformClaim.CHALLENGE) != digest(
            realm.public_key_hash_algo_id, realm.public_key):
        raise TokenError("the platform token is not bound to the realm token")
    return RealmPart(realm)
