"""CCA attestation tokens: structure, claims, keys, binding, the verifier and the CLI."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from realm_harness import BUF, RealmRun

from cosim import cli
from cosim.rmm.abi import (
    PLATFORM_TOKEN_PROFILE,
    REALM_TOKEN_PROFILE,
    HashAlgorithm,
    PlatformClaim,
    RealmClaim,
    RsiFid,
    RsiStatus,
)
from cosim.rmm.attestation import (
    Attestation,
    TokenError,
    realm_key,
    simulated_platform_public_key,
    verify_token,
)
from cosim.rmm.config import AttestationConfig, SwComponent
from cosim.rmm.cose import decode_cose_key, decode_sign1, encode_cose_key, strict_loads

CHALLENGE = bytes(range(0x40, 0x80))


def fetch_token(rr: RealmRun, challenge: bytes = CHALLENGE) -> bytes:
    """What a Linux guest does: INIT, then CONTINUE a granule at a time."""
    words = struct.unpack("<8Q", challenge)
    assert rr.call(RsiFid.ATTESTATION_TOKEN_INIT, *words)[0] == RsiStatus.SUCCESS
    token = b""
    while True:
        status, n = rr.call(RsiFid.ATTESTATION_TOKEN_CONTINUE, BUF, 0, 0x1000)[:2]
        token += rr.read(BUF, n)
        if status == RsiStatus.SUCCESS:
            return token
        assert status == RsiStatus.INCOMPLETE


@pytest.fixture(scope="module")
def realm_and_token() -> tuple[RealmRun, bytes]:
    rr = RealmRun()
    rr.enter()
    rr.call(RsiFid.MEASUREMENT_EXTEND, 2, 5, 0x0504030201)
    return rr, fetch_token(rr)


def test_token_structure(realm_and_token: tuple[RealmRun, bytes]) -> None:
    _, token = realm_and_token
    outer = cbor2.loads(token)
    assert outer.tag == 399 and list(outer.value) == [44234, 44241]
    for raw in outer.value.values():
        assert raw[:1] == b"\xd2"  # tag 18: COSE_Sign1
        msg = decode_sign1(raw)
        assert strict_loads(msg.protected) == {1: -35} and msg.unprotected == {}
        assert len(msg.signature) == 96
    realm_claims = strict_loads(decode_sign1(outer.value[44241]).payload)
    assert list(realm_claims) == [10, 44235, 44237, 44236, 44240, 265, 44238, 44239]


def test_claims_are_the_realms(realm_and_token: tuple[RealmRun, bytes]) -> None:
    rr, token = realm_and_token
    claims = verify_token(token)
    r, p = claims.realm, claims.platform
    assert r.challenge == CHALLENGE and r.personalization_value == bytes(range(64))
    assert r.initial_measurement == rr.realm.rim[:32]
    assert list(r.extensible_measurements) == [bytes(m[:32]) for m in rr.realm.measurements[1:]]
    assert r.extensible_measurements[1] != bytes(32)  # the extended REM[1]
    assert r.hash_algo_id == "sha-256" and r.public_key_hash_algo_id == "sha-256"
    assert r.profile == REALM_TOKEN_PROFILE and p.profile == PLATFORM_TOKEN_PROFILE
    assert p.challenge == hashlib.sha256(r.public_key).digest()
    assert p.hash_algo_id == "sha-256" and p.lifecycle == 0x3000
    assert p.instance_id[0] == 1 and len(p.implementation_id) == 32
    assert p.config == rr.rmm.feature_register0.to_bytes(8, "little")
    (component,) = p.sw_components
    assert component.type == "RMM" and len(component.measurement) == 32
    assert claims.platform_key_simulated
    # the key in the token is the realm's derived key
    key = realm_key(rr.rmm.attestation.realm_secret, rr.realm)
    assert r.public_key == encode_cose_key(key.public_key())


def test_describe(realm_and_token: tuple[RealmRun, bytes]) -> None:
    rr, token = realm_and_token
    text = verify_token(token).describe()
    assert "SIMULATED" in text and "REM[3]" in text
    assert rr.realm.rim[:32].hex() in text and CHALLENGE.hex() in text
    assert "security lifecycle:    0x3000 (secured)" in text


@pytest.mark.slow
def test_every_byte_matters(realm_and_token: tuple[RealmRun, bytes]) -> None:
    _, token = realm_and_token
    verify_token(token)
    for i in range(len(token)):
        for flip in (0xFF, 0x01):
            bad = bytearray(token)
            bad[i] ^= flip
            with pytest.raises(TokenError):
                verify_token(bytes(bad))


def test_truncated_and_extended_tokens_fail(realm_and_token: tuple[RealmRun, bytes]) -> None:
    _, token = realm_and_token
    for bad in (token[:-1], token + b"\0", token[:100], b"", b"\xd9\x01\x8f", b"garbage"):
        with pytest.raises(TokenError):
            verify_token(bad)


def test_wrong_platform_key_fails(realm_and_token: tuple[RealmRun, bytes]) -> None:
    _, token = realm_and_token
    other = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(TokenError, match="platform token: the signature does not verify"):
        verify_token(token, other)
    assert verify_token(token, simulated_platform_public_key()).platform_key_simulated


def test_binding_is_checked() -> None:
    rr = RealmRun()
    rr.enter()
    att = rr.rmm.attestation
    token = cbor2.loads(att.token(rr.realm, CHALLENGE)).value
    # a platform token made for another realm key does not vouch for this realm token
    other = RealmRun(realm={"rpv": bytes(64)})
    other_token = cbor2.loads(other.rmm.attestation.token(other.realm, CHALLENGE)).value
    mixed = cbor2.dumps(cbor2.CBORTag(399, {44234: other_token[44234], 44241: token[44241]}))
    with pytest.raises(TokenError, match="not bound"):
        verify_token(mixed)


def test_key_derivation_is_per_realm() -> None:
    a, b = RealmRun(), RealmRun()
    c = RealmRun(realm={"rpv": b"\x01" * 64})
    d = RealmRun(realm={"hash_algo": HashAlgorithm.SHA_512})
    secret = a.rmm.attestation.realm_secret

    def pub(rr: RealmRun) -> bytes:
        return encode_cose_key(realm_key(secret, rr.realm).public_key())

    assert pub(a) == pub(b)  # same RIM, RPV and algorithm
    assert len({pub(a), pub(c), pub(d)}) == 3
    other_secret = realm_key(b"another platform secret", a.realm).public_key()
    assert encode_cose_key(other_secret) != pub(a)


def test_sha512_realm_token() -> None:
    rr = RealmRun(realm={"hash_algo": HashAlgorithm.SHA_512})
    rr.enter()
    claims = verify_token(fetch_token(rr))
    assert claims.realm.hash_algo_id == "sha-512"
    assert claims.realm.initial_measurement == rr.realm.rim
    assert all(len(m) == 64 for m in claims.realm.extensible_measurements)


def test_configured_platform_key_pem() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    config = AttestationConfig(
        platform_key=pem,
        lifecycle=0x5000,
        verification_service="https://verifier.example",
        sw_components=(SwComponent("BL1", bytes(32), "1.0", b"\x11" * 32),),
        platform_config=b"\x01\x02",
    )
    rr = RealmRun(attestation=config)
    rr.enter()
    token = fetch_token(rr)
    with pytest.raises(TokenError):
        verify_token(token)  # not the simulated key
    claims = verify_token(token, key.public_key())
    assert not claims.platform_key_simulated
    p = claims.platform
    assert p.lifecycle == 0x5000 and p.config == b"\x01\x02"
    assert p.verification_service == "https://verifier.example"
    assert p.sw_components == (SwComponent("BL1", bytes(32), "1.0", b"\x11" * 32),)
    assert "recoverable PSA-RoT debug" in claims.describe()


def test_bad_platform_key_gives_rsi_error_unknown() -> None:
    """B5.3.2: RSI_ATTESTATION_TOKEN_INIT "does not have any failure conditions";
    B5.3.1 CONTINUE "unknown: Token generation failed for an unknown or IMPDEF
    reason" -> RSI_ERROR_UNKNOWN."""
    rr = RealmRun(attestation=AttestationConfig(platform_key=b"\xff" * 48))
    rr.enter()
    assert rr.call(RsiFid.ATTESTATION_TOKEN_INIT, *range(8))[:2] == [RsiStatus.SUCCESS, 0x1000]
    assert rr.call(RsiFid.ATTESTATION_TOKEN_CONTINUE, BUF, 0, 16)[0] == RsiStatus.ERROR_UNKNOWN


def test_claim_checks() -> None:
    rr = RealmRun()
    att: Attestation = rr.rmm.attestation
    material = att.for_realm(rr.realm)
    good = att.realm_claims(rr.realm, CHALLENGE, material.cose_key).to_map()

    def token_with(claims: dict[int, object]) -> bytes:
        from cosim.rmm.cose import sign1

        realm_token = sign1(cbor2.dumps(claims), material.key)
        return cbor2.dumps(cbor2.CBORTag(399, {44234: material.platform_token, 44241: realm_token}))

    verify_token(token_with(dict(good)))
    for key, value, message in (
        (RealmClaim.CHALLENGE, bytes(32), "claim 10 has 32 bytes"),
        (RealmClaim.PROFILE, "tag:arm.com,2022:realm#1.0.0", "profile"),
        (RealmClaim.HASH_ALGO_ID, "md5", "unknown realm hash algorithm"),
        (RealmClaim.INITIAL_MEASUREMENT, bytes(20), "RIM"),
        (RealmClaim.EXTENSIBLE_MEASUREMENTS, [bytes(32)] * 3, "REMs"),
        (RealmClaim.PERSONALIZATION_VALUE, "rpv", "wrong type"),
    ):
        bad = dict(good)
        bad[key] = value
        with pytest.raises(TokenError, match=message):
            verify_token(token_with(bad))
    missing = dict(good)
    del missing[RealmClaim.PERSONALIZATION_VALUE]
    with pytest.raises(TokenError, match="lack claim 44235"):
        verify_token(token_with(missing))


def test_platform_claim_checks() -> None:
    att = RealmRun().rmm.attestation
    claims = att.platform_claims(bytes(32)).to_map()
    assert list(claims)[:2] == [PlatformClaim.PROFILE, PlatformClaim.CHALLENGE]
    from cosim.rmm.attestation import PlatformClaims

    assert PlatformClaims.from_map(claims) == att.platform_claims(bytes(32))
    for key, value in (
        (PlatformClaim.INSTANCE_ID, b"\x02" + bytes(32)),
        (PlatformClaim.IMPLEMENTATION_ID, bytes(31)),
        (PlatformClaim.SECURITY_LIFECYCLE, True),
        (PlatformClaim.SW_COMPONENTS, []),
        (PlatformClaim.CHALLENGE, bytes(33)),
    ):
        bad = dict(claims)
        bad[key] = value
        with pytest.raises(TokenError):
            PlatformClaims.from_map(bad)


def test_cose_key_round_trip() -> None:
    key = ec.generate_private_key(ec.SECP384R1()).public_key()
    assert encode_cose_key(decode_cose_key(encode_cose_key(key))) == encode_cose_key(key)
    with pytest.raises(ValueError):
        decode_cose_key(cbor2.dumps({1: 2, -1: 2, -2: bytes(48), -3: bytes(48)}))


# -- the CLI ---------------------------------------------------------------------------------


def test_cli_verify_token(
    realm_and_token: tuple[RealmRun, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rr, token = realm_and_token
    good = tmp_path / "token.cbor"
    good.write_bytes(token)
    assert cli.main(["verify-token", str(good)]) == 0
    out = capsys.readouterr().out
    assert "both signatures valid" in out and rr.realm.rim[:32].hex() in out
    bad = tmp_path / "bad.cbor"
    bad.write_bytes(token[:-1] + bytes([token[-1] ^ 1]))
    assert cli.main(["verify-token", str(bad)]) == 1
    assert "token verification FAILED" in capsys.readouterr().err
    assert cli.main(["verify-token", str(tmp_path / "missing.cbor")]) == 2
    assert "missing.cbor: No such file or directory" in capsys.readouterr().err


def test_realm_part_checked_without_the_platform_key(realm_and_token) -> None:
    """A user's firmware signs the platform token with a key we do not have:
    then the realm token's signature, claims and binding are still checked."""
    from cosim.host.attest import check_realm_token
    from cosim.rmm.abi import CcaTokenKey

    _, token = realm_and_token
    rim = verify_token(token).realm.initial_measurement
    assert check_realm_token(token, CHALLENGE, rim, platform_key_known=False).ok
    outer = cbor2.loads(token).value
    platform_raw, realm_raw = outer[CcaTokenKey.PLATFORM], outer[CcaTokenKey.REALM]

    def flip_last(part: bytes) -> bytes:
        at = token.index(part) + len(part) - 1
        return token[:at] + bytes([token[at] ^ 1]) + token[at + 1:]

    bad_platform = flip_last(platform_raw)
    assert not check_realm_token(bad_platform, CHALLENGE, rim).ok
    assert check_realm_token(bad_platform, CHALLENGE, rim, platform_key_known=False).ok
    bad_realm = flip_last(realm_raw)
    check = check_realm_token(bad_realm, CHALLENGE, rim, platform_key_known=False)
    assert not check.ok and "realm token" in check.problems[0]
    wrong = check_realm_token(token, bytes(64), rim, platform_key_known=False)
    assert wrong.problems == ["the token answers another challenge"]
