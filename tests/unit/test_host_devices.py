"""The realm VMM's device models and images: the GICv3 model and its list
registers, the PL011, the realm device tree and the arm64 Image header."""

from __future__ import annotations

import struct
from pathlib import Path

import fdt
import pytest

from cosim.arch.gicv3 import ICH_HCR_UIE, lr_state, lr_vintid
from cosim.host import realm_dt, realm_map
from cosim.host.devices import gic as G
from cosim.host.devices.mmio import MmioBus
from cosim.host.devices.pl011 import (
    FR_RXFE,
    FR_TXFE,
    INT_RX,
    UARTCR,
    UARTDR,
    UARTFR,
    UARTIMSC,
    Pl011,
)
from cosim.host.kernel_image import IMAGE_MAGIC, KernelImage, KernelImageError
from cosim.monitor.layout import ConsoleFlag

PENDING, ACTIVE = 0b01, 0b10


def gic(cpus: int = 2, lrs: int = 4) -> G.VGic:
    g = G.VGic([i for i in range(cpus)], num_lrs=lrs)
    g.distributor.write(G.GICD_CTLR, 4, G.GICD_CTLR_ENABLE_GRP1, 0)
    return g


def enable(g: G.VGic, intid: int, cpu: int = 0, priority: int = 0xA0) -> None:
    if intid < G.PRIVATE_COUNT:
        frame = cpu * G.GICR_FRAME_SIZE + G.GICR_SGI_BASE
        g.redistributors.write(frame + G.GICD_IGROUPR, 4, 0xFFFF_FFFF, cpu)
        g.redistributors.write(frame + G.GICD_ISENABLER, 4, 1 << intid, cpu)
        g.redistributors.write(frame + G.GICD_IPRIORITYR + intid, 1, priority, cpu)
    else:
        n = intid // 32
        g.distributor.write(G.GICD_IGROUPR + 4 * n, 4, 0xFFFF_FFFF, cpu)
        g.distributor.write(G.GICD_ISENABLER + 4 * n, 4, 1 << (intid % 32), cpu)
        g.distributor.write(G.GICD_IPRIORITYR + intid, 1, priority, cpu)


def test_distributor_identifies_a_gicv3_with_affinity_routing() -> None:
    g = gic()
    assert g.distributor.read(G.GICD_PIDR2, 4, 0) >> 4 & 0xF == 3
    ctlr = g.distributor.read(G.GICD_CTLR, 4, 0)
    assert ctlr & G.GICD_CTLR_ARE and ctlr & G.GICD_CTLR_DS
    typer = g.distributor.read(G.GICD_TYPER, 4, 0)
    assert (typer & 0x1F) == (32 + 64) // 32 - 1  # ITLinesNumber


def test_redistributor_typer_has_affinity_and_last() -> None:
    g = G.VGic([0x0, 0x1, 0x100], num_lrs=4)
    typers = [g.redistributors.read(i * G.GICR_FRAME_SIZE + G.GICR_TYPER, 8, 0) for i in range(3)]
    assert [t >> 32 for t in typers] == [0x0, 0x1, 0x100]
    assert [bool(t & G.GICR_TYPER_LAST) for t in typers] == [False, False, True]
    # a 32-bit read of the upper half, as some drivers do
    assert g.redistributors.read(2 * G.GICR_FRAME_SIZE + G.GICR_TYPER + 4, 4, 0) == 0x100


def test_waker_handshake() -> None:
    g = gic()
    assert g.redistributors.read(G.GICR_WAKER, 4, 0) & G.GICR_WAKER_CHILDREN_ASLEEP
    g.redistributors.write(G.GICR_WAKER, 4, 0, 0)
    assert g.redistributors.read(G.GICR_WAKER, 4, 0) == 0


def test_level_interrupt_delivered_once_then_completed() -> None:
    """A level-sensitive PPI (the virtual timer): pending while its line is high,
    injected as pending, not re-injected while active, gone after EOI once the
    line dropped."""
    g = gic()
    enable(g, 27)
    g.set_line(27, True, 0)
    lrs, hcr = g.entry_lrs(0)
    assert lr_vintid(lrs[0]) == 27 and lr_state(lrs[0]) == PENDING and hcr == 0
    active = lrs[0] & ~(0b11 << 62) | ACTIVE << 62  # the guest acknowledged it
    g.exit_lrs(0, [active, 0, 0, 0])
    lrs, _ = g.entry_lrs(0)
    assert lr_state(lrs[0]) == ACTIVE  # still active, not pending again (level)
    g.set_line(27, False, 0)
    g.exit_lrs(0, [0, 0, 0, 0])  # EOI: invalid
    assert g.entry_lrs(0)[0] == [0, 0, 0, 0]


def test_disabled_or_group_disabled_interrupts_wait() -> None:
    g = G.VGic([0], num_lrs=4)
    enable(g, 33)
    g.set_line(33, True)
    assert g.entry_lrs(0)[0][0] == 0  # GICD_CTLR.EnableGrp1 is still 0
    g.distributor.write(G.GICD_CTLR, 4, G.GICD_CTLR_ENABLE_GRP1, 0)
    assert lr_vintid(g.entry_lrs(0)[0][0]) == 33


def test_priority_order_and_overflow_asks_for_underflow() -> None:
    g = gic(cpus=1, lrs=2)
    for intid, prio in ((20, 0x80), (21, 0x40), (22, 0xC0)):
        enable(g, intid, priority=prio)
        g.pulse(intid)
    lrs, hcr = g.entry_lrs(0)
    assert [lr_vintid(lr) for lr in lrs] == [21, 20]
    assert hcr == ICH_HCR_UIE
    g.exit_lrs(0, [0, 0])  # both handled
    lrs, hcr = g.entry_lrs(0)
    assert lr_vintid(lrs[0]) == 22 and hcr == 0


def test_sgi_targets_by_list_and_broadcast() -> None:
    g = gic(cpus=3)
    for cpu in range(3):
        enable(g, 5, cpu)
    assert g.send_sgi(0, 5 << 24 | 0b110) == [1, 2]
    assert g.take_kicks(0) == 0b110
    assert g.send_sgi(2, 5 << 24 | 1 << 40) == [0, 1]  # IRM: all but self
    assert lr_vintid(g.entry_lrs(1)[0][0]) == 5
    assert g.deliverable(0)


def test_spi_routing_follows_irouter() -> None:
    g = gic(cpus=2)
    enable(g, 40)
    g.distributor.write(G.GICD_IROUTER + 8 * 40, 8, 1, 0)  # Aff0 = 1
    g.set_line(40, True)
    assert g.entry_lrs(0)[0][0] == 0
    assert lr_vintid(g.entry_lrs(1)[0][0]) == 40


def test_mmio_bus_finds_regions_and_refuses_overlaps() -> None:
    bus = MmioBus()
    uart = Pl011(lambda b: None)
    bus.add(0x1000, 0x1000, uart)
    found = bus.find(0x1018)
    assert found is not None and found.device is uart
    assert bus.find(0x2000) is None and bus.find(0xFFF) is None
    with pytest.raises(ValueError, match="overlaps"):
        bus.add(0x1800, 0x1000, uart)


def test_pl011_transmits_and_receives_with_interrupts() -> None:
    out: list[bytes] = []
    levels: list[bool] = []
    uart = Pl011(out.append, levels.append)
    assert uart.read(UARTFR, 4, 0) & FR_TXFE
    uart.write(UARTDR, 4, ord("A") | 0xF00, 0)
    assert out == [b"A"] and uart.tx_bytes == 1
    assert uart.rx_room == 0 and uart.feed(b"early") == 0, \
        "input waits until the driver unmasks receive interrupts (it drains the FIFO first)"
    uart.write(UARTIMSC, 4, INT_RX, 0)
    assert uart.rx_room == 32
    assert uart.feed(b"hi") == 2 and levels[-1] is True
    assert not uart.read(UARTFR, 4, 0) & FR_RXFE
    assert uart.read(UARTDR, 4, 0) == ord("h") and uart.read(UARTDR, 4, 0) == ord("i")
    assert levels[-1] is False and uart.read(UARTFR, 4, 0) & FR_RXFE
    assert uart.read(0xFE0, 4, 0) == 0x11 and uart.read(0xFFC, 4, 0) == 0xB1


def test_pl011_fast_path_answers_what_the_model_would() -> None:
    out: list[bytes] = []
    uart = Pl011(out.append)
    uart.write(UARTCR, 4, 0x301, 0)
    flags, fr, cr = uart.fast_path()
    assert flags == ConsoleFlag.DR_WRITE | ConsoleFlag.CR_ACCESS | ConsoleFlag.FR_READ
    assert fr == uart.read(UARTFR, 4, 0) and cr == uart.read(UARTCR, 4, 0) == 0x301
    uart.transmitted(b"boot\n")
    assert out == [b"boot\n"] and uart.tx_bytes == 5
    # With input waiting, FR is not constant: its reads must reach the model.
    uart.write(UARTIMSC, 4, INT_RX, 0)
    assert uart.feed(b"x") == 1
    flags, _, _ = uart.fast_path()
    assert not flags & ConsoleFlag.FR_READ and flags & ConsoleFlag.DR_WRITE


def test_realm_device_tree() -> None:
    blob = realm_dt.build(realm_dt.RealmDtConfig(
        ram_base=realm_map.RAM_BASE, ram_size=512 << 20, mpidrs=[0, 1],
        bootargs="console=ttyAMA0 quiet", initrd=(0x8400_0000, 0x8410_0000)))
    tree = fdt.parse_dtb(blob)
    assert tree.get_property("bootargs", "/chosen").value == "console=ttyAMA0 quiet"
    assert list(tree.get_property("linux,initrd-end", "/chosen").data) == [0, 0x8410_0000]
    assert list(tree.get_property("reg", f"/memory@{realm_map.RAM_BASE:x}").data) == \
        [0, realm_map.RAM_BASE, 0, 512 << 20]
    assert tree.get_property("method", "/psci").value == "smc"
    assert tree.exist_node("/cpus/cpu@1")
    gic_reg = list(tree.get_property("reg", f"/intc@{realm_map.GICD_BASE:x}").data)
    assert gic_reg[6:] == [0, 2 * realm_map.GICR_STRIDE]


def test_realm_device_tree_without_bootargs() -> None:
    blob = realm_dt.build(realm_dt.RealmDtConfig(
        ram_base=realm_map.RAM_BASE, ram_size=256 << 20, mpidrs=[0], bootargs=""))
    tree = fdt.parse_dtb(blob)
    assert tree.get_property("bootargs", "/chosen") is None
    assert tree.get_property("stdout-path", "/chosen").value == "/pl011@9000000"


def image(flags: int = 0b010, size: int = 0x40000) -> bytes:
    header = struct.pack("<IIQQQQQQ4sI", 0, 0, 0, size, flags, 0, 0, 0, IMAGE_MAGIC, 0)
    return header + bytes(0x1000 - len(header))


def test_kernel_image_header(tmp_path: Path) -> None:
    k = tmp_path / "Image"
    k.write_bytes(image())
    img = KernelImage.load(k)
    assert img.image_size == 0x40000 and img.entry_offset == 0


@pytest.mark.parametrize(("data", "why"), [
    (b"\x1f\x8b" + bytes(100), "gzip"),
    (b"\x7fELF" + bytes(100), "ELF"),
    (b"short", "too short"),
    (image(flags=0b1), "big-endian"),
    (image(flags=0b110), "64 KiB pages"),
])
def test_kernel_image_refusals(tmp_path: Path, data: bytes, why: str) -> None:
    k = tmp_path / "Image"
    k.write_bytes(data)
    with pytest.raises(KernelImageError, match=why):
        KernelImage.load(k)


def test_kernel_image_missing(tmp_path: Path) -> None:
    with pytest.raises(KernelImageError, match="does not exist"):
        KernelImage.load(tmp_path / "nope")
    with pytest.raises(KernelImageError, match="directory"):
        KernelImage.load(tmp_path)


def test_console_input_end_is_typed_as_ctrl_d_until_the_guest_reads_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Input from a pipe reaches the UART as it comes; its end becomes EOT
    (Ctrl-D), typed again while the run lasts, so a guest shell that lost the
    first one to its driver's FIFO drain still sees end of file."""
    import os
    import threading

    from cosim.host import console as C

    monkeypatch.setattr(C, "EOT_REPEAT", 0.01)
    uart_lock, got, enough = threading.Lock(), bytearray(), threading.Event()

    def feed(data: bytes) -> int:
        with uart_lock:
            got.extend(data[:1])        # a FIFO that takes one byte at a time
            if got.count(C.EOT) >= 3:
                enough.set()
        return 1

    r, w = os.pipe()
    os.write(w, b"uname\n")
    os.close(w)
    cons = C.RealmConsole()
    with os.fdopen(r, "rb") as stream:
        cons.start_input(stream, feed, lambda: 1)
        assert enough.wait(10), bytes(got)
        cons.close()
    assert bytes(got).startswith(b"uname\n" + C.EOT), bytes(got)
    assert set(bytes(got)[6:]) == {4}


def test_console_input_is_held_until_the_guest_says_it_is_ready() -> None:
    """Input that comes before /init's ready line is kept, not fed (the guest's
    UART driver would drain it), and goes in once the line is out."""
    import os
    import threading
    import time

    from cosim.host import console as C

    got, fed = bytearray(), threading.Event()

    def feed(data: bytes) -> int:
        got.extend(data)
        fed.set()
        return len(data)

    r, w = os.pipe()
    os.write(w, b"early\n")
    cons = C.RealmConsole()
    cons.hold_input_until(b"cosim-init: ready")
    with os.fdopen(r, "rb") as stream:
        cons.start_input(stream, feed, lambda: 32)
        time.sleep(0.3)
        assert not fed.is_set(), bytes(got)
        cons.output(b"booting\ncosim-init: ready\n")
        assert fed.wait(10)
        cons.close()
    os.close(w)
    assert bytes(got) == b"early\n"
