"""The `cosim` command line.

Every command runs inside main(), which turns what a user can get wrong into
one line on stderr and an exit status (cosim.exit_status): usage, configuration
and file errors, a failed machine, signals, a closed or broken standard stream.
Commands added here get that for free; argument types that check paths and
counts up front are in cosim.cli_args.
"""

from __future__ import annotations

import sys

try:  # Ctrl-C while Python is still importing: no traceback either
    import argparse
    import contextlib
    import errno
    import importlib.util
    import json
    import os
    import re
    import resource
    import signal
    from collections.abc import Callable, Iterator, Sequence
    from contextlib import contextmanager
    from pathlib import Path
    from types import FrameType

    from .cli_args import (
        OneLineParser,
        elf_file,
        output_file,
        positive_seconds,
        readable_file,
        regex,
    )
    from .cli_text import ViolationPrinter
    from .config import (
        HOST_CHANNELS,
        REPO_ROOT,
        ConfigError,
        GptMode,
        PlatformConfig,
        ViolationPolicy,
    )
    from .exit_status import ExitStatus
    from .images import command as images_command
    from .machine.errors import MachineError
    from .trace import Trace, TraceFormatError, read_jsonl
except KeyboardInterrupt:
    raise SystemExit(130) from None

BENCH_DIR = REPO_ROOT / "bench"
_BENCH_NAME = re.compile(r"[a-z][a-z0-9_]*")

_SIZE = re.compile(r"^(\d+)([KMG]?)(i?B?)?$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'1G', '512M', '1073741824' -> bytes."""
    m = _SIZE.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size (e.g. 512M, 2G)")
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2).upper()]


def _cpus(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of CPUs") from None
    if not 1 <= n <= 8:
        raise argparse.ArgumentTypeError(f"--cpus must be 1..8, not {n}")
    return n


def add_platform_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cpus", type=_cpus, default=1, help="vCPUs (1..8, default 1)")
    p.add_argument("--ram", type=parse_size, default=PlatformConfig.ram_size,
                   help="guest RAM (default 1G)")
    p.add_argument("--gpt", choices=[m.value for m in GptMode], default=None,
                   help="granule protection: hw (QEMU's GPC, default on an RME CPU), "
                        "plugin (checked by the TCG plugin) or off")
    p.add_argument("--on-violation", choices=[v.value for v in ViolationPolicy],
                   default=ViolationPolicy.DEFAULT.value,
                   help="what a GPT violation does (default: hw injects an external abort "
                        "into the offender, plugin halts the machine; log: plugin mode "
                        "records it and goes on)")
    p.add_argument("--no-rme", action="store_true",
                   help="use -cpu max without FEAT_RME (implies --gpt plugin by default)")
    p.add_argument("--qemu", default=PlatformConfig.qemu, help="qemu-system-aarch64 binary")
    p.add_argument("--trace", type=output_file, default=None, metavar="FILE",
                   help="write every event as JSON lines to FILE")
    p.add_argument("--symbols", type=elf_file, action="append", metavar="ELF",
                   help="ELF file whose symbols name PCs in reports (repeatable)")
    p.add_argument("--firmware", type=readable_file, default=None, metavar="FLASH",
                   help="boot this EL3 firmware (TF-A + TF-RMM flash image for QEMU virt) "
                        "instead of our monitor and RMM; the payload is its BL33 "
                        "(docs/firmware.md)")
    p.add_argument("--host-channel", choices=list(HOST_CHANNELS), default="sip",
                   help="how the hoststub asks for work: sip (our monitor's SiP call, "
                        "default) or poll (a mailbox in shared RAM; always with --firmware)")


def platform_config(args: argparse.Namespace) -> PlatformConfig:
    cfg = PlatformConfig(cpus=args.cpus, ram_size=args.ram, rme=not args.no_rme, qemu=args.qemu,
                         on_violation=ViolationPolicy(args.on_violation),
                         gpt=GptMode.AUTO if args.gpt is None else GptMode(args.gpt))
    if getattr(args, "payload", None) is not None:
        cfg.payload = args.payload
    cfg.firmware = getattr(args, "firmware", None)
    cfg.host_channel = getattr(args, "host_channel", "sip")
    cfg.initrd = getattr(args, "initrd", None)
    cfg.bootargs = getattr(args, "append", None)
    for path in args.symbols or []:
        cfg.symbol_files.append(path)
    return cfg


@contextmanager
def open_trace(args: argparse.Namespace) -> Iterator[Trace]:
    """The run's trace, written to --trace FILE if given (closed at the end;
    a failed write makes the command fail once the run is over)."""
    trace = Trace()
    path = getattr(args, "trace", None)
    if path is not None:
        trace.write_to(path.open("w"))
    try:
        yield trace
    finally:
        trace.close()
    if trace.write_error is not None:
        why = getattr(trace.write_error, "strerror", None) or trace.write_error
        raise _OutputError(f"could not write the trace to {path}: {why}")


class _OutputError(Exception):
    """An output the user asked for could not be written."""


# -- commands ---------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from .payload_run import run_payload

    cfg = platform_config(args)
    with open_trace(args) as trace:
        return run_payload(cfg, trace, args.timeout, sys.stdout, sys.stderr)


def cmd_realm_run(args: argparse.Namespace) -> int:
    from .realm_run import cmd_realm_run as run

    with open_trace(args) as trace:
        return run(args, trace)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    if args.firmware is not None:
        print("cosim: the demo shows our RMM at work; with your firmware use `cosim realm run "
              "--firmware` or `cosim compare` (docs/firmware.md)", file=sys.stderr)
        return ExitStatus.USAGE
    cfg = platform_config(args)
    with open_trace(args) as trace, ViolationPrinter(trace, sys.stderr) as shown:
        status = ExitStatus.FAILED
        try:
            status = ExitStatus(run_demo(cfg, trace))
        finally:
            violated = shown.finish(cfg.on_violation)
    return ExitStatus.VIOLATION if violated else status


def bench_names() -> list[str]:
    return sorted(p.stem for p in BENCH_DIR.glob("*.py") if _BENCH_NAME.fullmatch(p.stem))


def cmd_bench(args: argparse.Namespace) -> int:
    names = bench_names()
    if args.name not in names:
        print(f"cosim: no benchmark '{args.name}' (available: {', '.join(names)})",
              file=sys.stderr)
        return ExitStatus.USAGE
    path = BENCH_DIR / f"{args.name}.py"
    spec = importlib.util.spec_from_file_location(f"cosim_bench_{args.name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        return int(module.main(args.bench_args) or 0)
    except SystemExit as exc:  # the benchmark's own usage error, already printed
        return exc.code if isinstance(exc.code, int) else ExitStatus.USAGE


def cmd_trace(args: argparse.Namespace) -> int:
    cut: list[int] = []
    try:
        with args.file.open("rb") as f:
            events = read_jsonl(f, on_cut=cut.append)
            if args.kind:
                events = (e for e in events if e.get("kind") in args.kind)
            if args.name:
                events = (e for e in events if args.name.search(str(e.get("name", ""))))
            if args.summary:
                from .trace_summary import summarise

                print(summarise(events))
            else:
                for e in events:
                    print(json.dumps(e, separators=(",", ":")))
    except TraceFormatError as exc:
        print(f"cosim: {args.file} {exc}: not a trace written by cosim", file=sys.stderr)
        return ExitStatus.USAGE
    if cut:
        print(f"cosim: {args.file}: line {cut[0]} is cut short (the run that wrote it ended "
              "mid-line); every event before it was read", file=sys.stderr)
    return ExitStatus.OK


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare.run import cmd_compare as run

    with open_trace(args) as trace:
        return run(args, trace)


def cmd_firmware_show(args: argparse.Namespace) -> int:
    from .firmware.command import show

    return show(args.file)


def cmd_firmware_pack(args: argparse.Namespace) -> int:
    from .firmware.command import pack

    return pack(args.file, args.bl33, args.output)


def cmd_images(args: argparse.Namespace) -> int:
    from .images.command import run

    return run(args)


def cmd_verify_token(args: argparse.Namespace) -> int:
    from .rmm.attestation import TokenError, verify_token

    try:
        claims = verify_token(args.file.read_bytes())
    except TokenError as exc:
        print(f"cosim: token verification FAILED: {exc}", file=sys.stderr)
        return ExitStatus.FAILED
    print(claims.describe())
    return ExitStatus.OK


# -- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="cosim", description="Arm CCA realms on stock QEMU: a Python "
                                                     "RMM and GPT co-simulated through a TCG "
                                                     "plugin.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True

    p = sub.add_parser("demo", help="the main job: boot the platform and show the RMM at work")
    add_platform_args(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="boot an NS payload (default: the hoststub) and stream its "
                                   "console until it powers off",
                       epilog="exit status: 0 the payload powered off; 1 the machine failed; "
                              "2 bad arguments or files; 3 GPT violations; 4 the payload reset "
                              "the machine; 124 --timeout passed; 130 interrupted")
    add_platform_args(p)
    p.add_argument("--payload", type=readable_file, default=None, metavar="IMAGE",
                   help="NS-EL2 image to boot, e.g. an arm64 Linux Image (default: the "
                        "hoststub)")
    p.add_argument("--initrd", type=readable_file, default=None, metavar="FILE",
                   help="initramfs for a Linux payload (described in /chosen)")
    p.add_argument("--append", default=None, metavar="ARGS",
                   help="kernel command line (/chosen/bootargs)")
    p.add_argument("--timeout", type=positive_seconds, default=None, metavar="SECONDS",
                   help="end the run (exit 124) if the payload has not powered off after this "
                        "long (default: no limit)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("realm", help="run Linux as a realm (realm run)")
    realm_sub = p.add_subparsers(dest="realm_command", metavar="COMMAND",
                                 parser_class=OneLineParser)
    realm_sub.required = True
    from .realm_run import add_arguments

    p = realm_sub.add_parser("run", help="boot a kernel as a realm through the KVM-style VMM "
                                         "(default: the fetched Debian kernel), with its "
                                         "console here; ends with a summary")
    add_arguments(p)
    p.set_defaults(func=cmd_realm_run)

    from .compare.run import add_arguments as add_compare_arguments

    p = sub.add_parser("compare", help="run the same scenario on our RMM and on your firmware "
                                       "(TF-A + TF-RMM) and report the differences",
                       epilog="exit status: 0 no unexplained difference; 1 unexplained "
                              "differences or a scenario that failed; 2 bad arguments")
    add_compare_arguments(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("firmware", help="show a firmware flash image's FIP, or put a BL33 in it")
    fw_sub = p.add_subparsers(dest="firmware_command", metavar="COMMAND",
                              parser_class=OneLineParser)
    fw_sub.required = True
    q = fw_sub.add_parser("show", help="list the images in a flash image's (or a FIP's) FIP")
    q.add_argument("file", type=readable_file)
    q.set_defaults(func=cmd_firmware_show)
    q = fw_sub.add_parser("pack", help="write FLASH with BL33 replaced (default: the hoststub "
                                       "linked at TF-A's 0x60000000, polling)")
    q.add_argument("file", type=readable_file, metavar="FLASH")
    q.add_argument("--bl33", type=readable_file, default=None, metavar="IMAGE",
                   help="the BL33 to put in (default: build/hoststub-bl33.bin)")
    q.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
    q.set_defaults(func=cmd_firmware_pack)

    p = sub.add_parser("bench", help="run a benchmark (smc, gpt, realm, boot, rmm, channel) "
                                     "and print its figures")
    p.add_argument("name", help="benchmark name (a file in bench/)")
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("trace", help="print, filter or summarise a JSON-lines trace")
    p.add_argument("file", type=readable_file)
    p.add_argument("--kind", action="append", help="only events of this kind (repeatable)")
    p.add_argument("--name", type=regex, help="only events whose name matches this regex")
    p.add_argument("--summary", action="store_true", help="counts and times per command")
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("verify-token", help="verify a CCA attestation token (CBOR file)")
    p.add_argument("file", type=readable_file)
    p.set_defaults(func=cmd_verify_token)

    p = sub.add_parser("images", help="fetch or show the realm guest images (Debian's arm64 "
                                      "kernel, the initramfs)")
    images_command.add_arguments(p)
    p.set_defaults(func=cmd_images)
    return parser


# -- what main() does around every command --------------------------------------------------


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def install_signal_handlers() -> None:
    """SIGINT, SIGTERM and SIGHUP end a command cleanly (QEMU stopped, files
    closed), except a signal this process inherited as ignored: nohup, or a
    non-interactive shell starting a background job, asks for that, and it
    is honoured (SIGTERM still works then)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) != signal.SIG_IGN:
            signal.signal(sig, _interrupt)


def reopen_closed_std_streams() -> None:
    """Give a closed stdin, stdout or stderr /dev/null, so that no file this
    process opens gets descriptor 0, 1 or 2 (and is clobbered when a child's
    streams are redirected), and printing to it is harmless."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        null = os.open(os.devnull, os.O_RDONLY if mode == "r" else os.O_WRONLY)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        setattr(sys, name, open(fd, mode, closefd=False))  # noqa: SIM115


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so that the interpreter's
    final flush cannot fail again."""
    null = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError):
        os.dup2(null, sys.stdout.fileno())
    os.close(null)


def describe_os_error(exc: OSError) -> str:
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        return f"too many open files (this process may have {soft}: raise ulimit -n)"
    what = exc.strerror or str(exc)
    return f"{exc.filename}: {what}" if exc.filename else what


def _error(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(f"cosim: {text}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        reopen_closed_std_streams()
        install_signal_handlers()
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help, or a usage error argparse printed
            return exc.code if isinstance(exc.code, int) else ExitStatus.USAGE
        func: Callable[[argparse.Namespace], int] = args.func
        status = int(func(args))
        if status == ExitStatus.BROKEN_PIPE:
            _silence_stdout()  # or the interpreter's final flush fails again (exit 120)
        return status
    except KeyboardInterrupt:
        _error("interrupted")
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return ExitStatus.BROKEN_PIPE
    except ConfigError as exc:
        _error(str(exc))
        return ExitStatus.USAGE
    except (MachineError, _OutputError) as exc:
        _error(str(exc))
        return ExitStatus.FAILED
    except OSError as exc:
        _error(describe_os_error(exc))
        return ExitStatus.FAILED if exc.errno in (errno.EMFILE, errno.ENFILE) \
            else ExitStatus.USAGE


if __name__ == "__main__":
    sys.exit(main())
