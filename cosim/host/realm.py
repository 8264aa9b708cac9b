"""Building and tearing down a realm from the host side, through real RMI
calls, the way KVM does it (fact sheet §10): delegate the RD and the
starting-level RTTs, REALM_CREATE, RTTs on demand, measured data, RECs,
activate; while it runs, memory on demand (DATA_CREATE_UNKNOWN), RIPAS
changes and shared (unprotected) mappings; and the reverse, down to every
granule undelegated again.

The host keeps its own record of every granule it gave the RMM and predicts
the Realm Initial Measurement from the calls it made (RMM spec A7.1.1), so a
verifier can compare the realm's attestation token with it.

Several vCPU threads use one HostRealm: the records are guarded by a lock
that is never held across an RMI call (a host CPU may not wait for another
inside a doorbell); two vCPUs racing for the same page are resolved by the
RMM's answer (the loser undelegates its granule).
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field

from ..arch import stage2
from ..arch.pas import GRANULE_SIZE
from ..memory import GuestMemory
from ..rmm.abi import (
    REC_FLAG_RUNNABLE,
    RMI_MEASURE_CONTENT,
    RMI_NO_MEASURE_CONTENT,
    HashAlgorithm,
    Ripas,
    RmiFid,
    RmiStatus,
)
from ..rmm.measurement import Rim
from ..rmm.structs import RmiRealmParams, RmiRecParams
from .pool import PagePool
from .rmi import RmiClient, RmiError

REC_RUNNABLE = REC_FLAG_RUNNABLE
NS_DESC_ATTRS = (0b110 << stage2.MEMATTR_SHIFT) | stage2.S2AP_RW
"""RmiRttEntry attributes of a shared page given to RMI_RTT_MAP_UNPROTECTED:
MemAttr[2:0] = 0b110 (Normal Write-Back, in the FEAT_S2FWB encoding the RMM
reads it with) and S2AP read/write (what KVM passes)."""
BATCH_PAIRS = 24
"""Granules handled per SMC_BATCH request (two SMCs each)."""


def start_level_for(ipa_bits: int) -> int:
    """KVM's choice of starting level for an IPA width (fact sheet §5.6)."""
    return 4 - ((ipa_bits - 8) // 9)


@dataclass
class RealmSpec:
    ipa_bits: int = 40
    hash_algo: int = HashAlgorithm.SHA_256
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
    index: int = 0


def rec_mpidr(index: int) -> int:
    """The MPIDR KVM gives vCPU `index` (Aff0 = index[3:0], Aff1 = index[11:4])."""
    return (index & 0xF) | ((index >> 4) & 0xFF) << 8


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
    shared: dict[int, int] = field(default_factory=dict)
    """Unprotected IPA -> the NS page mapped there."""
    recs: list[HostRec] = field(default_factory=list)
    delegated: set[int] = field(default_factory=set)
    """Every granule this host delegated and has not undelegated yet."""
    peak_delegated: int = 0
    expected_rim: bytes = b""
    """The RIM this host's calls must have produced (RMM spec A7.1.1)."""
    empty: list[tuple[int, int]] = field(default_factory=list)
    """Protected IPA ranges the realm made RIPAS EMPTY (sorted, disjoint)."""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rim = Rim(HashAlgorithm(self.spec.hash_algo))

    @property
    def rim_len(self) -> int:
        """Bytes of the realm's hash algorithm (the meaningful part of a RIM)."""
        return self._rim.len

    @property
    def start_level(self) -> int:
        if self.spec.start_level is not None:
            return self.spec.start_level
        return start_level_for(self.spec.ipa_bits)

    @property
    def shared_bit(self) -> int:
        """The top IPA bit: set, the IPA is unprotected (RMM spec A5.2.2)."""
        return 1 << (self.spec.ipa_bits - 1)

    # -- granules ----------------------------------------------------------------------------

    def _record_delegated(self, pas: list[int]) -> None:
        with self._lock:
            self.delegated.update(pas)
            self.peak_delegated = max(self.peak_delegated, len(self.delegated))

    def _delegated(self, count: int = 1, align: int = GRANULE_SIZE) -> int:
        pa = self.pool.alloc(count, align)
        pas = [pa + i * GRANULE_SIZE for i in range(count)]
        for g in pas:
            self.rmi.granule_delegate(g)
            self._record_delegated([g])
        return pa

    def _undelegate(self, pa: int) -> None:
        self.rmi.granule_undelegate(pa)
        with self._lock:
            self.delegated.discard(pa)
        self.pool.free(pa)

    def _ns_page(self, data: bytes) -> int:
        pa = self.pool.alloc()
        self.memory.write(pa, data.ljust(GRANULE_SIZE, b"\0"))
        return pa

    # -- construction --------------------------------------------------------------------------

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
        try:
            self.rmi.realm_create(self.rd, page)
        finally:
            self.pool.free(page)
        self.expected_rim = self._rim.initial(params.measured_bytes())
        return self

    def _rtt_at(self, level: int, ipa: int) -> int | None:
        return self.rtts.get((level, stage2.align_down(ipa, level - 1)))

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
                self._undelegate(rtt)
                if exc.status != RmiStatus.ERROR_RTT or exc.level != lvl - 1:
                    raise
                continue
            with self._lock:
                self.rtts[key] = rtt

    def walk_level(self, ipa: int) -> int:
        """The level of the RTT entry covering `ipa`, from the host's own record
        of the RTTs it created."""
        level = self.start_level
        while level < stage2.PAGE_LEVEL and self._rtt_at(level + 1, ipa) is not None:
            level += 1
        return level

    def init_ripas(self, base: int, top: int) -> None:
        """RMI_RTT_INIT_RIPAS over [base, top), creating RTTs where the range
        does not cover whole entries (KVM's find_map_level), and extending the
        expected RIM by each entry processed (RMM spec B4.3.18)."""
        ipa = base
        while ipa < top:
            level = self.walk_level(ipa)
            size = stage2.entry_size(level)
            if ipa % size or ipa + size > top:
                self.ensure_rtts(ipa, level + 1)
                continue
            try:
                reached = self.rmi.rtt_init_ripas(self.rd, ipa, top)
            except RmiError as exc:
                if exc.status != RmiStatus.ERROR_RTT:
                    raise
                self.ensure_rtts(ipa, exc.level + 1)
                continue
            for addr in range(ipa, reached, size):
                self.expected_rim = self._rim.extend_ripas(self.expected_rim, addr, addr + size)
            ipa = reached

    def populate(self, ipa: int, content: bytes, measure: bool = True) -> list[int]:
        """DATA_CREATE the bytes at `ipa` (granule aligned), one granule at a
        time from NS source pages, in batches; returns the DATA granules."""
        if ipa % GRANULE_SIZE:
            raise ValueError(f"populate at {ipa:#x}: not granule aligned")
        pages = [content[off:off + GRANULE_SIZE].ljust(GRANULE_SIZE, b"\0")
                 for off in range(0, len(content), GRANULE_SIZE)]
        flags = RMI_MEASURE_CONTENT if measure else RMI_NO_MEASURE_CONTENT
        sources = [self.pool.alloc() for _ in range(min(BATCH_PAIRS, len(pages)))]
        out: list[int] = []
        try:
            for first in range(0, len(pages), BATCH_PAIRS):
                chunk = pages[first:first + BATCH_PAIRS]
                for k in range(len(chunk)):
                    self.ensure_rtts(ipa + (first + k) * GRANULE_SIZE)
                dsts = [self.pool.alloc() for _ in chunk]
                smcs: list[tuple[int, ...]] = []
                for k, page in enumerate(chunk):
                    self.memory.write(sources[k], page)
                    smcs.append((RmiFid.GRANULE_DELEGATE, dsts[k]))
                    smcs.append((RmiFid.DATA_CREATE, self.rd, dsts[k],
                                 ipa + (first + k) * GRANULE_SIZE, sources[k], flags))
                done = self._run_pairs(smcs, dsts)
                for k in range(done):
                    page_ipa = ipa + (first + k) * GRANULE_SIZE
                    with self._lock:
                        self.data[page_ipa] = dsts[k]
                    self.expected_rim = self._rim.extend_data(
                        self.expected_rim, page_ipa, flags, chunk[k] if measure else None)
                    out.append(dsts[k])
        finally:
            for src in sources:
                self.pool.free(src)
        return out

    def _run_pairs(self, smcs: list[tuple[int, ...]], granules: list[int],
                   tolerate_rtt: bool = False) -> int:
        """Run (GRANULE_DELEGATE g, create-command on g) pairs in one batch.
        Returns how many pairs succeeded; with `tolerate_rtt`, a create that
        fails with RMI_ERROR_RTT at level 3 (the entry is already populated,
        e.g. by another vCPU) ends the batch quietly and gives the granule back.
        Anything else raises RmiError after giving back what was not used."""
        res = self.rmi.batch(smcs)
        delegated = (res.done + 1) // 2
        self._record_delegated(granules[:delegated])
        if res.ok:
            return len(granules)
        pair = (res.done - 1) // 2
        failed_fid = smcs[res.done - 1][0]
        for g in granules[pair + 1:]:
            self.pool.free(g)
        if failed_fid == RmiFid.GRANULE_DELEGATE:
            self.pool.free(granules[pair])
        else:
            self._undelegate(granules[pair])
        if tolerate_rtt and failed_fid != RmiFid.GRANULE_DELEGATE \
                and res.status == RmiStatus.ERROR_RTT and res.index == stage2.PAGE_LEVEL:
            return pair
        raise RmiError(RmiFid(failed_fid).rmi_name, res.status, res.index, res.last)

    # -- memory while the realm runs ------------------------------------------------------------

    def is_empty(self, ipa: int) -> bool:
        """Whether the realm made `ipa` RIPAS EMPTY (shared)."""
        with self._lock:
            i = bisect.bisect_right(self.empty, (ipa, 1 << 64)) - 1
            return i >= 0 and self.empty[i][0] <= ipa < self.empty[i][1]

    def back(self, ipa: int, pages: int = 1, limit: tuple[int, int] | None = None) -> int:
        """Give the realm zeroed DATA granules (RMI_DATA_CREATE_UNKNOWN), as a
        host does on a stage-2 fault at RIPAS RAM: the page of `ipa` and up to
        `pages` - 1 following ones in the same 2 MiB block and inside `limit`
        that are neither populated nor EMPTY.  Returns how many were added."""
        ipa &= ~(GRANULE_SIZE - 1)
        block_end = stage2.align_down(ipa, 2) + stage2.entry_size(2)
        end = min(ipa + pages * GRANULE_SIZE, block_end)
        if limit is not None:
            end = min(end, limit[1])
        want: list[int] = []
        with self._lock:
            for page in range(ipa, end, GRANULE_SIZE):
                if page in self.data:
                    if page == ipa:
                        return 0
                    break
                want.append(page)
        want = [p for i, p in enumerate(want) if i == 0 or not self.is_empty(p)]
        self.ensure_rtts(ipa)
        added = 0
        for first in range(0, len(want), BATCH_PAIRS):
            chunk = want[first:first + BATCH_PAIRS]
            dsts = [self.pool.alloc() for _ in chunk]
            smcs: list[tuple[int, ...]] = []
            for page, dst in zip(chunk, dsts, strict=True):
                smcs.append((RmiFid.GRANULE_DELEGATE, dst))
                smcs.append((RmiFid.DATA_CREATE_UNKNOWN, self.rd, dst, page))
            done = self._run_pairs(smcs, dsts, tolerate_rtt=True)
            with self._lock:
                for page, dst in zip(chunk[:done], dsts[:done], strict=True):
                    self.data[page] = dst
            added += done
            if done < len(chunk):
                break
        return added

    def map_shared(self, ipa: int) -> int:
        """Map a zeroed NS page at the unprotected IPA `ipa` (the realm shares
        memory it made RIPAS EMPTY): RMI_RTT_MAP_UNPROTECTED.  Returns its PA."""
        ipa &= ~(GRANULE_SIZE - 1)
        with self._lock:
            if ipa in self.shared:
                return self.shared[ipa]
        self.ensure_rtts(ipa)
        pa = self.pool.alloc()
        self.memory.zero(pa, GRANULE_SIZE)
        try:
            self.rmi.rtt_map_unprotected(self.rd, ipa, stage2.PAGE_LEVEL, pa | NS_DESC_ATTRS)
        except RmiError as exc:
            self.pool.free(pa)
            if exc.status == RmiStatus.ERROR_RTT and exc.index == stage2.PAGE_LEVEL:
                return 0  # another vCPU mapped it first
            raise
        with self._lock:
            self.shared[ipa] = pa
        return pa

    def unmap_shared(self, base: int, top: int) -> None:
        """Remove the host's shared pages in the unprotected range [base, top)."""
        with self._lock:
            pages = [ipa for ipa in self.shared if base <= ipa < top]
        for ipa in sorted(pages):
            self.rmi.rtt_unmap_unprotected(self.rd, ipa, stage2.PAGE_LEVEL)
            with self._lock:
                pa = self.shared.pop(ipa)
            self.pool.free(pa)

    def set_ripas(self, rec: HostRec, base: int, top: int, ripas: Ripas) -> int:
        """Carry out a realm's RIPAS change request over [base, top) with
        RMI_RTT_SET_RIPAS (creating RTTs where a block must be split); returns
        how far it got.  Memory that became EMPTY is reclaimed (its DATA
        granules destroyed and undelegated, as KVM does); memory that became
        RAM again loses its shared mapping."""
        ipa = base
        while ipa < top:
            try:
                ipa = self.rmi.rtt_set_ripas(self.rd, rec.pa, ipa, top)
            except RmiError as exc:
                if exc.status != RmiStatus.ERROR_RTT or exc.level >= stage2.PAGE_LEVEL:
                    break
                self.ensure_rtts(ipa, exc.level + 1)
        if ipa > base:
            self._note_ripas(base, ipa, ripas)
            if ripas is Ripas.EMPTY:
                self.reclaim(base, ipa)
            else:
                self.unmap_shared(base | self.shared_bit, ipa | self.shared_bit)
        return ipa

    def _note_ripas(self, base: int, top: int, ripas: Ripas) -> None:
        with self._lock:
            kept: list[tuple[int, int]] = []
            for b, t in self.empty:
                if t <= base or b >= top:
                    kept.append((b, t))
                    continue
                if b < base:
                    kept.append((b, base))
                if t > top:
                    kept.append((top, t))
            if ripas is Ripas.EMPTY:
                kept.append((base, top))
            kept.sort()
            merged: list[tuple[int, int]] = []
            for b, t in kept:
                if merged and merged[-1][1] >= b:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], t))
                else:
                    merged.append((b, t))
            self.empty = merged

    def reclaim(self, base: int, top: int) -> None:
        """DATA_DESTROY and undelegate every DATA granule in [base, top)."""
        with self._lock:
            pages = sorted(ipa for ipa in self.data if base <= ipa < top)
        self._destroy_data(pages)

    def _destroy_data(self, pages: list[int]) -> None:
        for first in range(0, len(pages), BATCH_PAIRS):
            chunk = pages[first:first + BATCH_PAIRS]
            with self._lock:
                granules = [self.data[ipa] for ipa in chunk]
            smcs: list[tuple[int, ...]] = []
            for ipa, g in zip(chunk, granules, strict=True):
                smcs.append((RmiFid.DATA_DESTROY, self.rd, ipa))
                smcs.append((RmiFid.GRANULE_UNDELEGATE, g))
            res = self.rmi.batch(smcs)
            gone = res.done // 2 if not res.ok else len(chunk)
            with self._lock:
                for ipa, g in zip(chunk[:gone], granules[:gone], strict=True):
                    del self.data[ipa]
                    self.delegated.discard(g)
            for g in granules[:gone]:
                self.pool.free(g)
            if not res.ok:
                if res.done % 2 == 0:  # the DATA_DESTROY worked, the undelegate did not
                    with self._lock:
                        del self.data[chunk[gone]]
                raise RmiError(RmiFid(smcs[res.done - 1][0]).rmi_name, res.status, res.index,
                               res.last)

    def pa_of(self, ipa: int) -> int:
        """The DATA granule backing a protected IPA (the host's own record)."""
        return self.data[ipa & ~(GRANULE_SIZE - 1)] + (ipa & (GRANULE_SIZE - 1))

    # -- RECs ---------------------------------------------------------------------------------

    def create_rec(self, pc: int, gprs: tuple[int, ...] = (), runnable: bool = True) -> HostRec:
        index = len(self.recs)
        mpidr = rec_mpidr(index)
        aux_count = self.rmi.rec_aux_count(self.rd)
        rec = self._delegated()
        aux = [self._delegated() for _ in range(aux_count)]
        params = RmiRecParams(flags=REC_RUNNABLE if runnable else 0, mpidr=mpidr, pc=pc,
                              gprs=[*gprs, *[0] * (8 - len(gprs))], num_aux=aux_count,
                              aux=[*aux, *[0] * (16 - len(aux))])
        page = self._ns_page(params.to_bytes())
        try:
            self.rmi.rec_create(self.rd, rec, page)
        finally:
            self.pool.free(page)
        if runnable:
            self.expected_rim = self._rim.extend_rec(self.expected_rim, params.measured_bytes())
        run = self.pool.alloc()
        self.memory.zero(run, GRANULE_SIZE)
        host_rec = HostRec(rec, aux, mpidr, run, index)
        self.recs.append(host_rec)
        return host_rec

    def activate(self) -> None:
        self.rmi.realm_activate(self.rd)

    # -- teardown -------------------------------------------------------------------------------

    def destroy(self) -> None:
        """Everything back to UNDELEGATED, as KVM tears a realm down: RECs, DATA,
        shared mappings, RTTs bottom-up, the realm, then any granule still
        delegated.  Works on a realm in any state its host can leave it in."""
        for rec in self.recs:
            self.rmi.rec_destroy(rec.pa)
            for g in [rec.pa, *rec.aux]:
                self._undelegate(g)
            self.pool.free(rec.run)
        self.recs.clear()
        self._destroy_data(sorted(self.data))
        self.unmap_shared(0, 1 << self.spec.ipa_bits)
        for (level, ipa), rtt in sorted(self.rtts.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
            self.rmi.rtt_destroy(self.rd, ipa, level)
            with self._lock:
                del self.rtts[(level, ipa)]
            self._undelegate(rtt)
        if self.rd:
            self.rmi.realm_destroy(self.rd)
            for g in [self.rd, *self.roots]:
                self._undelegate(g)
            self.rd = 0
            self.roots = []
        for g in sorted(self.delegated):
            self._undelegate(g)
