"""One test per failure condition of every RMI command (table in rmi_conditions.py)."""

from __future__ import annotations

import pytest
from rmi_conditions import CONDITIONS, Condition, World

from cosim.rmm.abi import RmiFid, RmiStatus, rmi_index, rmi_status
from cosim.rmm.results import RmiReturn


def _snapshot(w: World) -> tuple[object, ...]:
    rmm = w.rmm
    states = {pa: (g.state, g.realm, g.rec) for pa, g in rmm.granules().items()}
    realms = {i: (r.state, bytes(r.measurements[0]), len(r.recs)) for i, r in rmm.realms.items()}
    recs = {
        rec.pa: (rec.state, rec.runnable, rec.psci_pending, rec.ripas_addr, tuple(rec.context.gprs))
        for r in rmm.realms.values()
        for rec in r.recs.values()
    }
    return (
        states,
        realms,
        recs,
        w.h.memory.read(w.h.memory.base, w.h.memory.size),
        bytes(w.h.gpt._table),
    )


@pytest.mark.parametrize("cond", CONDITIONS, ids=[c.id for c in CONDITIONS])
def test_failure_condition(cond: Condition) -> None:
    w = World(**cond.config)
    args = cond.args(w)
    before = _snapshot(w)
    r = w.h.call(cond.command, *args)
    assert isinstance(r, RmiReturn), f"expected a failure, got {r}"
    got = (RmiStatus(rmi_status(r.x[0])), rmi_index(r.x[0]), r.condition)
    assert got == (cond.status, cond.index, cond.label)
    assert r.x[0] >> 16 == 0
    assert _snapshot(w) == before, "a failed command changed state"


def test_every_command_has_conditions() -> None:
    covered = {c.command for c in CONDITIONS}
    assert covered | {RmiFid.FEATURES} == set(RmiFid)


def test_labels_are_unique_per_command_and_variant() -> None:
    ids = [c.id for c in CONDITIONS]
    assert len(ids) == len(set(ids))
