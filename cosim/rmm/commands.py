"""The RMI command table of each ABI version: FID -> handler, argument and output counts."""

from __future__ import annotations

from . import cmd_data, cmd_granule, cmd_realm, cmd_rec, cmd_ripas, cmd_rtt, cmd_system
from .abi import RmiFid
from .rmm import Command, Handler

# FID: (handler, number of arguments X1.., number of outputs X1..)
_V1_0: dict[RmiFid, tuple[Handler, int, int]] = {
    RmiFid.VERSION: (cmd_system.rmi_version, 1, 2),
    RmiFid.FEATURES: (cmd_system.rmi_features, 1, 1),
    RmiFid.GRANULE_DELEGATE: (cmd_granule.granule_delegate, 1, 0),
    RmiFid.GRANULE_UNDELEGATE: (cmd_granule.granule_undelegate, 1, 0),
    RmiFid.REALM_CREATE: (cmd_realm.realm_create, 2, 0),
    RmiFid.REALM_ACTIVATE: (cmd_realm.realm_activate, 1, 0),
    RmiFid.REALM_DESTROY: (cmd_realm.realm_destroy, 1, 0),
    RmiFid.REC_AUX_COUNT: (cmd_realm.rec_aux_count, 1, 1),
    RmiFid.REC_CREATE: (cmd_rec.rec_create, 3, 0),
    RmiFid.REC_DESTROY: (cmd_rec.rec_destroy, 1, 0),
    RmiFid.REC_ENTER: (cmd_rec.rec_enter, 2, 0),
    RmiFid.PSCI_COMPLETE: (cmd_rec.psci_complete, 3, 0),
    RmiFid.RTT_CREATE: (cmd_rtt.rtt_create, 4, 0),
    RmiFid.RTT_DESTROY: (cmd_rtt.rtt_destroy, 3, 2),
    RmiFid.RTT_FOLD: (cmd_rtt.rtt_fold, 3, 1),
    RmiFid.RTT_READ_ENTRY: (cmd_rtt.rtt_read_entry, 3, 4),
    RmiFid.RTT_MAP_UNPROTECTED: (cmd_rtt.rtt_map_unprotected, 4, 0),
    RmiFid.RTT_UNMAP_UNPROTECTED: (cmd_rtt.rtt_unmap_unprotected, 3, 1),
    RmiFid.RTT_INIT_RIPAS: (cmd_ripas.rtt_init_ripas, 3, 1),
    RmiFid.RTT_SET_RIPAS: (cmd_ripas.rtt_set_ripas, 4, 1),
    RmiFid.DATA_CREATE: (cmd_data.data_create, 5, 0),
    RmiFid.DATA_CREATE_UNKNOWN: (cmd_data.data_create_unknown, 3, 0),
    RmiFid.DATA_DESTROY: (cmd_data.data_destroy, 2, 2),
}

_TABLES = {(1, 0): _V1_0}


def commands_for(abi_version: tuple[int, int]) -> dict[int, Command]:
    table = _TABLES.get(tuple(abi_version))  # type: ignore[arg-type]
    if table is None:
        raise ValueError(f"no RMI command table for ABI version {abi_version}")
    return {
        int(fid): Command(int(fid), fid.rmi_name, h, nargs, nouts)
        for fid, (h, nargs, nouts) in table.items()
    }
