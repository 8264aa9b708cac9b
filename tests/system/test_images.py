"""The default realm images: fetched through the private apt (network), and booted as a
plain QEMU guest (-M virt -cpu max, no CCA) to prove the initramfs and its /init
protocol work.  The boot tests use the default cache (fetched into it if empty)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cosim.images import (
    INIT_MARKER,
    MODULE_FAILED,
    SHELL_EXIT,
    AttestationError,
    FetchOptions,
    ImagesMissing,
    RealmImages,
    attest_param,
    command_param,
    default_cache_dir,
    fetch_images,
    load_images,
    parse_attestation,
    parse_command_status,
)
from cosim.images.apt import Mirror, machine_codename, machine_mirror
from cosim.images.baseline import run_baseline
from cosim.images.errors import AptError, ImagesError

pytestmark = pytest.mark.slow

MACHINE_APT_STATE = (Path("/var/lib/apt/lists"), Path("/var/cache/apt"),
                     Path("/var/lib/dpkg/status"))
UNREACHABLE = "http://127.0.0.1:9/debian"
BOOT_TIMEOUT = 240


def mirror_unreachable() -> str | None:
    """Why a fetch cannot work here, or None."""
    try:
        mirror = machine_mirror(machine_codename())
    except ImagesError as exc:
        return str(exc)
    url = urlsplit(mirror.uri)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=5).close()
    except OSError as exc:
        return f"the mirror {mirror.uri} is unreachable ({exc})"
    return None


def apt_state() -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file of the machine's own apt state."""
    found = {}
    for top in MACHINE_APT_STATE:
        for p in [top, *top.rglob("*")] if top.is_dir() else [top]:
            st = p.lstat()
            found[str(p)] = (st.st_size, st.st_mtime_ns)
    return found


@pytest.fixture(scope="module")
def images() -> RealmImages:
    try:
        return load_images()
    except ImagesMissing:
        reason = mirror_unreachable()
        if reason:
            pytest.skip(f"no images in {default_cache_dir()} and {reason}")
        return fetch_images(FetchOptions(default_cache_dir())).images


@pytest.fixture
def user_cache() -> Iterator[tuple[Path, list[str]]]:
    """A fresh cache directory and the command prefix that runs cosim as a user who is
    not root (nobody) when the tests run as root."""
    top = Path(tempfile.mkdtemp(prefix="cosim-images-"))
    prefix: list[str] = []
    if os.geteuid() == 0 and shutil.which("runuser"):
        nobody = pwd.getpwnam("nobody")
        os.chown(top, nobody.pw_uid, nobody.pw_gid)
        prefix = ["runuser", "-u", "nobody", "--"]
    try:
        yield top / "cache", prefix
    finally:
        shutil.rmtree(top)


def cosim(prefix: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).with_name("cosim"))
    return subprocess.run([*prefix, exe, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HOME": "/nonexistent"} if prefix else None)


def test_fetch_private_apt_offline_rerun(user_cache: tuple[Path, list[str]]) -> None:
    """A cold fetch into an empty cache (as a user who is not root when we are root)
    leaves the machine's apt state alone; re-runs use the cache, also with no network."""
    reason = mirror_unreachable()
    if reason:
        pytest.skip(reason)
    cache, prefix = user_cache
    before = apt_state()
    first = cosim(prefix, "images", "fetch", "--cache", str(cache))
    assert first.returncode == 0, first.stderr
    assert "cosim images: fetched linux " in first.stdout
    imgs = load_images(cache)
    assert imgs.realm_support and imgs.suite == "trixie-backports"
    assert [p.name for p in imgs.modules][-1] == "arm_cca_guest.ko"
    assert imgs.kernel.stat().st_size > 20_000_000
    assert not list((cache / "apt" / "downloads").glob("*.deb")), "downloads are removed"
    assert apt_state() == before, "the machine's apt state changed"

    again = cosim(prefix, "images", "fetch", "--cache", str(cache))
    assert again.returncode == 0 and "cosim images: cached:" in again.stdout
    assert len(again.stdout.splitlines()) == 1 and again.stderr == ""

    keyring = machine_mirror(machine_codename()).keyring or "-"
    offline = cosim(prefix, "images", "fetch", "--cache", str(cache), "--refresh",
                    "--mirror", f"{UNREACHABLE} {keyring}")
    assert offline.returncode == 0, offline.stderr
    assert "offline, using the cache" in offline.stdout and "unreachable" in offline.stdout
    assert load_images(cache) == imgs
    assert apt_state() == before


def test_signatures_are_verified(tmp_path: Path) -> None:
    reason = mirror_unreachable()
    if reason:
        pytest.skip(reason)
    wrong = Path("/usr/share/keyrings/debian-archive-removed-keys.gpg")
    if not wrong.is_file():
        pytest.skip(f"{wrong} (a keyring without the archive's keys) is not installed")
    mirror = Mirror(machine_mirror(machine_codename()).uri, str(wrong))
    with pytest.raises(AptError, match="could not verify the signature"):
        fetch_images(FetchOptions(tmp_path / "cache", mirror=mirror), say=lambda s: None)
    assert not (tmp_path / "cache" / "manifest.json").exists()


def test_missing_suite_is_one_clear_line(tmp_path: Path) -> None:
    reason = mirror_unreachable()
    if reason:
        pytest.skip(reason)
    with pytest.raises(AptError, match="lacks a suite") as info:
        fetch_images(FetchOptions(tmp_path / "cache", suites=("no-such-suite",)),
                     say=lambda s: None)
    assert "\n" not in str(info.value)


def test_boot_runs_the_command_and_powers_off(images: RealmImages) -> None:
    """Plain QEMU: the marker, a command with nasty quoting and its exit status, the
    attestation attempt (fails: no realm), modules, and PSCI SYSTEM_OFF."""
    challenge = bytes(range(64))
    cmd = ("printf '%s|%s\\n' \"it's\" 'a \"b\"'; grep -c ^processor /proc/cpuinfo; "
           "cat /sys/module/tsm_report/initstate; "
           "COSIM_INIT_LIB=1 . /init; hex_to_bin 00ff7f80 | hexdump -C | head -1; exit 3")
    run = run_baseline(images, [attest_param(challenge), command_param(cmd)],
                       timeout=BOOT_TIMEOUT)
    out = run.console
    assert run.returncode == 0, f"QEMU exited with {run.returncode}: {out[-2000:]}"
    assert run.marker_s is not None, out[-2000:]
    after = out[out.index(INIT_MARKER):]
    assert "it's|a \"b\"" in after
    assert "\n2\n" in after, "two vCPUs"
    assert "live" in after, "tsm_report loaded"
    assert "00 ff 7f 80" in after, "busybox's hex_to_bin"
    assert f"{MODULE_FAILED} arm_cca_guest:" in out, "arm-cca-guest fails outside a realm"
    assert parse_command_status(out) == 3
    with pytest.raises(AttestationError, match="could not fetch a token"):
        parse_attestation(out)
    assert challenge.hex() in out


def test_interactive_shell(images: RealmImages) -> None:
    run = run_baseline(images, input_after_marker="echo $((6 * 7)); tty; exit\n",
                       timeout=BOOT_TIMEOUT)
    assert run.returncode == 0, run.console[-2000:]
    after = run.console[run.console.index(INIT_MARKER):]
    assert "\n42\n" in after and "/dev/ttyAMA0" in after, after
    assert SHELL_EXIT in after
