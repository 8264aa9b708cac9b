"""Four CPUs hammer the RMM at once; the result must be consistent."""

from __future__ import annotations

import random
import threading

from rmm_host import G, Host
from rmm_invariants import check_consistency

from cosim.rmm import GranuleState
from cosim.rmm.abi import RmiFid
from cosim.rmm.results import EnterRealm

F = RmiFid
CPUS = 4


def test_four_cpus_hammer_the_rmm() -> None:
    h = Host(rec_aux_count=1)
    rmm = h.rmm
    shared = [h.alloc() for _ in range(8)]  # every CPU fights over these
    own = [[h.alloc() for _ in range(8)] for _ in range(CPUS)]
    realm_sets = [[h.alloc() for _ in range(6)] for _ in range(CPUS)]
    r = h.create_realm()
    h.create_rtts(r.rd, 0, 3)
    params = [
        h.ns(h.realm_params(vmid=100 + cpu, rtt_base=realm_sets[cpu][0]).to_bytes())
        for cpu in range(CPUS)
    ]
    dup_vmid = h.ns(h.realm_params(vmid=200, rtt_base=realm_sets[0][0]).to_bytes())
    errors: list[BaseException] = []
    successes = [0] * CPUS
    barrier = threading.Barrier(CPUS)

    def cpu_main(cpu: int) -> None:
        rnd = random.Random(cpu)
        call = rmm.handle_rmi
        try:
            barrier.wait()
            for i in range(300):
                pa = rnd.choice(shared + own[cpu])
                fid = F.GRANULE_DELEGATE if rnd.random() < 0.5 else F.GRANULE_UNDELEGATE
                if call(fid, [pa], cpu).x[0] == 0:
                    successes[cpu] += 1
                # all CPUs add and remove DATA at the same IPAs of one realm
                ipa = rnd.randrange(8) * G
                data = rnd.choice(shared)
                call(F.DATA_CREATE_UNKNOWN, [r.rd, data, ipa], cpu)
                call(F.DATA_DESTROY, [r.rd, rnd.randrange(8) * G], cpu)
                if i % 20 == 0:
                    # create and destroy a realm of its own (its roots/rd may be shared-fought)
                    rs = realm_sets[cpu]
                    for pa in rs[:3]:
                        call(F.GRANULE_DELEGATE, [pa], cpu)
                    call(F.REALM_CREATE, [rs[2], params[cpu]], cpu)
                    call(F.REALM_CREATE, [rs[2], dup_vmid], cpu)
                    call(F.REALM_DESTROY, [rs[2]], cpu)
                if i % 50 == 0:
                    rec = h.rmm.rec_at(r.recs[0]) if r.recs else None
                    if rec is not None:
                        res = call(F.REC_ENTER, [rec.pa, h.ns()], cpu)
                        if isinstance(res, EnterRealm):
                            rmm.rec_enter_complete(res.rec)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=cpu_main, args=(cpu,)) for cpu in range(CPUS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "deadlock"
    assert not errors, errors
    assert sum(successes) > 0
    check_consistency(rmm)
    # every realm that a CPU created was destroyed again, or is still whole
    for realm in rmm.realms.values():
        assert rmm.granule_state(realm.rd) is GranuleState.RD
