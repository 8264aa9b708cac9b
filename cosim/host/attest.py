"""What the host side checks of a realm's attestation token: the token's
signatures and binding (cosim.rmm.attestation.verify_token), then that it
answers the challenge the verifier sent and that the realm's initial
measurement is the one the host computed from the images it loaded."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..rmm.attestation import verify_token
from ..rmm.claims import Claims, TokenError


@dataclass
class AttestationCheck:
    claims: Claims | None
    problems: list[str] = field(default_factory=list)
    """Empty when every check passed."""

    @property
    def ok(self) -> bool:
        return self.claims is not None and not self.problems


def check_realm_token(token: bytes, challenge: bytes, rim: bytes) -> AttestationCheck:
    """`rim` is the expected Realm Initial Measurement (the hash length of the
    realm's algorithm); `challenge` the 64 bytes sent."""
    try:
        claims = verify_token(token)
    except TokenError as exc:
        return AttestationCheck(None, [f"the token does not verify: {exc}"])
    problems = []
    if claims.realm.challenge != challenge:
        problems.append("the token answers another challenge")
    if claims.realm.initial_measurement != rim:
        problems.append(f"the realm's RIM {claims.realm.initial_measurement.hex()} is not "
                        f"the one the VMM computed ({rim.hex()})")
    return AttestationCheck(claims, problems)
