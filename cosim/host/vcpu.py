"""One realm vCPU: the run loop of its REC, as KVM's `kvm_rec_enter` and
rme-exit.c do it (fact sheet §10.1 step 7), running as a host program on the
hoststub CPU of the same index (REC n runs on host CPU n).

Each round: write the RmiRecEnter (the list registers from the vGIC, the
completion of the last exit), RMI_REC_ENTER, read the RmiRecExit and handle
it: emulate MMIO, back memory on stage-2 faults, map shared memory, forward
SGIs, complete PSCI calls, carry out RIPAS changes, and idle on WFI until the
realm's timer or an interrupt is due.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from ..arch import esr as E
from ..arch.sysreg import ICC_ASGI1R_EL1, ICC_DIR_EL1, ICC_SGI0R_EL1, ICC_SGI1R_EL1
from ..arch.timer import (
    CNT_CTL_ENABLE,
    CNT_CTL_IMASK,
    CNT_CTL_ISTATUS,
    PHYSICAL_TIMER_PPI,
    VIRTUAL_TIMER_PPI,
    output_asserted,
)
from ..rmm.abi import (
    PSCI_AFFINITY_INFO_FIDS,
    PSCI_CPU_ON_FIDS,
    PSCI_CPU_SUSPEND_FIDS,
    REALM_ERROR_INDEX_SYSTEM_OFF,
    REC_ENTER_EMUL_MMIO,
    REC_ENTER_RIPAS_RESPONSE,
    REC_ENTER_TRAP_WFI,
    PsciFid,
    PsciStatus,
    RecExitReason,
    Ripas,
    RmiStatus,
)
from ..rmm.structs import RmiRecEnter, RmiRecExit, RmiRecRun
from . import realm_map
from .realm import HostRec
from .rmi import RmiError

if TYPE_CHECKING:
    from .vm import RealmVm

_EXIT = RmiRecRun.EXIT_OFFSET
OFF_REASON = _EXIT + RmiRecExit.offset_of("exit_reason")
OFF_ESR = _EXIT + RmiRecExit.offset_of("esr")  # esr, far, hpfar follow
OFF_EXIT_GPRS = _EXIT + RmiRecExit.offset_of("gprs")
OFF_EXIT_LRS = _EXIT + RmiRecExit.offset_of("gicv3_lrs")
OFF_TIMERS = _EXIT + RmiRecExit.offset_of("cntp_ctl")  # cntp_ctl, cntp_cval, cntv_ctl, cntv_cval
OFF_RIPAS = _EXIT + RmiRecExit.offset_of("ripas_base")  # ripas_base, ripas_top
OFF_RIPAS_VALUE = _EXIT + RmiRecExit.offset_of("ripas_value")
OFF_IMM = _EXIT + RmiRecExit.offset_of("imm")
OFF_ENTER_FLAGS = RmiRecEnter.offset_of("flags")
OFF_ENTER_GPRS = RmiRecEnter.offset_of("gprs")
OFF_ENTER_HCR = RmiRecEnter.offset_of("gicv3_hcr")
NUM_GPRS = 31

SGI_SYSREGS = frozenset({ICC_SGI1R_EL1, ICC_ASGI1R_EL1, ICC_SGI0R_EL1})
MPIDR_AFFINITY = 0xFF_00FF_FFFF
RSI_HOST_CALL_ECHO = "host call"
CONSOLE_FAST = "mmio: PL011 UART (in the hoststub)"
PAGE_OFFSET = 0xFFF


class VcpuError(RuntimeError):
    """The realm did something its host cannot handle (the run ends)."""


def timer_deadline(ctl: int, cval: int) -> int:
    """When an EL1 timer will assert its interrupt (0: never, as things stand)."""
    if ctl & CNT_CTL_ENABLE and not ctl & CNT_CTL_IMASK and not ctl & CNT_CTL_ISTATUS:
        return cval
    return 0


class Vcpu:
    def __init__(self, vm: RealmVm, rec: HostRec) -> None:
        self.vm = vm
        self.rec = rec
        self.index = rec.index
        self.on = rec.index == 0
        """Powered on (REC 0 from the start, the others once PSCI CPU_ON named them)."""
        self.exits: Counter[str] = Counter()
        self.ticks = 0
        self._lines = {VIRTUAL_TIMER_PPI: False, PHYSICAL_TIMER_PPI: False}
        self._flags = 0
        self._gprs: list[int] | None = None
        self._x0: int | None = None
        self._timers = (0, 0, 0, 0)
        self.enters = 0
        """RMI_REC_ENTER calls that returned to this loop (exits Python handled)."""
        self.stub_exits = 0
        """Exits the hoststub completed itself (the console fast path)."""
        self._uart_ipa = (realm_map.UART_BASE | vm.realm.shared_bit) & ~PAGE_OFFSET

    # -- the loop --------------------------------------------------------------------------------

    def run(self) -> None:
        vm = self.vm
        self.ticks = vm.stub.wait(1, cpu=self.index).ticks
        try:
            while not vm.stopping.is_set():
                if not self.on:
                    self._idle(0)
                    continue
                self._enter()
        except RmiError as exc:
            raise VcpuError(f"vCPU {self.index}: {exc}") from exc

    def _enter(self) -> None:
        vm, cpu, mem = self.vm, self.index, self.vm.memory
        run = self.rec.run
        lrs, hcr = vm.vgic.entry_lrs(cpu)
        # WFI traps (REC_ENTER_TRAP_WFI): the host idles this CPU itself (and
        # learns the timer deadline); WFE runs natively (a spin-wait hint).
        mem.write_u64(run + OFF_ENTER_FLAGS, self._flags | REC_ENTER_TRAP_WFI)
        if self._gprs is not None:
            mem.write_u64s(run + OFF_ENTER_GPRS, self._gprs)
            self._gprs = None
        elif self._x0 is not None:
            mem.write_u64(run + OFF_ENTER_GPRS, self._x0)
        self._x0 = None
        mem.write_u64s(run + OFF_ENTER_HCR, [hcr, *lrs])
        flags, fr, cr = vm.uart.fast_path()
        res = vm.stub.rec_enter(self.rec.pa, run, cpu=cpu, kick=vm.take_kicks(cpu),
                                slice_end=self.ticks + vm.slice_ticks,
                                console=(self._uart_ipa, flags, fr, cr))
        self.ticks = res.ticks
        self.enters += 1
        if res.console_exits:
            self.stub_exits += res.console_exits
            self.exits[CONSOLE_FAST] += res.console_exits
            if res.console:
                vm.uart.transmitted(res.console)
        x0 = res.ret[0]
        if x0 != 0:
            self._enter_failed(x0)
            return
        self._flags = 0
        self._handle_exit()

    def _enter_failed(self, x0: int) -> None:
        status, index = x0 & 0xFF, (x0 >> 8) & 0xFF
        if status == RmiStatus.ERROR_REC:
            # not runnable (it called PSCI CPU_OFF): wait for a CPU_ON
            self.on = False
            return
        if status == RmiStatus.ERROR_REALM and index == REALM_ERROR_INDEX_SYSTEM_OFF:
            # Another vCPU's PSCI SYSTEM_OFF/RESET turned the realm off first.
            self.vm.realm_is_off(self.index)
            return
        name = RmiStatus(status).name if status in RmiStatus._value2member_map_ else hex(status)
        raise VcpuError(f"vCPU {self.index}: RMI_REC_ENTER failed: RMI_{name} (index {index})")

    def _handle_exit(self) -> None:
        vm, cpu, mem = self.vm, self.index, self.vm.memory
        run = self.rec.run
        reason = mem.read_u8(run + OFF_REASON)
        esr, far, hpfar = mem.read_u64s(run + OFF_ESR, 3)
        vm.vgic.exit_lrs(cpu, mem.read_u64s(run + OFF_EXIT_LRS, vm.vgic.num_lrs))
        timers = mem.read_u64s(run + OFF_TIMERS, 4)
        if timers != self._timers:
            self._timers = timers
            self._timer_line(VIRTUAL_TIMER_PPI, output_asserted(timers[2]))
            self._timer_line(PHYSICAL_TIMER_PPI, output_asserted(timers[0]))
        if reason == RecExitReason.SYNC:
            self._sync(esr, far, hpfar)
        elif reason == RecExitReason.IRQ:
            self.exits["irq"] += 1
        elif reason == RecExitReason.FIQ:
            self.exits["fiq"] += 1
        elif reason == RecExitReason.PSCI:
            self._psci()
        elif reason == RecExitReason.RIPAS_CHANGE:
            self._ripas_change()
        elif reason == RecExitReason.HOST_CALL:
            self.exits[RSI_HOST_CALL_ECHO] += 1
            self._gprs = list(mem.read_u64s(run + OFF_EXIT_GPRS, NUM_GPRS))
        elif reason == RecExitReason.SERROR:
            raise VcpuError(f"vCPU {cpu}: the realm took an SError: {E.describe(esr)} "
                            f"(ESR {esr:#x}){vm.realm_pc_note(self.rec)}")
        else:
            raise VcpuError(f"vCPU {cpu}: unknown exit reason {reason}")

    def _timer_line(self, intid: int, level: bool) -> None:
        if self._lines[intid] != level:
            self._lines[intid] = level
            self.vm.vgic.set_line(intid, level, self.index)

    # -- synchronous exits -------------------------------------------------------------------

    def _sync(self, esr: int, far: int, hpfar: int) -> None:
        ec = E.ec_of(esr)
        if ec in (E.Ec.DABT_LOWER, E.Ec.IABT_LOWER):
            ipa = E.fault_ipa(hpfar, far)
            if ipa & self.vm.realm.shared_bit:
                self._unprotected(ipa, esr)
            else:
                self._protected_fault(ipa, ec == E.Ec.IABT_LOWER)
        elif ec == E.Ec.SYSREG:
            self._sysreg(esr)
        elif ec == E.Ec.WFX:
            if esr & E.WFX_TI_WFE:
                self.exits["wfe"] += 1
            else:
                self.exits["wfi"] += 1
                self._wfi()
        else:
            raise VcpuError(f"vCPU {self.index}: unhandled synchronous exit: "
                            f"{E.describe(esr)} (ESR {esr:#x}){self.vm.realm_pc_note(self.rec)}")

    def _unprotected(self, ipa: int, esr: int) -> None:
        vm = self.vm
        addr = ipa & ~vm.realm.shared_bit
        if vm.ram_base <= addr < vm.ram_end:
            self.exits["fault: shared memory"] += 1
            vm.realm.map_shared(ipa)
            return
        if not esr & E.DABT_ISV:
            raise VcpuError(f"vCPU {self.index}: MMIO access at {addr:#x} that cannot be "
                            f"emulated (no instruction syndrome: {E.describe(esr)})"
                            f"{vm.realm_pc_note(self.rec)}")
        size = 1 << ((esr >> E.DABT_SAS_SHIFT) & 3)
        write = bool(esr & E.DABT_WNR)
        region = vm.bus.find(addr)
        if region is None:
            self.exits["mmio: unassigned"] += 1
            vm.unassigned_mmio(addr, write)
            if not write:
                self._x0 = 0
        else:
            device = region.device
            self.exits[f"mmio: {device.name}"] += 1
            if write:
                value = self.vm.memory.read_u64(self.rec.run + OFF_EXIT_GPRS)
                device.write(addr - region.base, size, value, self.index)
            else:
                self._x0 = device.read(addr - region.base, size, self.index)
        self._flags |= REC_ENTER_EMUL_MMIO

    def _protected_fault(self, ipa: int, fetch: bool) -> None:
        vm = self.vm
        if not vm.ram_base <= ipa < vm.ram_end:
            what = "fetched from" if fetch else "accessed"
            raise VcpuError(f"vCPU {self.index}: the realm {what} protected IPA {ipa:#x}, "
                            "outside its RAM"
                            f"{vm.realm_pc_note(self.rec)}")
        self.exits["fault: memory"] += 1
        added = vm.realm.back(ipa, vm.config.fault_pages, (vm.ram_base, vm.ram_end))
        vm.note_backed(added)

    def _sysreg(self, esr: int) -> None:
        access = E.SysregAccess.decode(esr)
        value = self.vm.memory.read_u64(self.rec.run + OFF_EXIT_GPRS)
        if access.encoding in SGI_SYSREGS and not access.read:
            self.exits["sgi"] += 1
            self.vm.vgic.send_sgi(self.index, value)
        elif access.encoding == ICC_DIR_EL1 and not access.read:
            self.exits["icc_dir"] += 1
            self.vm.vgic.deactivate(self.index, value & 0xFF_FFFF)
        else:
            raise VcpuError(f"vCPU {self.index}: unexpected system register trap: "
                            f"{E.describe(esr)}{self.vm.realm_pc_note(self.rec)}")

    # -- idling ---------------------------------------------------------------------------------

    def _wfi(self) -> None:
        cntp_ctl, cntp_cval, cntv_ctl, cntv_cval = self._timers
        deadlines = [d for d in (timer_deadline(cntv_ctl, cntv_cval),
                                 timer_deadline(cntp_ctl, cntp_cval)) if d]
        self._idle(min(deadlines) if deadlines else 0)

    def _idle(self, deadline: int) -> None:
        """Sleep the host CPU (the stub's WAIT) until an interrupt is
        deliverable, the realm's timer `deadline` (CNTPCT ticks; 0: none)
        passes, this vCPU is powered on or off, or the run stops.  Another vCPU
        that makes an interrupt pending here kicks this CPU with an SGI; the
        sleep is also capped (`idle_cap`) so that terminal input is noticed."""
        vm, cpu = self.vm, self.index
        was_on = self.on
        while not vm.stopping.is_set() and self.on == was_on:
            if self.on and vm.vgic.deliverable(cpu):
                return
            if deadline and self.ticks >= deadline:
                return
            wake = self.ticks + vm.idle_cap_ticks
            if deadline:
                wake = min(wake, deadline)
            self.ticks = vm.stub.wait(wake, cpu=cpu, kick=vm.take_kicks(cpu)).ticks

    # -- PSCI and RIPAS -------------------------------------------------------------------------

    def _psci(self) -> None:
        vm = self.vm
        gprs = vm.memory.read_u64s(self.rec.run + OFF_EXIT_GPRS, 4)
        fid = gprs[0] & 0xFFFF_FFFF
        try:
            name = PsciFid(fid).psci_name
        except ValueError:
            name = f"PSCI {fid:#x}"
        self.exits[name] += 1
        if fid in PSCI_CPU_ON_FIDS or fid in PSCI_AFFINITY_INFO_FIDS:
            target = vm.vcpu_of_mpidr(gprs[1] & MPIDR_AFFINITY)
            if target is None:
                raise VcpuError(f"vCPU {self.index}: {name} names MPIDR {gprs[1]:#x}, which "
                                "is no vCPU (the RMM should have refused it)")
            vm.rmi.psci_complete(self.rec.pa, target.rec.pa, PsciStatus.SUCCESS)
            if fid in PSCI_CPU_ON_FIDS and not target.on:
                target.on = True
                vm.kick(target.index)
        elif fid == PsciFid.CPU_OFF:
            self.on = False
        elif fid in (PsciFid.SYSTEM_OFF, PsciFid.SYSTEM_RESET, PsciFid.SYSTEM_RESET2_32,
                     PsciFid.SYSTEM_RESET2_64):
            vm.power_off(self.index, "off" if fid == PsciFid.SYSTEM_OFF else "reset")
        elif fid in PSCI_CPU_SUSPEND_FIDS:
            self._wfi()

    def _ripas_change(self) -> None:
        vm = self.vm
        base, top = vm.memory.read_u64s(self.rec.run + OFF_RIPAS, 2)
        value = Ripas(vm.memory.read_u8(self.rec.run + OFF_RIPAS_VALUE))
        self.exits[f"RIPAS change to {value.name}"] += 1
        reached = vm.realm.set_ripas(self.rec, base, top, value)
        vm.note_ripas(base, reached, value)
        if reached == base:
            self._flags |= REC_ENTER_RIPAS_RESPONSE  # reject: no progress possible
