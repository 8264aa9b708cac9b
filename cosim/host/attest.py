"""What the host side checks of a realm's attestation token: the token's
signatures and binding (cosim.rmm.attestation.verify_token), then that it
answers the challenge the verifier sent and that the realm's initial
measurement is the one the host computed from the images it loaded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..rmm.abi import PlatformClaim
from ..rmm.attestation import check_binding, split_token, verify_realm_token, verify_token
from ..rmm.claims import Claims, RealmClaims, TokenError
from ..rmm.cose import decode_sign1, strict_loads


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
        platform_raw, realm_raw = split_token(token)
        realm = verify_realm_token(realm_raw)
        platform = strict_loads(decode_sign1(platform_raw).payload)
    except TokenError:
        raise
    except Exception as exc:  # anything a malformed token provokes, as verify_token says
        raise TokenError(f"malformed token: {exc}") from None
    check_binding(platform.get(PlatformClaim.CHALLENGE) if isinstance(platform, Mapping)
                  else None, realm)
    return RealmPart(realm)
