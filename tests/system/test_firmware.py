"""Issue 13: the hoststub's polling channel, and a user's firmware (TF-A +
TF-RMM) in place of our monitor and RMM, compared with ours.

The polling channel runs here with our own monitor (CI has no third-party
firmware): it must give the same results as the SiP channel.  The tests
against a real firmware need COSIM_FIRMWARE=FLASH (docs/firmware.md) and are
skipped with that reason without it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cosim.compare.normalise import normalise
from cosim.compare.record import Recording
from cosim.compare.report import compare
from cosim.compare.run import platform_config, record, run_compare
from cosim.images import ImagesMissing, load_images
from cosim.rmm.abi import RmiFid
from cosim.trace import Trace

V1_0 = 0x1_0000


def _compare_channels(scenario: str) -> tuple[Recording, Recording]:
    sip = platform_config(None, "qemu-system-aarch64")
    poll = platform_config(None, "qemu-system-aarch64")
    poll.host_channel = "poll"
    return record(scenario, sip, "sip", Trace()), record(scenario, poll, "poll", Trace())


def _same(a: Recording, b: Recording, scenario: str) -> None:
    assert not a.error and not b.error, (a.error, b.error)
    report = compare(scenario, a.target, normalise(a), b.target, normalise(b))
    assert report.calls > 0 or scenario == "linux"
    assert report.values > 20
    assert not report.unexplained and not report.problems, report.text()


def test_poll_channel_serves_the_stub_with_our_monitor(make_platform) -> None:
    p = make_platform(cpus=2, host_channel="poll")
    assert p.channel is not None
    before = p.channel.calls
    assert p.stub.smc(RmiFid.VERSION, V1_0).ret[:3] == (0, V1_0, V1_0)
    p.stub.start_secondaries()
    assert p.stub.smc(RmiFid.VERSION, V1_0, cpu=1).x0 == 0
    assert p.channel.calls > before
    assert p.channel.counter_hz == p.counter_hz


def test_poll_channel_realm_payload_same_as_sip() -> None:
    sip, poll = _compare_channels("realm-payload")
    assert sip.values["RIM is the host's prediction"] == "yes"
    _same(sip, poll, "realm-payload")


@pytest.mark.slow
def test_poll_channel_linux_realm_same_as_sip() -> None:
    try:
        load_images()
    except ImagesMissing as exc:
        pytest.skip(f"the realm images are not fetched: {exc}")
    sip, poll = _compare_channels("linux")
    for rec in (sip, poll):
        assert rec.values["outcome"] == "off", rec.values
        assert rec.values["command status"] == "0x0", rec.values
        assert rec.values.get("realm signature verifies") == "yes", rec.values
        assert rec.values["granules left delegated"] == "0x0"
        assert rec.values["command output"].startswith("Linux"), rec.values
    assert sip.values["RIM (host's prediction)"] == poll.values["RIM (host's prediction)"]
    assert sip.values["realm.initial_measurement"] == poll.values["realm.initial_measurement"]
    _same(sip, poll, "linux")


# -- against the user's firmware ------------------------------------------------------------


def test_firmware_boots_with_the_hoststub_as_bl33(make_platform, firmware_image: Path) -> None:
    p = make_platform(cpus=2, firmware=firmware_image)
    assert p.monitor is None and p.rmm is None and p.gpt is None
    assert p.stub.smc(RmiFid.VERSION, V1_0).x0 == 0, "the firmware's RMM answers RMI 1.0"
    p.stub.start_secondaries()
    assert p.stub.smc(RmiFid.VERSION, V1_0, cpu=1).x0 == 0
    assert "hoststub: ready" in p.machine.console.text()


def test_the_firmware_gpt_guards_a_delegated_granule(make_platform,
                                                     firmware_image: Path) -> None:
    """The GPT is the firmware's own: after RMI_GRANULE_DELEGATE the host's load
    of the granule takes a granule protection fault (QEMU's GPC), which the
    hoststub records; after UNDELEGATE it reads again."""
    p = make_platform(firmware=firmware_image)
    pa = p.pool.alloc()
    p.stub.store(pa, 0x1234)
    assert p.stub.smc(RmiFid.GRANULE_DELEGATE, pa).x0 == 0
    res = p.stub.load(pa)
    assert res.faulted, "the firmware's GPT let NS-EL2 read a Realm granule"
    assert res.fault_far == pa
    assert p.stub.smc(RmiFid.GRANULE_UNDELEGATE, pa).x0 == 0
    res = p.stub.load(pa)
    assert not res.faulted and res.x0 == 0, "undelegation scrubs the granule"


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["rmi-lifecycle", "realm-payload"])
def test_compare_with_the_firmware(scenario: str, firmware_image: Path) -> None:
    report = run_compare(scenario, firmware_image, "qemu-system-aarch64", Trace())
    assert report.calls > 50
    assert not report.problems, report.text()
    assert not report.unexplained, report.text()


def test_cosim_run_firmware_and_pack(firmware_image: Path, tmp_path: Path) -> None:
    out = tmp_path / "flash.bin"
    cosim = [sys.executable, "-m", "cosim.cli"]
    proc = subprocess.run([*cosim, "firmware", "pack", str(firmware_image), "-o", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([*cosim, "firmware", "show", str(out)], capture_output=True,
                          text=True, timeout=60)
    assert "our hoststub, poll channel" in proc.stdout
    proc = subprocess.run([*cosim, "run", "--firmware", str(out), "--timeout", "5"],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 124, proc.stderr
    assert "hoststub: ready" in proc.stdout
    assert "GPT: the firmware's" in proc.stderr


@pytest.mark.slow
def test_realm_run_linux_on_the_firmware(firmware_image: Path) -> None:
    """`cosim realm run --firmware`: the Linux realm boots on the firmware's RMM,
    runs the command, its token verifies (realm part and binding) and every
    granule is undelegated at the end."""
    try:
        load_images()
    except ImagesMissing as exc:
        pytest.skip(f"the realm images are not fetched: {exc}")
    proc = subprocess.run([sys.executable, "-m", "cosim.cli", "realm", "run", "--firmware",
                           str(firmware_image), "--", "uname -s"], capture_output=True,
                          text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Linux" in proc.stdout
    assert "GPT the firmware's (QEMU's GPC)" in proc.stderr
    assert "realm signature and platform binding verified" in proc.stderr
    assert "0 at the end" in proc.stderr
