"""The architectural GPT encoder, checked with an independent walker written
from the Arm ARM's GPT lookup (level 0 by PA[PPS-1:30], level 1 by
PA[29:16], GPI nibble by PA[15:12])."""

from __future__ import annotations

import pytest

from cosim.arch.gpt import GptEncoder, PasError, PasTable, pps_for
from cosim.arch.pas import Pas
from cosim.memory import GuestMemory

RAM = 0x4000_0000
GIB = 1 << 30


def walk(mem: GuestMemory, gpccr: int, gptbr: int, pa: int) -> int:
    """Return the GPI for `pa` as the hardware would find it."""
    pps = {0: 32, 1: 36, 2: 40}[gpccr & 7]
    assert gpccr >> 16 & 1, "GPC enabled"
    assert pa < 1 << pps
    l0 = mem.read_u64((gptbr << 12) + 8 * (pa >> 30))
    if l0 & 0xF == 0x1:
        return (l0 >> 4) & 0xF
    assert l0 & 0xF == 0x3, f"bad level-0 descriptor {l0:#x}"
    table = l0 & ~0xFFF
    assert table % (128 << 10) == 0, "level-1 tables are 128 KiB aligned"
    l1 = mem.read_u64(table + 8 * ((pa >> 16) & 0x3FFF))
    return (l1 >> (4 * ((pa >> 12) & 0xF))) & 0xF


@pytest.mark.parametrize("ram_size", [GIB, 3 * GIB // 2, 4 * GIB])
def test_encoding_tracks_every_change(ram_size: int) -> None:
    table = PasTable(RAM, ram_size)
    carve = RAM + ram_size - (16 << 20)
    mem = GuestMemory.anonymous(carve, 16 << 20)  # the tables live in the carve-out
    table.set(carve, Pas.ROOT, (16 << 20) >> 12)
    enc = GptEncoder(table, carve + 0x81000, (16 << 20) - 0x81000)
    enc.attach(mem)
    assert enc.gpccr & 7 == pps_for(RAM + ram_size)[0]
    probes = [RAM, RAM + 0x1000, RAM + 0x123000, carve - 0x1000]
    for pa in probes:
        assert walk(mem, enc.gpccr, enc.gptbr, pa) == 0x9, "Non-secure"
    assert walk(mem, enc.gpccr, enc.gptbr, carve) == 0xA, "Root"
    assert walk(mem, enc.gpccr, enc.gptbr, 0x0900_0000) == 0xF, "MMIO: all access"
    table.set(RAM + 0x123000, Pas.REALM)
    table.set(RAM + 0x124000, Pas.SECURE)
    assert walk(mem, enc.gpccr, enc.gptbr, RAM + 0x123000) == 0xB
    assert walk(mem, enc.gpccr, enc.gptbr, RAM + 0x124000) == 0x8
    assert walk(mem, enc.gpccr, enc.gptbr, RAM + 0x122000) == 0x9
    assert walk(mem, enc.gpccr, enc.gptbr, RAM + 0x125000) == 0x9
    table.set(RAM + 0x123000, Pas.NONSECURE)
    assert walk(mem, enc.gpccr, enc.gptbr, RAM + 0x123000) == 0x9


def test_pps_and_space_checks() -> None:
    assert pps_for(0x1_0000_0000) == (0, 32)
    assert pps_for(0x1_0000_1000) == (1, 36)
    table = PasTable(RAM, GIB)
    with pytest.raises(PasError, match="carve-out leaves"):
        GptEncoder(table, RAM + GIB - 0x1000, 0x1000)
