"""`cosim compare`: run a scenario on our RMM and on the user's firmware,
then report the differences.

    cosim compare --firmware FLASH.bin [--scenario rmi-lifecycle|realm-payload|linux]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import ConfigError, PlatformConfig
from ..host.realmstub import RealmStubError
from ..host.rmi import RmiError
from ..host.stub import HostStubError
from ..machine.errors import MachineError
from ..trace import Trace
from .normalise import normalise
from .record import Recording
from .report import Report, compare
from .scenarios import SCENARIOS
from .tokens import token_values

ALL = (*SCENARIOS, "linux")
DEFAULT_SCENARIOS = ("rmi-lifecycle", "realm-payload")
OURS = "cca-cosim (our monitor + Python RMM)"
LINUX_COMMAND = "uname -s; cat /sys/kernel/config/tsm/report 2>/dev/null; echo done"
LINUX_MEM = 256 << 20
LINUX_CHALLENGE = bytes(range(64))
"""A fixed challenge, so the two tokens' challenge claims must be equal."""
EXIT_OK, EXIT_DIFFERENT, EXIT_USAGE = 0, 1, 2
TIMING_EXITS = {"irq", "sgi", "wfi", "wfe"}
"""Exit kinds a guest's timing decides (whether a WFI or an interrupt came)."""


def platform_config(firmware: Path | None, qemu: str, cpus: int = 1,
                    ram: int = 1 << 30) -> PlatformConfig:
    return PlatformConfig(cpus=cpus, ram_size=ram, qemu=qemu, firmware=firmware)


def record(scenario: str, cfg: PlatformConfig, target: str, trace: Trace) -> Recording:
    """Run `scenario` on a fresh platform of `cfg`; failures are recorded, not raised."""
    from ..platform import Platform

    rec = Recording(target)
    if scenario == "linux":
        _linux(cfg, rec, trace)
        return rec
    with Platform(cfg, trace=trace) as p:
        try:
            SCENARIOS[scenario](p, rec)
        except (RmiError, RealmStubError, HostStubError, MachineError) as exc:
            rec.error = f"{type(exc).__name__}: {exc}"
            rec.value("scenario error", rec.error)
    return rec


def _linux(cfg: PlatformConfig, rec: Recording, trace: Trace) -> None:
    """The default Linux realm (`cosim images fetch`) runs a command and fetches
    an attestation token for a fixed challenge."""
    from ..host.console import RealmConsole
    from ..host.vm import RealmVmConfig
    from ..images import (
        AttestationError,
        attest_param,
        command_param,
        load_images,
        parse_attestation,
        parse_command_status,
    )
    from ..realm_run import DEFAULT_PARAMS, realm_session

    images = load_images(None)
    cmdline = " ".join([DEFAULT_PARAMS, command_param(LINUX_COMMAND),
                        attest_param(LINUX_CHALLENGE)])
    cfg.cpus = max(cfg.cpus, 2)
    cfg.ram_size = max(cfg.ram_size, 2 << 30)
    vm_cfg = RealmVmConfig(kernel=images.kernel, initrd=images.initrd, cmdline=cmdline,
                           cpus=2, mem=LINUX_MEM)
    console = RealmConsole()
    session = realm_session(cfg, vm_cfg, console, trace, timeout=600.0)
    vm, verdict = session.vm, session.verdict
    text = console.text()
    rec.value("outcome", verdict.result.outcome)
    rec.value("command status", parse_command_status(text))
    rec.value("RIM (host's prediction)", vm.rim[:vm.realm.rim_len])
    rec.value("granules left delegated", len(verdict.left))
    timing = sorted(k for k in vm.stats.exits if k in TIMING_EXITS)
    rec.value("exit reasons seen", sorted(k for k in vm.stats.exits if k not in TIMING_EXITS))
    rec.value("interrupt-driven exit reasons seen", timing)
    rec.value("RMI commands used", sorted(vm.stats.rmi))
    rec.value("command output", command_output(text))
    try:
        block = parse_attestation(text)
    except AttestationError as exc:
        rec.value("attestation", str(exc))
        return
    rec.value("token size", len(block.token))
    for key, value in token_values(block.token).items():
        rec.value(key, value)


def command_output(text: str) -> str:
    """What the guest's command printed: the lines after the init marker up to
    the command's exit status, without the attestation block and the
    kernel's own (timestamped) messages, which come whenever it prints them."""
    from ..images import INIT_MARKER
    from ..images.protocol import (
        ATTEST_BEGIN,
        ATTEST_END,
        COMMAND_EXIT,
        without_kernel_messages,
    )

    lines = without_kernel_messages(text).splitlines()
    start = next((i for i, line in enumerate(lines) if INIT_MARKER in line), None)
    if start is None:
        return "(no init marker)"
    out, in_token = [], False
    for line in lines[start + 1:]:
        if line.startswith(COMMAND_EXIT):
            break
        if line.startswith(ATTEST_BEGIN):
            in_token = True
        if not in_token and not line.startswith("cosim-attest:") and line:
            out.append(line)
        if line.startswith(ATTEST_END):
            in_token = False
    return "\n".join(out).strip()


def run_compare(scenario: str, firmware: Path, qemu: str, trace: Trace) -> Report:
    ours = record(scenario, platform_config(None, qemu), OURS, trace)
    theirs = record(scenario, platform_config(firmware, qemu), f"firmware {firmware}", trace)
    report = compare(scenario, ours.target, normalise(ours), theirs.target, normalise(theirs))
    if scenario == "linux":
        report.notes.append("a Linux guest's timing decides its RMI calls and exits: their "
                            "kinds are compared, not each call")
    return report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--firmware", type=Path, required=True, metavar="FLASH",
                   help="the firmware to compare with: a QEMU virt flash image of TF-A "
                        "with ENABLE_RME=1 and TF-RMM (docs/firmware.md)")
    p.add_argument("--scenario", choices=ALL, action="append", default=None,
                   help="what to run on both (repeatable; default: "
                        + " and ".join(DEFAULT_SCENARIOS) + ")")
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="also write the reports as JSON to FILE")
    p.add_argument("--qemu", default=PlatformConfig.qemu, help="qemu-system-aarch64 binary")


def cmd_compare(args: argparse.Namespace, trace: Trace) -> int:
    """Exit 0 when no difference is unexplained, 1 otherwise, 2 for bad input."""
    from ..firmware.flash import FirmwareError, Flash

    try:
        Flash.read(args.firmware)
    except FirmwareError as exc:
        print(f"cosim: {exc}", file=sys.stderr)
        return EXIT_USAGE
    reports = []
    try:
        for scenario in args.scenario or DEFAULT_SCENARIOS:
            print(f"cosim: running {scenario} on both ...", file=sys.stderr, flush=True)
            report = run_compare(scenario, args.firmware, args.qemu, trace)
            reports.append(report)
            print(report.text(), flush=True)
    except ConfigError as exc:
        print(f"cosim: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json is not None:
        args.json.write_text("[" + ",\n".join(r.to_json() for r in reports) + "]\n")
    return EXIT_DIFFERENT if any(r.unexplained or r.problems for r in reports) else EXIT_OK
