"""The KVM-style realm VMM: a Linux kernel booted as a realm through RMI
calls issued from NS-EL2, the way KVM and kvmtool do it.

    vm = RealmVm(platform, RealmVmConfig(kernel=..., initrd=..., cmdline=...), console)
    vm.build()        # RMI_VERSION/FEATURES, realm, RIPAS, measured images, RECs, activate
    result = vm.run() # one host CPU per REC, until the guest powers off (or a limit)
    vm.destroy()      # every granule back to UNDELEGATED, checked

It drives whatever RMM answers the SMCs (it only uses the RMI v1.0 ABI); the
platform's own RMM is looked at only to name the realm's PC in diagnoses and
to cross-check the teardown.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..arch.pas import GRANULE_SIZE
from ..rmm.abi import SMC_UNKNOWN, HashAlgorithm, Ripas, RmiFid
from ..rmm.features import FeatureRegister0
from . import realm_dt, realm_map
from .console import RealmConsole
from .devices.gic import VGic
from .devices.mmio import MmioBus
from .devices.pl011 import Pl011
from .kernel_image import IMAGE_ALIGN, KernelImage, KernelImageError
from .realm import HostRealm, RealmSpec, rec_mpidr
from .rmi import RmiClient, RmiError
from .stub import Program
from .vcpu import Vcpu

if TYPE_CHECKING:
    from ..platform import Platform

MIB = 1 << 20
RMI_ABI_1_0 = 0x1_0000
MIN_FREE_RAM = 64 * MIB
"""RAM a guest needs beyond its kernel, initrd and device tree."""
SLICE_SECONDS = 0.1
"""Longest a realm runs before its host CPU takes control back (a host tick)."""
IDLE_CAP_SECONDS = 0.02
"""Longest an idle vCPU sleeps before it looks at terminal input and stops."""
STOP_TIMEOUT = 10.0
UNASSIGNED_MMIO_REPORTS = 8


class RealmVmError(Exception):
    """A realm that cannot be built or run as asked (one line, for the user);
    `usage` when the user's input is what is wrong."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass
class RealmVmConfig:
    kernel: Path
    initrd: Path | None = None
    cmdline: str = ""
    cpus: int = 2
    mem: int = 512 * MIB
    ipa_bits: int = realm_map.DEFAULT_IPA_BITS
    hash_algo: HashAlgorithm = HashAlgorithm.SHA_256
    rpv: bytes = bytes(64)
    vmid: int = 1
    fault_pages: int = 16
    """Granules backed per stage-2 fault (the faulting one and those after it)."""


@dataclass
class Placement:
    """Where the VMM puts the images in the realm's IPA space."""

    kernel: int
    entry: int
    kernel_end: int
    initrd: int
    initrd_end: int
    dtb: int


@dataclass
class RunResult:
    outcome: str
    """"off" (PSCI SYSTEM_OFF), "reset", "timeout", "interrupted", "quit", "error"."""
    seconds: float
    error: str = ""
    vcpu: int | None = None


@dataclass
class VmStats:
    exits: Counter[str] = field(default_factory=Counter)
    rmi: Counter[str] = field(default_factory=Counter)
    rsi: Counter[str] = field(default_factory=Counter)
    backed: int = 0
    enters: int = 0
    """RMI_REC_ENTER returns the VMM handled (exits that reached Python)."""
    stub_exits: int = 0
    """Exits the hoststub completed without Python (the console fast path)."""
    run_cpu_seconds: float = 0.0
    """CPU time of this process (every thread) while the realm ran."""


def _align_up(value: int, align: int) -> int:
    return (value + align - 1) // align * align


@dataclass
class GuestImages:
    """The kernel and initrd a realm boots, read and placed (before any
    platform exists, so that a user's mistake costs no QEMU start)."""

    kernel: KernelImage
    initrd: bytes
    placement: Placement

    @classmethod
    def load(cls, config: RealmVmConfig) -> GuestImages:
        kernel = _load_kernel(config.kernel)
        initrd = _load_initrd(config.initrd)
        return cls(kernel, initrd, _place(config, kernel, initrd))


def _load_kernel(path: Path) -> KernelImage:
    try:
        return KernelImage.load(path)
    except KernelImageError as exc:
        raise RealmVmError(str(exc), usage=True) from None


def _load_initrd(path: Path | None) -> bytes:
    if path is None:
        return b""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise RealmVmError(f"initrd {path} does not exist", usage=True) from None
    except IsADirectoryError:
        raise RealmVmError(f"initrd {path} is a directory", usage=True) from None
    except OSError as exc:
        raise RealmVmError(f"cannot read initrd {path}: {exc.strerror}", usage=True) \
            from None


def _place(config: RealmVmConfig, k: KernelImage, initrd: bytes) -> Placement:
    """kvmtool-like: the kernel at the start of RAM, the initrd at the next
    2 MiB boundary after the kernel's image_size, the device tree after it."""
    base = realm_map.RAM_BASE
    kernel_end = base + k.text_offset + k.image_size
    initrd_at = _align_up(kernel_end, IMAGE_ALIGN)
    initrd_end = initrd_at + len(initrd)
    dtb = _align_up(initrd_end, GRANULE_SIZE)
    need = dtb + realm_dt.DT_MAX_SIZE - base + MIN_FREE_RAM
    if need > config.mem:
        raise RealmVmError(
            f"--mem {config.mem >> 20}M is too small: the kernel "
            f"({k.image_size >> 20} MiB with its BSS), the initrd "
            f"({len(initrd) >> 20} MiB) and the device tree need "
            f"{(dtb - base) >> 20} MiB, plus {MIN_FREE_RAM >> 20} MiB to run: give at "
            f"least {_align_up(need, MIB) >> 20}M", usage=True)
    return Placement(kernel=base, entry=base + k.entry_offset, kernel_end=kernel_end,
                     initrd=initrd_at, initrd_end=initrd_end, dtb=dtb)


class RealmVm:
    def __init__(self, platform: Platform, config: RealmVmConfig,
                 console: RealmConsole | None = None, guest: GuestImages | None = None) -> None:
        if platform.stub is None or (platform.monitor is None and not platform.firmware_mode):
            raise RealmVmError("the platform is not running")
        if config.cpus > platform.config.cpus:
            raise RealmVmError(f"{config.cpus} vCPUs need as many host CPUs; the platform has "
                               f"{platform.config.cpus}")
        self.platform = platform
        self.config = config
        self.console = console or RealmConsole()
        self.stub = platform.stub
        self.memory = platform.memory
        self.stats = VmStats()
        self.rmi = self._counting_rmi(platform.rmi())
        self.freq = platform.counter_hz
        self.slice_ticks = int(SLICE_SECONDS * self.freq)
        self.idle_cap_ticks = int(IDLE_CAP_SECONDS * self.freq)
        self.ram_base = realm_map.RAM_BASE
        self.ram_end = realm_map.RAM_BASE + config.mem
        self.stopping = threading.Event()
        self.outcome: str | None = None
        self._kick_lock = threading.Lock()
        self._kicks = 0
        self._unassigned: Counter[int] = Counter()
        self._realm_off = False
        self.guest = guest or GuestImages.load(config)
        self.kernel = self.guest.kernel
        self.initrd = self.guest.initrd
        self.placement = self.guest.placement
        self.realm: HostRealm = HostRealm(self.rmi, self.memory, platform.pool)
        self.vcpus: list[Vcpu] = []
        self.vgic: VGic = VGic([rec_mpidr(i) for i in range(config.cpus)], num_lrs=1)
        self.uart = Pl011(self.console.output, self._uart_irq)
        self.bus = MmioBus()
        self.features: FeatureRegister0 | None = None
        self.dtb = b""
        self.build_seconds = 0.0
        self.run_started = 0.0
        self.teardown_seconds = 0.0
        self.rim = b""
        """The RIM the realm was built with, as the host predicts it."""

    # -- RMI bookkeeping ------------------------------------------------------------------------

    def _counting_rmi(self, inner: RmiClient) -> RmiClient:
        counts = self.stats.rmi

        def name(fid: int) -> str:
            try:
                return RmiFid(fid).rmi_name
            except ValueError:
                return f"{fid:#x}"

        def smc(fid: int, *args: int) -> tuple[int, ...]:
            counts[name(fid)] += 1
            return inner._smc(fid, *args)

        def batch(smcs):  # type: ignore[no-untyped-def]
            assert inner._batch is not None
            done, last = inner._batch(smcs)
            for s in smcs[:done]:
                counts[name(s[0])] += 1
            return done, last

        return RmiClient(smc, batch if inner._batch is not None else None)

    # -- building ------------------------------------------------------------------------------

    def _run_on_cpu0(self, fn, name: str):  # type: ignore[no-untyped-def]
        prog = self.stub.start_program(0, fn, name)
        return self._wait_program(prog)

    def _wait_program(self, prog: Program):  # type: ignore[no-untyped-def]
        machine = self.platform.machine
        assert machine is not None
        try:
            return prog.wait(machine, self.platform.config.call_timeout * 10)
        except KeyboardInterrupt:
            # Let the program end cleanly (its next request raises), then re-raise.
            self.stub.cancel_programs()
            with contextlib.suppress(Exception):
                prog.wait(machine, STOP_TIMEOUT)
            raise

    def build(self) -> None:
        t0 = time.monotonic()
        self._run_on_cpu0(self._build, "realm build")
        self.build_seconds = time.monotonic() - t0

    def _build(self) -> None:
        self.check_rmm()
        self.create_realm()
        self.init_ipa_range(self.ram_base, self.config.mem)
        self.populate_images()
        self.create_vcpus()
        self.activate()

    # The steps of build(), KVM's realm flow; each issues real RMI calls (run
    # them in a host program on CPU 0 for speed, as build() does, or from any
    # thread through the stub's request queue).

    def check_rmm(self) -> FeatureRegister0:
        """RMI_VERSION must accept 1.0; RMI_FEATURES says what a realm may have."""
        cfg = self.config
        x0, lower, higher = self.rmi.version(RMI_ABI_1_0)
        if x0 == SMC_UNKNOWN:
            raise RealmVmError("nothing answers RMI_VERSION at EL3: no RMM on this platform")
        if x0 != 0:
            raise RealmVmError(f"the RMM does not speak RMI 1.0: it implements "
                               f"{lower >> 16}.{lower & 0xFFFF} to {higher >> 16}."
                               f"{higher & 0xFFFF}")
        feat = FeatureRegister0.unpack(self.rmi.features(0))
        self.features = feat
        if feat.s2sz < cfg.ipa_bits:
            raise RealmVmError(f"the RMM supports IPA spaces of up to {feat.s2sz} bits, "
                               f"not {cfg.ipa_bits}")
        supported = {HashAlgorithm.SHA_256: feat.hash_sha_256,
                     HashAlgorithm.SHA_512: feat.hash_sha_512}
        if not supported.get(cfg.hash_algo):
            raise RealmVmError(f"the RMM does not offer {cfg.hash_algo.name} measurements")
        max_recs = (1 << feat.max_recs_order) - 1 if feat.max_recs_order else 1 << 16
        if cfg.cpus > max_recs:
            raise RealmVmError(f"the RMM allows {max_recs} RECs per realm, not {cfg.cpus}")
        self.vgic = VGic([rec_mpidr(i) for i in range(cfg.cpus)],
                         num_lrs=feat.gicv3_num_lrs + 1)
        self._devices()
        return feat

    def create_realm(self) -> HostRealm:
        """Delegate the RD and the starting RTTs, RMI_REALM_CREATE."""
        if self.features is None:
            self.check_rmm()
        assert self.features is not None
        cfg, feat = self.config, self.features
        spec = RealmSpec(ipa_bits=cfg.ipa_bits, hash_algo=cfg.hash_algo, vmid=cfg.vmid,
                         rpv=cfg.rpv, num_bps=feat.num_bps + 1, num_wps=feat.num_wps + 1)
        self.realm = HostRealm(self.rmi, self.memory, self.platform.pool, spec)
        return self.realm.create()

    def init_ipa_range(self, base: int, size: int) -> None:
        """RMI_RTT_INIT_RIPAS over [base, base + size): RIPAS RAM (measured)."""
        self.realm.init_ripas(base, base + size)

    def populate_images(self) -> None:
        """The kernel, initrd and generated device tree, measured into the realm."""
        cfg, p = self.config, self.placement
        self.dtb = realm_dt.build(realm_dt.RealmDtConfig(
            ram_base=self.ram_base, ram_size=cfg.mem,
            mpidrs=[rec_mpidr(i) for i in range(cfg.cpus)], bootargs=cfg.cmdline,
            initrd=(p.initrd, p.initrd_end) if self.initrd else None))
        self.realm.populate(p.kernel, self.kernel.data)
        if self.initrd:
            self.realm.populate(p.initrd, self.initrd)
        self.realm.populate(p.dtb, self.dtb)

    def create_vcpus(self) -> list[Vcpu]:
        """One REC per vCPU: REC 0 runnable at the kernel's entry with x0 = the
        device tree (arm64 boot protocol; x1..x3 = 0), the others not runnable
        until the guest's PSCI CPU_ON."""
        p, realm = self.placement, self.realm
        recs = [realm.create_rec(pc=p.entry, gprs=(p.dtb, 0, 0, 0), runnable=True)]
        for _ in range(1, self.config.cpus):
            recs.append(realm.create_rec(pc=0, runnable=False))
        self.vcpus = [Vcpu(self, rec) for rec in recs]
        return self.vcpus

    def activate(self) -> None:
        """RMI_REALM_ACTIVATE: the RIM is final."""
        self.realm.activate()
        self.rim = self.realm.expected_rim

    def _devices(self) -> None:
        self.bus = MmioBus()
        self.bus.add(realm_map.GICD_BASE, realm_map.GICD_SIZE, self.vgic.distributor)
        self.bus.add(realm_map.GICR_BASE, realm_map.GICR_STRIDE * self.config.cpus,
                     self.vgic.redistributors)
        self.bus.add(realm_map.UART_BASE, realm_map.UART_SIZE, self.uart)

    def _uart_irq(self, level: bool) -> None:
        self.vgic.set_line(32 + realm_map.UART_SPI, level)

    # -- running ---------------------------------------------------------------------------------

    def run(self, timeout: float = 0.0, input_stream=None,  # type: ignore[no-untyped-def]
            rsi_timeout: float = 0.0) -> RunResult:
        """Run every vCPU until the guest powers off, `timeout` seconds pass (0:
        no limit), the user quits, or something fails.  With `rsi_timeout`, a
        guest that shows no sign of knowing it is a realm by then (no RSI call,
        no RIPAS change, no access through the unprotected alias) is stopped:
        its kernel lacks realm support."""
        machine = self.platform.machine
        assert machine is not None
        if not self.vcpus:
            raise RealmVmError("build() the realm before running it")
        if input_stream is not None:
            self.console.start_input(input_stream, self.uart.feed, lambda: self.uart.rx_room)
        t0 = self.run_started = time.monotonic()
        cpu0 = time.process_time()
        programs = [self.stub.start_program(v.index, v.run, f"vCPU {v.index}")
                    for v in self.vcpus]
        result: RunResult | None = None
        try:
            while result is None:
                time.sleep(0.05)
                machine.check()
                failed = [p for p in programs if p.finished.is_set() and p.error is not None]
                if failed:
                    err = failed[0].error
                    result = RunResult("error", time.monotonic() - t0, str(err), failed[0].cpu)
                elif self.outcome is not None:
                    result = RunResult(self.outcome, time.monotonic() - t0)
                elif self._realm_off:
                    # a vCPU saw the realm off before the one whose exit did it
                    # reported how; give that one a moment
                    for _ in range(100):
                        if self.outcome is not None:
                            break
                        time.sleep(0.01)
                    result = RunResult(self.outcome or "off", time.monotonic() - t0)
                elif all(p.finished.is_set() for p in programs):
                    result = RunResult("error", time.monotonic() - t0,
                                       "every vCPU stopped without the guest powering off")
                elif self.console.quit_requested.is_set():
                    result = RunResult("quit", time.monotonic() - t0)
                elif timeout and time.monotonic() - t0 > timeout:
                    result = RunResult("timeout", time.monotonic() - t0)
                elif rsi_timeout and time.monotonic() - t0 > rsi_timeout \
                        and not self.realm_aware():
                    result = RunResult("no-rsi", time.monotonic() - t0)
        except KeyboardInterrupt:
            result = RunResult("interrupted", time.monotonic() - t0)
        finally:
            self.stopping.set()
            self._stop_programs(programs)
            self.console.close()
        self.stats.run_cpu_seconds = time.process_time() - cpu0
        for v in self.vcpus:
            self.stats.exits.update(v.exits)
            self.stats.enters += v.enters
            self.stats.stub_exits += v.stub_exits
        if self.platform.rmm is not None:
            self.stats.rsi.update(self.platform.rmm.rsi_counts)
        return result

    def realm_aware(self) -> bool:
        """Whether the guest has shown it knows it runs in a realm: RSI calls the
        platform's RMM saw, or what a host sees of them (a RIPAS change, an
        access through the unprotected alias)."""
        rmm = self.platform.rmm
        if rmm is not None and any(name.startswith("RSI_") for name in list(rmm.rsi_counts)):
            return True
        return any(count for v in self.vcpus for name, count in list(v.exits.items())
                   if name.startswith(("RIPAS", "mmio", "fault: shared")))

    def _stop_programs(self, programs: list[Program]) -> None:
        machine = self.platform.machine
        assert machine is not None
        deadline = time.monotonic() + STOP_TIMEOUT
        for p in programs:
            while not p.finished.wait(0.05):
                machine.check()
                if time.monotonic() > deadline:
                    self.stub.cancel_programs()
                    deadline = time.monotonic() + STOP_TIMEOUT

    # -- callbacks from the vCPUs -------------------------------------------------------------

    def vcpu_of_mpidr(self, mpidr: int) -> Vcpu | None:
        index = self.vgic.cpu_of_mpidr(mpidr)
        return self.vcpus[index] if index is not None else None

    def kick(self, cpu: int) -> None:
        with self._kick_lock:
            self._kicks |= 1 << cpu

    def take_kicks(self, cpu: int) -> int:
        """CPUs the vCPU on `cpu` should kick with its next request."""
        with self._kick_lock:
            mask, self._kicks = self._kicks & ~(1 << cpu), self._kicks & (1 << cpu)
        return mask | self.vgic.take_kicks(cpu)

    def power_off(self, cpu: int, how: str) -> None:
        if self.outcome is None:
            self.outcome = how
        self.stopping.set()
        self.kick_all(cpu)

    def realm_is_off(self, cpu: int) -> None:
        """RMI_REC_ENTER said the realm is off: another vCPU's SYSTEM_OFF or
        RESET exit is being handled (run() waits for it to say which)."""
        self._realm_off = True
        self.stopping.set()

    def kick_all(self, cpu: int) -> None:
        for v in self.vcpus:
            if v.index != cpu:
                self.kick(v.index)

    def note_backed(self, count: int) -> None:
        self.stats.backed += count

    def note_ripas(self, base: int, top: int, ripas: Ripas) -> None:
        pass

    def unassigned_mmio(self, addr: int, write: bool) -> None:
        self._unassigned[addr] += 1
        if self._unassigned[addr] == 1 and len(self._unassigned) <= UNASSIGNED_MMIO_REPORTS:
            self.platform.trace.emit("vmm", event="unassigned-mmio", address=addr, write=write,
                                     message=f"realm {'wrote' if write else 'read'} {addr:#x}: "
                                     "no device there (read as zero, writes ignored)")

    def realm_pc_note(self, rec) -> str:  # type: ignore[no-untyped-def]
        """The realm's PC, when the platform's own RMM can tell (a real host
        cannot see it)."""
        rmm = self.platform.rmm
        model = rmm.rec_at(rec.pa) if rmm is not None else None
        if model is None:
            return ""
        return f"; realm PC {model.context.pc:#x} (from the platform's RMM)"

    # -- teardown ------------------------------------------------------------------------------

    def destroy(self) -> list[int]:
        """Return every granule to UNDELEGATED; returns those still delegated
        afterwards (by the host's record, and by the platform's RMM when it is
        this platform's own)."""
        t0 = time.monotonic()
        error: BaseException | None = None
        try:
            self._run_on_cpu0(self.realm.destroy, "realm teardown")
        except (RmiError, RealmVmError) as exc:
            error = exc
        self.teardown_seconds = time.monotonic() - t0
        left = set(self.realm.delegated)
        rmm = self.platform.rmm
        if rmm is not None:
            left |= set(rmm.granules())
        if error is not None:
            raise RealmVmError(f"teardown failed: {error}; {len(left)} granule(s) still "
                               "delegated") from error
        return sorted(left)
