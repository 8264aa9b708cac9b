"""The RMM v1.0 specification (DEN0137 1.0-rel0), command by command, as data:
for every RMI (B4.3.N) and RSI (B5.3.N) command, its failure conditions with
their pre-conditions (in the spec's table order), its failure-condition
ordering constraints (B4.3.N.2.1: "[A, B] < [C, D]": both A and B precede both
C and D, B1.6), and the IDs of its success conditions (B4.3.N.3).

Transcribed from the spec text; the conformance tests check the RMM against
it (test_spec_conformance.py), so a wrong line here is a test that lies:
each entry names its section so it can be compared with the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cosim.rmm.abi import RmiFid, RsiFid

Ordering = tuple[tuple[str, ...], tuple[str, ...]]


@dataclass(frozen=True)
class SpecCommand:
    section: str
    failures: tuple[tuple[str, str], ...]
    """(ID, pre-condition) in the order of the spec's table."""
    orderings: tuple[Ordering, ...] = ()
    success: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)
    """Labels the RMM reports that are not failure conditions of the spec, and why."""

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label for label, _ in self.failures)


F = RmiFid
R = RsiFid

RD = (
    ("rd_align", "!AddrIsGranuleAligned(rd)"),
    ("rd_bound", "!PaIsDelegable(rd)"),
    ("rd_state", "Granule(rd).state != RD"),
)
RD_FIRST = (("rd_bound", "rd_state"),)

RMI: dict[RmiFid, SpecCommand] = {
    F.DATA_CREATE: SpecCommand(
        "B4.3.1",
        (
            ("src_align", "!AddrIsGranuleAligned(src)"),
            ("src_bound", "!PaIsDelegable(src)"),
            ("src_pas", "!GranuleAccessPermitted(src, PAS_NS)"),
            ("data_align", "!AddrIsGranuleAligned(data)"),
            ("data_bound", "!PaIsDelegable(data)"),
            ("data_state", "Granule(data).state != DELEGATED"),
            ("data_bound2", "(realm.feat_lpa2 == FEATURE_FALSE) && (UInt(data) >= 2^48)"),
            *RD,
            ("ipa_align", "!AddrIsGranuleAligned(ipa)"),
            ("ipa_bound", "!AddrIsProtected(ipa, realm)"),
            ("realm_state", "realm.state != REALM_NEW"),
            ("rtt_walk", "walk.level < RMM_RTT_PAGE_LEVEL"),
            ("rtte_state", "walk.rtte.state != UNASSIGNED"),
        ),
        (
            (("rd_bound", "rd_state"), ("realm_state",)),
            (("rd_bound", "rd_state"), ("rtt_walk", "rtte_state")),
            (("ipa_bound",), ("rtt_walk", "rtte_state")),
        ),
        ("data_state", "rtte_state", "rtte_ripas", "rtte_addr", "rim"),
    ),
    F.DATA_CREATE_UNKNOWN: SpecCommand(
        "B4.3.2",
        (
            ("data_align", "!AddrIsGranuleAligned(data)"),
            ("data_bound", "!PaIsDelegable(data)"),
            ("data_state", "Granule(data).state != DELEGATED"),
            ("data_bound2", "(realm.feat_lpa2 == FEATURE_FALSE) && (UInt(data) >= 2^48)"),
            *RD,
            ("ipa_align", "!AddrIsGranuleAligned(ipa)"),
            ("ipa_bound", "!AddrIsProtected(ipa, Realm(rd))"),
            ("rtt_walk", "walk.level < RMM_RTT_PAGE_LEVEL"),
            ("rtte_state", "walk.rtte.state != UNASSIGNED"),
        ),
        (
            (("rd_bound", "rd_state"), ("rtt_walk", "rtte_state")),
            (("ipa_bound",), ("rtt_walk", "rtte_state")),
        ),
        ("data_state", "data_content", "rtte_state", "rtte_addr"),
    ),
    F.DATA_DESTROY: SpecCommand(
        "B4.3.3",
        (
            *RD,
            ("ipa_align", "!AddrIsGranuleAligned(ipa)"),
            ("ipa_bound", "!AddrIsProtected(ipa, Realm(rd))"),
            ("rtt_walk", "walk.level < RMM_RTT_PAGE_LEVEL"),
            ("rtte_state", "walk.rtte.state != ASSIGNED"),
        ),
        (
            (("rd_bound", "rd_state"), ("rtt_walk", "rtte_state")),
            (("ipa_bound",), ("rtt_walk", "rtte_state")),
        ),
        ("data_state", "rtte_state", "ripas_ram", "data", "top"),
    ),
    F.FEATURES: SpecCommand("B4.3.4", (), (), ("index",)),
    F.GRANULE_DELEGATE: SpecCommand(
        "B4.3.5",
        (
            ("gran_align", "!AddrIsGranuleAligned(addr)"),
            ("gran_bound", "!PaIsDelegable(addr)"),
            ("gran_state", "Granule(addr).state != UNDELEGATED"),
            ("gran_gpt", "Granule(addr).gpt != GPT_NS"),
        ),
        (),
        ("gran_state", "gran_gpt"),
    ),
    F.GRANULE_UNDELEGATE: SpecCommand(
        "B4.3.6",
        (
            ("gran_align", "!AddrIsGranuleAligned(addr)"),
            ("gran_bound", "!PaIsDelegable(addr)"),
            ("gran_state", "Granule(addr).state != DELEGATED"),
        ),
        (),
        ("gran_gpt", "gran_state", "gran_content"),
    ),
    F.PSCI_COMPLETE: SpecCommand(
        "B4.3.7",
        (
            ("alias", "calling_rec == target_rec"),
            ("calling_align", "!AddrIsGranuleAligned(calling_rec)"),
            ("calling_bound", "!PaIsDelegable(calling_rec)"),
            ("calling_state", "Granule(calling_rec).state != REC"),
            ("target_align", "!AddrIsGranuleAligned(target_rec)"),
            ("target_bound", "!PaIsDelegable(target_rec)"),
            ("target_state", "Granule(target_rec).state != REC"),
            ("pending", "Rec(calling_rec).psci_pending != PSCI_REQUEST_PENDING"),
            ("owner", "Rec(target_rec).owner != Rec(calling_rec).owner"),
            ("target", "Rec(target_rec).mpidr != Rec(calling_rec).gprs[1]"),
            ("status", "!PsciReturnCodePermitted(Rec(calling_rec), Rec(target_rec), status)"),
        ),
        (),
        ("pending", "on_already", "on_success", "affinity_on", "affinity_off", "status", "args"),
    ),
    F.REALM_ACTIVATE: SpecCommand(
        "B4.3.8",
        (*RD, ("realm_state", "Realm(rd).state != REALM_NEW")),
        (((RD_FIRST[0]), ("realm_state",)),),
        ("realm_state",),
    ),
    F.REALM_CREATE: SpecCommand(
        "B4.3.9",
        (
            ("params_align", "!AddrIsGranuleAligned(params_ptr)"),
            ("params_bound", "!PaIsDelegable(params_ptr)"),
            ("params_pas", "!GranuleAccessPermitted(params_ptr, PAS_NS)"),
            ("params_valid", "!RmiRealmParamsIsValid(params_ptr)"),
            ("params_supp", "!RealmParamsSupported(params)"),
            ("alias", "AddrInRange(rd, params.rtt_base, (params.rtt_num_start - 1) * GRANULE)"),
            ("rd_align", "!AddrIsGranuleAligned(rd)"),
            ("rd_bound", "!PaIsDelegable(rd)"),
            ("rd_state", "Granule(rd).state != DELEGATED"),
            ("rtt_align", "!AddrIsAligned(params.rtt_base, params.rtt_num_start * GRANULE)"),
            ("rtt_num_level", "!RttConfigIsValid(params.s2sz, params.rtt_level_start, ...)"),
            ("rtt_state", "!RttsStateEqual(params.rtt_base, params.rtt_num_start, DELEGATED)"),
            ("vmid_valid", "!VmidIsValid(params.vmid) || !VmidIsFree(params.vmid)"),
        ),
        (),
        (
            "rd_state", "realm_state", "rec_index", "rtt_base", "rtt_state", "rtte_p_states",
            "rtte_up_states", "rtte_ripas", "lpa2", "ipa_width", "hash_algo", "rim", "rem",
            "rtt_level", "rtt_num", "vmid", "rpv", "num_recs",
        ),
    ),
    F.REALM_DESTROY: SpecCommand(
        "B4.3.10",
        (*RD, ("realm_live", "RealmIsLive(rd)")),
        ((RD_FIRST[0], ("realm_live",)),),
        ("rtt_state", "rd_state", "vmid"),
    ),
    F.REC_AUX_COUNT: SpecCommand("B4.3.11", RD, (), ("aux_count",)),
    F.REC_CREATE: SpecCommand(
        "B4.3.12",
        (
            ("params_align", "!AddrIsGranuleAligned(params_ptr)"),
            ("params_bound", "!PaIsDelegable(params_ptr)"),
            ("params_pas", "!GranuleAccessPermitted(params_ptr, PAS_NS)"),
            ("rec_align", "!AddrIsGranuleAligned(rec)"),
            ("rec_bound", "!PaIsDelegable(rec)"),
            ("rec_state", "Granule(rec).state != DELEGATED"),
            *RD,
            ("realm_state", "realm.state != REALM_NEW"),
            ("num_recs", "realm.num_recs == (2 ^ ImplFeatures().max_recs_order) - 1"),
            ("mpidr_index", "RecIndex(params.mpidr) != realm.rec_index"),
            ("num_aux", "params.num_aux != RecAuxCount(rd)"),
            ("aux_align", "!AuxAligned(params.aux, params.num_aux)"),
            ("aux_alias", "AuxAlias(rec, params.aux, params.num_aux)"),
            ("aux_state", "!AuxStateEqual(params.aux, params.num_aux, DELEGATED)"),
        ),
        ((RD_FIRST[0], ("realm_state", "num_recs")),),
        (
            "rec_index", "rec_gran_state", "rec_owner", "rec_attest", "rec_mpidr", "rec_state",
            "runnable", "not_runnable", "rec_gprs", "rec_pc", "rim", "rec_aux", "rec_aux_state",
            "ripas_addr", "ripas_top", "host_call", "num_recs",
        ),
    ),
    F.REC_DESTROY: SpecCommand(
        "B4.3.13",
        (
            ("rec_align", "!AddrIsGranuleAligned(rec_ptr)"),
            ("rec_bound", "!PaIsDelegable(rec_ptr)"),
            ("rec_gran_state", "Granule(rec_ptr).state != REC"),
            ("rec_state", "rec.state == REC_RUNNING"),
        ),
        ((("rec_bound", "rec_gran_state"), ("rec_state",)),),
        ("rec_gran_state", "rec_aux_state", "num_recs"),
    ),
    F.REC_ENTER: SpecCommand(
        "B4.3.14",
        (
            ("run_align", "!AddrIsGranuleAligned(run_ptr)"),
            ("run_bound", "!PaIsDelegable(run_ptr)"),
            ("run_pas", "!GranuleAccessPermitted(run_ptr, PAS_NS)"),
            ("rec_align", "!AddrIsGranuleAligned(rec)"),
            ("rec_bound", "!PaIsDelegable(rec)"),
            ("rec_gran_state", "Granule(rec).state != REC"),
            ("realm_new", "Realm(Rec(rec).owner).state == REALM_NEW"),
            ("system_off", "Realm(Rec(rec).owner).state == REALM_SYSTEM_OFF"),
            ("rec_state", "Rec(rec).state == REC_RUNNING"),
            ("rec_runnable", "Rec(rec).flags.runnable == NOT_RUNNABLE"),
            ("rec_mmio", "run.enter.flags.emul_mmio == RMI_EMULATED_MMIO && !EMULATABLE_ABORT"),
            ("rec_gicv3", "!Gicv3ConfigIsValid(run.enter.gicv3_hcr, run.enter.gicv3_lrs)"),
            ("rec_psci", "Rec(rec).psci_pending == PSCI_REQUEST_PENDING"),
        ),
        (
            (
                ("rec_align", "rec_bound", "rec_gran_state", "run_pas", "run_bound", "run_align"),
                (
                    "rec_state", "rec_runnable", "rec_mmio", "realm_new", "system_off",
                    "rec_gicv3", "rec_psci",
                ),
            ),
        ),
        ("rec_exit", "rec_emul_abt"),
    ),
    F.RTT_CREATE: SpecCommand(
        "B4.3.15",
        (
            *RD,
            ("level_bound", "!RttLevelIsValid(rd, level) || RttLevelIsStarting(rd, level)"),
            ("ipa_align", "!AddrIsRttLevelAligned(ipa, level - 1)"),
            ("ipa_bound", "UInt(ipa) >= (2 ^ Realm(rd).ipa_width)"),
            ("rtt_align", "!AddrIsGranuleAligned(rtt)"),
            ("rtt_bound", "!PaIsDelegable(rtt)"),
            ("rtt_state", "Granule(rtt).state != DELEGATED"),
            ("rtt_bound2", "(realm.feat_lpa2 == FEATURE_FALSE) && (UInt(rtt) >= 2^48)"),
            ("rtt_walk", "walk.level < level - 1"),
            ("rtte_state", "walk.rtte.state == TABLE"),
        ),
        (
            (("rd_bound", "rd_state"), ("rtt_walk", "rtte_state")),
            (("level_bound", "ipa_bound"), ("rtt_walk", "rtte_state")),
        ),
        ("rtt_state", "rtte_state", "rtte_addr", "rtte_c_ripas", "rtte_c_state", "rtte_c_addr"),
    ),
    F.RTT_DESTROY: SpecCommand(
        "B4.3.16",
        (
            *RD,
            ("level_bound", "!RttLevelIsValid(rd, level) || RttLevelIsStarting(rd, level)"),
            ("ipa_align", "!AddrIsRttLevelAligned(ipa, level - 1)"),
            ("ipa_bound", "UInt(ipa) >= (2 ^ Realm(rd).ipa_width)"),
            ("rtt_walk", "walk.level < level - 1"),
            ("rtte_state", "walk.rtte.state != TABLE"),
            ("rtt_live", "RttIsLive(Rtt(walk.rtte.addr))"),
        ),
        (
            (("rd_bound", "rd_state"), ("rtt_walk", "rtte_state", "rtt_live")),
            (("level_bound", "ipa_bound"), ("rtt_walk", "rtte_state")),
        ),
        ("rtte_state", "ripas", "rtt_state", "rtt", "top"),
    ),
    F.RTT_FOLD: SpecCommand(
        "B4.3.17",
        (
            *RD,
            ("level_bound", "!RttLevelIsValid(rd, level) || RttLevelIsStarting(rd, level)"),
            ("ipa_align", "!AddrIsRttLevelAligned(ipa, level - 1)"),
            ("ipa_bound", "UInt(ipa) >= (2 ^ Realm(rd).ipa_width)"),
            ("rtt_walk", "walk.level < level - 1"),
            ("rtte_state", "walk.rtte.state != TABLE"),
            ("rtt_homo", "!RttIsHomogeneous(Rtt(walk.rtte.addr))"),
        ),
        (
            (("rd_bound", "rd_state"), ("rtt_walk", "rtte_state", "rtt_homo")),
            (("level_bound", "ipa_bound"), ("rtt_walk", "rtte_state")),
        ),
        ("rtte_state", "rtte_addr", "rtte_attr", "rtte_ripas", "rtt_state", "rtt"),
    ),
    F.RTT_INIT_RIPAS: SpecCommand(
        "B4.3.18",
        (
            *RD,
            ("size_valid", "UInt(top) <= UInt(base)"),
            ("top_bound", "!AddrIsProtected(ToAddress(UInt(top) - RMM_GRANULE_SIZE), realm)"),
            ("realm_state", "realm.state != REALM_NEW"),
            ("base_align", "!AddrIsRttLevelAligned(base, walk.level)"),
            ("rtte_state", "walk.rtte.state != UNASSIGNED"),
            ("top_gran_align", "!AddrIsGranuleAligned(top)"),
            ("no_progress", "UInt(base) == UInt(walk_top)"),
        ),
        (
            (("rd_bound", "rd_state"), ("realm_state",)),
            (("rd_bound", "rd_state"), ("base_align", "rtte_state")),
            (("rd_bound", "rd_state"), ("no_progress",)),
            (("top_gran_align",), ("no_progress",)),
        ),
        ("rtte_ripas", "rim", "out_top"),
    ),
    F.RTT_MAP_UNPROTECTED: SpecCommand(
        "B4.3.19",
        (
            ("attr_valid", "!RttDescriptorIsValidForUnprotected(desc)"),
            *RD,
            ("level_bound", "!RttLevelIsBlockOrPage(rd, level)"),
            ("addr_align", "!AddrIsRttLevelAligned(rtte.addr, level)"),
            ("addr_bound", "(realm.feat_lpa2 == FEATURE_FALSE) && (UInt(rtte.addr) >= 2^48)"),
            ("ipa_align", "!AddrIsRttLevelAligned(ipa, level)"),
            ("ipa_bound", "UInt(ipa) >= (2 ^ ipa_width) || AddrIsProtected(ipa, Realm(rd))"),
            ("rtt_walk", "walk.level < level"),
            ("rtte_state", "walk.rtte.state != UNASSIGNED_NS"),
        ),
        (
            (("rd_bound", "rd_state"), ("rtt_walk", "rtte_state")),
            (("level_bound", "ipa_bound"), ("rtt_walk", "rtte_state")),
        ),
        ("rtte_state", "rtte_contents"),
    ),
    F.RTT_READ_ENTRY: SpecCommand(
        "B4.3.20",
        (
            *RD,
            ("level_bound", "!RttLevelIsValid(rd, level)"),
            ("ipa_align", "!AddrIsRttLevelAligned(ipa, level)"),
            ("ipa_bound", "UInt(ipa) >= (2 ^ Realm(rd).ipa_width)"),
        ),
        (),
        ("state", "state_invalid", "state_prot", "state_unprot", "ripas_prot", "ripas_unprot"),
    ),
    F.RTT_SET_RIPAS: SpecCommand(
        "B4.3.21",
        (
            *RD,
            ("rec_align", "!AddrIsGranuleAligned(rec_ptr)"),
            ("rec_bound", "!PaIsDelegable(rec_ptr)"),
            ("rec_gran_state", "Granule(rec_ptr).state != REC"),
            ("rec_state", "rec.state == REC_RUNNING"),
            ("rec_owner", "rec.owner != rd"),
            ("size_valid", "UInt(top) <= UInt(base)"),
            ("base_bound", "base != rec.ripas_addr"),
            ("top_bound", "UInt(top) > UInt(rec.ripas_top)"),
            ("base_align", "!AddrIsRttLevelAligned(base, walk.level) && ripas != ripas_value"),
            ("top_gran_align", "!AddrIsGranuleAligned(top)"),
            ("no_progress", "UInt(base) == UInt(walk_top) && ripas != rec.ripas_value"),
        ),
        (
            (("rd_bound", "rd_state"), ("base_align",)),
            (("rd_bound", "rd_state"), ("no_progress",)),
            (("rec_bound", "rec_gran_state"), ("rec_state", "rec_owner")),
            (("base_bound",), ("base_align",)),
            (("top_gran_align",), ("no_progress",)),
        ),
        ("rtte_ripas", "ripas_addr", "out_top"),
    ),
    F.RTT_UNMAP_UNPROTECTED: SpecCommand(
        "B4.3.22",
        (
            *RD,
            ("level_bound", "!RttLevelIsBlockOrPage(rd, level)"),
            ("ipa_align", "!AddrIsRttLevelAligned(ipa, level)"),
            ("ipa_bound", "UInt(ipa) >= (2 ^ ipa_width) || AddrIsProtected(ipa, Realm(rd))"),
            ("rtt_walk", "walk.level < level"),
            ("rtte_state", "walk.rtte.state != ASSIGNED_NS"),
        ),
        (
            (("rd_bound", "rd_state"), ("rtt_walk", "rtte_state")),
            (("level_bound", "ipa_bound"), ("rtt_walk", "rtte_state")),
        ),
        ("rtte_state", "top"),
    ),
    F.VERSION: SpecCommand(
        "B4.3.23",
        (),
        (),
        (),
        extra={
            "version": "not a failure condition: B4.3.23 outcomes b) and c), an "
            "unsupported requested revision, give RMI_ERROR_INPUT with lower/higher set"
        },
    ),
}

RSI: dict[RsiFid, SpecCommand] = {
    R.ATTESTATION_TOKEN_CONTINUE: SpecCommand(
        "B5.3.1",
        (
            ("addr_align", "!AddrIsGranuleAligned(addr)"),
            ("addr_bound", "!AddrIsProtected(addr, realm)"),
            ("offset_bound", "offset >= RMM_GRANULE_SIZE"),
            ("size_overflow", "offset + size < offset"),
            ("size_bound", "offset + size > RMM_GRANULE_SIZE"),
            ("state", "rec.attest_state != ATTEST_IN_PROGRESS"),
            ("unknown", "Token generation failed for an unknown or IMPDEF reason."),
        ),
        (),
        ("incomplete", "complete"),
    ),
    R.ATTESTATION_TOKEN_INIT: SpecCommand("B5.3.2", (), (), ("state", "challenge")),
    R.FEATURES: SpecCommand("B5.3.3", (), (), ("index",)),
    R.HOST_CALL: SpecCommand(
        "B5.3.4",
        (
            ("addr_align", "!AddrIsAligned(addr, 256)"),
            ("addr_bound", "!AddrIsProtected(addr, realm)"),
        ),
    ),
    R.IPA_STATE_GET: SpecCommand(
        "B5.3.5",
        (
            ("base_align", "!AddrIsGranuleAligned(base)"),
            ("end_align", "!AddrIsGranuleAligned(top)"),
            ("size_valid", "UInt(top) <= UInt(base)"),
            ("rgn_bound", "!AddrRangeIsProtected(base, top, realm)"),
        ),
    ),
    R.IPA_STATE_SET: SpecCommand(
        "B5.3.6",
        (
            ("base_align", "!AddrIsGranuleAligned(base)"),
            ("top_align", "!AddrIsGranuleAligned(top)"),
            ("size_valid", "UInt(top) <= UInt(base)"),
            ("rgn_bound", "!AddrRangeIsProtected(base, top, realm)"),
            ("ripas_valid", "(ripas != RSI_EMPTY) && (ripas != RSI_RAM)"),
        ),
        (),
        ("new_base", "response"),
    ),
    R.MEASUREMENT_EXTEND: SpecCommand(
        "B5.3.7",
        (("index_bound", "index < 1 || index > 4"), ("size_bound", "size > 64")),
        (),
        ("realm_meas",),
    ),
    R.MEASUREMENT_READ: SpecCommand("B5.3.8", (("index_bound", "index > 4"),)),
    R.REALM_CONFIG: SpecCommand(
        "B5.3.9",
        (
            ("addr_align", "!AddrIsGranuleAligned(addr)"),
            ("addr_bound", "!AddrIsProtected(addr, realm)"),
        ),
        (),
        ("ipa_width", "hash_algo"),
    ),
    R.VERSION: SpecCommand("B5.3.10", ()),
}
