"""The pure parts of cosim.gdb: RSP framing, CCA event syntax and matching,
the `cca` commands over a fake platform view, and the command-line options."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from cosim import cli
from cosim.arch.pas import Pas
from cosim.gdb import commands, rsp
from cosim.gdb.events import (
    EventError,
    EventSpec,
    Occurrence,
    exit_reason,
    matches,
    parse_event,
)
from cosim.rmm.abi import RsiFid

# -- RSP ------------------------------------------------------------------------------


def test_frame_escapes_and_checksums() -> None:
    assert rsp.frame("OK") == b"$OK#9a"
    framed = rsp.frame("a#b$c}d*e")
    assert b"#b" not in framed[:-3] and framed.startswith(b"$a}")
    [item] = rsp.Parser().feed(framed)
    assert item == rsp.Item("packet", "a#b$c}d*e")


def test_parser_splits_acks_interrupts_and_packets_across_reads() -> None:
    p = rsp.Parser()
    data = b"+" + rsp.frame("vCont;c") + b"\x03" + rsp.frame("T05thread:p01.02;")
    items = p.feed(data[:7]) + p.feed(data[7:])
    assert [i.kind for i in items] == ["ack", "packet", "interrupt", "packet"]
    assert items[3].data == "T05thread:p01.02;"


def test_parser_naks_a_corrupted_packet() -> None:
    assert rsp.Parser().feed(b"$OK#00") == [rsp.Item("nak")]


def test_run_length_encoding_is_expanded() -> None:
    assert rsp.unescape(b"0* ") == b"0000"  # ' ' is 32: 3 more repeats


def test_stop_replies_threads_and_registers() -> None:
    assert rsp.is_stop_reply("T05thread:p01.02;") and not rsp.is_stop_reply("OK")
    assert rsp.is_resume("vCont;c:p1.-1") and rsp.is_resume("c") and not rsp.is_resume("qC")
    assert rsp.stop_thread("T05thread:p01.02;") == "p01.02"
    assert rsp.thread_cpu("p01.02") == 1 and rsp.thread_cpu("3") == 2
    assert rsp.le_hex_to_int("8000204000000000") == 0x40200080
    assert rsp.unhex_text(rsp.hex_text("cca realms")) == "cca realms"


# -- events ----------------------------------------------------------------------------


@pytest.mark.parametrize("text, spec", [
    ("gpt", EventSpec("gpt", text="gpt")),
    ("rmi:DATA_CREATE", EventSpec("rmi", "RMI_DATA_CREATE", text="rmi:DATA_CREATE")),
    ("RMI:rmi_data_create@2", EventSpec("rmi", "RMI_DATA_CREATE", 2,
                                         text="RMI:rmi_data_create@2")),
    ("rsi:host_call", EventSpec("rsi", "RSI_HOST_CALL", text="rsi:host_call")),
    ("enter@1.0", EventSpec("enter", None, 1, 0, text="enter@1.0")),
    ("exit:ripas_change@1", EventSpec("exit", "ripas_change", 1, text="exit:ripas_change@1")),
])
def test_event_syntax(text: str, spec: EventSpec) -> None:
    assert parse_event(text) == spec


@pytest.mark.parametrize("text, message", [
    ("", "empty event"),
    ("bogus", "unknown event 'bogus'"),
    ("rmi", "name the command"),
    ("rmi:NOPE", "no RMI command 'NOPE'"),
    ("exit:mmio", "unknown exit reason 'mmio'"),
    ("gpt@1", "gpt takes no @REALM"),
    ("rmi:VERSION@1.0", "a REC can only be given"),
    ("enter@x", "is not REALM"),
    ("gpt:1", "gpt takes no"),
])
def test_bad_events_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(EventError, match=message):
        parse_event(text)


def test_matching_filters_by_name_realm_and_rec() -> None:
    occ = Occurrence("exit", cpu=1, pc=0x1000, name="host_call", realm=2, rec=1)
    assert matches(parse_event("exit"), occ)
    assert matches(parse_event("exit@2.1"), occ)
    assert matches(parse_event("exit:host_call@2"), occ)
    assert not matches(parse_event("exit:irq"), occ)
    assert not matches(parse_event("exit@2.0"), occ)
    assert not matches(parse_event("enter@2"), occ)
    assert "realm 2 REC 1" in occ.describe() and "PC 0x1000" in occ.describe()


def test_exit_reasons_come_from_the_trap() -> None:
    smc = 0x17 << 26
    assert exit_reason("IRQ", 0, 0) == "irq"
    assert exit_reason("SYNC", smc, RsiFid.HOST_CALL) == "host_call"
    assert exit_reason("SYNC", smc, RsiFid.IPA_STATE_SET) == "ripas_change"
    assert exit_reason("SYNC", smc, 0x84000008) == "psci"  # SYSTEM_OFF
    assert exit_reason("SYNC", smc, RsiFid.VERSION) == "rsi"
    assert exit_reason("SYNC", 0x24 << 26, 0) == "sync"  # a data abort


# -- cca commands --------------------------------------------------------------------


@dataclass
class FakeView:
    rmm: Any = None
    specs: list[EventSpec] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)

    def ram_range(self) -> tuple[int, int]:
        return 0x4000_0000, 0x8000_0000

    def pas_of(self, pa: int) -> Pas:
        return Pas.REALM

    def describe_granule(self, pa: int) -> str:
        return "DELEGATED"

    def events(self, last: int) -> list[dict[str, Any]]:
        return self.log[-last:]

    def granule_history(self, pa: int, last: int) -> list[dict[str, Any]]:
        return [{"t": 1.5, "cmd": "RMI_GRANULE_DELEGATE", "old": "UNDELEGATED",
                 "new": "DELEGATED"}]

    def cpus(self) -> int:
        return 2

    def cpu_state(self, cpu: int) -> tuple[int, int]:
        return (0x40200080, 2) if cpu == 0 else (0x1000, 3)

    def running_rec(self, cpu: int) -> Any:
        return None

    def breaks(self) -> list[EventSpec]:
        return list(self.specs)

    def add_break(self, spec: EventSpec) -> None:
        self.specs.append(spec)

    def delete_break(self, index: int | None) -> int:
        n = len(self.specs) if index is None else 1
        if index is None:
            self.specs.clear()
        else:
            del self.specs[index - 1]
        return n

    def last_stop(self) -> str | None:
        return None


class _NoRealms:
    realms: dict[int, Any] = {}

    def granules(self) -> dict[int, Any]:
        return {}


def ask(view: FakeView, text: str) -> dict[str, Any]:
    return json.loads(commands.answer(view, text))


def test_granule_reports_pas_state_and_history() -> None:
    reply = ask(FakeView(rmm=_NoRealms()), "granule 0x40100010")
    assert reply["ok"]
    assert reply["text"].splitlines()[:2] == ["granule 0x40100000: Realm PAS",
                                              "  RMM state: DELEGATED"]
    assert "RMI_GRANULE_DELEGATE: UNDELEGATED -> DELEGATED" in reply["text"]


@pytest.mark.parametrize("text, error", [
    ("granule 0x1000", "0x1000 is outside guest RAM [0x40000000, 0x80000000)"),
    ("granule", "usage: cca granule ADDR"),
    ("granule zz", "'zz' is not a physical address"),
    ("rtt 3 0x1000", "no realm 3 (live realms: none yet)"),
    ("rtt 1", "usage: cca rtt REALM IPA"),
    ("trace 0", "count must be 1..10000"),
    ("break what", "unknown event 'what'"),
    ("delete 4", "no CCA event breakpoint 4"),
    ("teleport", "unknown cca command 'teleport'"),
])
def test_mistakes_are_one_line_errors(text: str, error: str) -> None:
    reply = ask(FakeView(rmm=_NoRealms()), text)
    assert reply == {"ok": False, "error": reply["error"]}
    assert error in reply["error"] and "\n" not in reply["error"]


def test_world_break_and_delete() -> None:
    view = FakeView(rmm=_NoRealms())
    assert ask(view, "world")["text"].splitlines() == [
        "CPU 0: Non-secure EL2, PC 0x40200080", "CPU 1: Root (EL3 monitor), PC 0x1000"]
    assert ask(view, "break rmi:DATA_CREATE@1")["text"] == \
        "CCA event breakpoint 1: rmi:DATA_CREATE@1"
    assert ask(view, "break")["text"] == "1: rmi:DATA_CREATE@1"
    assert ask(view, "delete 1")["ok"] and view.specs == []
    assert "cca granule ADDR" in ask(view, "help")["text"]


def test_trace_prints_the_last_events() -> None:
    view = FakeView(log=[{"t": float(i), "kind": "rmi", "name": f"C{i}", "cpu": 0}
                         for i in range(30)])
    lines = ask(view, "trace 3")["text"].splitlines()
    assert len(lines) == 3 and "name=C29" in lines[-1]
    assert len(ask(view, "trace")["text"].splitlines()) == commands.TRACE_DEFAULT


# -- command line --------------------------------------------------------------------


def test_a_bad_break_on_is_a_usage_error(capsys) -> None:
    assert cli.main(["demo", "--break-on", "rmi:BOGUS"]) == 2
    err = capsys.readouterr().err
    assert "no RMI command 'BOGUS'" in err and len(err.strip().splitlines()) == 1


def test_debug_options_are_on_every_command() -> None:
    parser = cli.build_parser()
    for argv in (["run", "--gdb"], ["demo", "--gdb-attach"],
                 ["realm", "run", "--gdb", "--vmlinux", "vmlinux", "--break-on", "gpt"]):
        args = parser.parse_args(argv)
        assert args.gdb or args.gdb_attach


# -- stage 1, kallsyms, symbol ELF ---------------------------------------------------------


def test_stage1_walk_48_bit_4k() -> None:
    from cosim.gdb.stage1 import translate

    va = 0xFFFF_8000_8270_0BC8
    l0, l1, l2, l3, page = 0x1000, 0x2000, 0x3000, 0x4000, 0x8270_0000
    mem = {
        l0 + 8 * ((va >> 39) & 0x1FF): l1 | 3,
        l1 + 8 * ((va >> 30) & 0x1FF): l2 | 3,
        l2 + 8 * ((va >> 21) & 0x1FF): l3 | 3,
        l3 + 8 * ((va >> 12) & 0x1FF): page | 0x403,
    }
    tcr = (16 << 16) | (0b10 << 30) | 16  # T1SZ = T0SZ = 16, TG1 4K
    walk = translate(va, 1, tcr, 0, l0, lambda a: mem.get(a, 0))
    assert walk.ipa == 0x8270_0BC8
    assert "start level 0" in walk.steps[0] and "page at IPA 0x82700000" in walk.steps[-1]
    walk = translate(va + 0x1000, 1, tcr, 0, l0, lambda a: mem.get(a, 0))
    assert walk.ipa is None and "invalid" in walk.steps[-1]
    assert translate(0x1234, 0, tcr, 0, 0, lambda a: 0).ipa == 0x1234  # MMU off


def _fake_kallsyms(symbols: list[tuple[int, str]], base: int) -> bytes:
    """An Image-like blob laid out as scripts/kallsyms.c does, one byte per token."""
    import struct

    chars = sorted({c for _, name in symbols for c in name} | set("0123456789"))
    tokens = [c.encode() for c in chars]
    tokens += [f"~{i}".encode() for i in range(256 - len(tokens))]
    tokens.sort(key=lambda t: (len(t) > 1, t))  # the digits stay in a row
    number = {t: i for i, t in enumerate(tokens)}
    names = b"".join(bytes([len(n)]) + bytes(number[c.encode()] for c in n) for _, n in symbols)
    blob = bytearray(b"\xaa" * 64)
    blob += struct.pack("<I", len(symbols)) + names
    blob += bytes(-len(blob) % 4)
    blob += struct.pack("<I", 0)  # one marker: symbol 0 at offset 0
    table_at = len(blob)
    index = []
    for t in tokens:
        index.append(len(blob) - table_at)
        blob += t + b"\0"
    blob += bytes(-len(blob) % 4)
    blob += struct.pack("<256H", *index)
    offsets_at = (len(blob) + 3) & ~3
    blob += bytes(offsets_at - len(blob))
    for i, (addr, _) in enumerate(symbols):
        blob += struct.pack("<i", (addr - base) - (offsets_at + 4 * i))
    return bytes(blob)


def test_kallsyms_tables_are_found_and_decoded() -> None:
    from cosim.gdb.kallsyms import KallsymsError, read_kallsyms, system_map

    base = 0xFFFF_8000_8000_0000
    syms = [(base, "T_text"), (base + 0x10000, "Tstart_kernel"), (base + 0x20000, "dsome_data")]
    found = read_kallsyms(_fake_kallsyms(syms, base), base)
    assert [(s.address, s.kind + s.name) for s in found] == syms
    assert system_map(found).splitlines()[1] == "ffff800080010000 T start_kernel"
    with pytest.raises(KallsymsError, match="no kallsyms token table"):
        read_kallsyms(bytes(4096))


def test_symbol_elf_round_trips_through_pyelftools(tmp_path) -> None:
    from cosim.gdb.elf import elf_facts, write_symbol_elf
    from cosim.gdb.kallsyms import KernelSymbol

    path = tmp_path / "k.elf"
    write_symbol_elf([KernelSymbol(0xFFFF_8000_8000_0000, "T", "_text"),
                      KernelSymbol(0xFFFF_8000_8270_0BC8, "T", "start_kernel"),
                      KernelSymbol(0xFFFF_8000_8300_0000, "b", "a_local")], path)
    facts = elf_facts(path)
    assert facts.address("start_kernel") == 0xFFFF_8000_8270_0BC8
    assert facts.address("a_local") == 0xFFFF_8000_8300_0000
    with pytest.raises(KeyError):
        facts.address("missing")


# -- the event gate: send back, stop, then handle exactly once -------------------------


class FakeMailbox:
    def __init__(self, fid: int, elr: int) -> None:
        self.fields = {"elr": elr, "action": -1}
        self.args = (fid, 0x4400_0000, 0, 0, 0, 0)

    def get(self, name: str) -> int:
        return self.fields[name]

    def put(self, name: str, value: int) -> None:
        self.fields[name] = value

    def set_action(self, action: int, flags: int = 0) -> None:
        self.fields["action"] = action

    def smc_args(self) -> tuple[int, ...]:
        return self.args


class FakeProxy:
    def __init__(self) -> None:
        self.catches: list[Any] = []

    def catch(self, c: Any) -> None:
        self.catches.append(c)


class FakeRmm:
    def realm_at(self, pa: int) -> None:
        return None

    def rec_at(self, pa: int) -> None:
        return None


def test_a_matching_smc_is_sent_back_until_caught_then_handled_once() -> None:
    from cosim.gdb.debugger import Debugger
    from cosim.monitor import layout as L
    from cosim.rmm.abi import RmiFid

    dbg = Debugger(break_on=[parse_event("rmi:DATA_CREATE")])
    dbg.platform = type("P", (), {"rmm": FakeRmm(), "world": None})()
    proxy = FakeProxy()
    dbg.proxy = proxy  # type: ignore[assignment]
    smc = int(L.Reason.SMC)
    other = FakeMailbox(RmiFid.DATA_DESTROY, 0x4020_0084)
    assert not dbg.gate(0, other, smc), "not an event asked for: handled"
    mb = FakeMailbox(RmiFid.DATA_CREATE, 0x4020_0084)
    assert dbg.gate(0, mb, smc)
    assert mb.fields == {"elr": 0x4020_0080, "action": L.Action.RETURN}, "back to the SMC"
    [c] = proxy.catches
    assert (c.cpu, c.pc) == (0, 0x4020_0080) and "RMI_DATA_CREATE" in c.description
    again = FakeMailbox(RmiFid.DATA_CREATE, 0x4020_0084)
    assert dbg.gate(0, again, smc), "executed again before the stop: sent back again"
    assert len(proxy.catches) == 1
    elsewhere = FakeMailbox(RmiFid.DATA_CREATE, 0x4020_0104)
    assert not dbg.gate(0, elsewhere, smc), "something else first: handled, the catch stays"
    assert dbg.gate(0, FakeMailbox(RmiFid.DATA_CREATE, 0x4020_0084), smc)
    dbg._caught(c)
    assert dbg.last_stop() is not None and dbg.last_stop() is None, "reported once"
    after = FakeMailbox(RmiFid.DATA_CREATE, 0x4020_0084)
    assert not dbg.gate(0, after, smc), "after continue: the SMC is handled"
    assert after.fields["elr"] == 0x4020_0084
    assert dbg.gate(0, FakeMailbox(RmiFid.DATA_CREATE, 0x4020_0084), smc), "the next one stops"
    dbg._session_end()
    assert not dbg.gate(0, FakeMailbox(RmiFid.DATA_CREATE, 0x4020_0084), smc), \
        "gdb gone: nothing stops any more"


def test_kernel_symbols_prefer_vmlinux_and_reject_a_non_elf(tmp_path) -> None:
    from cosim.config import ConfigError
    from cosim.gdb.options import kernel_symbols

    bad = tmp_path / "vmlinux"
    bad.write_text("not an ELF")
    with pytest.raises(ConfigError, match="is not an ELF file"):
        kernel_symbols(bad, None, b"", print)
    warnings: list[str] = []
    files, symbols = kernel_symbols(None, None, bytes(4096), warnings.append)
    assert files == [] and symbols is None
    assert "no symbols for the realm kernel" in warnings[0] and "--vmlinux" in warnings[0]
    smap = tmp_path / "System.map"
    smap.write_text("ffff800080000000 T _text\nffff800082700bc8 T start_kernel\n")
    _, symbols = kernel_symbols(None, smap, b"", print)
    assert symbols is not None and symbols[1].name == "start_kernel"


def test_gdb_is_refused_with_a_users_firmware(capsys, tmp_path) -> None:
    flash = tmp_path / "flash.bin"
    flash.write_bytes(bytes(64))
    assert cli.main(["run", "--gdb", "--firmware", str(flash)]) == 2
    assert "not with --firmware" in capsys.readouterr().err
