"""Issue 10: the Python API's defaults and errors match the command line's."""

from __future__ import annotations

import pytest

from cosim.config import GptMode, PlatformConfig
from cosim.machine.errors import MachineError
from cosim.memory import GuestMemoryError
from cosim.platform import Platform


def test_the_default_config_protects_granules_like_the_cli() -> None:
    """The README example, PlatformConfig() as it is: granule protection is on
    (auto: hw on this RME CPU), not silently off."""
    with Platform(PlatformConfig(cpus=2)) as p:
        assert p.config.gpt == GptMode.HW
        g = p.pool.alloc()
        p.rmi().granule_delegate(g)
        bad = p.stub.load(g)
        assert bad.faulted and bad.fault_esr != 0
        good = p.stub.load(p.pool.alloc())
        assert not good.faulted
        assert (good.fault_esr, good.fault_far, good.fault_elr) == (0, 0, 0), \
            "a later good access does not carry the earlier fault's fields"


def test_memory_after_the_platform_stopped() -> None:
    p = Platform(PlatformConfig(gpt="off"))
    with pytest.raises(MachineError, match="not started"):
        _ = p.memory
    with p:
        mem = p.memory
        mem.write_u64(p.pool.alloc(), 1)
    with pytest.raises(GuestMemoryError, match="the platform has stopped"):
        mem.read_u64(mem.base)
    with pytest.raises(GuestMemoryError, match="the platform has stopped"):
        _ = p.memory.read(p.ram_base, 8)
