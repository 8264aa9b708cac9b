"""Issue 2: every way a run can break ends with a diagnosis, never a hang,
and leaves no process or file behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import procs
import pytest

from cosim.config import PlatformConfig, artefact
from cosim.machine.errors import HandlerError, MachineTimeout, QemuExited
from cosim.machine.plugin_protocol import PLUGIN_EXIT_LOST
from cosim.monitor.layout import SipFid
from cosim.rmm.abi import RmiFid

REPO = Path(__file__).resolve().parents[2]


def test_killing_python_makes_qemu_exit(tmp_path: Path) -> None:
    """SIGKILL the co-simulator mid-run: the plugin notices, QEMU exits with
    the plugin's status within seconds, and nothing is left in the file system."""
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from cosim.platform import Platform
        from cosim.config import PlatformConfig
        p = Platform(PlatformConfig(cpus=2))
        p.start()
        p.stub.smc(0xC4000150, 0x10000)
        print(p.machine.proc.pid, flush=True)
        time.sleep(600)
    """)
    before = set(os.listdir("/tmp")) | set(os.listdir("/dev/shm"))
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        qemu_pid = int(child.stdout.readline())
        assert procs.alive(qemu_pid)
        child.kill()
        child.wait(10)
        deadline = time.monotonic() + 10
        while procs.alive(qemu_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not procs.alive(qemu_pid), "QEMU kept running after the co-simulator died"
    finally:
        child.kill()
        child.wait()
    after = set(os.listdir("/tmp")) | set(os.listdir("/dev/shm"))
    assert {f for f in after - before if "cosim" in f} == set()


def test_qemu_exit_status_when_python_dies_is_the_plugins() -> None:
    """The plugin's exit status tells that it lost the co-simulator."""
    script = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(REPO)!r})
        from cosim.platform import Platform
        from cosim.config import PlatformConfig
        p = Platform(PlatformConfig(cpus=1))
        p.start()
        # keep QEMU's stderr and status readable by the parent: hand over the pid
        print(p.machine.proc.pid, flush=True)
        os.close(p.machine.link._server.fileno())
        for c in list(p.machine.link._conns):
            c.close()
        time.sleep(600)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        qemu_pid = int(child.stdout.readline())
        deadline = time.monotonic() + 10
        while procs.alive(qemu_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not procs.alive(qemu_pid)
    finally:
        child.kill()
        child.wait()
    assert PLUGIN_EXIT_LOST == 3


def test_killing_qemu_raises_a_clear_error(make_platform) -> None:
    p = make_platform(cpus=2)
    assert p.stub.smc(RmiFid.VERSION, 0x10000).x0 == 0
    os.kill(p.machine.proc.pid, signal.SIGKILL)
    with pytest.raises(QemuExited) as info:
        for _ in range(100):
            p.stub.smc(RmiFid.VERSION, 0x10000)
            time.sleep(0.05)
    assert "was killed by a signal" in str(info.value)
    p.stop()
    assert p.machine.proc.poll() is not None


def test_a_python_bug_ends_the_run_with_its_traceback(make_platform) -> None:
    p = make_platform(cpus=1)

    def broken(cpu: int, args: tuple[int, ...]) -> tuple[int, ...]:
        raise RuntimeError("deliberate bug in a service")

    p.monitor.services[SipFid.CONSOLE_PUTC] = broken
    with pytest.raises(HandlerError) as info:
        p.stub.smc(SipFid.CONSOLE_PUTC, 65)
    assert "deliberate bug in a service" in str(info.value)
    assert "Traceback" in str(info.value)


def test_a_hung_request_times_out(make_platform) -> None:
    p = make_platform(cpus=1)
    gate = threading.Event()
    p.monitor.services[SipFid.CONSOLE_PUTC] = lambda cpu, args: (gate.wait(30), (0,))[1]
    p.machine.config.call_timeout = 1
    with pytest.raises(MachineTimeout, match="did not happen within 1 s"):
        p.stub.smc(SipFid.CONSOLE_PUTC, 65)
    gate.set()


def _qemu_with_plugin(args: str) -> subprocess.CompletedProcess[str]:
    cfg = PlatformConfig()
    plugin = artefact("qemu_plugin", "build", "libcosim.so")
    return subprocess.run(
        [cfg.qemu, "-M", "virt,secure=on,virtualization=on,gic-version=3", "-cpu", "max",
         "-nodefaults", "-display", "none", "-S", "-plugin", f"{plugin}{args}"],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args, message", [
    (",bogus=1", "unknown argument 'bogus=1'"),
    ("", "missing sock=NAME"),
    (",sock=", "sock= needs a socket name"),
    (",sock=x,gpt=plugin", "gpt=plugin needs pas=PATH"),
    (",sock=x,pas_size=12", "pas_size= needs a non-zero multiple of 4096"),
    (",sock=x,pas_base=zz", "pas_base= needs a number"),
    (",sock=cosim-nobody-listens", "cannot reach the co-simulator"),
])
def test_plugin_refuses_bad_arguments(args: str, message: str) -> None:
    proc = _qemu_with_plugin(args)
    assert proc.returncode != 0
    assert f"cosim plugin: {message}" in proc.stderr
