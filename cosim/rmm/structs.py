"""The RMI structures the host shares with the RMM, at the spec's byte offsets.

Each structure is a dataclass with a layout table (field name, byte offset,
encoding).  ``from_bytes``/``to_bytes`` convert a whole structure;
``unpack(memory, pa)``/``pack(memory, pa)`` read or write it in guest memory.
Unlisted bytes are reserved: read as nothing, written as zero.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from ..arch.aarch64 import NUM_GPRS
from ..arch.gicv3 import MAX_LIST_REGISTERS
from ..memory import GuestMemory
from .abi import MAX_REC_AUX_GRANULES

RPV_SIZE = 64
REC_PARAMS_GPRS = 8


@dataclass(frozen=True)
class Field:
    name: str
    offset: int
    fmt: str
    """struct format of one element: B, H, I, Q, q, or 64s."""
    count: int = 1

    @property
    def size(self) -> int:
        return struct.calcsize("<" + self.fmt) * self.count


class _Codec:
    """One field of a layout, compiled: its struct, offset and how to read it."""

    __slots__ = ("count", "mask", "name", "offset", "signed", "st", "text")

    def __init__(self, f: Field) -> None:
        self.name = f.name
        self.offset = f.offset
        self.count = f.count
        self.text = f.fmt == "64s"
        self.st = struct.Struct("<64s" if self.text else f"<{f.count}{f.fmt}")
        bits = struct.calcsize("<" + f.fmt) * 8 if not self.text else 0
        self.mask = (1 << bits) - 1
        self.signed = f.fmt == "q"


class _Whole:
    """A whole layout compiled into one struct.Struct (reserved bytes as
    padding, up to SIZE): one pack or unpack call per structure."""

    __slots__ = ("fields", "st")

    def __init__(self, codecs: tuple[_Codec, ...], size: int) -> None:
        fmt, at = ["<"], 0
        for c in sorted(codecs, key=lambda c: c.offset):
            if c.offset > at:
                fmt.append(f"{c.offset - at}x")
            fmt.append(c.st.format.lstrip("<"))
            at = c.offset + c.st.size
        if size > at:
            fmt.append(f"{size - at}x")
        self.st = struct.Struct("".join(fmt))
        self.fields = tuple((c.name, c.count) for c in sorted(codecs, key=lambda c: c.offset))

    def values(self, data: tuple[Any, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        i = 0
        for name, count in self.fields:
            if count > 1:
                out[name] = list(data[i : i + count])
                i += count
            else:
                out[name] = data[i]
                i += 1
        return out

    def flat(self, obj: object) -> list[Any]:
        """The structure's values in layout order; a list shorter or longer
        than its field is padded with zeros or cut, as to_bytes does."""
        out: list[Any] = []
        for name, count in self.fields:
            value = getattr(obj, name)
            if count > 1:
                if len(value) != count:
                    value = [*value[:count], *[0] * (count - len(value))]
                out.extend(value)
            else:
                out.append(value)
        return out


class AbiStruct:
    """Base of the ABI dataclasses: layout-driven (de)serialisation."""

    SIZE: ClassVar[int]
    LAYOUT: ClassVar[tuple[Field, ...]]

    @classmethod
    def _codecs(cls) -> tuple[_Codec, ...]:
        codecs: tuple[_Codec, ...] | None = cls.__dict__.get("_CODECS")
        if codecs is None:
            codecs = tuple(_Codec(f) for f in cls.LAYOUT)
            cls._CODECS = codecs  # type: ignore[attr-defined]
        return codecs

    @classmethod
    def _whole(cls) -> _Whole:
        whole: _Whole | None = cls.__dict__.get("_WHOLE")
        if whole is None:
            whole = _Whole(cls._codecs(), cls.SIZE)
            cls._WHOLE = whole  # type: ignore[attr-defined]
        return whole

    @classmethod
    def offset_of(cls, name: str) -> int:
        for f in cls.LAYOUT:
            if f.name == name:
                return f.offset
        raise KeyError(name)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Self:
        if len(data) < cls.SIZE:
            raise ValueError(f"{cls.__name__} needs {cls.SIZE:#x} bytes, got {len(data):#x}")
        whole = cls._whole()
        return cls(**whole.values(whole.st.unpack_from(data, 0)))

    def to_bytes(self, only: tuple[str, ...] | None = None) -> bytes:
        """The structure's bytes (reserved bytes zero); with `only`, just those
        fields (the others zero)."""
        if only is None:
            whole = self._whole()
            try:
                return whole.st.pack(*whole.flat(self))
            except struct.error:
                pass  # a value out of its field's range: mask it, field by field
        buf = bytearray(self.SIZE)
        for c in self._codecs():
            if only is not None and c.name not in only:
                continue
            value = getattr(self, c.name)
            if c.count > 1:
                vals = [v & c.mask for v in value[: c.count]]
                vals += [0] * (c.count - len(vals))
                c.st.pack_into(buf, c.offset, *vals)
            elif c.text:
                c.st.pack_into(buf, c.offset, bytes(value))
            else:
                value &= c.mask
                if c.signed and value >> 63:
                    value -= 1 << 64
                c.st.pack_into(buf, c.offset, value)
        return bytes(buf)

    @classmethod
    def unpack(cls, memory: GuestMemory, pa: int) -> Self:
        whole = cls._whole()
        return cls(**whole.values(memory.unpack_from(whole.st, pa)))

    def pack(self, memory: GuestMemory, pa: int) -> None:
        """Write the structure straight into guest memory (one pack call)."""
        whole = self._whole()
        try:
            memory.pack_into(whole.st, pa, *whole.flat(self))
        except struct.error:
            memory.write(pa, self.to_bytes())


@dataclass
class RmiRealmParams(AbiStruct):
    """RMI_REALM_CREATE parameters (one 4 KiB granule of NS memory)."""

    flags: int = 0
    s2sz: int = 0
    sve_vl: int = 0
    num_bps: int = 0
    num_wps: int = 0
    pmu_num_ctrs: int = 0
    hash_algo: int = 0
    rpv: bytes = bytes(RPV_SIZE)
    vmid: int = 0
    rtt_base: int = 0
    rtt_level_start: int = 0
    rtt_num_start: int = 0

    SIZE = 0x1000
    LAYOUT = (
        Field("flags", 0x000, "Q"),
        Field("s2sz", 0x008, "B"),
        Field("sve_vl", 0x010, "B"),
        Field("num_bps", 0x018, "B"),
        Field("num_wps", 0x020, "B"),
        Field("pmu_num_ctrs", 0x028, "B"),
        Field("hash_algo", 0x030, "B"),
        Field("rpv", 0x400, "64s"),
        Field("vmid", 0x800, "H"),
        Field("rtt_base", 0x808, "Q"),
        Field("rtt_level_start", 0x810, "q"),
        Field("rtt_num_start", 0x818, "I"),
    )
    MEASURED: ClassVar[tuple[str, ...]] = (
        "flags",
        "s2sz",
        "sve_vl",
        "num_bps",
        "num_wps",
        "pmu_num_ctrs",
        "hash_algo",
    )

    def measured_bytes(self) -> bytes:
        """The structure with only the measured fields kept (RIM initialisation)."""
        return self.to_bytes(self.MEASURED)


@dataclass
class RmiRecParams(AbiStruct):
    """RMI_REC_CREATE parameters (one 4 KiB granule of NS memory)."""

    flags: int = 0
    mpidr: int = 0
    pc: int = 0
    gprs: list[int] = field(default_factory=lambda: [0] * REC_PARAMS_GPRS)
    num_aux: int = 0
    aux: list[int] = field(default_factory=lambda: [0] * MAX_REC_AUX_GRANULES)

    SIZE = 0x1000
    LAYOUT = (
        Field("flags", 0x000, "Q"),
        Field("mpidr", 0x100, "Q"),
        Field("pc", 0x200, "Q"),
        Field("gprs", 0x300, "Q", REC_PARAMS_GPRS),
        Field("num_aux", 0x800, "Q"),
        Field("aux", 0x808, "Q", MAX_REC_AUX_GRANULES),
    )
    MEASURED: ClassVar[tuple[str, ...]] = ("flags", "pc", "gprs")

    def measured_bytes(self) -> bytes:
        """The structure with mpidr, num_aux and aux[] zeroed (REC measurement)."""
        return self.to_bytes(self.MEASURED)


@dataclass
class RmiRecEnter(AbiStruct):
    """Host -> RMM half of RmiRecRun (offset 0x000)."""

    flags: int = 0
    gprs: list[int] = field(default_factory=lambda: [0] * NUM_GPRS)
    gicv3_hcr: int = 0
    gicv3_lrs: list[int] = field(default_factory=lambda: [0] * MAX_LIST_REGISTERS)

    SIZE = 0x800
    LAYOUT = (
        Field("flags", 0x000, "Q"),
        Field("gprs", 0x200, "Q", NUM_GPRS),
        Field("gicv3_hcr", 0x300, "Q"),
        Field("gicv3_lrs", 0x308, "Q", MAX_LIST_REGISTERS),
    )


@dataclass
class RmiRecExit(AbiStruct):
    """RMM -> host half of RmiRecRun (offset 0x800); offsets here are relative to it."""

    exit_reason: int = 0
    esr: int = 0
    far: int = 0
    hpfar: int = 0
    gprs: list[int] = field(default_factory=lambda: [0] * NUM_GPRS)
    gicv3_hcr: int = 0
    gicv3_lrs: list[int] = field(default_factory=lambda: [0] * MAX_LIST_REGISTERS)
    gicv3_misr: int = 0
    gicv3_vmcr: int = 0
    cntp_ctl: int = 0
    cntp_cval: int = 0
    cntv_ctl: int = 0
    cntv_cval: int = 0
    ripas_base: int = 0
    ripas_top: int = 0
    ripas_value: int = 0
    imm: int = 0
    pmu_ovf_status: int = 0

    SIZE = 0x800
    LAYOUT = (
        Field("exit_reason", 0x000, "B"),
        Field("esr", 0x100, "Q"),
        Field("far", 0x108, "Q"),
        Field("hpfar", 0x110, "Q"),
        Field("gprs", 0x200, "Q", NUM_GPRS),
        Field("gicv3_hcr", 0x300, "Q"),
        Field("gicv3_lrs", 0x308, "Q", MAX_LIST_REGISTERS),
        Field("gicv3_misr", 0x388, "Q"),
        Field("gicv3_vmcr", 0x390, "Q"),
        Field("cntp_ctl", 0x400, "Q"),
        Field("cntp_cval", 0x408, "Q"),
        Field("cntv_ctl", 0x410, "Q"),
        Field("cntv_cval", 0x418, "Q"),
        Field("ripas_base", 0x500, "Q"),
        Field("ripas_top", 0x508, "Q"),
        Field("ripas_value", 0x510, "B"),
        Field("imm", 0x600, "H"),
        Field("pmu_ovf_status", 0x700, "B"),
    )


@dataclass
class RmiRecRun:
    """RMI_REC_ENTER run_ptr granule: RmiRecEnter at 0x000, RmiRecExit at 0x800."""

    enter: RmiRecEnter = field(default_factory=RmiRecEnter)
    exit: RmiRecExit = field(default_factory=RmiRecExit)

    SIZE: ClassVar[int] = 0x1000
    ENTER_OFFSET: ClassVar[int] = 0x000
    EXIT_OFFSET: ClassVar[int] = 0x800

    @classmethod
    def unpack(cls, memory: GuestMemory, pa: int) -> RmiRecRun:
        return cls(
            RmiRecEnter.unpack(memory, pa + cls.ENTER_OFFSET),
            RmiRecExit.unpack(memory, pa + cls.EXIT_OFFSET),
        )

    def pack(self, memory: GuestMemory, pa: int) -> None:
        self.enter.pack(memory, pa + self.ENTER_OFFSET)
        self.exit.pack(memory, pa + self.EXIT_OFFSET)

    @classmethod
    def read_enter(cls, memory: GuestMemory, pa: int) -> RmiRecEnter:
        return RmiRecEnter.unpack(memory, pa + cls.ENTER_OFFSET)

    @classmethod
    def write_exit(cls, memory: GuestMemory, pa: int, rec_exit: RmiRecExit) -> None:
        """Write the whole exit half (reserved bytes zero), as the RMM does on every exit."""
        rec_exit.pack(memory, pa + cls.EXIT_OFFSET)


# -- RSI structures (in realm memory) ------------------------------------------------------


@dataclass
class RsiRealmConfig(AbiStruct):
    """RSI_REALM_CONFIG output: one 4 KiB granule of realm memory."""

    ipa_width: int = 0
    hash_algo: int = 0
    rpv: bytes = bytes(RPV_SIZE)

    SIZE = 0x1000
    LAYOUT = (
        Field("ipa_width", 0x000, "Q"),
        Field("hash_algo", 0x008, "B"),
        Field("rpv", 0x200, "64s"),
    )


@dataclass
class RsiHostCall(AbiStruct):
    """RSI_HOST_CALL argument/result block (256 bytes of realm memory)."""

    imm: int = 0
    gprs: list[int] = field(default_factory=lambda: [0] * NUM_GPRS)

    SIZE = 0x100
    LAYOUT = (
        Field("imm", 0x000, "H"),
        Field("gprs", 0x008, "Q", NUM_GPRS),
    )
    GPRS_OFFSET: ClassVar[int] = 0x008
