"""`edgeprof parse`: read a log of caffe time, trtexec, tegrastats, nvidia-smi, ... as a result."""
from __future__ import annotations

import json
import sys

import click
from rich.table import Table

from ..parsers import KINDS as PARSE_KINDS
from ..parsers import decode, parse_text
from .common import console, errors, fail, json_option, main


@main.command()
@click.argument("kind", type=click.Choice(list(PARSE_KINDS)))
@click.argument("log", type=click.File("rb"))
@click.option("--fields", help="nvidia-smi without a header line: the --query-gpu fields, comma-separated.")
@click.option("--invocations", "each", is_flag=True,
              help="JSON Lines: every invocation found (for tegrastats and nvidia-smi every sample or GPU row), "
                   "with its number, lines, pasted command and the output format recognized.")
@json_option
def parse(kind, log, fields, each, as_json):
    """Parse a log you already have: KIND is one of the tools edgeprof drives (use - for stdin).

    The file is read as it is parsed (any size). Where a paste holds several runs of the tool, the last one
    is reported (for trtexec the last complete one); --invocations prints each."""
    # Imported here: only this command uses them.
    import itertools

    from ..parsers import ROW_KINDS, invocations
    from ..parsers.lines import MAX_LINE_CHARS

    options = {"fields": fields.split(",")} if fields else {}
    if options and kind != "nvidia-smi":
        raise click.BadParameter("--fields only applies to nvidia-smi", param_hint="--fields")
    source = decode(log, log.name)
    notes = []
    try:
        if each:
            for invocation in invocations(kind, source, **options):
                print(json.dumps(invocation.to_dict()))
        elif kind in ROW_KINDS:
            found = invocations(kind, source, **options)
            rows = [next(found)]  # NothingFound before anything is printed
            count = rows[0].number
            if as_json:
                # One JSON array written row by row, so that a log of any length takes bounded memory.
                sys.stdout.write("[")
                for index, row in enumerate(itertools.chain(rows, found)):
                    sys.stdout.write((", " if index else "") + json.dumps(row.record.to_dict()))
                    count = row.number
                print("]")
            else:
                for row in itertools.chain(rows, found):
                    console.print_json(json.dumps(row.record.to_dict()))
                    count = row.number
            if count > 1:
                notes.append(f"rows of {count} invocations; --invocations tells them apart")
        else:
            parsed = parse_text(kind, source, **options)
    except ValueError as e:
        failure = str(e) if str(e).startswith(f"{log.name}:") else f"{log.name}: {e}"
    else:
        failure = None
    if getattr(source, "skipped", 0):
        notes.append(f"{source.skipped} line(s) longer than {MAX_LINE_CHARS // 1024} KiB skipped (no tool "
                     f"prints lines that long)")
    for note in notes:
        errors.print(f"{log.name}: {note}", style="dim", highlight=False)
    if failure:
        fail(failure)
    if each or kind in ROW_KINDS:
        return
    if as_json:
        print(json.dumps(parsed))
    elif kind == "caffe-time":
        for key, value in parsed.items():
            if key != "layers":
                console.print(f"{key:>20}: {value}", highlight=False)
        table = Table("layer", "forward ms", "backward ms")
        for layer in parsed["layers"]:
            table.add_row(layer["name"], str(layer["forward_ms"]), str(layer["backward_ms"]))
        console.print(table)
    else:
        console.print_json(json.dumps(parsed))
