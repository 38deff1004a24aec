"""`edgeprof models`: what each model is (input, parameters, MACs, layers)."""
from __future__ import annotations

import json

import click
from rich.table import Table

from ..models import catalog_names, describe, resolve
from .common import console, json_option, main


@main.command()
@click.argument("files", metavar="[MODEL]...", nargs=-1)
@click.option("--layers", "per_layer", is_flag=True, help="Also each layer: output shape, params, MACs, share.")
@json_option
def models(files, per_layer, as_json):
    """The catalog models, or the MODELs named (catalog names or deploy .prototxt paths): input shape,
    parameters, multiply-accumulates, and which layers could not be counted."""
    rows = [describe(resolve(name), per_layer=per_layer) for name in files or catalog_names()]
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return
    table = Table("model", "input", "params", "MACs (batch 1)", "layers", "counted")
    for row in rows:
        uncounted = ", ".join(f"{u['type']} x{u['count']} (line {u['first_line']})" for u in row["uncounted"])
        table.add_row(row["name"], "x".join(map(str, row["input_shape"] or [])), f"{row['params']:,}",
                      f"{row['macs'] / 1e9:.3f} G", str(row["layers"]),
                      "all" if row["complete"] else f"up to the first of: {uncounted or 'an unresolved bottom'}")
    console.print(table)
    for row in rows if per_layer else []:
        layers = Table("layer", "type", "line", "output (batch 1)", "params", "MACs", "share",
                       title=row["name"], title_justify="left")
        for one in row["per_layer"]:
            layers.add_row(one["name"], one["type"], str(one["line"]),
                           "x".join(map(str, one["output_shape"])) if one["output_shape"] else "not counted",
                           f"{one['params']:,}", f"{one['macs']:,}",
                           f"{one['macs_share']:.1%}" if one["macs_share"] is not None else "-")
        console.print(layers)
    if not files:
        console.print("Any path to a deploy .prototxt works as a model too: edgeprof models FILE [--layers].")
