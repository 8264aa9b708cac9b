"""The FIP reader/packer and the flash image handling (cosim/firmware), and
the hoststub image header (cosim/host/poll_channel)."""

from __future__ import annotations

import struct
import uuid

import pytest

from cosim.firmware import fip as F
from cosim.firmware.flash import QEMU_FIP_OFFSET, FirmwareError, Flash, find_fip
from cosim.host.poll_channel import StubImageError, stub_header, with_channel
from cosim.monitor import layout as L

BL2 = uuid.UUID("5ff9ec0b-4d22-3e4d-a544-c39d81c73f0a")


def _fip(*images: tuple[uuid.UUID, bytes]) -> bytes:
    return F.Fip(serial=7, images=[F.FipImage(u, d) for u, d in images]).pack()


def test_pack_and_parse_round_trip() -> None:
    blob = _fip((BL2, b"bl2" * 100), (F.BL33, b"x" * 33))
    assert struct.unpack_from("<I", blob)[0] == 0xAA640001
    fip = F.parse(blob)
    assert fip.serial == 7
    assert [(im.uuid, im.data) for im in fip.images] == [(BL2, b"bl2" * 100), (F.BL33, b"x" * 33)]
    assert fip.find(F.BL33).name == "nt-fw (BL33)"
    assert fip.size == len(blob) - (F._align(33) - 33)


def test_replace_bl33_keeps_the_other_images() -> None:
    fip = F.parse(_fip((BL2, b"a" * 10), (F.BL33, b"old")))
    fip.replace(F.BL33, b"new image")
    again = F.parse(fip.pack())
    assert again.find(BL2).data == b"a" * 10
    assert again.find(F.BL33).data == b"new image"


def test_a_fip_without_bl33_gets_one() -> None:
    fip = F.parse(_fip((BL2, b"a")))
    fip.replace(F.BL33, b"stub")
    assert [im.uuid for im in F.parse(fip.pack()).images] == [BL2, F.BL33]


@pytest.mark.parametrize("data, what", [
    (b"\0" * 64, "no FIP"),
    (struct.pack("<IIQ", 0xAA640001, 0, 0) + b"\1" * 20, "runs past the end"),
    (struct.pack("<IIQ", 0xAA640001, 0, 0)
     + struct.pack("<16sQQQ", F.BL33.bytes, 0x1000, 0x10, 0) + bytes(40), "runs past the end"),
])
def test_bad_fips_are_refused(data: bytes, what: str) -> None:
    with pytest.raises(F.FipError, match=what):
        F.parse(data)


def test_flash_finds_its_fip_and_swaps_bl33_in_place() -> None:
    bl1 = b"B" * 0x1000
    fip = _fip((BL2, b"bl2"), (F.BL33, b"u-boot"))
    image = bl1.ljust(QEMU_FIP_OFFSET, b"\0") + fip + bytes(0x10000)
    flash = Flash.parse(image)
    assert flash.fip_offset == QEMU_FIP_OFFSET
    out = flash.with_bl33(b"our stub" * 4)
    assert out[:0x1000] == bl1
    assert len(out) == len(image), "a padded flash image stays padded"
    assert Flash.parse(out).fip.find(F.BL33).data == b"our stub" * 4


def test_a_fip_elsewhere_is_found_at_a_4k_boundary() -> None:
    image = bytes(0x3000) + _fip((F.BL33, b"x"))
    assert find_fip(image) == 0x3000


def test_a_file_without_fip_is_a_one_line_error() -> None:
    with pytest.raises(FirmwareError, match="holds no FIP"):
        Flash.parse(b"hello" * 100, "notes.txt")


def _stub_image(channel: int = 0) -> bytes:
    head = struct.pack("<I", 0x14000000)  # b boot_entry
    head += bytes(L.STUB_HEADER_OFFSET - len(head))
    return head + struct.pack("<QQQ", L.STUB_HEADER_MAGIC, channel, 0x6000_2100) + b"code"


def test_stub_header_and_channel_patch() -> None:
    image = _stub_image()
    assert stub_header(image) == (L.StubChannel.SIP, 0x6000_2100)
    polled = with_channel(image, L.StubChannel.POLL)
    assert stub_header(polled) == (L.StubChannel.POLL, 0x6000_2100)
    assert len(polled) == len(image) and polled.endswith(b"code")


def test_an_image_without_the_header_is_refused() -> None:
    with pytest.raises(StubImageError, match="no hoststub header"):
        stub_header(bytes(64))
    with pytest.raises(StubImageError, match="too small"):
        stub_header(b"tiny")


def test_the_poll_slot_layout_matches_the_header() -> None:
    assert L.POLL_SLOT.size == 64
    assert [f.name for f in L.POLL_SLOT.fields][:2] == ["call", "answer"]
    assert L.STUB_HEADER["channel"] == 8
