"""Two RECs of one realm run on two CPUs while a third CPU changes the realm's
memory through RMI: no deadlock, and every realm-visible result is consistent."""

from __future__ import annotations

import struct
import threading

from realm_harness import BUF, UNBACKED, RealmRun, smc_esr
from rmm_invariants import check_consistency

from cosim.rmm.abi import HashAlgorithm, RmiFid, RsiFid, RsiStatus
from cosim.rmm.exits import RealmTrap, RecExitDecision, Resume, TrapKind
from cosim.rmm.measurement import Rim
from cosim.rmm.results import EnterRealm
from cosim.rmm.structs import RmiRecEnter

ROUNDS = 150


def test_two_recs_and_the_host_at_once() -> None:
    rr = RealmRun(recs=2)
    rr.rec(1).runnable = True
    rmm = rr.rmm
    runs = [rr.h.ns(), rr.h.ns()]
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def vcpu(index: int) -> None:
        try:
            r = rmm.handle_rmi(RmiFid.REC_ENTER, [rr.rec_pa(index), runs[index]], index)
            assert isinstance(r, EnterRealm)
            rec = r.rec
            assert rmm.realm_entry(rec, r.enter) is None
            barrier.wait()
            for i in range(ROUNDS):
                x = rec.context.gprs
                x[0:4] = [RsiFid.MEASUREMENT_EXTEND, 1 + index, 8, i]
                assert isinstance(rmm.realm_exit(rec, RealmTrap(TrapKind.SYNC, smc_esr())), Resume)
                assert x[0] == RsiStatus.SUCCESS
                x[0:3] = [RsiFid.IPA_STATE_GET, 0, 1 << 20]
                assert isinstance(rmm.realm_exit(rec, RealmTrap(TrapKind.SYNC, smc_esr())), Resume)
                assert x[0] == RsiStatus.SUCCESS
                if i % 10 == 0:  # leave for an interrupt and come back
                    d = rmm.realm_exit(rec, RealmTrap(TrapKind.IRQ))
                    assert isinstance(d, RecExitDecision) and d.x0 == 0
                    RmiRecEnter().pack(rr.h.memory, runs[index])
                    r = rmm.handle_rmi(RmiFid.REC_ENTER, [rr.rec_pa(index), runs[index]], index)
                    assert isinstance(r, EnterRealm)
                    assert rmm.realm_entry(rec, r.enter) is None
            rmm.realm_exit(rec, RealmTrap(TrapKind.IRQ))
        except BaseException as e:
            errors.append(e)

    def host() -> None:
        try:
            barrier.wait()
            pages = [rr.h.alloc() for _ in range(4)]
            for i in range(ROUNDS):
                pa = pages[i % 4]
                rmm.handle_rmi(RmiFid.GRANULE_DELEGATE, [pa], 2)
                rmm.handle_rmi(RmiFid.DATA_CREATE_UNKNOWN, [rr.rd, pa, UNBACKED], 2)
                rmm.handle_rmi(RmiFid.DATA_DESTROY, [rr.rd, UNBACKED], 2)
                rmm.handle_rmi(RmiFid.GRANULE_UNDELEGATE, [pa], 2)
                rmm.handle_rmi(RmiFid.RTT_READ_ENTRY, [rr.rd, BUF, 3], 2)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=vcpu, args=(i,)) for i in range(2)]
    threads.append(threading.Thread(target=host))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "deadlock"
    assert not errors, errors
    rim = Rim(HashAlgorithm.SHA_256)
    for index in range(2):
        rem = bytes(64)
        for i in range(ROUNDS):
            rem = rim.extend_rem(rem, struct.pack("<Q", i))
        assert bytes(rr.realm.measurements[1 + index]) == rem
    check_consistency(rmm)
