"""A minimal host for driving the RMM in unit tests: memory, GPT, a granule
allocator and helpers that issue RMI calls the way a KVM-style host would."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cosim.arch.gpt import PasTable
from cosim.memory import GuestMemory
from cosim.rmm import Rmm, RmmConfig
from cosim.rmm.abi import RmiFid, RmiStatus, rmi_index, rmi_status
from cosim.rmm.results import EnterRealm, RmiReturn
from cosim.rmm.structs import RmiRealmParams, RmiRecParams
from cosim.trace import Trace

RAM_BASE = 0x4000_0000
RAM_SIZE = 16 << 20
RAM_END = RAM_BASE + RAM_SIZE
G = 0x1000

F = RmiFid


class RmiCallError(AssertionError):
    pass


@dataclass
class RealmHandle:
    rd: int
    params: RmiRealmParams
    recs: list[int] = field(default_factory=list)

    @property
    def roots(self) -> list[int]:
        return [self.params.rtt_base + i * G for i in range(self.params.rtt_num_start)]


class Host:
    def __init__(
        self,
        *,
        ram_base: int = RAM_BASE,
        ram_size: int = RAM_SIZE,
        trace: Trace | None = None,
        **config: Any,
    ) -> None:
        """`ram_base` places the test RAM anywhere in the PA space, e.g. across
        2**48 to exercise 52-bit output addresses (with lpa2=True, pa_width=52)."""
        self.memory = GuestMemory.anonymous(ram_base, ram_size)
        self.gpt = PasTable(ram_base, ram_size)
        self.config = RmmConfig(dram=[(ram_base, ram_size)], **config)
        self.trace = trace
        self.rmm = Rmm(self.memory, self.gpt, self.config, trace)
        self.ram_base = ram_base
        self.ram_end = ram_base + ram_size
        self._next = ram_base
        self._taken: set[int] = set()
        self.vmid = 1

    # -- memory ----------------------------------------------------------------------

    def alloc(self, count: int = 1, align: int = G) -> int:
        pa = (self._next + align - 1) & ~(align - 1)
        while any(pa + i * G in self._taken for i in range(count)):
            pa += align
        self._next = pa + count * G
        if self._next > self.ram_end:
            raise MemoryError("test RAM exhausted")
        return pa

    def alloc_at(self, pa: int, count: int = 1) -> int:
        """`count` granules at `pa` (which alloc() will not hand out again)."""
        span = {pa + i * G for i in range(count)}
        if pa < self._next or span & self._taken or pa + count * G > self.ram_end:
            raise MemoryError(f"granules at {pa:#x} are taken or outside the test RAM")
        self._taken |= span
        return pa

    def delegate_at(self, pa: int, count: int = 1) -> int:
        self.alloc_at(pa, count)
        for i in range(count):
            self.ok(F.GRANULE_DELEGATE, pa + i * G)
        return pa

    def ns(self, data: bytes | None = None) -> int:
        """An undelegated granule (e.g. a parameter buffer)."""
        pa = self.alloc()
        if data is not None:
            self.memory.write(pa, data)
        return pa

    # -- calls -----------------------------------------------------------------------

    def call(self, fid: int, *args: int, cpu: int = 0) -> RmiReturn | EnterRealm:
        return self.rmm.handle_rmi(int(fid), list(args) + [0] * (6 - len(args)), cpu)

    def ret(self, fid: int, *args: int) -> RmiReturn:
        r = self.call(fid, *args)
        assert isinstance(r, RmiReturn), r
        return r

    def ok(self, fid: int, *args: int) -> tuple[int, ...]:
        r = self.call(fid, *args)
        if isinstance(r, EnterRealm):
            return ()
        if r.x[0] != 0:
            raise RmiCallError(
                f"{RmiFid(fid).name}{tuple(hex(a) for a in args)} -> "
                f"{RmiStatus(rmi_status(r.x[0])).name} index {rmi_index(r.x[0])} ({r.condition})"
            )
        return r.x[1:]

    def delegate(self, count: int = 1, align: int = G) -> int:
        pa = self.alloc(count, align)
        for i in range(count):
            self.ok(F.GRANULE_DELEGATE, pa + i * G)
        return pa

    # -- realms ----------------------------------------------------------------------

    def realm_params(self, **kw: Any) -> RmiRealmParams:
        p = dict(
            s2sz=40,
            num_bps=1,
            num_wps=1,
            hash_algo=0,
            vmid=self.vmid,
            rtt_level_start=1,
            rtt_num_start=2,
            rpv=bytes(range(64)),
        )
        p.update(kw)
        return RmiRealmParams(**p)

    def create_realm(self, **kw: Any) -> RealmHandle:
        params = self.realm_params(**kw)
        self.vmid += 1
        if "rtt_base" not in kw:
            params.rtt_base = self.delegate(params.rtt_num_start, align=params.rtt_num_start * G)
        rd = self.delegate()
        self.ok(F.REALM_CREATE, rd, self.ns(params.to_bytes()))
        return RealmHandle(rd, params)

    def create_rtts(self, rd: int, ipa: int, level: int) -> list[int]:
        """Create any missing RTTs so that a walk to `ipa` reaches `level`."""
        made = []
        realm = self.rmm.realm_at(rd)
        assert realm is not None
        for lvl in range(realm.rtt_level_start + 1, level + 1):
            base = ipa & ~((1 << (12 + 9 * (4 - lvl))) - 1)
            walk_level = self.ret(F.RTT_READ_ENTRY, rd, base, lvl - 1).x[1]
            state = self.ret(F.RTT_READ_ENTRY, rd, base, lvl - 1).x[2]
            if walk_level == lvl - 1 and state == 2:
                continue
            rtt = self.delegate()
            self.ok(F.RTT_CREATE, rd, rtt, base, lvl)
            made.append(rtt)
        return made

    def rec_params(
        self,
        index: int = 0,
        *,
        runnable: bool = True,
        pc: int = 0,
        gprs: list[int] | None = None,
        aux: list[int] | None = None,
    ) -> RmiRecParams:
        if aux is None:
            aux = [self.delegate() for _ in range(self.config.rec_aux_count)]
        mpidr = (index & 0xF) | ((index >> 4) & 0xFF) << 8
        return RmiRecParams(
            flags=int(runnable), mpidr=mpidr, pc=pc, gprs=gprs or [0] * 8, num_aux=len(aux), aux=aux
        )

    def create_rec(
        self,
        realm: RealmHandle,
        *,
        runnable: bool = True,
        pc: int = 0,
        gprs: list[int] | None = None,
    ) -> int:
        rec = self.delegate()
        p = self.rec_params(len(realm.recs), runnable=runnable, pc=pc, gprs=gprs)
        self.ok(F.REC_CREATE, realm.rd, rec, self.ns(p.to_bytes()))
        realm.recs.append(rec)
        return rec

    def data_create(
        self,
        rd: int,
        ipa: int,
        content: bytes | None = None,
        *,
        measure: bool = True,
        unknown: bool = False,
    ) -> int:
        data = self.delegate()
        if unknown:
            self.ok(F.DATA_CREATE_UNKNOWN, rd, data, ipa)
        else:
            src = self.ns(content if content is not None else bytes(G))
            self.ok(F.DATA_CREATE, rd, data, ipa, src, int(measure))
        return data
