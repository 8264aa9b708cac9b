"""The shared layouts: Python == generated header == the built binaries."""

from __future__ import annotations

from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from cosim.config import REPO_ROOT
from cosim.machine import plugin_protocol as P
from cosim.monitor import headers
from cosim.monitor import layout as L

BUILT_HEADER = REPO_ROOT / "build" / "include" / "cosim_layout.h"
ELVES = [REPO_ROOT / "images" / "build" / "monitor.elf",
         REPO_ROOT / "images" / "build" / "hoststub.elf",
         REPO_ROOT / "images" / "build" / "hoststub-bl33.elf"]


def elf_symbols(path: Path) -> dict[str, int]:
    if not path.exists():
        pytest.fail(f"{path} is not built: run ci/install.sh (or make -C images)")
    with path.open("rb") as f:
        elf = ELFFile(f)
        table = elf.get_section_by_name(".symtab")
        return {s.name: s["st_value"] for s in table.iter_symbols() if s.name}


def test_generated_header_is_what_python_renders() -> None:
    assert BUILT_HEADER.exists(), "run make -C images to generate the header"
    assert BUILT_HEADER.read_text() == headers.render(), \
        "build/include/cosim_layout.h is stale: rebuild images/ and qemu_plugin/"


@pytest.mark.parametrize("elf", ELVES, ids=lambda p: p.name)
def test_binaries_were_built_with_the_python_layout(elf: Path) -> None:
    syms = elf_symbols(elf)
    consts = headers.constants()
    assert consts, "the header defines constants"
    for name, value in consts.items():
        sym = headers.SYMBOL_PREFIX + name
        assert sym in syms, f"{elf.name} lacks {sym}"
        assert syms[sym] == value, f"{elf.name}: {name} is {syms[sym]:#x}, Python says {value:#x}"


def test_header_constants_match_python_objects() -> None:
    c = headers.constants()
    assert c["MBOX_X_OFF"] == L.MAILBOX["x"]
    assert c["MBOX_SIZE"] == L.MAILBOX.size
    assert c["PCPU_SIZE"] == L.PERCPU_SIZE
    assert c["BOOT_CARVEOUT_BASE_OFF"] == L.BOOT_CONFIG["carveout_base"]
    assert c["STUB_RET_OFF"] == L.STUB_REQUEST["ret"]
    assert c["COSIM_DOORBELL_INSN"] == P.DOORBELL_INSN == 0xD5032FBF
    assert c["REASON_SMC"] == L.Reason.SMC
    assert c["ACTION_ENTER_REALM"] == L.Action.ENTER_REALM


def test_monitor_places_boot_config_where_python_patches_it() -> None:
    syms = elf_symbols(ELVES[0])
    assert syms["boot_config"] == L.BOOT_CONFIG_OFFSET
    assert syms["el3_vectors"] % 0x800 == 0


def test_layouts_fit_their_areas() -> None:
    assert L.MAILBOX.used <= L.MAILBOX.size
    assert L.PERCPU["stack"] >= L.MAILBOX.size
    assert L.PERCPU_STACK_TOP <= L.PERCPU["ns_ctx"]
    assert L.PERCPU.used <= L.PERCPU_SIZE
    assert L.CARVEOUT_HEADER.used <= L.CARVEOUT_HEADER_SIZE
    assert L.STUB_REQUEST.used <= L.STUB_REQUEST.size
    assert P.REQUEST.size == 48 and P.REPLY.size == 16


def test_layout_rejects_overlaps() -> None:
    with pytest.raises(ValueError, match="more than its size"):
        L.Layout("X", [L.Field("a", 8, 4)], size=16)
    with pytest.raises(ValueError, match="overlaps"):
        L.Layout("X", [L.Field("a", 8, 4), L.Field("b")], at={"b": 8})


def test_hint_encodings() -> None:
    assert P.hint_encoding(0) == 0xD503201F  # NOP
    assert P.hint_encoding(1) == 0xD503203F  # YIELD
    assert P.WORLD_MARK_INSN_BASE == P.hint_encoding(0x78)


@pytest.mark.parametrize("name, base, channel", [
    ("hoststub", None, L.StubChannel.SIP),
    ("hoststub-bl33", L.FIRMWARE_BL33_BASE, L.StubChannel.POLL),
])
def test_hoststub_images_carry_their_header(name: str, base: int | None,
                                            channel: L.StubChannel) -> None:
    """The header Python reads from the image file names the channel the image
    starts with and the poll area the linker placed."""
    from cosim.host.poll_channel import stub_header
    from cosim.machine import board

    syms = elf_symbols(REPO_ROOT / "images" / "build" / f"{name}.elf")
    image = (REPO_ROOT / "images" / "build" / f"{name}.bin").read_bytes()
    assert syms["_start"] == (base if base is not None else board.RAM_BASE + L.NS_LOAD_OFFSET)
    assert syms["stub_header"] == syms["_start"] + L.STUB_HEADER_OFFSET
    assert stub_header(image) == (channel, syms["poll_area"])
    assert syms["poll_area"] % L.POLL_SLOT.size == 0
