"""GDB sessions on the co-simulated machine (docs/debugging.md), driven with
cosim.gdb.GdbSession (pygdbmi): breakpoints in the realm, stops on CCA
events at the instruction that caused them, the `cca` commands, bad input,
and clean ends."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import procs
import pytest

from cosim.config import GptMode, PlatformConfig
from cosim.gdb import Debugger, GdbCommandError, GdbSession, parse_event
from cosim.platform import Platform
from cosim.rmm.abi import RmiFid

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("gdb-multiarch") is None,
                                 reason="gdb-multiarch is not installed (ci/install.sh has it)")]

SMC_0 = 0xD4000003
"""The encoding of SMC #0 (Arm ARM C6.2.365)."""
RUN_END = 180


class CosimRun:
    """`cosim ARGS --gdb` as a child process, with the gdb script it printed."""

    def __init__(self, proc: subprocess.Popen[str], err: Path, script: str) -> None:
        self.proc = proc
        self.err = err
        self.script = script

    def stderr(self) -> str:
        return self.err.read_text()

    def finish(self, timeout: float = RUN_END) -> tuple[int, str]:
        out, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out


@contextmanager
def cosim(tmp_path: Path, *args: str) -> Iterator[CosimRun]:
    err = tmp_path / "cosim.err"
    proc = subprocess.Popen([sys.executable, "-m", "cosim.cli", *args], text=True,
                            stdout=subprocess.PIPE, stderr=err.open("w"),
                            stdin=subprocess.DEVNULL)
    qemu: list[int] = []
    try:
        deadline = time.monotonic() + 60
        script = None
        while script is None:
            m = re.search(r"-x (\S+session\.gdb)", err.read_text())
            if m:
                script = m.group(1)
                break
            assert proc.poll() is None, f"cosim ended early: {err.read_text()}"
            assert time.monotonic() < deadline, "cosim printed no gdb command"
            time.sleep(0.1)
        qemu = procs.children(proc.pid)
        yield CosimRun(proc, err, script)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
        for pid in qemu:
            assert not procs.alive(pid), "QEMU outlived cosim"


def thread_ids(gdb: GdbSession) -> list[str]:
    return re.findall(r"Thread 1\.(\d+)", gdb.console("info threads"))


def test_break_at_a_realm_payload_symbol(tmp_path: Path) -> None:
    with cosim(tmp_path, "demo", "--gdb") as run, GdbSession(run.script) as gdb:
        assert "Root (EL3 monitor)" in gdb.cca("world")  # before the first instruction
        gdb.break_at("realm_main")
        stop = gdb.cont()
        assert stop["reason"] == "breakpoint-hit"
        assert stop["frame"]["func"] == "realm_main"
        assert re.search(r"CPU 0: Realm EL1 \(realm 1 REC 0\)", gdb.cca("world"))
        regs = gdb.registers("pc", "cpsr", "sp", "x30")
        assert regs["pc"] == int(gdb.evaluate("(unsigned long)&realm_main"))
        assert (regs["cpsr"] >> 2) & 3 == 1, "the realm runs at EL1"
        assert 0x8000_0000 <= regs["sp"] < 0x8010_0000, "the stack is in the realm image"
        assert 0x8000_0000 <= regs["x30"] < regs["pc"], "called from _start"
        rtt = gdb.cca("rtt 1 $pc")
        assert re.search(r"level 3: RTT 0x[0-9a-f]+\[\d+\] = ASSIGNED, RIPAS RAM", rtt)
        assert f"maps IPA {regs['pc']:#x} to PA" in rtt
        code = gdb.read_memory(regs["pc"], 4)
        assert code == bytes.fromhex("ff8312d1") or len(code) == 4
        gdb.delete_breakpoints()
        gdb.cont(wait=False)
        status, out = run.finish()
        gdb.quit()
    assert status == 0, run.stderr()
    assert "demo finished: the platform shut down cleanly" in out


def test_stop_on_rmi_data_create_at_the_smc(tmp_path: Path) -> None:
    with cosim(tmp_path, "demo", "--gdb", "--break-on", "rmi:DATA_CREATE") as run, \
            GdbSession(run.script) as gdb:
        stop = gdb.cont()
        assert stop["reason"] == "signal-received" and stop["signal-name"] == "SIGTRAP"
        assert stop["frame"]["func"].startswith("stub_smc")
        pc = gdb.register("pc")
        assert int.from_bytes(gdb.read_memory(pc, 4), "little") == SMC_0, "stopped at the SMC"
        x = gdb.registers("x0", "x1", "x2", "x3", "x4", "x5")
        assert x["x0"] == RmiFid.DATA_CREATE
        realms = gdb.cca("realms")
        rd = int(re.search(r"^1\s+(0x[0-9a-f]+)", realms, re.M).group(1), 16)
        assert x["x1"] == rd, "x1 is the RD of realm 1"
        assert 0x8000_0000 <= x["x3"] < 0x8010_0000, "x3 is an IPA of the realm image"
        assert x["x2"] != x["x4"], "target and source granules differ"
        assert re.search(r"CPU 0: Non-secure EL2, PC " + hex(pc), gdb.cca("world"))
        assert any("stopped on rmi RMI_DATA_CREATE (realm 1)" in line
                   for line in gdb.console_log)
        assert "granule" in gdb.cca(f"granule {x['x2']:#x}")
        # bad input: one clear line each, and gdb keeps working
        for args, message in (("granule 0x1000", "outside guest RAM"),
                              ("rtt 7 0x80000000", "no realm 7 (live realms: 1)"),
                              ("break nonsense", "unknown event 'nonsense'"),
                              ("break rmi:NO_SUCH", "no RMI command 'NO_SUCH'")):
            with pytest.raises(GdbCommandError, match=re.escape(message)):
                gdb.cca(args)
        assert gdb.register("pc") == pc
        assert "1: rmi:DATA_CREATE" in gdb.cca("break")
        # continue: the SMC runs exactly once, then the next DATA_CREATE stops again
        stop = gdb.cont()
        assert gdb.register("pc") == pc and gdb.register("x0") == RmiFid.DATA_CREATE
        assert gdb.register("x3") != x["x3"], "the next granule"
        gdb.cca("delete all")
        gdb.cont(wait=False)
        status, out = run.finish()
        gdb.quit()
    assert status == 0, run.stderr()
    assert "43 granules back to UNDELEGATED" in out and "left behind" not in out


@pytest.mark.parametrize("end", ["detach-quit", "kill"])
def test_ending_gdb_lets_the_run_finish(tmp_path: Path, end: str) -> None:
    with cosim(tmp_path, "demo", "--gdb", "--break-on", "rsi:VERSION") as run:
        gdb = GdbSession(run.script)
        pid = gdb.pid
        try:
            stop = gdb.cont()
            assert stop["frame"]["func"] == "realm_smc"
            assert "Realm EL1" in gdb.cca("world")
            if end == "kill":
                gdb.kill()
            else:
                gdb.detach()
                gdb.quit()
        finally:
            gdb.close()
        assert pid is not None and not procs.alive(pid), "gdb is gone"
        status, out = run.finish()
    assert status == 0, run.stderr()
    assert "RSI_VERSION -> RSI_SUCCESS" in out
    assert "demo finished" in out


def test_stop_on_gpt_violation_at_the_faulting_access() -> None:
    messages: list[str] = []
    debugger = Debugger(break_on=[parse_event("gpt")], announce=messages.append)
    platform = Platform(PlatformConfig(gpt=GptMode.HW), debugger=debugger)
    platform.config.call_timeout = platform.config.start_timeout = 300
    started = threading.Thread(target=platform.start)
    started.start()
    try:
        deadline = time.monotonic() + 60
        while debugger.script is None or not debugger.script.exists():
            assert time.monotonic() < deadline and started.is_alive()
            time.sleep(0.05)
        with GdbSession(debugger.script) as gdb:
            gdb.cont(wait=False)
            started.join(120)
            assert platform.stub is not None
            pa = platform.pool.alloc()
            platform.rmi().granule_delegate(pa)
            result: list[object] = []
            loader = threading.Thread(target=lambda: result.append(platform.stub.load(pa)))
            loader.start()
            stop = gdb.wait_stopped()
            assert stop["frame"]["func"] == "stub_load8", stop
            pc = gdb.register("pc")
            insn = int.from_bytes(gdb.read_memory(pc, 4), "little")
            assert insn & 0xFFC0_0000 == 0xF940_0000, "an LDR (unsigned offset): the access"
            assert "Non-secure EL2" in gdb.cca("world")
            granule = gdb.cca(f"granule {pa:#x}")
            assert f"granule {pa:#x}: Realm PAS" in granule
            assert "RMM state: DELEGATED" in granule
            assert "RMI_GRANULE_DELEGATE: UNDELEGATED -> DELEGATED" in granule
            assert any("stopped on gpt" in m for m in messages)
            gdb.cca("delete all")
            gdb.cont(wait=False)
            loader.join(60)
            assert result and result[0].faulted, "continue: the access faults (an SEA)"
            gdb.quit()
    finally:
        started.join(60)
        platform.stop()


def test_break_at_start_kernel_of_the_linux_realm(tmp_path: Path) -> None:
    """The fetched Debian kernel ships no System.map: its symbols come from
    the kallsyms tables inside the Image."""
    from cosim.images import ImagesMissing, load_images

    try:
        load_images()
    except ImagesMissing as exc:
        pytest.skip(f"the realm images are not fetched: {exc}")
    with cosim(tmp_path, "realm", "run", "--gdb", "--no-attest", "--", "true") as run, \
            GdbSession(run.script, timeout=600) as gdb:
        assert "nokaslr" in run.stderr()
        gdb.break_at("start_kernel")
        stop = gdb.cont()
        assert stop["reason"] == "breakpoint-hit" and stop["frame"]["func"] == "start_kernel"
        cpu = int(stop["thread-id"]) - 1
        world = gdb.cca("world")
        assert re.search(rf"CPU {cpu}: Realm EL1 \(realm 1 REC 0\), PC 0xffff8000", world)
        pc = gdb.register("pc")
        assert pc == int(gdb.evaluate("(unsigned long)&start_kernel"))
        assert (gdb.register("cpsr") >> 2) & 3 == 1
        assert gdb.register("sp") >> 48 == 0xFFFF, "a kernel stack"
        assert gdb.read_memory(pc, 4) != bytes(4), "the kernel's code is readable"
        ipa_text = gdb.cca("ipa")
        ipa = int(re.search(r"IPA (0x[0-9a-f]+)$", ipa_text).group(1), 16)
        assert 0x8000_0000 <= ipa < 0x8000_0000 + (64 << 20), "inside the loaded kernel"
        assert ipa & 0xFFF == pc & 0xFFF
        rtt = gdb.cca(f"rtt 1 {ipa:#x}")
        assert "ASSIGNED, RIPAS RAM" in rtt and f"maps IPA {ipa:#x} to PA" in rtt
        gdb.delete_breakpoints()
        # a stop on the other vCPU: gdb shows that vCPU, at the trapped instruction
        gdb.cca("break exit:sync@1.1")
        stop = gdb.cont()
        assert stop["thread-id"] == "2"
        said = [line for line in gdb.console_log if "stopped on exit sync (realm 1 REC 1)" in line]
        where = int(re.search(r"at PC (0x[0-9a-f]+)", said[-1]).group(1), 16)
        assert gdb.register("pc") == where
        assert (gdb.register("cpsr") >> 2) & 3 == 1
        assert re.search(rf"CPU 1: Realm EL1 \(realm 1 REC 1\), PC {where:#x}", gdb.cca("world"))
        gdb.cca("delete all")
        gdb.cont(wait=False)
        status, _ = run.finish(timeout=900)
        gdb.quit()
    assert status == 0, run.stderr()
    assert "0 at the end" in run.stderr()


def test_interrupt_a_running_machine(tmp_path: Path) -> None:
    """Ctrl-C in gdb stops every vCPU, wherever it is; the hoststub's idle
    CPUs are not kept in a doorbell by the co-simulator."""
    with cosim(tmp_path, "run", "--gdb", "--cpus", "2", "--timeout", "15") as run, \
            GdbSession(run.script) as gdb:
        gdb.cont(wait=False)
        time.sleep(1)
        stop = gdb.interrupt()
        assert stop["signal-name"] == "SIGINT"
        world = gdb.cca("world")
        assert "CPU 0: Non-secure EL2" in world
        assert "CPU 1: Root (EL3 monitor)" in world, "CPU 1 is parked in the monitor (PSCI)"
        assert thread_ids(gdb) == ["1", "2"]
        gdb.cont(wait=False)
        gdb.interrupt()
        gdb.detach()
        gdb.quit()
        status, _ = run.finish()
    assert status == 124, run.stderr()
    assert "hoststub.bin did not power off within 15 s" in run.stderr()


def test_gdb_attach_starts_gdb_and_the_run_outlives_it(tmp_path: Path) -> None:
    """--gdb-attach runs gdb-multiarch on cosim's terminal; here its input is
    empty, so it quits at once, detaching: the run goes on to its end."""
    proc = subprocess.run([sys.executable, "-m", "cosim.cli", "demo", "--gdb-attach"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=RUN_END)
    assert proc.returncode == 0, proc.stderr
    assert "gdb: the machine waits for gdb; starting" in proc.stderr
    assert "demo finished: the platform shut down cleanly" in proc.stdout
    script = re.search(r"-x (\S+session\.gdb)", proc.stderr).group(1)
    assert not Path(script).exists(), "the session script is removed"
    assert not [cmd for cmd in Path("/proc").glob("[0-9]*/cmdline")
                if script.encode() in _read(cmd)], "no gdb left"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
