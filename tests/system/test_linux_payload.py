"""Issue 10: Debian's stock arm64 kernel boots as the NS-EL2 host through
`cosim run`, with the realm images' kernel and initramfs (skipped, saying so,
until they are fetched with `cosim images fetch`)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from cosim import images

REPO = Path(__file__).resolve().parents[2]
MARK = "cosim-linux-payload-ok"


@pytest.fixture(scope="module")
def realm_images() -> images.RealmImages:
    try:
        return images.load_images()
    except images.ImagesMissing as exc:
        pytest.skip(f"the realm images are not fetched ({exc}); `cosim images fetch` gets them")


@pytest.mark.slow
def test_stock_kernel_boots_as_the_ns_host_and_powers_off(realm_images) -> None:
    append = f"console=ttyAMA0 panic=-1 {images.command_param(f'echo {MARK}')}"
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "cosim.cli", "run", "--payload", str(realm_images.kernel),
         "--initrd", str(realm_images.initrd), "--append", append, "--cpus", "2",
         "--timeout", "600"],
        capture_output=True, text=True, timeout=700, cwd=REPO)
    took = time.monotonic() - t0
    out = proc.stdout.replace("\r", "")
    assert proc.returncode == 0, proc.stderr + out[-3000:]
    assert "CPU1: Booted secondary processor" in out, "CPU 1 came up through PSCI CPU_ON"
    assert "kvm [1]: VHE mode initialized successfully" in out
    assert images.INIT_MARKER in out
    assert f"\n{MARK}\n" in out, "/init ran the command given on the kernel command line"
    assert images.parse_command_status(out) == 0
    assert "powered the machine off (PSCI SYSTEM_OFF)" in proc.stderr
    print(f"stock kernel as the NS host: command run and SYSTEM_OFF after {took:.1f} s")
