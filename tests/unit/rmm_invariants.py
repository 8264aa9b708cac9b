"""Consistency of the RMM's granule records with the objects and tables that
refer to them.  Used after every step of the property and concurrency tests."""

from __future__ import annotations

from cosim.arch.pas import GRANULE_SIZE, Pas
from cosim.rmm import GranuleState, Rmm
from cosim.rmm.rtte import Hipas

S = GranuleState


def check_consistency(rmm: Rmm) -> None:
    granules = rmm.granules()
    expected: dict[int, tuple[GranuleState, object]] = {}

    def claim(pa: int, state: GranuleState, owner: object) -> None:
        assert pa not in expected, (
            f"granule {pa:#x} referenced twice ({expected[pa][0]} and {state})"
        )
        expected[pa] = (state, owner)

    for realm in rmm.realms.values():
        claim(realm.rd, S.RD, realm)
        for root in realm.root_rtts:
            claim(root, S.RTT, realm)
        for rec in realm.recs.values():
            claim(rec.pa, S.REC, realm)
            for aux in rec.aux:
                claim(aux, S.REC_AUX, realm)
        rtts = rmm.rtts(realm)
        for pa, level, base in rtts.tables():
            claim(pa, S.RTT, realm)
            g = granules[pa]
            assert (g.level, g.ipa) == (level, base), f"RTT {pa:#x} recorded at wrong place"
        for ipa, level, e in rtts.leaves():
            if e.hipas is Hipas.ASSIGNED:
                size = 1 << (12 + 9 * (3 - level))
                assert realm.is_protected(ipa)
                for off in range(0, size, GRANULE_SIZE):
                    claim(e.addr + off, S.DATA, realm)
                    assert granules[e.addr + off].ipa == ipa + off
            elif e.hipas in (Hipas.ASSIGNED_NS, Hipas.UNASSIGNED_NS):
                assert realm.is_unprotected(ipa), f"NS entry at protected IPA {ipa:#x}"
            else:
                assert realm.is_protected(ipa), f"protected entry at unprotected IPA {ipa:#x}"

    for pa, g in granules.items():
        if g.state is S.DELEGATED:
            assert pa not in expected, f"{pa:#x} is DELEGATED but referenced as {expected.get(pa)}"
            assert rmm.memory.is_zero(pa, GRANULE_SIZE), f"DELEGATED granule {pa:#x} not scrubbed"
        else:
            assert pa in expected, f"{pa:#x} is {g.state} but nothing refers to it"
            state, owner = expected[pa]
            assert g.state is state and g.realm is owner, f"{pa:#x}: {g.state} vs {state}"
        assert rmm.gpt.get(pa) is Pas.REALM
    assert set(expected) <= set(granules)

    for first, count, pas in rmm.gpt.runs():
        if pas is Pas.NONSECURE:
            for i in range(count):
                assert first + i * GRANULE_SIZE not in granules
