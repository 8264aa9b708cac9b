"""The VMM's realm construction and teardown (cosim.host.realm) driving the
RMM directly, without QEMU: every call the host makes is an RMI call the RMM
checks; the host's predicted RIM must equal the RMM's, and teardown must
return every granule."""

from __future__ import annotations

import hashlib

import pytest
from rmm_host import RAM_BASE, Host

from cosim.arch.pas import GRANULE_SIZE as G
from cosim.host.pool import PagePool
from cosim.host.realm import HostRealm, RealmSpec
from cosim.host.rmi import RmiClient, RmiError
from cosim.rmm import GranuleState
from cosim.rmm.abi import HashAlgorithm, Ripas, RmiStatus

RAM = 0x8000_0000


def host_realm(ram_size: int = 64 << 20, **spec: object) -> tuple[Host, HostRealm]:
    h = Host(ram_size=ram_size)

    def smc(fid: int, *args: int) -> tuple[int, ...]:
        return h.rmm.handle_rmi(fid, list(args) + [0] * (6 - len(args))).x  # type: ignore[union-attr]

    pool = PagePool(RAM_BASE, ram_size)
    realm = HostRealm(RmiClient(smc), h.memory, pool, RealmSpec(**spec))  # type: ignore[arg-type]
    return h, realm.create()


def rmm_rim(h: Host, realm: HostRealm) -> bytes:
    model = h.rmm.realm_at(realm.rd)
    assert model is not None
    return model.rim


@pytest.mark.parametrize("algo", [HashAlgorithm.SHA_256, HashAlgorithm.SHA_512])
def test_predicted_rim_matches_the_rmm(algo: HashAlgorithm) -> None:
    """A kvmtool-ordered build (RIPAS over RAM, measured images, RECs): the RIM
    the host predicts is the RIM the RMM computed (RMM spec A7.1.1)."""
    h, realm = host_realm(hash_algo=algo)
    realm.init_ripas(RAM, RAM + (8 << 20))
    kernel = bytes(range(256)) * 40 + b"tail"  # not a whole number of granules
    realm.populate(RAM, kernel)
    realm.populate(RAM + (4 << 20), b"dtb" * 100, measure=False)
    realm.create_rec(pc=RAM, gprs=(RAM + (4 << 20), 0, 0, 0))
    realm.create_rec(pc=0, runnable=False)
    assert realm.expected_rim == rmm_rim(h, realm)
    realm.activate()
    realm.destroy()
    assert not h.rmm.granules() and not realm.delegated


def test_init_ripas_splits_ranges_that_are_not_whole_entries() -> None:
    """[RAM, RAM + 3 MiB + 8 KiB): a 2 MiB block entry, then level-3 entries;
    the RIM extensions follow the entries the RMM processed."""
    h, realm = host_realm()
    realm.init_ripas(RAM, RAM + (3 << 20) + 2 * G)
    assert realm.expected_rim == rmm_rim(h, realm)
    assert (3, RAM + (2 << 20)) in realm.rtts


def test_populate_batches_and_records_every_granule() -> None:
    h, realm = host_realm()
    realm.init_ripas(RAM, RAM + (4 << 20))
    content = hashlib.sha256(b"x").digest() * (60 * G // 32)
    granules = realm.populate(RAM, content)
    assert len(granules) == 60 and len(realm.data) == 60
    for i, g in enumerate(granules):
        assert h.rmm.granule_state(g) is GranuleState.DATA
        assert h.memory.read(g, G) == content[i * G:(i + 1) * G]


def test_back_fills_a_window_and_stops_at_populated_pages() -> None:
    h, realm = host_realm()
    realm.init_ripas(RAM, RAM + (4 << 20))
    realm.populate(RAM + 8 * G, b"x" * G)
    assert realm.back(RAM + 2 * G, pages=16) == 6  # pages 2..7, page 8 is data
    assert realm.back(RAM + 3 * G) == 0  # already there
    assert all(h.rmm.granule_state(realm.data[RAM + i * G]) is GranuleState.DATA
               for i in range(2, 9))


def test_back_does_not_cross_a_2mib_block_or_the_limit() -> None:
    _, realm = host_realm()
    realm.init_ripas(RAM, RAM + (4 << 20))
    assert realm.back(RAM + (2 << 20) - 2 * G, pages=16) == 2
    assert realm.back(RAM + (3 << 20), pages=16, limit=(RAM, RAM + (3 << 20) + 3 * G)) == 3


def test_set_ripas_to_empty_reclaims_data_and_back_to_ram() -> None:
    h, realm = host_realm()
    rec = realm.create_rec(pc=RAM)
    realm.init_ripas(RAM, RAM + (4 << 20))
    realm.populate(RAM, b"k" * (4 * G))
    realm.activate()
    model = h.rmm.rec_at(rec.pa)
    assert model is not None
    # what a realm's RSI_IPA_STATE_SET leaves in its REC before the exit
    model.ripas_addr, model.ripas_top, model.ripas_value = RAM, RAM + 8 * G, Ripas.EMPTY
    assert realm.set_ripas(rec, RAM, RAM + 8 * G, Ripas.EMPTY) == RAM + 8 * G
    assert not any(RAM <= ipa < RAM + 8 * G for ipa in realm.data)
    assert realm.is_empty(RAM + 3 * G) and not realm.is_empty(RAM + 8 * G)
    shared = realm.map_shared(RAM | realm.shared_bit)
    assert shared and realm.shared
    model.ripas_addr, model.ripas_top, model.ripas_value = RAM, RAM + 8 * G, Ripas.RAM
    assert realm.set_ripas(rec, RAM, RAM + 8 * G, Ripas.RAM) == RAM + 8 * G
    assert not realm.is_empty(RAM) and not realm.shared
    realm.destroy()
    assert not h.rmm.granules()


def test_teardown_after_a_failure_midway_returns_everything() -> None:
    """A populate that fails half-way (the RMM refuses an IPA outside the
    realm) leaves delegated granules behind; destroy() still returns all."""
    h, realm = host_realm(ipa_bits=33)
    realm.init_ripas(RAM - (1 << 30), RAM - (1 << 30) + (2 << 20))
    with pytest.raises(RmiError) as err:
        realm.populate(RAM + (1 << 32), b"x" * (3 * G))
    assert err.value.status == RmiStatus.ERROR_INPUT
    realm.destroy()
    assert not h.rmm.granules() and not realm.delegated


def test_peak_counts_delegated_granules() -> None:
    _, realm = host_realm()
    realm.init_ripas(RAM, RAM + (2 << 20))
    realm.populate(RAM, b"x" * (10 * G))
    peak = realm.peak_delegated
    assert peak >= 10 + 1 + len(realm.roots)
    realm.destroy()
    assert realm.peak_delegated == peak and not realm.delegated
