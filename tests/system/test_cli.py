"""The command line, end to end (real QEMU)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import procs
import pytest

from cosim import cli


def test_demo_builds_runs_attests_and_tears_down(capsys) -> None:
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "GPT enforcement: hw" in out
    assert "signatures and binding verified; challenge and RIM match" in out
    assert "back to UNDELEGATED" in out and "left behind" not in out
    assert "shut down cleanly" in out


def test_demo_without_rme_uses_the_plugin(capsys) -> None:
    assert cli.main(["demo", "--no-rme", "--cpus", "2"]) == 0
    out = capsys.readouterr().out
    assert "GPT enforcement: plugin" in out and "FEAT_RME absent" in out


@pytest.mark.slow
def test_run_streams_the_console_and_stops(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    proc = subprocess.run([sys.executable, "-m", "cosim.cli", "run", "--timeout", "1",
                           "--trace", str(trace)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 124, proc.stderr
    assert "hoststub: ready" in proc.stdout
    assert "GPT enforcement: hw" in proc.stderr
    assert "hoststub.bin did not power off within 1 s; its last console output:\n" \
           "  hoststub: ready" in proc.stderr
    assert cli.main(["trace", str(trace), "--summary"]) == 0


@pytest.mark.parametrize("bench", ["smc"])
def test_benchmark_prints_key_value_lines(bench: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "cosim.cli", "bench", bench, "--runs", "1",
                           "--rmi-calls", "500", "--psci-calls", "5000"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    keys = dict(line.split("=") for line in proc.stdout.splitlines()
                if re.fullmatch(r"[a-z0-9_]+=[0-9.]+", line))
    assert set(keys) == {"rmi_round_trips_per_s", "monitor_smc_per_s", "python_round_trip_ratio"}
    assert float(keys["rmi_round_trips_per_s"]) > 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupting_a_run_stops_qemu(sig: int) -> None:
    # SIGINT as a terminal delivers it, whatever this test runner inherited
    # (a runner started with SIGINT ignored passes that on: cosim honours it).
    proc = subprocess.Popen([sys.executable, "-m", "cosim.cli", "run"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for line in proc.stdout:
            if "hoststub: ready" in line:
                break
        children = procs.children(proc.pid)
        assert children, "QEMU runs under cosim"
        proc.send_signal(sig)
        assert proc.wait(20) == 130
        assert "interrupted" in proc.stderr.read()
        for pid in children:
            assert not procs.alive(pid), "QEMU outlived cosim"
    finally:
        proc.kill()
        proc.wait()
