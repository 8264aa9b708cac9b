"""A CCA attestation token's claims as flat, comparable values, without
verifying its signatures (a user's firmware signs with keys we do not know;
whether each signature verifies is itself a value)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cbor2

from ..rmm.abi import CCA_TOKEN_TAG, CcaTokenKey, PlatformClaim, RealmClaim, SwComponentClaim
from ..rmm.claims import digest
from ..rmm.cose import CoseError, decode_cose_key, decode_sign1


def token_values(token: bytes) -> dict[str, object]:
    """"realm.<claim>" and "platform.<claim>" -> value, plus whether the realm
    signature verifies and the platform token is bound to the realm key."""
    out: dict[str, object] = {}
    try:
        outer = cbor2.loads(token)
    except Exception as exc:  # any decoding failure is a value to compare
        return {"token": f"not CBOR: {exc}"}
    if not isinstance(outer, cbor2.CBORTag) or outer.tag != CCA_TOKEN_TAG \
            or not isinstance(outer.value, Mapping):
        return {"token": "not a CCA token"}
    realm_raw = outer.value.get(CcaTokenKey.REALM)
    platform_raw = outer.value.get(CcaTokenKey.PLATFORM)
    realm: Mapping[Any, Any] = {}
    if isinstance(realm_raw, bytes):
        try:
            msg = decode_sign1(realm_raw)
            realm = cbor2.loads(msg.payload)
            out.update(_flat("realm", realm, RealmClaim))
            try:
                msg.verify(decode_cose_key(realm[RealmClaim.PUBLIC_KEY]))
                out["realm signature verifies"] = True
            except (CoseError, KeyError, ValueError, TypeError) as exc:
                out["realm signature verifies"] = f"no: {exc}"
        except (CoseError, ValueError) as exc:
            out["realm"] = f"undecodable: {exc}"
    if isinstance(platform_raw, bytes):
        try:
            pmsg = decode_sign1(platform_raw)
            platform = cbor2.loads(pmsg.payload)
            out.update(_flat("platform", platform, PlatformClaim))
            key = realm.get(RealmClaim.PUBLIC_KEY)
            algo = realm.get(RealmClaim.PUBLIC_KEY_HASH_ALGO_ID)
            if isinstance(key, bytes) and isinstance(algo, str):
                out["platform token bound to the realm key"] = (
                    platform.get(PlatformClaim.CHALLENGE) == digest(algo, key))
        except (CoseError, ValueError) as exc:
            out["platform"] = f"undecodable: {exc}"
    return out


EXTRA_REALM_CLAIMS = {44243: "mec_policy"}
"""Realm claims newer than RMM v1.0 that an RMM may add (RMM v1.1's MEC policy)."""


def _flat(prefix: str, claims: Any, names: type) -> dict[str, object]:
    out: dict[str, object] = {}
    if not isinstance(claims, Mapping):
        return {prefix: f"not a map: {claims!r}"}
    for key, value in claims.items():
        try:
            name = names(key).name.lower()
        except ValueError:
            name = EXTRA_REALM_CLAIMS.get(key, str(key)) if names is RealmClaim else str(key)
        if key == PlatformClaim.SW_COMPONENTS and names is PlatformClaim \
                and isinstance(value, list):
            for i, comp in enumerate(value):
                out.update(_flat(f"{prefix}.sw_components[{i}]", comp, SwComponentClaim))
            continue
        if isinstance(value, list):
            for i, item in enumerate(value):
                out[f"{prefix}.{name}[{i}]"] = item
            continue
        out[f"{prefix}.{name}"] = value
    return out
