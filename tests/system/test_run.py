"""Issue 10: `cosim run` with any payload, what a user sees, and how every way
a run can end is reported (real QEMU, tiny payloads from images/test-payloads)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import procs
import pytest

from cosim.config import artefact

REPO = Path(__file__).resolve().parents[2]


def payload(name: str) -> Path:
    return artefact("images", "build", f"payload-{name}.bin")


def cosim(*args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cosim.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, **kw)


def test_a_payload_that_powers_off_ends_the_run_with_exit_0() -> None:
    t0 = time.monotonic()
    proc = cosim("run", "--payload", str(payload("off")))
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    assert "payload: hello from NS-EL2\npayload: powering off" in proc.stdout.replace("\r", "")
    assert "payload-off.bin powered the machine off (PSCI SYSTEM_OFF)" in proc.stderr
    assert took < 20, "no 30 s wait for a hoststub that is not there"
    assert "Traceback" not in proc.stderr


def test_a_spinning_payload_ends_at_the_timeout_naming_what_it_printed() -> None:
    proc = cosim("run", "--payload", str(payload("spin")), "--timeout", "2")
    assert proc.returncode == 124, proc.stderr
    assert "payload-spin.bin did not power off within 2 s; its last console output:\n" \
           "  payload: hello from NS-EL2\n  payload: spinning now" \
           in proc.stderr.replace("\r", "")


def test_a_reset_ends_the_run_without_rebooting() -> None:
    proc = cosim("run", "--payload", str(payload("reset")), "--timeout", "20")
    assert proc.returncode == 4, proc.stderr
    assert "reset the machine (PSCI SYSTEM_RESET)" in proc.stderr
    assert proc.stdout.count("hello from NS-EL2") == 1, "the board did not boot again"


@pytest.mark.parametrize("args, status, after", [
    ([], 3, "payload: the load took an external abort"),
    (["--gpt", "plugin", "--on-violation", "log"], 0, "payload: the load completed"),
    (["--on-violation", "log"], 0, "payload: the load completed"),
    (["--gpt", "plugin"], 3, None),
], ids=["hw-inject", "plugin-log", "auto-log", "plugin-halt"])
def test_violations_are_reported_on_stderr_as_they_happen(args, status, after) -> None:
    elf = artefact("images", "build", "payload-violate.elf")
    proc = cosim("run", "--payload", str(payload("violate")), "--symbols", str(elf),
                 "--timeout", "20", *args)
    assert proc.returncode == status, proc.stderr
    err = proc.stderr
    assert "cosim: GPT violation" in err and "load" in err and "at PA 0x7f000000" in err
    assert "granule 0x7f000000: Root PAS, RMM state: carve-out of the monitor" in err
    assert "(violating_load+0x0 in payload-violate.elf)" in err
    assert "1 GPT violation in this run (reports above):" in err
    if "log" in args:
        assert "GPT enforcement: plugin" in err, "log needs plugin mode, auto chose it"
    out = proc.stdout.replace("\r", "")
    if after is None:
        assert "the machine halted on a GPT violation" in err
        assert "payload: the load" not in out, "nothing ran after the violating load"
    else:
        assert after in out


def test_a_reader_that_leaves_ends_the_run() -> None:
    """`cosim run ... | head -1`: once stdout is gone the run ends (no timeout
    to wait for, no traceback), with SIGPIPE's exit status."""
    proc = subprocess.Popen([sys.executable, "-m", "cosim.cli", "run", "--payload",
                             str(payload("spin"))], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert "hello" in proc.stdout.readline()
        proc.stdout.close()
        assert proc.wait(30) == 141
        assert "Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()


def test_closed_standard_streams(tmp_path: Path) -> None:
    """`cosim demo <&-` (and >&-, 2>&-) as daemons and cron run programs: the
    RAM memfd must not become descriptor 0..2 and be lost to a redirection."""
    for fd in (0, 1, 2):
        proc = subprocess.run(
            ["sh", "-c", f'exec "$0" -m cosim.cli run --payload "$1" {fd}>&-',
             sys.executable, str(payload("off"))],
            capture_output=True, text=True, timeout=60, cwd=REPO)
        assert proc.returncode == 0, (fd, proc.stderr)
        assert "backing store" not in proc.stderr
    proc = subprocess.run(["sh", "-c", 'exec "$0" -m cosim.cli demo <&-', sys.executable],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "shut down cleanly" in proc.stdout


def test_a_comma_in_the_payload_path(tmp_path: Path) -> None:
    odd = tmp_path / "a,b"
    odd.mkdir()
    image = odd / "pay,load.bin"
    image.write_bytes(payload("off").read_bytes())
    proc = cosim("run", "--payload", str(image))
    assert proc.returncode == 0, proc.stderr


def test_a_qemu_that_is_not_qemu() -> None:
    proc = cosim("run", "--qemu", "/bin/true")
    assert proc.returncode == 1
    assert "QEMU exited with status 0 while starting and printed nothing: is '/bin/true' " \
           "qemu-system-aarch64?" in proc.stderr


def test_a_trace_to_a_full_disk(tmp_path: Path) -> None:
    proc = cosim("run", "--payload", str(payload("off")), "--trace", "/dev/full")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == \
        "cosim: could not write the trace to /dev/full: No space left on device"


def test_too_few_file_descriptors() -> None:
    proc = cosim("run", "--payload", str(payload("off")),
                 preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (12, 12)))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == \
        "cosim: too many open files (this process may have 12: raise ulimit -n)"


@pytest.mark.slow
def test_a_stopped_qemu_is_noticed() -> None:
    """SIGSTOP QEMU during a plain run: QMP stops answering, the run ends with
    a diagnosis instead of hanging."""
    proc = subprocess.Popen([sys.executable, "-m", "cosim.cli", "run"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        for line in proc.stdout:
            if "hoststub: ready" in line:
                break
        [qemu] = procs.children(proc.pid)
        os.kill(qemu, signal.SIGSTOP)
        assert proc.wait(40) == 1
        err = proc.stderr.read()
        assert f"QEMU (pid {qemu}) stopped answering QMP for 10 s (it is stopped: SIGSTOP " \
               "or a debugger?); it was killed" in err
        assert not procs.alive(qemu)
    finally:
        proc.kill()
        proc.wait()


def test_sigint_right_after_qemu_starts_is_quick_and_clean() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "cosim.cli", "run", "--payload",
                             str(payload("spin"))], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        deadline = time.monotonic() + 30
        while not procs.children(proc.pid):
            assert time.monotonic() < deadline
            time.sleep(0.005)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 130
        assert time.monotonic() - t0 < 4, "not the full 5 s stop timeout"
        err = proc.stderr.read()
        assert "interrupted" in err and "Traceback" not in err and "never retrieved" not in err
    finally:
        proc.kill()
        proc.wait()


def test_sigint_while_importing_prints_no_traceback() -> None:
    """Ctrl-C while cosim's modules are still being imported.  What comes
    before cosim.cli's first line (Python's own start-up, finding the module)
    is out of cosim's reach: the child loads the module's code first, says
    "go", then runs it as `python -m cosim.cli` would."""
    script = ("import importlib.util, sys; "
              "code = importlib.util.find_spec('cosim.cli').loader.get_code('cosim.cli'); "
              f"sys.argv = ['cosim', 'run', '--payload', {str(payload('spin'))!r}]; "
              "print('go', flush=True); "
              "exec(code, {'__name__': '__main__', '__package__': 'cosim'})")
    for delay in (0, 0.005, 0.02, 0.05, 0.1, 0.3):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=REPO)
        try:
            assert proc.stdout.readline() == "go\n"
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
            proc.wait()
        assert "Traceback" not in err, (delay, err)
        assert proc.returncode == 130, (delay, proc.returncode, err)


def test_an_inherited_ignored_sigint_is_honoured_and_sigterm_still_works() -> None:
    """nohup, or a background job of a non-interactive shell, starts cosim with
    SIGINT ignored: that is respected; SIGTERM ends the run cleanly."""
    proc = subprocess.Popen([sys.executable, "-m", "cosim.cli", "run"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        for line in proc.stdout:
            if "hoststub: ready" in line:
                break
        proc.send_signal(signal.SIGINT)
        time.sleep(1)
        assert proc.poll() is None, "an ignored SIGINT does not end the run"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 130
        assert not [p for p in procs.children(proc.pid) if procs.alive(p)]
    finally:
        proc.kill()
        proc.wait()


def test_a_wrappers_grandchild_goes_with_a_failed_start(tmp_path: Path) -> None:
    """A --qemu wrapper that never starts QEMU but leaves a child: the start-up
    timeout kills the whole process group."""
    from cosim.config import PlatformConfig
    from cosim.machine.errors import QemuStartError
    from cosim.platform import Platform

    pidfile = tmp_path / "grandchild"
    wrapper = tmp_path / "qemu-wrapper"
    wrapper.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {pidfile}\nwait\n")
    wrapper.chmod(0o755)
    p = Platform(PlatformConfig(qemu=str(wrapper), start_timeout=2))
    with pytest.raises(QemuStartError, match="did not connect within 2 s"):
        p.start()
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while procs.alive(grandchild):
        assert time.monotonic() < deadline, "the wrapper's child outlived the failed start"
        time.sleep(0.05)
