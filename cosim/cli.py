"""The `cosim` command line."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from .cli_text import describe_platform
from .config import REPO_ROOT, ConfigError, GptMode, PlatformConfig, ViolationPolicy
from .machine.errors import MachineError
from .trace import Trace, read_jsonl

BENCH_DIR = REPO_ROOT / "bench"

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
                        "into the offender, plugin halts the machine)")
    p.add_argument("--no-rme", action="store_true",
                   help="use -cpu max without FEAT_RME (implies --gpt plugin by default)")
    p.add_argument("--qemu", default=PlatformConfig.qemu, help="qemu-system-aarch64 binary")
    p.add_argument("--payload", type=Path, default=None,
                   help="NS-EL2 image to boot (default: the hoststub)")
    p.add_argument("--trace", type=Path, default=None, metavar="FILE",
                   help="write every event as JSON lines to FILE")
    p.add_argument("--symbols", type=Path, action="append", metavar="ELF",
                   help="ELF file whose symbols name PCs in reports (repeatable)")


def platform_config(args: argparse.Namespace) -> PlatformConfig:
    cfg = PlatformConfig(cpus=args.cpus, ram_size=args.ram, rme=not args.no_rme, qemu=args.qemu,
                         on_violation=ViolationPolicy(args.on_violation))
    if args.payload is not None:
        cfg.payload = args.payload
    if args.gpt is None:
        cfg.gpt = GptMode.AUTO if cfg.rme else GptMode.PLUGIN
    else:
        cfg.gpt = GptMode(args.gpt)
    for path in args.symbols or []:
        cfg.symbol_files.append(path)
    return cfg


def open_trace(args: argparse.Namespace) -> Trace:
    trace = Trace()
    if getattr(args, "trace", None) is not None:
        trace.write_to(args.trace.open("w"))
    return trace


# -- commands ---------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from .platform import Platform

    cfg = platform_config(args)
    trace = open_trace(args)
    with Platform(cfg, trace=trace, console_echo=sys.stdout) as p:
        assert p.monitor is not None and p.machine is not None
        print(describe_platform(cfg), file=sys.stderr)
        deadline = time.monotonic() + args.timeout if args.timeout else None
        while not p.monitor.powered_off.wait(0.2):
            p.machine.check()
            if deadline and time.monotonic() > deadline:
                print(f"cosim: stopping after {args.timeout} s", file=sys.stderr)
                break
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(platform_config(args), open_trace(args))


def cmd_bench(args: argparse.Namespace) -> int:
    path = BENCH_DIR / f"{args.name}.py"
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in BENCH_DIR.glob("*.py") if p.stem[0] != "_"))
        print(f"cosim: no benchmark '{args.name}' (available: {names})", file=sys.stderr)
        return 2
    spec = importlib.util.spec_from_file_location(f"cosim_bench_{args.name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return int(module.main(args.bench_args) or 0)


def cmd_trace(args: argparse.Namespace) -> int:
    try:
        with args.file.open() as f:
            events = list(read_jsonl(f))
    except OSError as exc:
        print(f"cosim: cannot read trace {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"cosim: {args.file} is not a JSON-lines trace: {exc}", file=sys.stderr)
        return 2
    if args.kind:
        events = [e for e in events if e.get("kind") in args.kind]
    if args.name:
        events = [e for e in events if re.search(args.name, str(e.get("name", "")))]
    if args.summary:
        from .trace_summary import summarise

        print(summarise(events))
        return 0
    for e in events:
        print(json.dumps(e, separators=(",", ":")))
    return 0


def cmd_verify_token(args: argparse.Namespace) -> int:
    from .rmm.attestation import TokenError, verify_token

    try:
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"cosim: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        claims = verify_token(data)
    except TokenError as exc:
        print(f"cosim: token verification FAILED: {exc}", file=sys.stderr)
        return 1
    print(claims.describe())
    return 0


# -- parser ---------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, non-zero exit
        self.exit(2, f"cosim: {message} (see cosim --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cosim", description="Arm CCA realms on stock QEMU: a Python RMM and "
                                               "GPT co-simulated through a TCG plugin.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("demo", help="the main job: boot the platform and show the RMM at work")
    add_platform_args(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="boot an NS payload and stream its console until it "
                                   "powers off")
    add_platform_args(p)
    p.add_argument("--timeout", type=float, default=0, help="stop after this many seconds")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("bench", help="run a benchmark (smc, gpt, realm, rmm) and print its figures")
    p.add_argument("name", help="benchmark name (a file in bench/)")
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("trace", help="print, filter or summarise a JSON-lines trace")
    p.add_argument("file", type=Path)
    p.add_argument("--kind", action="append", help="only events of this kind (repeatable)")
    p.add_argument("--name", help="only events whose name matches this regex")
    p.add_argument("--summary", action="store_true", help="counts and times per command")
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("verify-token", help="verify a CCA attestation token (CBOR file)")
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_verify_token)
    return parser


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        print(f"cosim: {exc}", file=sys.stderr)
        return 2
    except MachineError as exc:
        print(f"cosim: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cosim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
