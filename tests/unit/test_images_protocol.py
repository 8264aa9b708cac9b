"""The /init protocol: command and attestation parameters, console parsers, and the
rendered /init script run with the host's sh."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosim.images import initramfs, protocol
from cosim.images.protocol import (
    ATTEST_BEGIN,
    ATTEST_CHALLENGE,
    ATTEST_END,
    ATTEST_FAILED,
    COMMAND_LINE_SIZE,
    AttestationError,
    attest_param,
    command_param,
    decode_command_param,
    parse_attestation,
    parse_command_status,
)

NASTY = [
    "echo 'single' \"double\" `backtick` $(sub) $HOME \\back\\slash",
    "printf '%s\\n' \"a  b\" ; exit 7",
    "cat <<EOF\nline one\n  line two\nEOF",
    "echo café ünïcode — ✓",
    "x='it'\"'\"'s'; echo \"$x\" && false || echo \"fallback\" # comment = here",
    "",
]


@pytest.mark.parametrize("cmd", NASTY)
def test_command_param_round_trip(cmd: str) -> None:
    param = command_param(cmd)
    assert param.startswith(protocol.CMD_PARAM + "=")
    assert not re.search(r"\s|\"", param), "must be one kernel command-line word"
    assert decode_command_param(param) == cmd


@given(st.text(max_size=300))
def test_command_param_round_trip_any_text(cmd: str) -> None:
    assert decode_command_param(command_param(cmd)) == cmd


def test_command_param_too_long() -> None:
    with pytest.raises(ValueError, match="too long for the kernel command line"):
        command_param("x" * COMMAND_LINE_SIZE)


def test_attest_param() -> None:
    challenge = bytes(range(64))
    assert attest_param(challenge) == f"{protocol.ATTEST_PARAM}={challenge.hex()}"
    with pytest.raises(ValueError, match="64 bytes, not 63"):
        attest_param(bytes(63))


def _console(challenge: bytes, token: bytes, noise: str = "") -> str:
    b64 = base64.encodebytes(token).decode()   # wrapped at 76 columns, like busybox
    return (f"[    1.0] boot\r\n{protocol.INIT_MARKER}\r\n{ATTEST_CHALLENGE} {challenge.hex()}\r\n"
            f"{noise}{ATTEST_BEGIN}\r\n{b64}{ATTEST_END}\r\nafter\n")


def test_parse_attestation() -> None:
    challenge, token = bytes(range(64)), bytes(range(256)) * 9
    got = parse_attestation(_console(challenge, token))
    assert got == (challenge, token)
    got_challenge, got_token = got
    assert (got_challenge, got_token) == (challenge, token)


def test_kernel_messages_inside_init_lines_are_ignored() -> None:
    """The kernel prints when it likes, also into the middle of a line /init
    writes (seen: `challenge <hex>[   35.116888] evm: ...` then the newline)."""
    challenge, token = bytes(range(64)), bytes(range(200))
    text = _console(challenge, token).replace(
        challenge.hex() + "\r\n",
        challenge.hex() + "[   35.116888] evm: security.SMACK64 (disabled)\r\n\r\n")
    text = text.replace(protocol.INIT_MARKER + "\r\n", protocol.INIT_MARKER
                        + "[   35.046047] ima: No TPM chip found!\r\n\r\n")
    text += "cosim-init: command exited with status 3[  40.000001] reboot\r\n\r\n"
    assert parse_attestation(text) == (challenge, token)
    assert protocol.parse_command_status(text) == 3


def test_parse_attestation_failure_reason() -> None:
    text = (f"{ATTEST_CHALLENGE} {'ab' * 64}\n{ATTEST_FAILED} mkdir /sys/kernel/config/tsm/"
            "report/cosim.1: No such device or address\n")
    with pytest.raises(AttestationError, match="No such device or address"):
        parse_attestation(text)


@pytest.mark.parametrize("text, message", [
    ("nothing here\n", "no attestation block"),
    (f"{ATTEST_CHALLENGE} abcd\n{ATTEST_BEGIN}\nAAAA\n{ATTEST_END}\n", "has 4 hex digits"),
    (f"{ATTEST_CHALLENGE} {'00' * 64}\n{ATTEST_BEGIN}\n@@@@\n{ATTEST_END}\n", "not base64"),
    (f"{ATTEST_CHALLENGE} {'00' * 64}\n{ATTEST_BEGIN}\n{ATTEST_END}\n", "empty"),
])
def test_parse_attestation_malformed(text: str, message: str) -> None:
    with pytest.raises(AttestationError, match=message):
        parse_attestation(text)


def test_parse_command_status() -> None:
    assert parse_command_status(f"x\r\n{protocol.COMMAND_EXIT} 42\r\n") == 42
    assert parse_command_status("no status\n") is None


# -- the /init script -------------------------------------------------------------------------


@pytest.fixture
def init_script(tmp_path: Path) -> Path:
    path = tmp_path / "init"
    path.write_text(initramfs.render_init(["configfs.ko", "tsm_report.ko", "arm_cca_guest.ko"]))
    return path


def test_init_has_no_placeholder_left_and_uses_the_constants(init_script: Path) -> None:
    text = init_script.read_text()
    assert not re.search(r"@[A-Z_]+@", text)
    for name in ("INIT_MARKER", "ATTEST_BEGIN", "ATTEST_END", "ATTEST_CHALLENGE",
                 "ATTEST_FAILED", "COMMAND_EXIT", "SHELL_EXIT", "MODULE_FAILED",
                 "CMD_PARAM", "ATTEST_PARAM"):
        assert getattr(protocol, name) in text, name
    assert 'MODULES="configfs.ko tsm_report.ko arm_cca_guest.ko"' in text
    assert text.startswith("#!/bin/busybox sh\n")


def test_init_is_valid_sh(init_script: Path) -> None:
    out = subprocess.run(["sh", "-n", str(init_script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def _run_function(init_script: Path, call: str, cmdline: str = "") -> bytes:
    cmdline_file = init_script.with_name("cmdline")
    cmdline_file.write_text(cmdline + "\n")
    script = f'COSIM_INIT_LIB=1; . "{init_script}"; {call}'
    out = subprocess.run(["sh", "-c", script], capture_output=True,
                         env={"COSIM_CMDLINE": str(cmdline_file), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_init_hex_to_bin(init_script: Path) -> None:
    challenge = bytes(range(256))
    assert _run_function(init_script, f"hex_to_bin {challenge.hex()}") == challenge
    assert _run_function(init_script, "hex_to_bin 00FF417f") == b"\x00\xffA\x7f"


def test_init_reads_the_kernel_command_line(init_script: Path) -> None:
    cmd = "echo \"it's\" * $HOME"
    line = f"console=ttyAMA0 {command_param(cmd)} quiet {attest_param(bytes(64))} x=*"
    got = _run_function(init_script, f"set -f; cmdline_value {protocol.CMD_PARAM}", line)
    assert base64.b64decode(got).decode() == cmd
    got = _run_function(init_script, f"set -f; cmdline_value {protocol.ATTEST_PARAM}", line)
    assert got == b"00" * 64
    assert _run_function(init_script, "set -f; cmdline_value cosim.none", line) == b""
