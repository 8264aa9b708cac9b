"""`cosim compare`'s normaliser and report (no QEMU: hand-made recordings)."""

from __future__ import annotations

from cosim.compare.normalise import normalise
from cosim.compare.record import Call, Recording
from cosim.compare.report import compare
from cosim.rmm.abi import RecExitReason, RmiFid

POOL = (0x4400_0000, 0x4800_0000)
OK, ERROR_INPUT = 0, 1


def _exit(reason: int, **fields: int) -> dict[str, int]:
    ex = {"exit_reason": reason, "esr": 0, "far": 0, "hpfar": 0, "imm": 0,
          "ripas_base": 0, "ripas_top": 0, "ripas_value": 0}
    ex.update({f"x{i}": 0 for i in range(7)})
    ex.update(fields)
    return ex


def _lifecycle(base: int, aux: int = 2, status: int = OK, irq: int = 0,
               token_size: int = 0x400) -> Recording:
    """A realm created, a REC with `aux` auxiliary granules, run, destroyed."""
    rec = Recording("t", pool=(base, base + 0x400_0000))
    rd, params, rec_pa = base, base + 0x1000, base + 0x2000
    aux_pas = [base + 0x10_0000 + i * 0x1000 for i in range(aux)]
    run = base + 0x3000
    calls = [Call(RmiFid.GRANULE_DELEGATE, (rd,), (OK,)),
             Call(RmiFid.REALM_CREATE, (rd, params), (status,)),
             Call(RmiFid.REC_AUX_COUNT, (rd,), (OK, aux)),
             Call(RmiFid.GRANULE_DELEGATE, (rec_pa,), (OK,))]
    calls += [Call(RmiFid.GRANULE_DELEGATE, (pa,), (OK,)) for pa in aux_pas]
    calls.append(Call(RmiFid.REC_CREATE, (rd, rec_pa, params), (OK,)))
    calls += [Call(RmiFid.REC_ENTER, (rec_pa, run), (OK,), _exit(RecExitReason.IRQ))
              for _ in range(irq)]
    calls.append(Call(RmiFid.REC_ENTER, (rec_pa, run), (OK,),
                      _exit(RecExitReason.HOST_CALL, imm=0xC05C, x2=token_size)))
    calls.append(Call(RmiFid.REC_DESTROY, (rec_pa,), (OK,)))
    calls += [Call(RmiFid.GRANULE_UNDELEGATE, (pa,), (OK,)) for pa in [rec_pa, *aux_pas]]
    calls.append(Call(RmiFid.REALM_DESTROY, (rd,), (OK,)))
    calls.append(Call(RmiFid.GRANULE_UNDELEGATE, (rd,), (OK,)))
    rec.calls = calls
    rec.aux = set(aux_pas)
    rec.value("token size", token_size)
    return rec


def test_granules_are_named_by_delegation_not_address() -> None:
    a = normalise(_lifecycle(0x4400_0000))
    b = normalise(_lifecycle(0x6100_0000))
    assert a.calls == b.calls
    assert a.calls[0] == ("RMI_GRANULE_DELEGATE(ns as G0)", "SUCCESS")
    assert a.calls[1] == ("RMI_REALM_CREATE(G0, ns)", "SUCCESS")


def test_aux_granules_and_interrupted_entries_are_left_out() -> None:
    n = normalise(_lifecycle(0x4400_0000, aux=3, irq=2))
    assert n.aux_calls == 6
    assert n.irq_entries == 2
    assert not any("(AUX" in cmd or " AUX" in cmd for cmd, _ in n.calls)
    report = compare("s", "ours", normalise(_lifecycle(0x4400_0000, aux=0)), "theirs", n)
    assert [d.key for d in report.differences] == ["call 2: RMI_REC_AUX_COUNT(G0)"]
    assert report.differences[0].known, "the aux count is the RMM's choice"
    assert not report.unexplained
    assert any("auxiliary" in note for note in report.notes)


def test_same_runs_have_no_differences() -> None:
    report = compare("s", "a", normalise(_lifecycle(0x4400_0000)), "b",
                     normalise(_lifecycle(0x5000_0000)))
    assert report.differences == [] and report.calls > 0
    assert "no differences" in report.text()


def test_a_different_status_is_unexplained() -> None:
    report = compare("s", "a", normalise(_lifecycle(0x4400_0000)), "b",
                     normalise(_lifecycle(0x4400_0000, status=ERROR_INPUT)))
    assert [d.key for d in report.unexplained] == ["call 1: RMI_REALM_CREATE(G0, ns)"]
    assert report.unexplained[0].theirs == "ERROR_INPUT"
    assert "UNEXPLAINED" in report.text()


def test_an_exit_relaying_a_known_difference_is_known() -> None:
    report = compare("s", "a", normalise(_lifecycle(0x4400_0000, token_size=0x41E)), "b",
                     normalise(_lifecycle(0x4400_0000, token_size=0x856)))
    keys = {d.key: d for d in report.differences}
    assert keys["token size"].known
    exit_diff = next(d for k, d in keys.items() if "REC_ENTER" in k)
    assert exit_diff.known and "token size" in exit_diff.known
    assert not report.unexplained


def test_diverging_call_sequences_stop_the_call_comparison() -> None:
    a, b = _lifecycle(0x4400_0000), _lifecycle(0x4400_0000)
    b.calls.insert(1, Call(RmiFid.FEATURES, (0,), (OK, 0x1234)))
    report = compare("s", "a", normalise(a), "b", normalise(b))
    assert report.unexplained[0].key == "call 1: the call sequences diverge"
    assert report.calls == 1


def test_platform_claims_are_grouped_and_errors_are_problems() -> None:
    a, b = _lifecycle(0x4400_0000), _lifecycle(0x4400_0000)
    for i in range(5):
        b.value(f"platform.sw_components[{i}].type", "BL2")
    b.error = "RmiError: RMI_REC_ENTER failed"
    report = compare("s", "a", normalise(a), "b", normalise(b))
    assert len(report.differences) == 1 and report.differences[0].key.startswith("platform.*")
    assert report.problems and "stopped early on theirs" in report.problems[0]


def test_command_output_leaves_out_the_kernel_messages() -> None:
    from cosim.compare.run import command_output

    text = ("[    0.100000] booting\r\ncosim-init: ready\r\ncosim-attest: challenge 00\r\n"
            "cosim-attest: begin\r\nAAAA\r\ncosim-attest: end\r\nLinux\r\n"
            "[    2.500000] late message\r\ndone\r\ncosim-init: command exited with status 0\r\n"
            "[    3.000000] reboot: Power down\r\n")
    assert command_output(text) == "Linux\ndone"
    assert command_output("no marker here") == "(no init marker)"


def test_a_label_names_what_a_call_tests() -> None:
    rec = _lifecycle(0x4400_0000)
    rec.calls[1].label = "s2sz=60"
    assert normalise(rec).calls[1][0] == "RMI_REALM_CREATE(G0, ns) [s2sz=60]"
