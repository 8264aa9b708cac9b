"""Platform: the machine, the monitor's Python half, the GPT and the RMM
composed into one running Arm CCA system.

    with Platform(PlatformConfig(cpus=2)) as p:
        p.stub.smc(RmiFid.VERSION, 0x10000)

Start-up order: build the device tree and the boot configuration, start
QEMU, wait until the monitor reports that EL3 is up (with the CPU's ID
registers, from which the RMM is configured), then wait for the hoststub.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

from .arch.gpt import PasTable
from .arch.pas import Pas
from .config import PlatformConfig
from .host.stub import HostStub
from .machine import board, dtb
from .machine.machine import Machine
from .machine.qemu import QemuCommand
from .memory import GuestMemory
from .monitor import layout as L
from .monitor.boot import BootConfig, CpuFeatures, patch_image
from .monitor.dispatch import Monitor, SmcOutcome
from .rmm import Rmm, RmmConfig
from .rmm.abi import HashAlgorithm
from .trace import Trace

MIB = 1 << 20


def rmm_config_for(features: CpuFeatures, dram: list[tuple[int, int]]) -> RmmConfig:
    """What the RMM offers realms on this CPU (ID register fields per Arm ARM
    D19.2: ID_AA64DFR0_EL1.BRPs/WRPs/PMUVer/HPMN0, PMCR_EL0.N,
    ICH_VTR_EL2.ListRegs, ID_AA64MMFR1_EL1.VMIDBits)."""
    pa_bits = min(features.pa_bits, 48)
    dfr0 = features["id_aa64dfr0_el1"]
    pmuver = (dfr0 >> 8) & 0xF
    sve_vq = features["sve_max_vl"] // 16
    return RmmConfig(
        dram=dram,
        pa_width=pa_bits,
        s2sz_max=pa_bits,
        sve_en=sve_vq > 0,
        sve_vl=max(sve_vq - 1, 0),
        num_bps=((dfr0 >> 12) & 0xF) + 1,
        num_wps=((dfr0 >> 20) & 0xF) + 1,
        pmu_en=pmuver not in (0, 0xF),
        pmu_num_ctrs=(features["pmcr_el0"] >> 11) & 0x1F,
        pmu_hpmn0=((dfr0 >> 60) & 0xF) != 0,
        num_lrs=(features["ich_vtr_el2"] & 0x1F) + 1,
        vmid_bits=16 if features.field("id_aa64mmfr1_el1", 4) == 2 else 8,
        hash_algorithms=(HashAlgorithm.SHA_256, HashAlgorithm.SHA_512),
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
        assert self.machine is not None and self.machine.ram is not None
        return self.machine.ram

    # -- life cycle -----------------------------------------------------------------------

    def __enter__(self) -> Platform:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _qemu_command(self) -> QemuCommand:
        cfg = self.config
        return QemuCommand(qemu=cfg.qemu, cpus=cfg.cpus, ram_size=cfg.ram_size,
                           cpu_model=cfg.cpu_model, bios="", ram_path="",
                           extra_args=list(cfg.extra_qemu_args))

    def device_tree(self) -> bytes:
        """QEMU's device tree for this board, with the carve-out reserved and
        PSCI (SMC conduit) described, as the NS payload must see it."""
        tree = dtb.dump_qemu_dtb(self._qemu_command().dumpdtb_args("{out}"),
                                 timeout=self.config.start_timeout)
        dtb.reserve_memory(tree, "cca-cosim", self.carveout_base, self.config.carveout_size)
        dtb.add_psci(tree)
        return dtb.to_blob(tree)

    def start(self) -> None:
        cfg = self.config
        cfg.validate()
        image = Path(cfg.monitor).read_bytes()
        boot = BootConfig(
            ram_base=board.RAM_BASE, ram_size=cfg.ram_size,
            carveout_base=self.carveout_base, carveout_size=cfg.carveout_size,
            ns_entry=self.payload_address, ns_dtb=self.dtb_address, num_cpus=cfg.cpus)
        bios = patch_image(image, boot)
        tree = self.device_tree()
        self.machine = Machine(
            cfg, handler=_Deferred(self), bios=bios,
            blobs=[(str(cfg.payload), self.payload_address), (tree, self.dtb_address)],
            trace=self.trace, console_echo=self._console_echo, on_stop=self._release)
        try:
            self.machine.start()
            self._attach()
            self.machine.resume()
            self.machine.wait(self.monitor.booted, cfg.start_timeout,  # type: ignore[union-attr]
                              "the monitor's boot report")
            self.stub.wait_ready(0)  # type: ignore[union-attr]
        except BaseException:
            self.stop()
            raise

    def _attach(self) -> None:
        """Create the Python half of the monitor, the GPT and the stub driver
        once RAM is mapped (before the first doorbell can be served)."""
        assert self.machine is not None
        cfg = self.config
        mem = self.memory
        self.gpt = PasTable(board.RAM_BASE, cfg.ram_size)
        self.gpt.set(self.carveout_base, Pas.ROOT, cfg.carveout_size >> 12)
        monitor = Monitor(mem, self.carveout_base, cfg.cpus, self.trace,
                          on_fatal=lambda exc: self.machine.fail(_as_machine_error(exc)))
        self.stub = HostStub(self.machine, cfg.cpus)
        monitor.services[L.SipFid.HOSTSTUB_NEXT] = self.stub.on_next
        monitor.services[L.SipFid.ECHO] = _echo
        monitor.on_boot = self._on_boot
        monitor.on_power_off = self.machine.expect_exit
        self.monitor = monitor

    def _on_boot(self, features: CpuFeatures) -> None:
        """EL3 is up (at power-on, or again after a system reset): (re)create
        the RMM with the CPU's features, and forget all realm state."""
        assert self.monitor is not None and self.gpt is not None and self.stub is not None
        if self.rmm is not None:
            self.trace.emit("platform", event="reset", message="system reset: RMM state and "
                            "the GPT start afresh")
            self.gpt.set(board.RAM_BASE, Pas.NONSECURE, self.carveout_base - board.RAM_BASE >> 12)
            self.stub.reset()
            self.monitor.cpus_up.clear()
        dram = [(board.RAM_BASE, self.carveout_base - board.RAM_BASE)]
        self.rmm = Rmm(self.memory, self.gpt, rmm_config_for(features, dram), self.trace)
        self.monitor.rmm = self.rmm

    def _release(self) -> None:
        if self.stub is not None:
            self.stub.shutdown()

    def stop(self) -> None:
        if self.machine is not None:
            self.machine.stop()


class _Deferred:
    """The plugin handler given to the machine before the monitor exists: no
    doorbell can arrive before `Platform._attach` (QEMU starts paused)."""

    def __init__(self, platform: Platform) -> None:
        self._p = platform

    def on_doorbell(self, vcpu: int) -> int:
        assert self._p.monitor is not None
        return self._p.monitor.on_doorbell(vcpu)

    def on_attack(self, vcpu: int, pc: int, el: int) -> None:
        assert self._p.monitor is not None
        self._p.monitor.on_attack(vcpu, pc, el)

    def on_violation(self, vcpu: int, pc: int, pa: int, va: int, info: int, value: int) -> int:
        assert self._p.monitor is not None
        return self._p.monitor.on_violation(vcpu, pc, pa, va, info, value)


def _echo(cpu: int, args: tuple[int, ...]) -> tuple[int, ...]:
    """SIP ECHO: x0 = 0, xN = argN ^ N for N = 1..17 (a test of register transport)."""
    return (0, *[a ^ n for n, a in enumerate(args[1:18], start=1)])


def _as_machine_error(exc: Exception):  # type: ignore[no-untyped-def]
    from .machine.errors import MachineError

    return exc if isinstance(exc, MachineError) else MachineError(str(exc))


__all__ = ["Platform", "SmcOutcome", "rmm_config_for"]
