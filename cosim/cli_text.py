"""Sentences the command line prints about a platform."""

from __future__ import annotations

from .config import GptMode, PlatformConfig


def describe_platform(cfg: PlatformConfig) -> str:
    why = {GptMode.HW: "QEMU's granule protection check",
           GptMode.PLUGIN: "checked by the TCG plugin after each access",
           GptMode.OFF: "not enforced"}.get(cfg.gpt, "")
    return (f"cosim: {cfg.cpus} CPU(s), {cfg.ram_size >> 20} MiB RAM, -cpu {cfg.cpu_model}, "
            f"GPT enforcement: {cfg.gpt.value} ({why})")
