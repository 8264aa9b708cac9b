"""The protocol between the realm's /init and the host: kernel command-line
parameters that /init reads, and the console lines it prints.  Defined once
here; the /init script is rendered from these constants (cosim.images.initramfs)
and the VMM parses the console with the helpers below."""

from __future__ import annotations

import base64
import binascii
import re
from typing import NamedTuple

COMMAND_LINE_SIZE = 2048
"""arm64's COMMAND_LINE_SIZE: the kernel truncates a longer command line."""

# -- kernel command-line parameters read by /init -----------------------------------------
CMD_PARAM = "cosim.cmd"
"""cosim.cmd=BASE64: the shell command line /init runs with `sh -c`, base64-encoded so that
any quoting survives the kernel command line."""
ATTEST_PARAM = "cosim.attest"
"""cosim.attest=HEX: a 64-byte challenge (128 hex digits); /init fetches an attestation
token for it through configfs TSM reports and prints it."""
CHALLENGE_SIZE = 64

# -- console lines printed by /init ---------------------------------------------------------
INIT_MARKER = "cosim-init: ready"
"""Printed once proc, sys, devtmpfs and configfs are mounted and the modules are loaded."""
MODULE_FAILED = "cosim-init: module not loaded:"
"""Prefix of the line printed when a module fails to load (`... NAME: REASON`); on a kernel
booted outside a realm arm_cca_guest fails with it."""
COMMAND_EXIT = "cosim-init: command exited with status"
"""Followed by the exit status of the cosim.cmd command; /init powers off next."""
COMMAND_EXIT_RE = re.compile(r"^cosim-init: command exited with status (\d+)\s*$", re.MULTILINE)
SHELL_EXIT = "cosim-init: shell exited"
"""Printed when the interactive shell (no cosim.cmd) exits; /init powers off next."""
POWEROFF_FAILED = "cosim-init: poweroff failed"
ATTEST_CHALLENGE = "cosim-attest: challenge"
"""Followed by the challenge /init read, as 128 hex digits."""
ATTEST_BEGIN = "cosim-attest: begin"
ATTEST_END = "cosim-attest: end"
"""The token, base64-encoded over one or more lines, sits between these two lines."""
ATTEST_FAILED = "cosim-attest: failed:"
"""Followed by the reason when no token could be fetched."""

_ATTEST_RE = re.compile(
    rf"^{re.escape(ATTEST_CHALLENGE)} (?P<challenge>[0-9a-fA-F]*)\s*$"
    rf".*?^{re.escape(ATTEST_BEGIN)}\s*$(?P<body>.*?)^{re.escape(ATTEST_END)}\s*$",
    re.MULTILINE | re.DOTALL)
_ATTEST_FAILED_RE = re.compile(rf"^{re.escape(ATTEST_FAILED)} ?(?P<reason>.*?)\s*$",
                               re.MULTILINE)


_KERNEL_MESSAGE = re.compile(r"\[ *\d+\.\d{6}\] [^\n]*\n?")
"""A kernel console message ([seconds.micros] text, to the end of its line), which
the kernel may print in the middle of a line /init is writing."""


def without_kernel_messages(console_text: str) -> str:
    """The console text without carriage returns and without the kernel's own
    messages, so that /init's lines are whole again when the kernel printed into
    them (e.g. `cosim-init: ready[   35.04] ima: ...` then the rest of the line)."""
    return _KERNEL_MESSAGE.sub("", console_text.replace("\r", ""))


class AttestationError(ValueError):
    """The console shows no attestation token, or a malformed one."""


def command_param(cmd: str) -> str:
    """The kernel command-line parameter that makes /init run `sh -c CMD`."""
    value = base64.b64encode(cmd.encode()).decode("ascii")
    param = f"{CMD_PARAM}={value}"
    if len(param) >= COMMAND_LINE_SIZE:
        raise ValueError(f"command too long for the kernel command line: {len(param)} "
                         f"characters encoded, the limit is {COMMAND_LINE_SIZE - 1}")
    return param


def decode_command_param(param: str) -> str:
    """The command carried by a cosim.cmd=... parameter (inverse of command_param)."""
    name, sep, value = param.partition("=")
    if name != CMD_PARAM or not sep:
        raise ValueError(f"not a {CMD_PARAM}= parameter: {param!r}")
    return base64.b64decode(value, validate=True).decode()


def attest_param(challenge: bytes) -> str:
    """The kernel command-line parameter that asks /init for a token for CHALLENGE."""
    if len(challenge) != CHALLENGE_SIZE:
        raise ValueError(f"an attestation challenge is {CHALLENGE_SIZE} bytes, "
                         f"not {len(challenge)}")
    return f"{ATTEST_PARAM}={challenge.hex()}"


class Attestation(NamedTuple):
    challenge: bytes
    token: bytes


def parse_attestation(console_text: str) -> Attestation:
    """The challenge and the token bytes of the first attestation block in the console
    output.  Raises AttestationError with /init's reason when it reported a failure, or
    when there is no block or it is malformed.  Carriage returns and the kernel's own
    messages (which may land inside /init's lines) are ignored."""
    text = without_kernel_messages(console_text)
    m = _ATTEST_RE.search(text)
    if m is None:
        failed = _ATTEST_FAILED_RE.search(text)
        if failed is not None:
            raise AttestationError(f"the guest could not fetch a token: {failed['reason']}")
        raise AttestationError("no attestation block on the console "
                               f"(no '{ATTEST_CHALLENGE}' ... '{ATTEST_END}' lines)")
    hex_challenge = m["challenge"]
    if len(hex_challenge) != 2 * CHALLENGE_SIZE:
        raise AttestationError(f"the challenge echoed by the guest has {len(hex_challenge)} "
                               f"hex digits, not {2 * CHALLENGE_SIZE}")
    body = "".join(m["body"].split())
    try:
        token = base64.b64decode(body, validate=True)
    except binascii.Error as exc:
        raise AttestationError(f"the token between the markers is not base64: {exc}") from None
    if not token:
        raise AttestationError("the token between the markers is empty")
    return Attestation(bytes.fromhex(hex_challenge), token)


def parse_command_status(console_text: str) -> int | None:
    """The exit status of the cosim.cmd command, or None if /init did not report one."""
    m = COMMAND_EXIT_RE.search(without_kernel_messages(console_text))
    return int(m.group(1)) if m else None
