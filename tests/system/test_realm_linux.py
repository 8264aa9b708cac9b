"""Debian's stock arm64 kernel booted as a realm through the KVM-style VMM
(real QEMU, real RMI from NS-EL2), and the user's mistakes around it.

The boots use the default images (`cosim images fetch`, run by ci/install.sh);
they are skipped with the reason when the images are not there."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from cosim.config import GptMode, PlatformConfig
from cosim.host.attest import check_realm_token
from cosim.host.console import RealmConsole
from cosim.host.vm import RealmVmConfig
from cosim.images import (
    ImagesMissing,
    RealmImages,
    attest_param,
    command_param,
    load_images,
    parse_attestation,
    parse_command_status,
)
from cosim.realm_run import DEFAULT_PARAMS, platform_ram_for, realm_session
from cosim.trace import Trace

pytestmark = pytest.mark.slow
MIB = 1 << 20
BOOT_TIMEOUT = 900


@pytest.fixture(scope="module")
def images() -> RealmImages:
    try:
        return load_images()
    except ImagesMissing as exc:
        pytest.skip(f"the realm images are not fetched: {exc}")


def cosim(*args: str, timeout: float = BOOT_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cosim.cli", *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_main_job_two_vcpus_runs_a_command_attests_and_tears_down(images: RealmImages) -> None:
    """`cosim realm run` end to end: SMP realm, the command's output on the
    console, the guest's own attestation token verified by the host, the
    exits summarised, every granule undelegated."""
    proc = cosim("realm", "run", "--cpus", "2", "--", "grep -c ^processor /proc/cpuinfo; "
                 "dmesg | grep -i -E 'rsi|realm'")
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    out = proc.stdout.replace("\r", "")
    assert re.search(r"^2$", out, re.MULTILINE), out[-2000:]
    assert "RME: Using RSI version 1.0" in out
    assert "cosim-init: command exited with status 0" in out
    summary = proc.stderr
    assert "signatures verified, challenge and RIM match" in summary
    assert re.search(r"granules delegated: [\d,]+ at peak, 0 at the end", summary)
    assert "PSCI_CPU_ON" in summary and "sgi" in summary
    assert "GPT violations" not in summary and "GPT hw" in summary
    assert images.version in summary


def test_plugin_gpt_boot_and_a_challenge_of_our_own(images: RealmImages) -> None:
    """One vCPU with the plugin checking every access: no violation in the
    whole boot; the token answers the challenge we sent and carries the RIM the
    VMM computed, and the same token is refused for another challenge."""
    challenge = bytes(range(64))
    console = RealmConsole()
    cfg = PlatformConfig(cpus=1, ram_size=platform_ram_for(512 * MIB), gpt=GptMode.PLUGIN)
    vm_cfg = RealmVmConfig(kernel=images.kernel, initrd=images.initrd, cpus=1, mem=512 * MIB,
                           cmdline=" ".join([DEFAULT_PARAMS, "quiet", command_param("echo hi"),
                                             attest_param(challenge)]))
    violations: list[object] = []

    def report(session) -> None:  # type: ignore[no-untyped-def]
        guard = session.platform.guard
        violations.extend(guard.violations if guard else [])

    session = realm_session(cfg, vm_cfg, console, Trace(history=0), timeout=BOOT_TIMEOUT,
                            report=report)
    text = console.text()
    assert session.verdict.result.outcome == "off", (session.verdict.result, console.tail(20))
    assert session.verdict.left == [] and not session.verdict.problems
    assert violations == []
    assert parse_command_status(text) == 0 and "hi" in text.splitlines()
    block = parse_attestation(text)
    rim = session.vm.rim[:session.vm.realm.rim_len]
    good = check_realm_token(block.token, challenge, rim)
    assert good.ok, good.problems
    wrong = check_realm_token(block.token, bytes(64), rim)
    assert wrong.problems == ["the token answers another challenge"]
    other_rim = check_realm_token(block.token, challenge, bytes(len(rim)))
    assert len(other_rim.problems) == 1 and "RIM" in other_rim.problems[0]


@pytest.mark.parametrize(("args", "message"), [
    (["--kernel", "/nonexistent/Image"], "kernel /nonexistent/Image does not exist"),
    (["--initrd", "/nonexistent/initrd"], "initrd /nonexistent/initrd does not exist"),
    (["--mem", "64M"], "a realm needs 128M"),
    (["--cpus", "9"], "--cpus must be 1..8"),
    (["--realm-pv", "xyz"], "not hexadecimal"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    proc = cosim("realm", "run", *args, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_not_an_arm64_image_and_a_too_small_realm(tmp_path: Path) -> None:
    junk = tmp_path / "Image"
    junk.write_bytes(os.urandom(4096))
    proc = cosim("realm", "run", "--kernel", str(junk), timeout=60)
    assert proc.returncode == 2 and "is not an arm64 kernel Image" in proc.stderr
    big = tmp_path / "BigImage"
    header = struct.pack("<IIQQQQQQ4sI", 0, 0, 0, 200 * MIB, 0b010, 0, 0, 0, b"ARM\x64", 0)
    big.write_bytes(header + bytes(4096 - len(header)))
    proc = cosim("realm", "run", "--kernel", str(big), "--mem", "128M", "--no-attest",
                 timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "--mem 128M is too small" in proc.stderr and "give at least" in proc.stderr


def nonrealm_kernel() -> Path:
    """Debian 12's 6.1 arm64 kernel (no realm support), fetched once into a cache
    of its own beside the default one."""
    from cosim.images import FetchOptions, fetch_images

    home_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    cache = home_cache / "cca-cosim-debian12-kernel"
    try:
        return load_images(cache).kernel
    except ImagesMissing:
        pass
    try:
        fetch_images(FetchOptions(cache=cache, suites=("bookworm",), check=False))
        return load_images(cache).kernel
    except Exception as exc:  # no network, no such package: the test cannot run here
        pytest.skip(f"Debian 12's arm64 kernel cannot be fetched here: {exc}")


def test_a_kernel_without_realm_support_is_detected() -> None:
    """Debian 12's 6.1 kernel boots into the realm but never calls RSI: cosim
    says so, stops, and leaves nothing delegated."""
    kernel = nonrealm_kernel()
    proc = cosim("realm", "run", "--kernel", str(kernel), "--cpus", "1", "--rsi-timeout",
                 "30", "--no-attest", "--timeout", "600")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "no realm support" in proc.stderr
    assert re.search(r"granules delegated: [\d,]+ at peak, 0 at the end", proc.stderr)


def test_closed_input_ends_the_shell_and_the_run(images: RealmImages) -> None:
    """No command and no terminal (CI, `docker run` without -t): the end of the
    input reaches the guest's shell as end of file, the shell exits, /init
    powers the realm off, and the run ends with status 0 instead of waiting."""
    proc = cosim("realm", "run", "--cpus", "1", "--no-attest", "--params", "quiet")
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-2000:]
    assert "cosim-init: shell exited" in proc.stdout
    assert "PSCI SYSTEM_OFF" in proc.stderr
    assert re.search(r"granules delegated: [\d,]+ at peak, 0 at the end", proc.stderr)


def test_piped_input_reaches_the_command_and_ends_with_end_of_file(images: RealmImages) -> None:
    """`printf ... | cosim realm run -- CMD`: the command reads the piped lines
    from its console (none lost to the driver's start-up drain of the FIFO)
    and then end of file, as a program run with a pipe on its stdin does."""
    proc = subprocess.run([sys.executable, "-m", "cosim.cli", "realm", "run", "--cpus", "1",
                           "--no-attest", "--params", "quiet", "--",
                           'read first; echo "first:$first"; wc -l; echo "wc ended"'],
                          input="line one\nline two\nline three\n", capture_output=True,
                          text=True, timeout=BOOT_TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-2000:]
    out = proc.stdout.replace("\r", "")
    assert "first:line one" in out
    assert re.search(r"^2$", out, re.MULTILINE), out[-1000:]
    assert "wc ended" in out and "command exited with status 0" in out


def test_guest_crash_ends_the_run_and_tears_down(images: RealmImages) -> None:
    """A kernel panic (panic=-1 makes the guest ask for a reset at once) ends
    the run with a failure status, and still every granule comes back."""
    proc = cosim("realm", "run", "--cpus", "1", "--no-attest", "--params", "quiet panic=-1",
                 "--", "echo c > /proc/sysrq-trigger")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "sysrq: Trigger a crash" in proc.stdout or "Kernel panic" in proc.stdout
    assert "PSCI SYSTEM_RESET" in proc.stderr
    assert re.search(r"granules delegated: [\d,]+ at peak, 0 at the end", proc.stderr)


def test_ctrl_c_tears_the_realm_down(images: RealmImages) -> None:
    """SIGINT while the realm runs: the run stops, the realm is torn down to
    the last granule, exit status 130."""
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "cosim.cli", "realm", "run", "--cpus", "2",
                             "--no-attest", "--params", "quiet", "--", "sleep 600"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + BOOT_TIMEOUT
        for line in proc.stdout:
            if "cosim-init: ready" in line:
                break
            assert time.monotonic() < deadline, "the realm did not reach /init"
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=BOOT_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err
    assert re.search(r"granules delegated: [\d,]+ at peak, 0 at the end", err), err[-2000:]
