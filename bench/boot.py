"""`cosim bench boot`: the default kernel and initramfs booted to /init's marker
(a) as a plain QEMU TCG guest (-M virt -cpu max, no CCA, same vCPUs, memory
and command line) and (b) as a realm under cca-cosim, in one run.

The realm figure counts from cosim's start (QEMU, the monitor, the realm's
construction through RMI) to the marker, as the plain one counts from QEMU's
start; both guests then run `true` and power off.  Exits are every exit of
the realm to its host during the run: the returns of RMI_REC_ENTER the VMM
handled plus those the hoststub completed itself (stub_exits: the console
fast path); python_us_per_exit is the CPU time of the Python process during
the run divided by all of them.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import Figure, report

from cosim.cli_args import OneLineParser, positive_int
from cosim.config import GptMode, PlatformConfig, ViolationPolicy
from cosim.host.console import RealmConsole
from cosim.host.vm import RealmVmConfig
from cosim.images import RealmImages, baseline, command_param, load_images
from cosim.realm_run import DEFAULT_PARAMS, platform_ram_for, realm_session
from cosim.trace import Trace

MIB = 1 << 20


class RealmBoot(NamedTuple):
    """One realm boot to /init's marker."""

    seconds: float
    """From cosim's start (QEMU, monitor, the realm's construction) to the marker."""
    exits: int
    """Every exit of the realm to its host (stub_exits included)."""
    stub_exits: int
    run_seconds: float
    python_us_per_exit: float


class BootFailed(Exception):
    pass


def boot_realm(images: RealmImages, params: list[str], cpus: int, mem_mib: int,
               gpt: GptMode) -> RealmBoot:
    """Boot the realm (then `true`, power off, tear down) and time it."""
    console = RealmConsole()
    cfg = PlatformConfig(cpus=cpus, ram_size=platform_ram_for(mem_mib * MIB), gpt=gpt,
                         on_violation=ViolationPolicy.LOG if gpt == GptMode.PLUGIN
                         else ViolationPolicy.DEFAULT)
    vm_cfg = RealmVmConfig(kernel=images.kernel, initrd=images.initrd, cpus=cpus,
                           mem=mem_mib * MIB, cmdline=" ".join([DEFAULT_PARAMS, *params]))
    t0 = time.monotonic()
    session = realm_session(cfg, vm_cfg, console, Trace(history=0), timeout=600)
    verdict = session.verdict
    if verdict.init_seconds is None or verdict.result.outcome != "off":
        raise BootFailed(f"the realm boot (--gpt {gpt.value}) failed: "
                         f"{verdict.result.outcome} {verdict.result.error}\n{console.tail()}")
    vm = session.vm
    exits = vm.stats.enters + vm.stats.stub_exits
    return RealmBoot((vm.run_started - t0) + verdict.init_seconds, exits, vm.stats.stub_exits,
                     verdict.result.seconds, vm.stats.run_cpu_seconds / max(exits, 1) * 1e6)


def main(argv: list[str]) -> int:
    ap = OneLineParser(prog="cosim bench boot")
    ap.add_argument("--cpus", type=positive_int, default=2)
    ap.add_argument("--mem", type=positive_int, default=512, help="MiB (default 512)")
    ap.add_argument("--gpt", choices=[m.value for m in GptMode], default="hw")
    ap.add_argument("--params", default="", help="extra kernel parameters for both boots")
    ap.add_argument("--runs", type=positive_int, default=1)
    ap.add_argument("--cache", type=Path, default=None)
    args = ap.parse_args(argv)

    images = load_images(args.cache)
    params = [p for p in (args.params, command_param("true")) if p]
    plain, realm, exits, cpu_per_exit, run_s, stub_exits = [], [], [], [], [], []
    for _ in range(args.runs):
        base = baseline.run_baseline(images, params, cpus=args.cpus, memory=f"{args.mem}M")
        if base.marker_s is None:
            print("cosim: the plain boot never reached /init's marker", file=sys.stderr)
            return 1
        plain.append(base.marker_s)

        try:
            boot = boot_realm(images, params, args.cpus, args.mem, GptMode(args.gpt))
        except BootFailed as exc:
            print(f"cosim: {exc}", file=sys.stderr)
            return 1
        realm.append(boot.seconds)
        exits.append(boot.exits)
        stub_exits.append(boot.stub_exits)
        run_s.append(boot.run_seconds)
        cpu_per_exit.append(boot.python_us_per_exit)

    plain_s, realm_s = statistics.median(plain), statistics.median(realm)
    n_exits, seconds = statistics.median(exits), statistics.median(run_s)
    report(f"Linux boot to /init, plain QEMU vs realm ({args.cpus} vCPUs, {args.mem} MiB, "
           f"--gpt {args.gpt}, median of {args.runs})", [
               Figure("plain_boot_s", plain_s, "s", "plain QEMU TCG guest", 2),
               Figure("realm_boot_s", realm_s, "s", "realm under cca-cosim", 2),
               Figure("boot_ratio", realm_s / plain_s, "x", "realm / plain", 2),
               Figure("realm_exits", n_exits, "", "realm exits to the host (whole run)"),
               Figure("stub_exits", statistics.median(stub_exits), "",
                      "of which the hoststub completed (console fast path)"),
               Figure("realm_exits_per_s", n_exits / seconds, "/s", "exits per second of run"),
               Figure("python_us_per_exit", statistics.median(cpu_per_exit), "us",
                      "Python CPU time per exit (during the run)", 1),
           ], notes=[f"kernel {images.version} ({images.package_version}); command line "
                     f"'{DEFAULT_PARAMS} {args.params}'".rstrip()])
    return 0
