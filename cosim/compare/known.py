"""Differences the RMM specification allows between two correct RMMs (and
between our simulated platform and a real firmware), by the key they show
up under in a comparison.  Each says why; docs/firmware.md lists them.  A
difference that matches none of these is "unexplained"."""

from __future__ import annotations

import re

KNOWN: list[tuple[str, str]] = [
    (r"^RMI_REC_AUX_COUNT\(",
     "how many auxiliary granules a REC needs is the RMM's choice (RMM spec: "
     "RMI_REC_AUX_COUNT); the calls that delegate them are left out of the comparison"),
    (r"^interrupt-driven exit reasons seen$",
     "whether a guest waits (WFI) or is interrupted at a given moment depends on timing"),
    (r"^attestation token size bound$",
     "RSI_ATTESTATION_TOKEN_INIT returns an upper bound of the token size, which depends "
     "on the RMM's encoding and the platform token"),
    (r"^token size$",
     "the token's size depends on the platform token, the keys and the signatures"),
    (r"^realm\.public_key$",
     "the Realm Attestation Key is the platform's (derived by EL3 / the RMM), not the realm's"),
    (r"^platform\.",
     "the platform token comes from EL3: TF-A's qemu platform returns a fixed sample token, "
     "ours is simulated by the Python platform"),
    (r"^realm\.mec_policy$",
     "TF-RMM v0.8.0 adds the realm claim 44243 (MEC policy, \"shared\") of RMM spec v1.1; "
     "RMM v1.0 defines no such claim, and a verifier ignores claims it does not know"),
    (r"^platform token bound to the realm key$",
     "TF-A's qemu sample platform token is not bound to the realm key (it is a fixed token)"),
]


def explain(key: str) -> str | None:
    """Why `key` may differ, or None when nothing allows it."""
    for pattern, why in KNOWN:
        if re.search(pattern, key):
            return why
    return None
