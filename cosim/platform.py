"""Platform: the machine, the monitor's Python half, the GPT and the RMM
composed into one running Arm CCA system.

    with Platform(PlatformConfig(cpus=2)) as p:
        p.stub.smc(RmiFid.VERSION, 0x10000)

Start-up order: build the device tree and the boot configuration, start
QEMU, wait until the monitor reports that EL3 is up (with the CPU's ID
registers, from which the RMM is configured), then wait for the hoststub.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from .arch.gpt import GptEncoder, PasTable
from .arch.idregs import stage2_has_lpa2
from .arch.pas import GRANULE_SHIFT, GRANULE_SIZE, Pas
from .arch.stage2 import MAX_OA_BITS, MAX_OA_BITS_LPA2
from .config import (
    ConfigError,
    GptMode,
    PlatformConfig,
    artefact,
    hoststub_bl33_image,
    hoststub_image,
)
from .host.poll_channel import PollChannel, StubImageError, stub_header, with_channel
from .host.pool import PagePool
from .host.rmi import RmiClient
from .host.stub import HostStub
from .machine import board, dtb
from .machine.errors import MachineError, QemuStartError
from .machine.machine import Machine, memfd
from .memory import GuestMemory
from .monitor import layout as L
from .monitor.boot import BootConfig, CpuFeatures, patch_image
from .monitor.context import ContextShape, publish_shape, shape_for
from .monitor.dispatch import Monitor
from .monitor.worlds import WorldSwitch
from .payload import NsImages, load_ns_images, ns_device_tree
from .rmm import Rmm, RmmConfig
from .rmm.abi import HashAlgorithm
from .symbols import ElfSymbols
from .trace import Trace
from .violations import ViolationGuard

MIB = 1 << 20
HOST_POOL_OFFSET = 64 * MIB
"""Where in RAM the host-side page pool starts (below it: payload and its data)."""
FIRMWARE_STUB_ROOM = 16 * MIB
"""With --firmware: the pool starts this far above the hoststub (BL33), which
sits at L.FIRMWARE_BL33_BASE; below it TF-A keeps the DTB and the RMM's memory."""


def rmm_config_for(features: CpuFeatures, shape: ContextShape,
                   dram: list[tuple[int, int]]) -> RmmConfig:
    """What the RMM offers realms on this CPU: the breakpoints, watchpoints and
    list registers the world switch moves (`shape`), and the ID register fields
    (Arm ARM D19.2) ID_AA64DFR0_EL1.PMUVer/HPMN0, PMCR_EL0.N,
    ID_AA64MMFR1_EL1.VMIDBits, and FEAT_LPA2 at stage 2 with 52-bit PAs
    (ID_AA64MMFR0_EL1.TGran4_2/TGran4, PARange): then realms may use 52-bit
    IPAs and PAs (RmiFeatureRegister0.LPA2, S2SZ 52)."""
    lpa2 = features.pa_bits == MAX_OA_BITS_LPA2 and stage2_has_lpa2(features["id_aa64mmfr0_el1"])
    pa_bits = features.pa_bits if lpa2 else min(features.pa_bits, MAX_OA_BITS)
    dfr0 = features["id_aa64dfr0_el1"]
    pmuver = (dfr0 >> 8) & 0xF
    sve_vq = features["sve_max_vl"] // 16
    return RmmConfig(
        dram=dram,
        pa_width=pa_bits,
        s2sz_max=pa_bits,
        lpa2=lpa2,
        sve_en=sve_vq > 0,
        sve_vl=max(sve_vq - 1, 0),
        num_bps=shape.bps,
        num_wps=shape.wps,
        pmu_en=pmuver not in (0, 0xF),
        pmu_num_ctrs=(features["pmcr_el0"] >> 11) & 0x1F,
        pmu_hpmn0=((dfr0 >> 60) & 0xF) != 0,
        num_lrs=shape.lrs,
        vmid_bits=16 if features.field("id_aa64mmfr1_el1", 4) == 2 else 8,
        hash_algorithms=(HashAlgorithm.SHA_256, HashAlgorithm.SHA_512),
        cpu_id_regs=dict(features.regs),
    )


class Platform:
    def __init__(self, config: PlatformConfig | None = None, *, trace: Trace | None = None,
                 console_echo: IO[str] | None = None) -> None:
        self.config = config or PlatformConfig()
        self.trace = trace or Trace()
        self._console_echo = console_echo
        self.machine: Machine | None = None
        self.monitor: Monitor | None = None
        self.stub: HostStub | None = None
        self.rmm: Rmm | None = None
        self.gpt: PasTable | None = None
        self.gpt_encoder: GptEncoder | None = None
        self.guard: ViolationGuard | None = None
        self.symbols = ElfSymbols()
        self._pool: PagePool | None = None
        self.world: WorldSwitch | None = None
        self.context_shape: ContextShape | None = None
        self._pas_fd: int | None = None
        self._pas_map: mmap.mmap | None = None
        self._ns: NsImages | None = None
        self._ns_dtb = b""
        self.channel: PollChannel | None = None
        self._poll_area = 0
        """The hoststub's polling channel (host_channel "poll", and --firmware)."""

    # -- addresses ------------------------------------------------------------------

    @property
    def ram_base(self) -> int:
        return board.RAM_BASE

    @property
    def carveout_base(self) -> int:
        return board.RAM_BASE + self.config.ram_size - self.config.carveout_size

    @property
    def dtb_address(self) -> int:
        """The NS payload's device tree: the 2 MiB just below the carve-out."""
        return self.carveout_base - 2 * MIB

    @property
    def payload_address(self) -> int:
        return board.RAM_BASE + self.config.payload_offset

    @property
    def memory(self) -> GuestMemory:
        """Guest RAM, shared with QEMU (only while the platform runs)."""
        if self.machine is None or self.machine.ram is None:
            raise MachineError("the platform is not started: it has no guest memory yet")
        return self.machine.ram

    # -- life cycle -----------------------------------------------------------------------

    def __enter__(self) -> Platform:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def runs_hoststub(self) -> bool:
        """Whether the NS payload is the hoststub (then start() waits until it
        asks for work, and `stub` drives it)."""
        return Path(self.config.payload).resolve() == hoststub_image().resolve()

    def _make_gpt(self) -> tuple[int, list[str], list[int]]:
        """The PAS table (shared with the plugin in plugin mode) and, in hw mode,
        the encoder.  Returns (boot flags, plugin arguments, fds QEMU inherits)."""
        cfg = self.config
        self.gpt_encoder = None
        granules = cfg.ram_size >> GRANULE_SHIFT
        buffer = None
        plugin_args: list[str] = []
        fds: list[int] = []
        if cfg.gpt == GptMode.PLUGIN:
            self._pas_fd = memfd("pas")
            os.ftruncate(self._pas_fd, granules)
            self._pas_map = mmap.mmap(self._pas_fd, granules, flags=mmap.MAP_SHARED)
            buffer = memoryview(self._pas_map)
            plugin_args = ["gpt=plugin", f"pas=/proc/self/fd/{self._pas_fd}",
                           f"pas_base={board.RAM_BASE:#x}", f"pas_size={cfg.ram_size:#x}"]
            fds = [self._pas_fd]
        self.gpt = PasTable(board.RAM_BASE, cfg.ram_size, buffer)
        self.gpt.reset()
        self.gpt.set(self.carveout_base, Pas.ROOT, cfg.carveout_size >> GRANULE_SHIFT)
        self.gpt.set(self.rel2_vectors_address, Pas.REALM)
        flags = 0
        if cfg.gpt == GptMode.HW:
            area = self.carveout_base + L.CARVEOUT_GPT_OFFSET
            self.gpt_encoder = GptEncoder(self.gpt, area,
                                          cfg.carveout_size - L.CARVEOUT_GPT_OFFSET)
            flags |= L.BootFlag.GPT_HW
        return flags, plugin_args, fds

    def start(self) -> None:
        """Start QEMU and wait until the monitor is up (and the hoststub, when
        it is the payload).  GPT `auto` becomes hw on an RME CPU, or plugin
        (also when QEMU turns out to have no RME: then the start is retried)."""
        cfg = self.config
        cfg.validate()
        for path in self._symbol_files():
            self.symbols.add(path)
        if cfg.firmware is not None:
            self._start_firmware()
            return
        auto = cfg.gpt == GptMode.AUTO
        cfg.gpt = cfg.choose_gpt()
        try:
            self._start()
        except QemuStartError as exc:
            if not (auto and cfg.rme and "x-rme" in str(exc)):
                raise
            cfg.rme = False
            cfg.gpt = GptMode.PLUGIN
            self.trace.emit("platform", event="no-rme", message="QEMU's CPU has no RME: "
                            "GPT enforced by the plugin")
            self._start()

    def _start(self) -> None:
        cfg = self.config
        try:
            images = load_ns_images(cfg, self.payload_address, self.dtb_address)
            if cfg.host_channel == "poll" and self.runs_hoststub:
                images.payload = self._polling_stub(images.payload)
            self._ns = images
            flags, plugin_args, fds = self._make_gpt()
            boot = BootConfig(
                ram_base=board.RAM_BASE, ram_size=cfg.ram_size,
                carveout_base=self.carveout_base, carveout_size=cfg.carveout_size,
                ns_entry=images.entry, ns_dtb=self.dtb_address, num_cpus=cfg.cpus,
                flags=flags,
                gpccr=self.gpt_encoder.gpccr if self.gpt_encoder else 0,
                gptbr=self.gpt_encoder.gptbr if self.gpt_encoder else 0)
            bios = patch_image(Path(cfg.monitor).read_bytes(), boot)
            blobs: list[tuple[bytes | str, int]] = [(images.payload, images.payload_address)]
            if images.initrd is not None:
                blobs.append((images.initrd, images.initrd_address))
            self.machine = Machine(
                cfg, handler=_Deferred(self), bios=bios, blobs=blobs,
                plugin_args=plugin_args, shared_fds=fds,
                trace=self.trace, console_echo=self._console_echo, on_stop=self._release,
                on_pause=self._on_pause, on_resume=self._on_resume)
            self.machine.start()
            self._ns_dtb = ns_device_tree(dtb.read_blob(self.memory, board.RAM_BASE), images,
                                          (self.carveout_base, cfg.carveout_size),
                                          cfg.bootargs)
            self._attach()
            self.memory.write(self.dtb_address, self._ns_dtb)
            if self.channel is not None:
                self.channel.start()
            self.machine.resume()
            self.machine.wait(self.monitor.booted, cfg.start_timeout,  # type: ignore[union-attr]
                              "the monitor's boot report")
            if self.monitor.features is not None and cfg.gpt == GptMode.HW \
                    and not self.monitor.features.has_rme:
                raise ConfigError("--gpt hw needs FEAT_RME, and the CPU reports none")
            if self.runs_hoststub:
                self.stub.wait_ready(0)  # type: ignore[union-attr]
        except BaseException:
            self.stop()
            raise

    def _polling_stub(self, image: bytes) -> bytes:
        """The hoststub image set to the polling channel; its poll area is
        served from now on (see PollChannel)."""
        try:
            _channel, area = stub_header(image)
            image = with_channel(image, L.StubChannel.POLL)
        except StubImageError as exc:
            raise ConfigError(f"hoststub: {exc} (run ci/install.sh)") from None
        self._poll_area = area
        return image

    def _start_firmware(self) -> None:
        """Boot the user's firmware (-bios) with the hoststub as its BL33 (or
        the user's own NS payload, unchanged), and no monitor, Python RMM or
        GPT of ours: the RMI calls go to the firmware's RMM, the GPT is the
        firmware's (QEMU's GPC).  The firmware powering the board off (QEMU
        exits with status 0) is not a failure."""
        from .firmware.flash import FirmwareError, Flash

        cfg = self.config
        stub = self.runs_hoststub
        try:
            bl33 = (self._polling_stub(hoststub_bl33_image().read_bytes()) if stub
                    else Path(cfg.payload).read_bytes())
            flash = Flash.read(Path(cfg.firmware)).with_bl33(bl33)  # type: ignore[arg-type]
        except FirmwareError as exc:
            raise ConfigError(str(exc)) from None
        except OSError as exc:
            what = "hoststub-bl33" if stub else f"NS payload {cfg.payload}"
            raise ConfigError(f"{what}: {exc.strerror or exc}"
                              + (" (run ci/install.sh)" if stub else "")) from None
        try:
            self.machine = Machine(
                cfg, handler=_Deferred(self), bios=flash, blobs=[],
                trace=self.trace, console_echo=self._console_echo, on_stop=self._release,
                on_pause=self._on_pause, on_resume=self._on_resume)
            self.machine.start()
            self.machine.expect_exit()
            if stub:
                self.stub = HostStub(self.machine, cfg.cpus)
                self.channel = PollChannel(self.stub, self.memory, self._poll_area, cfg.cpus,
                                           on_error=self._channel_failed)
                self.channel.start()
            self.trace.emit("platform", event="firmware", path=str(cfg.firmware),
                            message="booting the user's firmware; GPT and RMM are its own")
            self.machine.resume()
            if self.stub is not None:
                self.stub.wait_ready(0)
        except BaseException:
            self.stop()
            raise

    def _channel_failed(self, exc: Exception) -> None:
        assert self.machine is not None
        self.machine.fail(_as_machine_error(exc))

    @property
    def firmware_mode(self) -> bool:
        """Whether a user's firmware runs instead of our monitor and RMM."""
        return self.config.firmware is not None

    @property
    def counter_hz(self) -> int:
        """CNTFRQ_EL0, as the monitor or the polling stub reported it."""
        if self.monitor is not None and self.monitor.features is not None:
            return self.monitor.features["cntfrq_el0"] or 1_000_000_000
        if self.channel is not None and self.channel.counter_hz:
            return self.channel.counter_hz
        return 1_000_000_000

    def _symbol_files(self) -> list[Path]:
        files = [Path(p) for p in self.config.symbol_files]
        stub_elf = artefact("images", "build", "hoststub-bl33.elf" if self.firmware_mode
                            else "hoststub.elf")
        if self.runs_hoststub and stub_elf.exists():
            files.append(stub_elf)
        return files

    def _attach(self) -> None:
        """Create the Python half of the monitor, the GPT and the stub driver
        once RAM is mapped (before the first doorbell can be served)."""
        assert self.machine is not None and self.gpt is not None
        cfg = self.config
        mem = self.memory
        if self.gpt_encoder is not None:
            self.gpt_encoder.attach(mem)
        monitor = Monitor(mem, self.carveout_base, cfg.cpus, self.trace,
                          on_fatal=lambda exc: self.machine.fail(_as_machine_error(exc)))
        if cfg.gpt == GptMode.HW:
            monitor.gpt = self.gpt
        self.guard = ViolationGuard(cfg.gpt, cfg.on_violation, self.gpt, self.trace,
                                    self.symbols, self.describe_granule, self.machine.pause)
        monitor.gpf_handler = self.guard.on_gpf
        monitor.violation_handler = self.guard.on_plugin_violation
        self.stub = HostStub(self.machine, cfg.cpus)
        monitor.services[L.SipFid.HOSTSTUB_NEXT] = self.stub.on_next
        if cfg.host_channel == "poll" and self.runs_hoststub:
            self.channel = PollChannel(self.stub, mem, self._poll_area, cfg.cpus,
                                       on_error=self._channel_failed)
        monitor.services[L.SipFid.ECHO] = _echo
        self.world = WorldSwitch(mem, self.carveout_base, cfg.cpus, self.trace,
                                 rel2_vbar=self.rel2_vectors_address, rmm=lambda: self.rmm,
                                 shape=lambda: self.context_shape)
        monitor.world = self.world
        self._load_rel2_vectors()
        monitor.on_boot = self._on_boot
        monitor.on_power_off = self.machine.expect_exit
        monitor.reboot = cfg.reboot
        self.monitor = monitor

    def rmi(self, cpu: int | None = None) -> RmiClient:
        """An RMI client whose calls are real SMCs from the hoststub on `cpu`
        (None: the CPU of the host program calling it, else CPU 0)."""
        assert self.stub is not None
        stub = self.stub

        def where() -> int:
            if cpu is not None:
                return cpu
            current = stub.current_cpu()
            return 0 if current is None else current

        def batch(smcs: Sequence[Sequence[int]]) -> tuple[int, tuple[int, ...]]:
            res = stub.smc_batch(smcs, cpu=where())
            return res.done, res.ret

        return RmiClient(lambda fid, *args: stub.smc(fid, *args, cpu=where()).ret, batch)

    @property
    def pool(self) -> PagePool:
        """NS RAM the host side may use: from 64 MiB up to the initrd or the DTB."""
        if self._pool is None and self.firmware_mode:
            base = L.FIRMWARE_BL33_BASE + FIRMWARE_STUB_ROOM
            self._pool = PagePool(base, board.RAM_BASE + self.config.ram_size - base)
        if self._pool is None:
            base = board.RAM_BASE + HOST_POOL_OFFSET
            top = self.dtb_address
            if self._ns is not None and self._ns.initrd is not None:
                top = self._ns.initrd_address
            self._pool = PagePool(base, top - base)
        return self._pool

    @property
    def rel2_vectors_address(self) -> int:
        """The realm's EL2 vector page: the last page of the carve-out (Realm PAS)."""
        return self.carveout_base + self.config.carveout_size - GRANULE_SIZE

    def _load_rel2_vectors(self) -> None:
        image = artefact("images", "build", "rel2_vectors.bin").read_bytes()
        self.memory.zero(self.rel2_vectors_address, GRANULE_SIZE)
        self.memory.write(self.rel2_vectors_address, image)

    def describe_granule(self, pa: int) -> str:
        if self.rel2_vectors_address <= pa < self.rel2_vectors_address + GRANULE_SIZE:
            return "carve-out: the realms' EL2 vector page"
        if self.carveout_base <= pa < self.carveout_base + self.config.carveout_size:
            return "carve-out of the monitor and the RMM"
        if self.rmm is None:
            return "the firmware's RMM owns it" if self.firmware_mode else "RMM not started"
        return self.rmm.describe_granule(pa)

    def resume(self) -> None:
        """Let a machine stopped by a violation (or by a debugger) run again."""
        assert self.machine is not None
        if self.guard is not None:
            self.guard.release()
        self.machine.resume()

    def _on_boot(self, features: CpuFeatures) -> None:
        """EL3 is up (at power-on, or again after a system reset): (re)create
        the RMM with the CPU's features, and forget all realm state."""
        assert self.monitor is not None and self.gpt is not None and self.stub is not None
        if self.rmm is not None:
            self.trace.emit("platform", event="reset", message="system reset: RMM state and "
                            "the GPT start afresh")
            self.gpt.set(board.RAM_BASE, Pas.NONSECURE,
                         (self.carveout_base - board.RAM_BASE) >> GRANULE_SHIFT)
            self.stub.reset()
            self.monitor.cpus_up.clear()
        if self._ns_dtb:
            self.memory.write(self.dtb_address, self._ns_dtb)  # the payload may have used it
        self.stub.set_counter_frequency(features["cntfrq_el0"])
        self.context_shape = shape_for(features)
        publish_shape(self.memory, self.carveout_base, self.context_shape)
        if self.world is not None:
            self.world.forget()
        dram = [(board.RAM_BASE, self.carveout_base - board.RAM_BASE)]
        self.rmm = Rmm(self.memory, self.gpt,
                       rmm_config_for(features, self.context_shape, dram), self.trace)
        self.monitor.rmm = self.rmm

    def _on_pause(self) -> None:
        if self.stub is not None:
            self.stub.pause()

    def _on_resume(self) -> None:
        if self.stub is not None:
            self.stub.unpause()

    def _release(self) -> None:
        if self.stub is not None:
            self.stub.shutdown()

    def stop(self) -> None:
        """Stop QEMU and release everything (start() may be called again).
        A machine halted in plugin mode is killed: released, its vCPUs would
        run on past the violation while QEMU shuts down."""
        if self.machine is not None and self.guard is not None and self.guard.holding:
            self.machine.kill()
        if self.guard is not None:
            self.guard.close()
        if self.machine is not None:
            self.machine.stop()
        if self.channel is not None:
            self.channel.stop()
            self.channel = None
        if self.gpt is not None and self._pas_map is not None:
            self.gpt = PasTable(board.RAM_BASE, self.config.ram_size)  # drop the shared view
        if self._pas_map is not None:
            with contextlib.suppress(BufferError):
                self._pas_map.close()
            self._pas_map = None
        if self._pas_fd is not None:
            os.close(self._pas_fd)
            self._pas_fd = None


class _Deferred:
    """The plugin handler given to the machine before the monitor exists: no
    doorbell can arrive before `Platform._attach` (QEMU starts paused)."""

    def __init__(self, platform: Platform) -> None:
        self._p = platform

    def on_doorbell(self, vcpu: int) -> int:
        if self._p.monitor is None:  # --firmware: no code of ours runs at EL3
            raise MachineError(f"vCPU {vcpu} rang the doorbell, but no monitor of ours runs")
        return self._p.monitor.on_doorbell(vcpu)

    def on_attack(self, vcpu: int, pc: int, el: int) -> None:
        assert self._p.monitor is not None
        self._p.monitor.on_attack(vcpu, pc, el)

    def on_violation(self, vcpu: int, pc: int, pa: int, va: int, info: int, value: int) -> int:
        assert self._p.monitor is not None
        return self._p.monitor.on_violation(vcpu, pc, pa, va, info, value)

    def on_held(self, vcpu: int, pc: int, offender: int) -> None:
        if self._p.guard is not None:
            self._p.guard.on_held(vcpu, pc, offender)


def _echo(cpu: int, args: tuple[int, ...]) -> tuple[int, ...]:
    """SIP ECHO: x0 = 0, xN = argN ^ N for N = 1..17 (a test of register transport)."""
    return (0, *[a ^ n for n, a in enumerate(args[1:18], start=1)])


def _as_machine_error(exc: Exception):  # type: ignore[no-untyped-def]
    from .machine.errors import MachineError

    return exc if isinstance(exc, MachineError) else MachineError(str(exc))


__all__ = ["Platform", "rmm_config_for"]
