"""COSE_Sign1 with ES384 and EC2 COSE_Key (RFC 9052/9053), on cbor2 and cryptography.

Only what CCA attestation tokens use: a tagged COSE_Sign1 whose protected
header is ``{alg: ES384}``, an empty unprotected header, an attached payload
and a raw ``r || s`` signature; and the P-384 public key as an EC2 COSE_Key.
pycose would add a dependency for these few lines (see docs/rmm.md).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

COSE_SIGN1_TAG = 18
HEADER_ALG = 1
ALG_ES384 = -35
SIGNATURE1_CONTEXT = "Signature1"

KEY_KTY = 1
KTY_EC2 = 2
KEY_CRV = -1
CRV_P384 = 2
KEY_X = -2
KEY_Y = -3

P384_SIZE = 48
P384_ORDER = int(
    "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    16,
)
SIGNATURE_SIZE = 2 * P384_SIZE


class CoseError(ValueError):
    """Malformed CBOR/COSE or a signature that does not verify."""


def strict_loads(data: bytes) -> Any:
    """Decode exactly one CBOR item that spans all of `data`."""
    if not isinstance(data, bytes | bytearray):
        raise CoseError(f"expected a byte string, got {type(data).__name__}")
    fp = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(fp).decode()
    except Exception as exc:  # cbor2 raises several types for malformed input
        raise CoseError(f"not well-formed CBOR: {exc}") from exc
    if fp.tell() != len(data):
        raise CoseError(f"{len(data) - fp.tell()} bytes after the CBOR item")
    return item


# -- keys -------------------------------------------------------------------------------


def load_private_key(data: bytes) -> ec.EllipticCurvePrivateKey:
    """A P-384 private key from a 48-byte big-endian scalar or from PEM."""
    if data.lstrip().startswith(b"-----BEGIN"):
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp384r1":
            raise ValueError("the attestation key must be an ECDSA P-384 key")
        return key
    if len(data) != P384_SIZE:
        raise ValueError(f"a raw P-384 private key is {P384_SIZE} bytes, not {len(data)}")
    scalar = int.from_bytes(data, "big")
    if not 1 <= scalar < P384_ORDER:
        raise ValueError("the P-384 private scalar is out of range")
    return ec.derive_private_key(scalar, ec.SECP384R1())


def private_key_from_seed(seed: bytes) -> ec.EllipticCurvePrivateKey:
    """A P-384 key from at least 64 uniformly random bytes (bias below 2**-128)."""
    scalar = int.from_bytes(seed, "big") % (P384_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP384R1())


def encode_cose_key(key: ec.EllipticCurvePublicKey) -> bytes:
    """The EC2 COSE_Key {kty: EC2, crv: P-384, x, y} of a P-384 public key."""
    point = key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    x, y = point[1 : 1 + P384_SIZE], point[1 + P384_SIZE :]
    return cbor2.dumps({KEY_KTY: KTY_EC2, KEY_CRV: CRV_P384, KEY_X: x, KEY_Y: y})


def decode_cose_key(data: bytes) -> ec.EllipticCurvePublicKey:
    key = strict_loads(data)
    if not isinstance(key, Mapping):
        raise CoseError("a COSE_Key is a map")
    if key.get(KEY_KTY) != KTY_EC2 or key.get(KEY_CRV) != CRV_P384:
        raise CoseError("the COSE_Key is not an EC2 P-384 key")
    x, y = key.get(KEY_X), key.get(KEY_Y)
    if not (isinstance(x, bytes) and isinstance(y, bytes)) or {len(x), len(y)} != {P384_SIZE}:
        raise CoseError("the COSE_Key coordinates are not 48-byte strings")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP384R1(), b"\x04" + x + y)
    except ValueError as exc:
        raise CoseError(f"the COSE_Key is not a point on P-384: {exc}") from exc


# -- COSE_Sign1 ---------------------------------------------------------------------------

_PROTECTED_ES384 = cbor2.dumps({HEADER_ALG: ALG_ES384})


def _ecdsa() -> ec.ECDSA:
    try:  # RFC 6979 signatures (cryptography >= 44) make tokens reproducible
        return ec.ECDSA(hashes.SHA384(), deterministic_signing=True)  # type: ignore[call-arg]
    except TypeError:
        return ec.ECDSA(hashes.SHA384())


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps([SIGNATURE1_CONTEXT, protected, b"", payload])


def sign1(payload: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """A tagged COSE_Sign1 over `payload`, ES384."""
    der = key.sign(_sig_structure(_PROTECTED_ES384, payload), _ecdsa())
    r, s = decode_dss_signature(der)
    signature = r.to_bytes(P384_SIZE, "big") + s.to_bytes(P384_SIZE, "big")
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [_PROTECTED_ES384, {}, payload, signature]))


@dataclass(frozen=True)
class Sign1:
    protected: bytes
    unprotected: Mapping[Any, Any]
    payload: bytes
    signature: bytes

    @property
    def algorithm(self) -> Any:
        header = strict_loads(self.protected) if self.protected else {}
        if not isinstance(header, Mapping):
            raise CoseError("the protected header is not a map")
        return header.get(HEADER_ALG)

    def verify(self, key: ec.EllipticCurvePublicKey) -> None:
        if self.algorithm != ALG_ES384:
            raise CoseError(f"unsupported COSE algorithm {self.algorithm!r} (expected ES384)")
        if len(self.signature) != SIGNATURE_SIZE:
            raise CoseError(f"an ES384 signature is {SIGNATURE_SIZE} bytes")
        r = int.from_bytes(self.signature[:P384_SIZE], "big")
        s = int.from_bytes(self.signature[P384_SIZE:], "big")
        try:
            key.verify(
                encode_dss_signature(r, s),
                _sig_structure(self.protected, self.payload),
                ec.ECDSA(hashes.SHA384()),
            )
        except InvalidSignature:
            raise CoseError("the signature does not verify") from None


def decode_sign1(data: bytes) -> Sign1:
    """Parse a tagged COSE_Sign1 with an attached payload (no verification)."""
    item = strict_loads(data)
    if not isinstance(item, cbor2.CBORTag) or item.tag != COSE_SIGN1_TAG:
        raise CoseError("not a tagged COSE_Sign1 (CBOR tag 18)")
    body = item.value
    if not isinstance(body, list | tuple) or len(body) != 4:
        raise CoseError("a COSE_Sign1 is an array of 4 items")
    protected, unprotected, payload, signature = body
    if not isinstance(protected, bytes) or not isinstance(unprotected, Mapping):
        raise CoseError("malformed COSE_Sign1 headers")
    if not isinstance(payload, bytes) or not isinstance(signature, bytes):
        raise CoseError("the COSE_Sign1 payload and signature must be byte strings")
    return Sign1(protected, unprotected, payload, signature)
