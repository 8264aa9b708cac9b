"""Property tests: random sequences of RMI calls with random, often invalid,
arguments.  The RMM never raises, and after every call each granule's state
agrees with the realms, RECs and RTTs that refer to it (no DATA granule is
reachable from two places)."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rmi_conditions import NS_DESC
from rmm_host import RAM_BASE, G, Host
from rmm_invariants import check_consistency

from cosim.rmm import EnterRealm, RmiReturn
from cosim.rmm.abi import PsciFid, Ripas, RmiFid
from cosim.rmm.rec import PsciRequest

F = RmiFid
RAM = 1 << 20
GRANULES = RAM // G
UNPROT = 1 << 39


def _world() -> tuple[Host, dict[str, list[int]]]:
    """A NEW realm with RTTs, data and two RECs, plus parameter buffers for more."""
    h = Host(ram_size=RAM, rec_aux_count=1)
    r = h.create_realm()
    h.create_rtts(r.rd, 0, 3)
    h.create_rtts(r.rd, UNPROT, 3)
    h.ok(F.RTT_INIT_RIPAS, r.rd, 0x4000, 0x8000)
    for ipa in (0x1000, 0x2000):
        h.data_create(r.rd, ipa)
    h.create_rec(r)
    h.create_rec(r, runnable=False)
    params = []
    for vmid in (1, 7):
        p = h.realm_params(vmid=vmid, rtt_base=RAM_BASE + (GRANULES - 2) * G)
        params.append(h.ns(p.to_bytes()))
    p = h.realm_params(vmid=9, s2sz=39, rtt_num_start=1, rtt_base=RAM_BASE + (GRANULES - 3) * G)
    params.append(h.ns(p.to_bytes()))
    for index in (1, 2, 0):
        rp = h.rec_params(index, aux=[RAM_BASE + (GRANULES - 4 - index) * G])
        params.append(h.ns(rp.to_bytes()))
    params.append(h.ns(bytes(range(256)) * 16))
    return h, {"params": params, "rd": [r.rd]}


ODD_PAS = [RAM_BASE - G, RAM_BASE + RAM, RAM_BASE + 8, 0, (1 << 64) - G]
IPAS = [
    0,
    G,
    2 * G,
    3 * G,
    0x4000,
    0x5000,
    0x8000,
    0x20_0000,
    0x20_1000,
    1 << 30,
    UNPROT,
    UNPROT + G,
    UNPROT + 0x20_0000,
    1 << 40,
    0x800,
]
LEVELS = [2, 3, 3, 1, -1, 0, 4, (1 << 64) - 1]
SMALL = [0, 1, 2, 4, (1 << 64) - 1, (1 << 64) - 3]
MASK64 = (1 << 64) - 1


class Args:
    """Argument generator: mostly plausible values, sometimes anything."""

    def __init__(self, rnd: random.Random, h: Host, env: dict[str, list[int]]) -> None:
        self.rnd, self.h, self.env = rnd, h, env

    def pa(self) -> int:
        r = self.rnd.random()
        known = list(self.h.rmm.granules())
        if r < 0.6 and known:
            return self.rnd.choice(known)
        if r < 0.9:
            return RAM_BASE + self.rnd.randrange(GRANULES) * G
        return self.rnd.choice(ODD_PAS) if r < 0.97 else self.rnd.getrandbits(64)

    def rd(self) -> int:
        return self.rnd.choice(self.env["rd"]) if self.rnd.random() < 0.8 else self.pa()

    def rec(self) -> int:
        recs = [rec.pa for realm in self.h.rmm.realms.values() for rec in realm.recs.values()]
        return self.rnd.choice(recs) if recs and self.rnd.random() < 0.7 else self.pa()

    def params(self) -> int:
        return self.rnd.choice(self.env["params"]) if self.rnd.random() < 0.8 else self.pa()

    def ipa(self) -> int:
        r = self.rnd.random()
        if r < 0.8:
            return self.rnd.choice(IPAS)
        return self.rnd.randrange(0x400) * G if r < 0.95 else self.rnd.getrandbits(64)

    def level(self) -> int:
        return self.rnd.choice(LEVELS) & MASK64

    def small(self) -> int:
        return self.rnd.choice(SMALL)

    def desc(self) -> int:
        if self.rnd.random() < 0.8:
            return (self.pa() | NS_DESC) & MASK64
        return self.rnd.getrandbits(64)

    def version(self) -> int:
        return self.rnd.choice([0x10000, 0x10001, 0x20000])

    def any(self) -> int:
        return self.rnd.getrandbits(64)


SIGNATURES: dict[int, tuple[str, ...]] = {
    F.VERSION: ("version",),
    F.FEATURES: ("small",),
    F.GRANULE_DELEGATE: ("pa",),
    F.GRANULE_UNDELEGATE: ("pa",),
    F.REALM_CREATE: ("pa", "params"),
    F.REALM_ACTIVATE: ("rd",),
    F.REALM_DESTROY: ("rd",),
    F.REC_AUX_COUNT: ("rd",),
    F.REC_CREATE: ("rd", "pa", "params"),
    F.REC_DESTROY: ("rec",),
    F.REC_ENTER: ("rec", "params"),
    F.PSCI_COMPLETE: ("rec", "rec", "small"),
    F.RTT_CREATE: ("rd", "pa", "ipa", "level"),
    F.RTT_DESTROY: ("rd", "ipa", "level"),
    F.RTT_FOLD: ("rd", "ipa", "level"),
    F.RTT_READ_ENTRY: ("rd", "ipa", "level"),
    F.RTT_MAP_UNPROTECTED: ("rd", "ipa", "level", "desc"),
    F.RTT_UNMAP_UNPROTECTED: ("rd", "ipa", "level"),
    F.RTT_INIT_RIPAS: ("rd", "ipa", "ipa"),
    F.RTT_SET_RIPAS: ("rd", "rec", "ipa", "ipa"),
    F.DATA_CREATE: ("rd", "pa", "ipa", "params", "small"),
    F.DATA_CREATE_UNKNOWN: ("rd", "pa", "ipa"),
    F.DATA_DESTROY: ("rd", "ipa"),
    0xC4000156: ("any", "any"),
    0xC400016A: ("any", "any"),
}
FIDS = list(SIGNATURES)


def _realm_side_effects(h: Host, rnd: random.Random) -> None:
    """What the realm-execution code would do between calls: RIPAS and PSCI requests."""
    for realm in h.rmm.realms.values():
        for rec in realm.recs.values():
            if rnd.random() < 0.1:
                base = rnd.choice([0, 0x4000, 0x20_0000])
                rec.ripas_addr, rec.ripas_top = base, base + rnd.choice([G, 4 * G, 1 << 21])
                rec.ripas_value = rnd.choice([Ripas.EMPTY, Ripas.RAM])
                rec.ripas_destroyed = rnd.random() < 0.5
            if rnd.random() < 0.1:
                fid = rnd.choice([PsciFid.CPU_ON_64, PsciFid.AFFINITY_INFO_64])
                rec.psci_pending = PsciRequest(fid, rnd.randrange(3), 0x1000, 0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(30, 150))
@pytest.mark.slow
def test_random_command_sequences(seed: int, steps: int) -> None:
    rnd = random.Random(seed)
    h, env = _world()
    gen = Args(rnd, h, env)
    check_consistency(h.rmm)
    for step in range(steps):
        fid = rnd.choice(FIDS)
        args = [getattr(gen, kind)() for kind in SIGNATURES[fid]]
        r = h.rmm.handle_rmi(int(fid), args, cpu=rnd.randrange(4))
        if isinstance(r, EnterRealm):
            h.rmm.rec_enter_complete(r.rec)
        else:
            assert isinstance(r, RmiReturn) and r.x and all(0 <= v < 1 << 64 for v in r.x)
        ok = isinstance(r, EnterRealm) or r.x[0] == 0
        if fid == F.REALM_CREATE and ok:
            env["rd"].append(args[0])
        _realm_side_effects(h, rnd)
        if ok or step % 8 == 7:
            check_consistency(h.rmm)
    check_consistency(h.rmm)
