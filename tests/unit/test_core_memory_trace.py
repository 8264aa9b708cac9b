"""GuestMemory, the trace stream and the PAS table."""

from __future__ import annotations

import io
import json

import pytest

from cosim.arch.gpt import PasError, PasTable
from cosim.arch.pas import Pas
from cosim.memory import GuestMemory, GuestMemoryError
from cosim.trace import Trace, read_jsonl

BASE = 0x4000_0000


def test_memory_little_endian_round_trips() -> None:
    m = GuestMemory.anonymous(BASE, 0x2000)
    m.write_u64(BASE + 8, 0x0102030405060708)
    assert m.read(BASE + 8, 8) == bytes([8, 7, 6, 5, 4, 3, 2, 1])
    assert m.read_u32(BASE + 8) == 0x05060708
    assert m.read_u16(BASE + 14) == 0x0102
    m.write_u64s(BASE + 0x100, [1, 2, -1])
    assert m.read_u64s(BASE + 0x100, 3) == (1, 2, 2**64 - 1)
    m.write_uint(BASE + 0x200, 3, 0xABCDEF)
    assert m.read_uint(BASE + 0x200, 3) == 0xABCDEF
    m.copy(BASE + 0x1000, BASE + 8, 8)
    assert m.read_u64(BASE + 0x1000) == 0x0102030405060708
    m.zero(BASE, 0x2000)
    assert m.is_zero(BASE, 0x2000)


@pytest.mark.parametrize("pa, n", [(BASE - 1, 1), (BASE + 0x1FFF, 2), (BASE + 0x2000, 1),
                                   (0, 8)])
def test_memory_bounds_are_checked_with_the_address(pa: int, n: int) -> None:
    m = GuestMemory.anonymous(BASE, 0x2000)
    with pytest.raises(GuestMemoryError, match=f"{pa:#x}"):
        m.read(pa, n)
    assert not m.contains(pa, n)


def test_trace_history_sinks_and_jsonl() -> None:
    t = Trace(history=3)
    seen: list[dict] = []
    unsubscribe = t.subscribe(seen.append)
    out = io.StringIO()
    t.write_to(out)
    for i in range(5):
        t.emit("rmi", name="RMI_VERSION", i=i)
    unsubscribe()
    t.emit("gpt", pa=1)
    assert [e["i"] for e in t.history("rmi")] == [3, 4]
    assert len(seen) == 5
    events = list(read_jsonl(out.getvalue().splitlines()))
    assert len(events) == 6 and events[-1]["kind"] == "gpt"
    assert all("t" in e for e in events)
    json.dumps(events)
    dumped = io.StringIO()
    assert t.dump(dumped) == 3
    assert list(read_jsonl(dumped.getvalue().splitlines())) == t.history()


def test_trace_without_history_records_nothing() -> None:
    t = Trace(history=0)
    assert not t.active
    assert t.emit("x") is None


def test_pas_table_changes_and_listeners() -> None:
    table = PasTable(BASE, 0x10000)
    changes = []
    table.add_listener(lambda pa, n, pas: changes.append((pa, n, pas)))
    assert table.get(BASE + 0x1234) == Pas.NONSECURE
    g0 = table.generation
    table.set(BASE + 0x2000, Pas.REALM, 2)
    assert table.get(BASE + 0x2FFF) == Pas.REALM and table.get(BASE + 0x4000) == Pas.NONSECURE
    assert table.generation == g0 + 1
    assert changes == [(BASE + 0x2000, 2, Pas.REALM)]
    assert table.runs() == [(BASE, 2, Pas.NONSECURE), (BASE + 0x2000, 2, Pas.REALM),
                            (BASE + 0x4000, 12, Pas.NONSECURE)]
    with pytest.raises(PasError, match="outside"):
        table.get(BASE + 0x10000)
    with pytest.raises(PasError, match="exceed"):
        table.set(BASE + 0xF000, Pas.ROOT, 2)
