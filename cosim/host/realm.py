"""Building and tearing down a realm from the host side, through real RMI
calls, the way KVM does it (fact sheet §10): delegate the RD and the
starting-level RTTs, REALM_CREATE, RTTs on demand, measured data, RECs,
activate; and the reverse, down to every granule undelegated again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..arch import stage2
from ..arch.pas import GRANULE_SIZE
from ..memory import GuestMemory
from ..rmm.abi import RmiStatus
from ..rmm.structs import RmiRealmParams, RmiRecParams
from .pool import PagePool
from .rmi import RmiClient, RmiError

REC_RUNNABLE = 1
RMI_MEASURE_CONTENT = 1


def start_level_for(ipa_bits: int) -> int:
    """KVM's choice of starting level for an IPA width (fact sheet §5.6)."""
    return 4 - ((ipa_bits - 8) // 9)


@dataclass
class RealmSpec:
    ipa_bits: int = 40
    hash_algo: int = 0
    vmid: int = 1
    rpv: bytes = bytes(64)
    flags: int = 0
    num_bps: int = 2
    num_wps: int = 2
    sve_vl: int = 0
    pmu_num_ctrs: int = 0
    start_level: int | None = None
    """RTT starting level; None: KVM's choice for ipa_bits (level -1 needs the
    LPA2 flag and an IPA width of 49..52 bits)."""


@dataclass
class HostRec:
    pa: int
    aux: list[int]
    mpidr: int
    run: int
    """The NS granule holding this REC's RmiRecRun."""


@dataclass
class HostRealm:
    """A realm as its host knows it: which granules it gave the RMM."""

    rmi: RmiClient
    memory: GuestMemory
    pool: PagePool
    spec: RealmSpec = field(default_factory=RealmSpec)
    rd: int = 0
    roots: list[int] = field(default_factory=list)
    rtts: dict[tuple[int, int], int] = field(default_factory=dict)
    """(level, IPA aligned to the table's span) -> RTT granule."""
    data: dict[int, int] = field(default_factory=dict)
    """IPA -> DATA granule."""
    recs: list[HostRec] = field(default_factory=list)

    @property
    def start_level(self) -> int:
        if self.spec.start_level is not None:
            return self.spec.start_level
        return start_level_for(self.spec.ipa_bits)

    def _delegated(self, count: int = 1, align: int = GRANULE_SIZE) -> int:
        pa = self.pool.alloc(count, align)
        for i in range(count):
            self.rmi.granule_delegate(pa + i * GRANULE_SIZE)
        return pa

    def _ns_page(self, data: bytes) -> int:
        pa = self.pool.alloc()
        self.memory.write(pa, data.ljust(GRANULE_SIZE, b"\0"))
        return pa

    def create(self) -> HostRealm:
        spec = self.spec
        level = self.start_level
        num = stage2.num_start_tables(spec.ipa_bits, level)
        self.rd = self._delegated()
        base = self._delegated(num, align=num * GRANULE_SIZE)
        self.roots = [base + i * GRANULE_SIZE for i in range(num)]
        params = RmiRealmParams(flags=spec.flags, s2sz=spec.ipa_bits, sve_vl=spec.sve_vl,
                                num_bps=spec.num_bps - 1, num_wps=spec.num_wps - 1,
                                pmu_num_ctrs=spec.pmu_num_ctrs, hash_algo=spec.hash_algo,
                                rpv=spec.rpv, vmid=spec.vmid, rtt_base=base,
                                rtt_level_start=level, rtt_num_start=num)
        page = self._ns_page(params.to_bytes())
        self.rmi.realm_create(self.rd, page)
        self.pool.free(page)
        return self

    def ensure_rtts(self, ipa: int, level: int = 3) -> None:
        """Create the RTTs from below the starting level down to `level`
        covering `ipa` (an "already there" RMI_ERROR_RTT is fine)."""
        for lvl in range(self.start_level + 1, level + 1):
            key = (lvl, stage2.align_down(ipa, lvl - 1))
            if key in self.rtts:
                continue
            rtt = self._delegated()
            try:
                self.rmi.rtt_create(self.rd, rtt, key[1], lvl)
            except RmiError as exc:
                self.rmi.granule_undelegate(rtt)
                self.pool.free(rtt)
                if exc.status != RmiStatus.ERROR_RTT or exc.level != lvl - 1:
                    raise
                continue
            self.rtts[key] = rtt

    def init_ripas(self, base: int, top: int) -> None:
        ipa = base
        while ipa < top:
            try:
                ipa = self.rmi.rtt_init_ripas(self.rd, ipa, top)
            except RmiError as exc:
                if exc.status != RmiStatus.ERROR_RTT:
                    raise
                self.ensure_rtts(ipa, exc.level + 1)

    def populate(self, ipa: int, content: bytes, measure: bool = True) -> list[int]:
        """DATA_CREATE the bytes at `ipa`, one granule at a time, from NS
        source pages; returns the DATA granules."""
        out = []
        for off in range(0, len(content), GRANULE_SIZE):
            src = self._ns_page(content[off:off + GRANULE_SIZE])
            dst = self._delegated()
            self.ensure_rtts(ipa + off)
            self.rmi.data_create(self.rd, dst, ipa + off, src,
                                 RMI_MEASURE_CONTENT if measure else 0)
            self.pool.free(src)
            self.data[ipa + off] = dst
            out.append(dst)
        return out

    def back(self, ipa: int) -> int:
        """Give the realm a zeroed DATA granule at `ipa` (what a host does on a
        stage-2 fault at RIPAS RAM): RMI_DATA_CREATE_UNKNOWN."""
        ipa &= ~(GRANULE_SIZE - 1)
        dst = self._delegated()
        self.ensure_rtts(ipa)
        self.rmi.data_create_unknown(self.rd, dst, ipa)
        self.data[ipa] = dst
        return dst

    def pa_of(self, ipa: int) -> int:
        """The DATA granule backing a protected IPA (the host's own record)."""
        return self.data[ipa & ~(GRANULE_SIZE - 1)] + (ipa & (GRANULE_SIZE - 1))

    def create_rec(self, pc: int, gprs: tuple[int, ...] = (), runnable: bool = True) -> HostRec:
        index = len(self.recs)
        mpidr = (index & 0xF) | ((index >> 4) & 0xFF) << 8
        aux_count = self.rmi.rec_aux_count(self.rd)
        rec = self._delegated()
        aux = [self._delegated() for _ in range(aux_count)]
        params = RmiRecParams(flags=REC_RUNNABLE if runnable else 0, mpidr=mpidr, pc=pc,
                              gprs=[*gprs, *[0] * (8 - len(gprs))], num_aux=aux_count,
                              aux=[*aux, *[0] * (16 - len(aux))])
        page = self._ns_page(params.to_bytes())
        self.rmi.rec_create(self.rd, rec, page)
        self.pool.free(page)
        run = self.pool.alloc()
        self.memory.zero(run, GRANULE_SIZE)
        host_rec = HostRec(rec, aux, mpidr, run)
        self.recs.append(host_rec)
        return host_rec

    def activate(self) -> None:
        self.rmi.realm_activate(self.rd)

    def destroy(self) -> None:
        """Everything back to UNDELEGATED, as KVM tears a realm down."""
        for ipa, granule in sorted(self.data.items()):
            self.rmi.data_destroy(self.rd, ipa)
            self.rmi.granule_undelegate(granule)
            self.pool.free(granule)
        self.data.clear()
        for rec in self.recs:
            self.rmi.rec_destroy(rec.pa)
            for g in [rec.pa, *rec.aux]:
                self.rmi.granule_undelegate(g)
                self.pool.free(g)
            self.pool.free(rec.run)
        self.recs.clear()
        for (level, ipa), rtt in sorted(self.rtts.items(), key=lambda kv: -kv[0][0]):
            self.rmi.rtt_destroy(self.rd, ipa, level)
            self.rmi.granule_undelegate(rtt)
            self.pool.free(rtt)
        self.rtts.clear()
        self.rmi.realm_destroy(self.rd)
        for g in [self.rd, *self.roots]:
            self.rmi.granule_undelegate(g)
            self.pool.free(g)
