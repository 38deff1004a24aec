"""`edgeprof devices`: the boards edgeprof knows."""
from __future__ import annotations

import json

from rich.table import Table

from ..devices import DeviceError, builtin_profiles, load_devices
from .common import console, fail, inventory_option, json_option, main


@main.command()
@inventory_option
@json_option
def devices(inventory, as_json):
    """List the devices edgeprof knows: `local`, your inventory, and the built-in families."""
    try:
        known = load_devices(inventory)
    except DeviceError as e:
        fail(str(e))
    if as_json:
        for d in known.values():
            print(json.dumps(d.to_dict()))
        return
    table = Table("device", "family", "address", "tags", "defined in")
    for d in known.values():
        table.add_row(d.name, d.profile.family, d.address, ",".join(d.tags), d.defined_in)
    console.print(table)
    families = Table("family", "kind", "clocks", "max power mode", "description", title="families")
    for p in sorted(builtin_profiles().values(), key=lambda p: p.family):
        families.add_row(p.family, p.kind, p.clocks, p.max_power_mode or "-", p.description)
    console.print(families)
