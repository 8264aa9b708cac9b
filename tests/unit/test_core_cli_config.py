"""CLI argument handling, configuration checks, command lines, boot image."""

from __future__ import annotations

import struct
from pathlib import Path

import fdt
import pytest

from cosim import cli
from cosim.config import ConfigError, GptMode, PlatformConfig, ViolationPolicy
from cosim.machine import dtb
from cosim.machine.qemu import Blob, QemuCommand
from cosim.monitor import layout as L
from cosim.monitor.boot import BootConfig, MonitorImageError, patch_image


@pytest.mark.parametrize("argv, message", [
    (["run", "--cpus", "9"], "--cpus must be 1..8"),
    (["run", "--cpus", "two"], "'two' is not a number of CPUs"),
    (["run", "--ram", "lots"], "'lots' is not a size"),
    (["run", "--gpt", "maybe"], "invalid choice: 'maybe'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "the following arguments are required"),
])
def test_bad_arguments_get_one_line_and_exit_2(argv, message, capsys) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_sizes() -> None:
    assert cli.parse_size("512M") == 512 << 20
    assert cli.parse_size("2G") == 2 << 30
    assert cli.parse_size("4096") == 4096


def test_gpt_default_follows_rme() -> None:
    args = cli.build_parser().parse_args(["run"])
    cfg = cli.platform_config(args)
    assert cfg.gpt == GptMode.AUTO and cfg.choose_gpt() == GptMode.HW
    args = cli.build_parser().parse_args(["run", "--no-rme"])
    assert cli.platform_config(args).choose_gpt() == GptMode.PLUGIN
    args = cli.build_parser().parse_args(["run", "--on-violation", "log"])
    assert cli.platform_config(args).choose_gpt() == GptMode.PLUGIN, \
        "log needs plugin mode: auto must not silently become an injecting hw mode"


def test_unknown_benchmark_and_missing_trace(capsys, tmp_path: Path) -> None:
    assert cli.main(["bench", "nonesuch"]) == 2
    assert "no benchmark 'nonesuch'" in capsys.readouterr().err
    assert cli.main(["trace", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl: No such file or directory" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    assert cli.main(["trace", str(bad)]) == 2


def test_trace_summary(tmp_path: Path, capsys) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text('{"t":0,"kind":"rmi","name":"RMI_VERSION","status":"RMI_SUCCESS",'
                 '"duration_us":3.0}\n{"t":1,"kind":"machine","event":"start"}\n')
    assert cli.main(["trace", str(f), "--summary"]) == 0
    out = capsys.readouterr().out
    assert "RMI_VERSION" in out and "2 events" in out
    assert cli.main(["trace", str(f), "--kind", "machine"]) == 0
    assert '"machine"' in capsys.readouterr().out


@pytest.mark.parametrize("fields, message", [
    ({"cpus": 0}, "cpus must be 1..8"),
    ({"ram_size": 100 << 20}, "RAM size"),
    ({"carveout_size": 3 << 20}, "carve-out size"),
    ({"carveout_size": 512 << 20}, "at most a quarter"),
    ({"gpt": GptMode.HW, "rme": False}, "needs a CPU with RME"),
    ({"gpt": GptMode.HW, "on_violation": ViolationPolicy.LOG}, "is for --gpt plugin"),
    ({"qemu": "/nonexistent/qemu"}, "not found"),
    ({"payload": Path("/nonexistent.bin")}, "NS payload /nonexistent.bin: No such file"),
    ({"payload": Path("/")}, "is a directory"),
    ({"initrd": Path("/nonexistent.cpio")}, "initrd /nonexistent.cpio: No such file"),
    ({"monitor": Path("/nonexistent/monitor.bin")}, "monitor image"),
    ({"gpt": "HW"}, "gpt must be one of 'auto', 'hw', 'plugin', 'off'"),
    ({"gpt": "bogus"}, "not 'bogus'"),
    ({"on_violation": "stop"}, "on_violation must be one of"),
])
def test_config_errors_say_what_is_wrong(fields, message) -> None:
    with pytest.raises(ConfigError, match=message):
        PlatformConfig(**fields).validate()


def test_qemu_command_line() -> None:
    cmd = QemuCommand(qemu="q", cpus=2, ram_size=1 << 30, cpu_model="max,x-rme=on",
                      bios="/proc/self/fd/5", ram_path="/proc/self/fd/4",
                      blobs=[Blob("/x.bin", 0x40200000)], plugin=Path("/p.so"),
                      plugin_args=["sock=s"], qmp_socket="qmp", gdb_socket="gdb",
                      serial_sockets=["s0", "s1"])
    args = cmd.args()
    text = " ".join(args)
    assert args[0] == "q" and "-S" in args
    assert "memory-backend-file,id=ram,size=1073741824,mem-path=/proc/self/fd/4,share=on" in text
    assert "loader,file=/x.bin,addr=0x40200000,force-raw=on" in text
    assert "-plugin /p.so,sock=s" in text
    assert "socket,id=qmp,path=qmp,abstract=on,server=on,wait=off" in text
    assert text.count("-serial") == 2
    odd = QemuCommand(qemu="q", cpus=1, ram_size=1 << 30, cpu_model="max", bios="b",
                      ram_path="r", blobs=[Blob("/my,dir/Image", 0x40200000)],
                      plugin=Path("/a,b/p.so"), plugin_args=["sock=s"])
    text = " ".join(odd.args())
    assert "loader,file=/my,,dir/Image,addr=0x40200000" in text, "a comma in a path is doubled"
    assert "-plugin /a,,b/p.so,sock=s" in text


def _image() -> bytes:
    img = bytearray(0x400)
    struct.pack_into("<QQ", img, L.BOOT_CONFIG_OFFSET, L.BOOT_MAGIC, L.BOOT_CONFIG_VERSION)
    return bytes(img)


def test_boot_config_patching() -> None:
    cfg = BootConfig(ram_base=0x40000000, ram_size=1 << 30, carveout_base=0x7F000000,
                     carveout_size=16 << 20, ns_entry=0x40200000, ns_dtb=0x7EE00000, num_cpus=4)
    out = patch_image(_image(), cfg)
    off = L.BOOT_CONFIG_OFFSET
    assert struct.unpack_from("<Q", out, off + L.BOOT_CONFIG["num_cpus"])[0] == 4
    assert struct.unpack_from("<Q", out, off + L.BOOT_CONFIG["carveout_base"])[0] == 0x7F000000
    with pytest.raises(MonitorImageError, match="magic"):
        patch_image(bytes(0x400), cfg)
    with pytest.raises(MonitorImageError, match="too small"):
        patch_image(b"\0" * 16, cfg)


def test_device_tree_edits() -> None:
    tree = fdt.FDT()
    tree.add_item(fdt.Node("cpus"), "/")
    tree.add_item(fdt.Node("cpu@0"), "/cpus")
    tree.add_item(fdt.Node("chosen"), "/")
    dtb.reserve_memory(tree, "cca-cosim", 0x7F000000, 0x1000000)
    dtb.add_psci(tree)
    back = fdt.parse_dtb(dtb.to_blob(tree))
    region = back.get_node("/reserved-memory/cca-cosim@7f000000")
    assert list(region.get_property("reg").data) == [0, 0x7F000000, 0, 0x1000000]
    assert region.exist_property("no-map")
    assert back.get_property("method", "/psci").value == "smc"
    assert back.get_property("enable-method", "/cpus/cpu@0").value == "psci"
    dtb.set_chosen(back, "console=ttyAMA0", (0x4800_0000, 0x4810_0000))
    again = fdt.parse_dtb(dtb.to_blob(back))
    assert again.get_property("bootargs", "/chosen").value == "console=ttyAMA0"
    assert list(again.get_property("linux,initrd-end", "/chosen").data) == [0, 0x4810_0000]
