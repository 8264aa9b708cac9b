"""Boot the images as a plain QEMU TCG guest (-M virt -cpu max, no CCA): the baseline
that a realm boot is compared with, and the check that the initramfs works."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .cache import RealmImages
from .errors import ImagesError
from .protocol import INIT_MARKER

QEMU = "qemu-system-aarch64"
CONSOLE = "console=ttyAMA0"


@dataclass(frozen=True)
class BaselineRun:
    console: str
    """Everything the guest printed (serial console), with \\r removed."""
    returncode: int
    """QEMU's exit status: 0 after the guest's PSCI SYSTEM_OFF."""
    marker_s: float | None
    """Seconds from QEMU's start to the INIT_MARKER line (None: never printed)."""
    total_s: float


def baseline_command(images: RealmImages, params: Sequence[str] = (), *, cpus: int = 2,
                     memory: str = "1G", qemu: str = QEMU) -> list[str]:
    return [qemu, "-M", "virt", "-cpu", "max", "-smp", str(cpus), "-m", memory,
            "-nographic", "-nic", "none", "-kernel", str(images.kernel),
            "-initrd", str(images.initrd), "-append", " ".join([CONSOLE, *params])]


def run_baseline(images: RealmImages, params: Sequence[str] = (), *, cpus: int = 2,
                 memory: str = "1G", timeout: float = 300, input_after_marker: str = "",
                 qemu: str = QEMU) -> BaselineRun:
    """Boot until the guest powers off (QEMU exits); INPUT_AFTER_MARKER is typed on the
    console once the marker appears.  Raises ImagesError if QEMU is still running after
    TIMEOUT seconds (it is killed; the message ends with the console's last line)."""
    cmd = baseline_command(images, params, cpus=cpus, memory=memory, qemu=qemu)
    start = time.monotonic()
    lines: list[str] = []
    marker: list[float] = []
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
    except OSError as exc:
        raise ImagesError(f"cannot run {qemu}: {exc.strerror}") from None
    assert proc.stdin is not None and proc.stdout is not None

    def read() -> None:
        assert proc.stdout is not None and proc.stdin is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").replace("\r", "")
            lines.append(line)
            if not marker and line.rstrip("\n") == INIT_MARKER:
                marker.append(time.monotonic() - start)
                if input_after_marker:
                    try:
                        proc.stdin.write(input_after_marker.encode())
                        proc.stdin.flush()
                    except OSError:
                        pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        reader.join(5)
        last = next((ln.strip() for ln in reversed(lines) if ln.strip()), "(nothing)")
        raise ImagesError(f"the guest did not power off within {timeout:.0f} s; its console "
                          f"ended with: {last}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
    reader.join(5)
    proc.stdout.close()
    return BaselineRun("".join(lines), proc.returncode, marker[0] if marker else None,
                       time.monotonic() - start)
