"""`cosim realm run`: boot a Linux kernel as a realm through the KVM-style VMM,
with the console on the terminal, and report what happened.

With no arguments it boots the default images (`cosim images fetch`): a
realm with 2 vCPUs and 512 MiB whose /init fetches an attestation token for
a random challenge; the host verifies the token (signatures, challenge, and
that its RIM is the one the VMM computed), tears the realm down to the last
granule and prints a summary.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .config import GIB, MIB, ConfigError, GptMode, PlatformConfig
from .gdb import options as gdb_options
from .host.console import RealmConsole
from .host.vm import GuestImages, RealmVm, RealmVmConfig, RealmVmError, RunResult
from .rmm.abi import HashAlgorithm
from .trace import Trace

DEFAULT_CPUS = 2
DEFAULT_MEM = 512 * MIB
MIN_MEM = 128 * MIB
MAX_MEM = 8 * GIB
DEFAULT_PARAMS = "console=ttyAMA0"
HOST_RAM_EXTRA = 320 * MIB
"""Host RAM beyond the realm's: the host's own pages, shared buffers, RTTs."""
RSI_TIMEOUT = 60.0
"""A guest that has not shown realm support by then is stopped."""
FIRMWARE_RAM_EXTRA = 512 * MIB
"""With --firmware the host's pool starts above the hoststub at 0x60000000."""
HASH_ALGOS = {"sha256": HashAlgorithm.SHA_256, "sha512": HashAlgorithm.SHA_512}
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass
class Verdict:
    """What the run established, for the summary and the exit status."""

    result: RunResult
    init_seconds: float | None = None
    command_status: int | None = None
    attestation: str = ""
    attestation_ok: bool | None = None
    left: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _say(text: str) -> None:
    print(f"cosim: {text}", file=sys.stderr, flush=True)


def platform_ram_for(mem: int) -> int:
    """Host RAM for a realm of `mem` bytes: the realm's memory comes out of it."""
    need = mem + HOST_RAM_EXTRA
    return max(GIB, (need + 2 * MIB - 1) // (2 * MIB) * (2 * MIB))


def _images(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The default images when the user gave no kernel (or no initrd)."""
    from .images import ImagesMissing, load_images

    try:
        return load_images(args.cache)
    except ImagesMissing as exc:
        if args.kernel is None:
            raise RealmVmError(str(exc), usage=True) from None
        return None


def build_cmdline(args: argparse.Namespace, command: list[str], challenge: bytes | None,
                  ours: bool) -> str:
    from .images import attest_param, command_param

    parts = [DEFAULT_PARAMS]
    if args.params:
        parts.append(args.params)
    if ours:
        if command:
            try:
                parts.append(command_param(" ".join(command)))
            except ValueError as exc:
                raise RealmVmError(str(exc), usage=True) from None
        if challenge is not None:
            parts.append(attest_param(challenge))
    return " ".join(parts)


def run_realm(args: argparse.Namespace, trace: Trace) -> int:
    from .cli import make_debugger
    from .images import parse_command_status

    command = list(args.command or [])
    if command[:1] == ["--"]:
        command = command[1:]
    images = _images(args)
    kernel = args.kernel or images.kernel
    initrd = args.initrd if args.initrd is not None else (images.initrd if images else None)
    ours = initrd is not None and images is not None and Path(initrd) == images.initrd
    if command and not ours:
        raise RealmVmError("a command after -- needs the default initramfs (its /init runs "
                           "it); with your own initrd, put the command in it", usage=True)
    challenge = os.urandom(64) if ours and not args.no_attest else None
    debugging = gdb_options.debugging(args)
    if debugging and "nokaslr" not in args.params.split():
        args.params = (args.params + " nokaslr").strip()
        _say("debugging: the realm kernel boots with nokaslr (its symbols are where they "
             "were linked)")
    cmdline = build_cmdline(args, command, challenge, ours)

    pcfg = PlatformConfig(cpus=args.cpus, ram_size=platform_ram_for(args.mem), qemu=args.qemu,
                          gpt=GptMode(args.gpt or GptMode.AUTO.value), firmware=args.firmware,
                          host_channel=args.host_channel)
    if args.firmware is not None:
        pcfg.ram_size += FIRMWARE_RAM_EXTRA
    console = RealmConsole(echo=sys.stdout.buffer)
    if ours:
        from .images import INIT_MARKER
        console.hold_input_until(INIT_MARKER.encode())
    rpv = bytes.fromhex(args.realm_pv).ljust(64, b"\0") if args.realm_pv else bytes(64)
    vm_cfg = RealmVmConfig(kernel=Path(kernel), initrd=Path(initrd) if initrd else None,
                           cmdline=cmdline, cpus=args.cpus, mem=args.mem,
                           hash_algo=HASH_ALGOS[args.measurement_algo], rpv=rpv)
    guest = GuestImages.load(vm_cfg)  # a user's mistake is found before QEMU starts
    header = f"realm: {args.cpus} vCPU(s), {args.mem >> 20} MiB, {args.measurement_algo}"
    what = (f"{images.version} ({images.package_version}, {images.suite})"
            if images is not None and Path(kernel) == images.kernel else str(kernel))
    debugger = None
    if debugging:
        system_map = images.system_map if images is not None and \
            Path(kernel) == images.kernel else None
        files, symbols = gdb_options.kernel_symbols(args.vmlinux, system_map,
                                                    guest.kernel.data, _say)
        kernel_ipa = guest.placement.kernel + guest.kernel.text_offset
        debugger = make_debugger(args, pcfg, files, kernel_symbols=symbols,
                                 kernel_ipa=kernel_ipa)
        args.rsi_timeout = 0.0  # the guest may sit at a breakpoint for as long as it likes
    # The shell gets the input whatever it is; a command gets piped or
    # redirected input (a terminal stays the user's: a command is not a session).
    stdin = sys.stdin.buffer if _usable_stdin() and (
        not command or not os.isatty(sys.stdin.fileno())) else None
    if args.gdb_attach:
        stdin = None  # the terminal is gdb's
    if stdin is not None and ours and os.isatty(stdin.fileno()):
        _say("the realm's shell will be on this terminal: Ctrl-D or `poweroff` ends the "
             "realm, Ctrl-A x quits at once")

    def report(session: Session) -> None:
        verdict = session.verdict
        text = console.text()
        verdict.command_status = parse_command_status(text)
        if challenge is not None:
            _check_attestation(verdict, text, challenge, session.vm)
        _summary(session.vm, verdict, session.platform)

    session = realm_session(pcfg, vm_cfg, console, trace, timeout=args.timeout,
                            input_stream=stdin, report=report, guest=guest,
                            rsi_timeout=args.rsi_timeout, debugger=debugger,
                            announce=lambda gpt: _say(f"{header}, GPT {gpt}; kernel {what}"
                                                      + (f"; firmware {args.firmware}"
                                                         if args.firmware else "")))
    return _exit_status(session.verdict)


@dataclass
class Session:
    platform: object
    vm: RealmVm
    verdict: Verdict


def realm_session(pcfg: PlatformConfig, vm_cfg: RealmVmConfig, console: RealmConsole,
                  trace: Trace, *, timeout: float = 0.0, input_stream=None,  # type: ignore[no-untyped-def]
                  announce=None, report=None, rsi_timeout: float = RSI_TIMEOUT,
                  guest: GuestImages | None = None, debugger=None) -> Session:  # type: ignore[no-untyped-def]
    """Start the platform, build the realm, run it, tear it down to the last
    granule: the whole life of one realm.  `report(session)` runs while the
    platform is still up (for a summary that reads it)."""
    from .images import INIT_MARKER
    from .platform import Platform

    init_seen, init_at = console.watch(INIT_MARKER.encode())
    with Platform(pcfg, trace=trace, debugger=debugger) as p:
        if vm_cfg.cpus > 1:
            p.stub.start_secondaries()  # type: ignore[union-attr]
        vm = RealmVm(p, vm_cfg, console, guest)
        if announce is not None:
            announce("the firmware's (QEMU's GPC)" if pcfg.firmware else pcfg.gpt.value)
        session = Session(p, vm, Verdict(RunResult("error", 0.0)))
        verdict = session.verdict
        try:
            vm.build()
            _say(f"realm built in {vm.build_seconds:.1f} s: RIM "
                 f"{vm.rim[:vm.realm.rim_len].hex()}")
            verdict.result = vm.run(timeout=timeout, input_stream=input_stream,
                                    rsi_timeout=rsi_timeout)
        except KeyboardInterrupt:
            verdict.result = RunResult("interrupted", 0.0)
        finally:
            console.close()
            sys.stdout.flush()
            try:
                verdict.left = vm.destroy()
            except RealmVmError as exc:
                verdict.problems.append(str(exc))
        if init_seen.is_set():
            verdict.init_seconds = console.t0 + init_at[0] - vm.run_started
        if report is not None:
            report(session)
    return session


def _usable_stdin() -> bool:
    try:
        return not sys.stdin.closed and sys.stdin.fileno() >= 0
    except (ValueError, OSError):
        return False


def _check_attestation(verdict: Verdict, text: str, challenge: bytes, vm: RealmVm) -> None:
    from .host.attest import check_realm_token
    from .images import AttestationError, parse_attestation

    if verdict.result.outcome != "off":
        verdict.attestation = "not checked (the guest did not power off)"
        return
    try:
        block = parse_attestation(text)
    except AttestationError as exc:
        verdict.attestation, verdict.attestation_ok = str(exc), False
        return
    firmware = vm.platform.firmware_mode
    check = check_realm_token(block.token, challenge, vm.rim[:vm.realm.rim_len],
                              platform_key_known=not firmware)
    if block.challenge != challenge:
        check.problems.append("the guest echoed another challenge")
    verdict.attestation_ok = check.ok
    verdict.attestation = (f"token of {len(block.token)} bytes: "
                           + (("realm signature and platform binding verified (the "
                               "firmware's platform key is unknown here)" if firmware else
                               "signatures verified") + ", challenge and RIM match"
                              if check.ok else "FAILED: " + "; ".join(check.problems)))


OUTCOMES = {
    "off": "the guest powered the realm off (PSCI SYSTEM_OFF)",
    "reset": "the guest asked for a reset (PSCI SYSTEM_RESET); realms here do not reboot",
    "timeout": "stopped at --timeout",
    "interrupted": "interrupted",
    "quit": "quit from the console (Ctrl-A x)",
    "no-rsi": ("the guest made no RSI call, no RIPAS change and no access through the "
               "unprotected alias: its kernel has no realm support (Linux >= 6.13 with "
               "the RSI probe, CONFIG_ARM_CCA_GUEST)"),
    "error": "failed",
}


def _counts(counter: Counter[str], top: int = 8) -> str:
    items = counter.most_common()
    shown = ", ".join(f"{name} {n:,}" for name, n in items[:top])
    rest = sum(n for _, n in items[top:])
    return shown + (f", others {rest:,}" if rest else "")


def _summary(vm: RealmVm, v: Verdict, platform) -> None:  # type: ignore[no-untyped-def]
    r = v.result
    lines = [f"outcome: {OUTCOMES.get(r.outcome, r.outcome)} after {r.seconds:.1f} s"
             + (f": {r.error}" if r.error else "")]
    if v.init_seconds is not None:
        lines.append(f"init marker after {v.init_seconds:.1f} s of the run "
                     f"(build {vm.build_seconds:.1f} s before it)")
    if v.command_status is not None:
        lines.append(f"command exited with status {v.command_status}")
    if v.attestation:
        lines.append(f"attestation: {v.attestation}")
    exits = vm.stats.exits
    lines.append(f"exits: {sum(exits.values()):,} ({_counts(exits)})")
    lines.append(f"RMI calls: {sum(vm.stats.rmi.values()):,} ({_counts(vm.stats.rmi)})")
    if vm.stats.rsi:
        # Every name: a realm makes few kinds of call, and the rare ones (one
        # PSCI_CPU_ON per secondary vCPU) are the interesting ones.
        lines.append(f"RSI and PSCI calls seen by the RMM: {sum(vm.stats.rsi.values()):,} "
                     f"({_counts(vm.stats.rsi, top=len(vm.stats.rsi))})")
    lines.append(f"granules delegated: {vm.realm.peak_delegated:,} at peak, {len(v.left)} at "
                 f"the end (teardown {vm.teardown_seconds:.1f} s)")
    violations = platform.guard.violations if platform.guard is not None else []
    if violations:
        lines.append(f"GPT violations: {len(violations)}")
    for problem in v.problems:
        lines.append(f"problem: {problem}")
    _say("realm summary\n  " + "\n  ".join(lines))


def _exit_status(v: Verdict) -> int:
    if v.result.outcome == "interrupted":
        return EXIT_INTERRUPTED
    if v.result.outcome not in ("off", "quit") or v.left or v.problems \
            or v.attestation_ok is False:
        return EXIT_FAILED
    if v.command_status:
        return v.command_status
    return EXIT_OK


# -- argument types --------------------------------------------------------------------------


def _mem(text: str) -> int:
    from .cli import parse_size

    value = parse_size(text)
    if not MIN_MEM <= value <= MAX_MEM or value % (2 * MIB):
        raise argparse.ArgumentTypeError(
            f"--mem {text}: a realm needs {MIN_MEM >> 20}M to {MAX_MEM >> 30}G, in 2M steps")
    return value


def _rpv(text: str) -> str:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--realm-pv {text!r} is not hexadecimal") from None
    if len(value) > 64:
        raise argparse.ArgumentTypeError("--realm-pv takes at most 64 bytes (128 hex digits)")
    return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .cli import _cpus
    from .cli_args import readable_file

    p.add_argument("--kernel", type=Path, help="arm64 kernel Image (default: the fetched "
                   "Debian kernel, `cosim images fetch`)")
    p.add_argument("--initrd", type=Path, help="initramfs (default: the fetched one)")
    p.add_argument("--params", default="", metavar="CMDLINE",
                   help=f"kernel command line, after '{DEFAULT_PARAMS}'")
    p.add_argument("--cpus", type=_cpus, default=DEFAULT_CPUS,
                   help=f"vCPUs = RECs, one host CPU each (default {DEFAULT_CPUS})")
    p.add_argument("--mem", type=_mem, default=DEFAULT_MEM, help="realm RAM (default 512M)")
    p.add_argument("--measurement-algo", choices=sorted(HASH_ALGOS), default="sha256",
                   help="realm hash algorithm (default sha256)")
    p.add_argument("--realm-pv", type=_rpv, metavar="HEX",
                   help="realm personalization value (up to 64 bytes, hex)")
    p.add_argument("--gpt", choices=["auto", "hw", "plugin", "off"], default=None,
                   help="granule protection (default: hw when QEMU's CPU has RME)")
    p.add_argument("--firmware", type=readable_file, default=None, metavar="FLASH",
                   help="run on this EL3 firmware (TF-A + TF-RMM flash image for QEMU virt) "
                        "instead of our monitor and RMM (docs/firmware.md)")
    p.add_argument("--host-channel", choices=["sip", "poll"], default="sip",
                   help="how the hoststub asks for work (poll: a mailbox in shared RAM; "
                        "always with --firmware)")
    p.add_argument("--timeout", type=float, default=0.0,
                   help="stop the realm after this many seconds (default: no limit)")
    p.add_argument("--rsi-timeout", type=float, default=RSI_TIMEOUT, metavar="SECONDS",
                   help="stop a guest that shows no realm support by then (default "
                        f"{RSI_TIMEOUT:.0f}; 0: never)")
    p.add_argument("--no-attest", action="store_true",
                   help="do not ask the guest for an attestation token")
    p.add_argument("--cache", type=Path, default=None, help="image cache directory")
    p.add_argument("--qemu", default=PlatformConfig.qemu, help="qemu-system-aarch64 binary")
    p.add_argument("--trace", type=Path, default=None, metavar="FILE",
                   help="write every event as JSON lines to FILE")
    gdb_options.add_arguments(p, vmlinux=True)
    p.add_argument("command", nargs=argparse.REMAINDER,
                   help="-- COMMAND...: run it in the guest (default /init), then power off")


def cmd_realm_run(args: argparse.Namespace, trace: Trace) -> int:
    try:
        return run_realm(args, trace)
    except RealmVmError as exc:
        print(f"cosim: {exc}", file=sys.stderr)
        return EXIT_USAGE if exc.usage else EXIT_FAILED
    except ConfigError as exc:
        print(f"cosim: {exc}", file=sys.stderr)
        return EXIT_USAGE
