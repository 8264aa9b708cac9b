"""System tests boot real QEMU.  Every test must leave no process and no file
behind; the autouse fixture below checks that after each test."""

from __future__ import annotations

import glob
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cosim.config import PlatformConfig
from cosim.platform import Platform
from cosim.trace import Trace


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/system" in str(item.fspath):
            item.add_marker(pytest.mark.system)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    """Keep each phase's report on the item, so fixtures can tell a failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def save_failure_traces(item: pytest.Item, platforms: list[Platform]) -> None:
    """With COSIM_RESULTS set (CI, the Docker image), a failed test leaves the
    trace of each platform it started in $COSIM_RESULTS/traces/, as JSON lines
    for `cosim trace`."""
    results = os.environ.get("COSIM_RESULTS")
    report = getattr(item, "rep_call", None)
    if not results or report is None or not report.failed:
        return
    out = Path(results) / "traces"
    out.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)
    for i, p in enumerate(platforms):
        with open(out / f"{name}.{i}.jsonl", "w") as f:
            p.trace.dump(f)


def qemu_children() -> list[int]:
    """QEMU processes whose parent is this test process."""
    me = str(os.getpid())
    found = []
    for status in glob.glob("/proc/[0-9]*/status"):
        try:
            with open(status) as f:
                text = f.read()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
        if fields.get("PPid", "").strip() == me and "qemu" in fields.get("Name", ""):
            found.append(int(status.split("/")[2]))
    return found


def leftover_files() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "cosim-*")))


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    files_before = leftover_files()
    fds_before = len(os.listdir("/proc/self/fd"))
    yield
    assert qemu_children() == [], "a QEMU process outlived its test"
    assert leftover_files() - files_before == set(), "a test left files behind"
    fds_after = len(os.listdir("/proc/self/fd"))
    assert fds_after <= fds_before + 2, f"file descriptors leaked: {fds_before} -> {fds_after}"


@pytest.fixture
def firmware_image() -> Path:
    """The user's firmware flash image (TF-A + TF-RMM for QEMU virt, see
    docs/firmware.md) named by COSIM_FIRMWARE; tests that need it are skipped
    when it is not set.  make_platform(firmware=firmware_image) boots it."""
    value = os.environ.get("COSIM_FIRMWARE", "")
    if not value:
        pytest.skip("COSIM_FIRMWARE is not set: no third-party firmware to compare with "
                    "(docs/firmware.md says how to build TF-A + TF-RMM for QEMU)")
    path = Path(value)
    if not path.is_file():
        pytest.fail(f"COSIM_FIRMWARE={value} is not a file")
    return path


@pytest.fixture
def make_platform(request: pytest.FixtureRequest) -> Iterator:
    """Start platforms with the given config fields; all are stopped at the end
    (and their traces kept when the test failed, see save_failure_traces)."""
    started: list[Platform] = []

    def make(**fields: object) -> Platform:
        p = Platform(PlatformConfig(**fields), trace=Trace())  # type: ignore[arg-type]
        started.append(p)
        p.start()
        return p

    yield make
    for p in started:
        p.stop()
    save_failure_traces(request.node, started)
