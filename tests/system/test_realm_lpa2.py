"""FEAT_LPA2 realms run: QEMU's -cpu max has FEAT_LPA2 and 52-bit PAs, so the
RMM offers 52-bit IPA spaces (RmiFeatureRegister0), and a realm created with
the LPA2 flag, s2sz 52 and a level -1 starting RTT runs the realmstub with
stage-2 tables that QEMU walks in the DS = 1 format (VTCR_EL2.DS, SL2)."""

from __future__ import annotations

import pytest

from cosim.arch import stage2
from cosim.config import GptMode
from cosim.host.realm import HostRealm, RealmSpec
from cosim.host.realmstub import RealmStubDriver, RecRunner, build_realmstub_realm
from cosim.host.rmi import RmiError
from cosim.monitor import layout as L
from cosim.rmm.abi import REALM_FLAG_LPA2, RecExitReason, RmiStatus, RsiFid
from cosim.rmm.features import FeatureRegister0

pytestmark = [pytest.mark.system, pytest.mark.slow]

RSI_SUCCESS = 0
S2SZ = 52
UNPROT = 1 << (S2SZ - 1)
HIGH_PROTECTED = (1 << 50) | 0x1234_5000
"""A protected IPA that only a 52-bit IPA space has (index 4 at level -1)."""
HIGH_UNPROTECTED = UNPROT | (1 << 49) | 0x4000_0000


@pytest.mark.parametrize("gpt", [GptMode.HW, GptMode.PLUGIN], ids=["hw", "plugin"])
def test_lpa2_realm_runs_with_a_52_bit_ipa_space(make_platform, gpt: GptMode) -> None:
    from cosim.config import ViolationPolicy

    p = make_platform(gpt=gpt, rme=gpt == GptMode.HW,
                      on_violation=ViolationPolicy.LOG if gpt == GptMode.PLUGIN
                      else ViolationPolicy.DEFAULT)
    f = FeatureRegister0.unpack(p.rmi().features(0))
    assert (f.s2sz, f.lpa2) == (52, 1), "the CPU's FEAT_LPA2 and 52-bit PARange are offered"

    spec = RealmSpec(ipa_bits=S2SZ, flags=REALM_FLAG_LPA2, start_level=-1)
    realm = HostRealm(p.rmi(), p.memory, p.pool, spec).create()
    assert len(realm.roots) == 1
    [rec] = build_realmstub_realm(realm)
    realm.activate()
    driver = RealmStubDriver(RecRunner(p.rmi(), p.memory, rec), realm)
    driver.start()

    cfg = L.REALMSTUB_IPA + (2 << 20) - 0x1000
    assert driver.smc(RsiFid.REALM_CONFIG, cfg)[0] == RSI_SUCCESS
    assert p.memory.read_u64(realm.pa_of(cfg)) == S2SZ, "RsiRealmConfig.ipa_width"

    # An unprotected mapping above 2**49 (the NS page given in the 52-bit format).
    shared = p.pool.alloc()
    p.memory.write_u64(shared, 0x5EED_0F_52B17)
    realm.ensure_rtts(HIGH_UNPROTECTED, 3)
    realm.rmi.rtt_map_unprotected(realm.rd, HIGH_UNPROTECTED, 3,
                                  stage2.oa_field(shared, lpa2=True) | 0xD8)
    assert driver.request(L.RealmOp.LOAD, HIGH_UNPROTECTED, 8)[:2] == [0, 0x5EED_0F_52B17]
    assert driver.request(L.RealmOp.STORE, HIGH_UNPROTECTED + 8, 8, 0xABCD)[0] == 0
    assert p.memory.read_u64(shared + 8) == 0xABCD

    # Protected memory above 2**50: the realm asks for RIPAS RAM, the host grants
    # it (RTT_SET_RIPAS, with RTTs from level 0 down), the first touch exits and
    # the driver backs the page with a DATA granule.
    def on_exit(ex):
        if ex.exit_reason != RecExitReason.RIPAS_CHANGE:
            return None
        base, top = ex.ripas_base, ex.ripas_top
        while base < top:
            try:
                base = realm.rmi.rtt_set_ripas(realm.rd, rec.pa, base, top)
            except RmiError as exc:  # RMI_ERROR_RTT: create the missing RTT
                if exc.status != RmiStatus.ERROR_RTT:
                    raise
                realm.ensure_rtts(base, exc.level + 1)
        return {}

    driver.on_exit = on_exit
    res = driver.smc(RsiFid.IPA_STATE_SET, HIGH_PROTECTED, HIGH_PROTECTED + 0x1000, 1, 0)
    assert res[:2] == [RSI_SUCCESS, HIGH_PROTECTED + 0x1000]
    assert driver.request(L.RealmOp.STORE, HIGH_PROTECTED + 0x10, 8, 0x1234)[0] == 0
    assert HIGH_PROTECTED in driver.backed
    assert p.memory.read_u64(realm.pa_of(HIGH_PROTECTED) + 0x10) == 0x1234
    assert driver.request(L.RealmOp.LOAD, HIGH_PROTECTED + 0x10, 8)[:2] == [0, 0x1234]

    # The whole realm comes down again, the level -1 RTT last.
    realm.rmi.rtt_unmap_unprotected(realm.rd, HIGH_UNPROTECTED, 3)
    realm.destroy()
