"""RMI from the host's side: every v1.0 command as a method that issues the
real SMC through a transport (the hoststub, or any callable that performs an
SMC) and returns the outputs, raising `RmiError` on a failure status.

This is what a KVM-style host does; it is independent of the RMM behind the
SMC, so it drives any RMM that speaks the v1.0 ABI.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..monitor.layout import STUB_BATCH_MAX as BATCH_LIMIT
from ..rmm.abi import SMC_UNKNOWN, RmiFid, RmiStatus, s64

Transport = Callable[..., tuple[int, ...]]
"""transport(fid, *args) -> (x0, x1, ...): one SMC."""
BatchTransport = Callable[[Sequence[Sequence[int]]], tuple[int, tuple[int, ...]]]
"""batch(smcs) -> (how many ran, the last one's x0, x1, ...): SMCs back to back,
stopping after the first whose x0 is not 0."""


@dataclass(frozen=True)
class BatchResult:
    done: int
    """How many SMCs ran (the last of them failed unless `ok`)."""
    ok: bool
    last: tuple[int, ...]
    """x0.. of the last SMC that ran."""

    @property
    def status(self) -> int:
        x0 = self.last[0] if self.last else 0
        return SMC_UNKNOWN if x0 == SMC_UNKNOWN else x0 & 0xFF

    @property
    def index(self) -> int:
        return (self.last[0] >> 8) & 0xFF if self.last else 0


class RmiError(Exception):
    def __init__(self, command: str, status: int, index: int, outputs: tuple[int, ...]) -> None:
        self.command = command
        self.status = status
        self.index = index
        self.outputs = outputs
        try:
            name = RmiStatus(status).name
        except ValueError:
            name = f"status {status:#x}"
        if status == SMC_UNKNOWN:
            name = "SMC_UNKNOWN"
        detail = f" (index {index})" if index else ""
        super().__init__(f"{command} failed: RMI_{name}{detail}")

    @property
    def level(self) -> int:
        """The index of an RMI_ERROR_RTT as the RTT level it is: an 8-bit
        two's-complement value, so 0xFF is level -1 (LPA2 realms)."""
        return self.index - 0x100 if self.index >= 0x80 else self.index


@dataclass
class RttEntry:
    level: int
    state: int
    desc: int
    ripas: int


class RmiClient:
    def __init__(self, transport: Transport, batch: BatchTransport | None = None) -> None:
        self._smc = transport
        self._batch = batch

    def batch(self, smcs: Sequence[Sequence[int]]) -> BatchResult:
        """Several RMI calls back to back (one request to the host CPU when the
        transport can batch), stopping at the first that does not return
        RMI_SUCCESS."""
        if not smcs:
            return BatchResult(0, True, ())
        if self._batch is None:
            done, last = 0, ()
            for done, smc in enumerate(smcs, start=1):  # noqa: B007 (done is the count)
                last = tuple(self._smc(*smc))
                if last[0] != 0:
                    break
        else:
            done, last = 0, ()
            for first in range(0, len(smcs), BATCH_LIMIT):
                chunk = smcs[first:first + BATCH_LIMIT]
                n, last = self._batch(chunk)
                done += n
                if n < len(chunk) or last[0] != 0:
                    break
        return BatchResult(done, done == len(smcs) and last[0] == 0, tuple(last))

    def call(self, fid: RmiFid, *args: int, ok: tuple[int, ...] = (RmiStatus.SUCCESS,)
             ) -> tuple[int, ...]:
        out = self._smc(fid, *args)
        x0 = out[0]
        status = SMC_UNKNOWN if x0 == SMC_UNKNOWN else x0 & 0xFF
        if status not in ok:
            raise RmiError(RmiFid(fid).rmi_name, status, (x0 >> 8) & 0xFF, tuple(out))
        return tuple(out)

    def version(self, requested: int = 0x10000) -> tuple[int, int, int]:
        out = self._smc(RmiFid.VERSION, requested)
        return out[0], out[1], out[2]

    def features(self, index: int = 0) -> int:
        return self.call(RmiFid.FEATURES, index)[1]

    def granule_delegate(self, pa: int) -> None:
        self.call(RmiFid.GRANULE_DELEGATE, pa)

    def granule_undelegate(self, pa: int) -> None:
        self.call(RmiFid.GRANULE_UNDELEGATE, pa)

    def realm_create(self, rd: int, params: int) -> None:
        self.call(RmiFid.REALM_CREATE, rd, params)

    def realm_activate(self, rd: int) -> None:
        self.call(RmiFid.REALM_ACTIVATE, rd)

    def realm_destroy(self, rd: int) -> None:
        self.call(RmiFid.REALM_DESTROY, rd)

    def rec_aux_count(self, rd: int) -> int:
        return self.call(RmiFid.REC_AUX_COUNT, rd)[1]

    def rec_create(self, rd: int, rec: int, params: int) -> None:
        self.call(RmiFid.REC_CREATE, rd, rec, params)

    def rec_destroy(self, rec: int) -> None:
        self.call(RmiFid.REC_DESTROY, rec)

    def rec_enter(self, rec: int, run: int) -> None:
        self.call(RmiFid.REC_ENTER, rec, run)

    def rtt_create(self, rd: int, rtt: int, ipa: int, level: int) -> None:
        self.call(RmiFid.RTT_CREATE, rd, rtt, ipa, level)

    def rtt_destroy(self, rd: int, ipa: int, level: int) -> tuple[int, int]:
        out = self.call(RmiFid.RTT_DESTROY, rd, ipa, level)
        return out[1], out[2]

    def rtt_fold(self, rd: int, ipa: int, level: int) -> int:
        return self.call(RmiFid.RTT_FOLD, rd, ipa, level)[1]

    def rtt_read_entry(self, rd: int, ipa: int, level: int) -> RttEntry:
        out = self.call(RmiFid.RTT_READ_ENTRY, rd, ipa, level)
        return RttEntry(s64(out[1]), out[2], out[3], out[4])

    def rtt_init_ripas(self, rd: int, base: int, top: int) -> int:
        return self.call(RmiFid.RTT_INIT_RIPAS, rd, base, top)[1]

    def rtt_set_ripas(self, rd: int, rec: int, base: int, top: int) -> int:
        return self.call(RmiFid.RTT_SET_RIPAS, rd, rec, base, top)[1]

    def rtt_map_unprotected(self, rd: int, ipa: int, level: int, desc: int) -> None:
        self.call(RmiFid.RTT_MAP_UNPROTECTED, rd, ipa, level, desc)

    def rtt_unmap_unprotected(self, rd: int, ipa: int, level: int) -> int:
        return self.call(RmiFid.RTT_UNMAP_UNPROTECTED, rd, ipa, level)[1]

    def data_create(self, rd: int, data: int, ipa: int, src: int, flags: int = 0) -> None:
        self.call(RmiFid.DATA_CREATE, rd, data, ipa, src, flags)

    def data_create_unknown(self, rd: int, data: int, ipa: int) -> None:
        self.call(RmiFid.DATA_CREATE_UNKNOWN, rd, data, ipa)

    def data_destroy(self, rd: int, ipa: int) -> tuple[int, int]:
        out = self.call(RmiFid.DATA_DESTROY, rd, ipa)
        return out[1], out[2]

    def psci_complete(self, calling_rec: int, target_rec: int, status: int) -> None:
        self.call(RmiFid.PSCI_COMPLETE, calling_rec, target_rec, status)
