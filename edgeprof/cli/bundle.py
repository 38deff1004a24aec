"""`edgeprof bundle` and `edgeprof import`: results packed with everything needed to audit or rerun them, and
a bundle's results added to a store (edgeprof.bundles)."""
from __future__ import annotations

import json

import click

from .. import limits
from ..bundles import MODEL_FILE_LIMIT_MB, import_bundle, write_bundle
from ..bundles.write import select
from .common import console, db_option, json_option, main, open_results_store


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e5 else f"{count / 1e3:.1f} kB"


@main.command(name="bundle")
@click.argument("result_ids", metavar="[RESULT_ID]...", nargs=-1, type=click.IntRange(*limits.RESULT_ID))
@click.option("--run", "run_ids", multiple=True, metavar="RUN_ID", help="Every result of this run (repeatable).")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="The .tar.gz to write.")
@click.option("--max-file-mb", type=click.FloatRange(0, 1e6), default=MODEL_FILE_LIMIT_MB, show_default=True,
              help="Model files (prototxt, TorchScript, ONNX) larger than this are listed by sha256, not included.")
@db_option
def bundle_command(result_ids, run_ids, output, max_file_mb, db):
    """Pack stored results into one .tar.gz to share or audit: each result's JSON (figures, method, power
    state, versions, board facts, commands), its raw log, the model files with their sha256 (up to
    --max-file-mb), a reproduce.sh that measures the same items with edgeprof, and a manifest with the sha256
    of every member. A --repeat summary brings its runs along."""
    with open_results_store(db) as store:
        results = select(store, result_ids, run_ids)
    summary = write_bundle(results, output, max_file_mb=max_file_mb)
    runs = sorted({r.run_id for r in results})
    included = [m for m in summary.models if m.member]
    console.print(f"{output}: {len(results)} result(s) of run {', '.join(runs)} "
                  f"({', '.join(sorted({r.device for r in results}))}), {_size(summary.bytes)}", highlight=False)
    console.print(f"  model files: {len(included)} included, {len(summary.models) - len(included)} listed by "
                  f"sha256 only", highlight=False)
    for model in summary.models:
        console.print(f"    {model.kind} {model.sha256[:12]} {model.path}: {model.note or 'included'}",
                      markup=False, highlight=False)
    console.print(f"  rerun: tar xzf {output} && sh edgeprof-bundle/reproduce.sh DEVICE; add to a store: "
                  f"edgeprof import {output}", markup=False, highlight=False)


@main.command(name="import")
@click.argument("bundles", metavar="BUNDLE...", nargs=-1, required=True, type=click.Path(dir_okay=False))
@db_option
@json_option
def import_command(bundles, db, as_json):
    """Add the results of bundles (edgeprof bundle) to the results store, e.g. a colleague's board's next to
    yours for `edgeprof compare`. Results the store already holds are recognized and not added twice. A
    bundle that is not what edgeprof writes (absolute or '..' paths, links, oversized members, members not
    matching the manifest's sha256, unusable JSON) is refused whole: nothing of it is written."""
    with open_results_store(db) as store:
        for path in bundles:
            report = import_bundle(path, store)
            runs = sorted({r.run_id for _, r in report.bundle.results})
            if as_json:
                print(json.dumps({"bundle": path, "runs": runs, "added": dict(report.added),
                                  "already_stored": dict(report.duplicates)}))
                continue
            new_ids = [new for _, new in report.added]
            console.print(f"{path}: {len(report.added)} result(s) added"
                          + (f" (ids {', '.join(map(str, new_ids))})" if new_ids else "")
                          + f", {len(report.duplicates)} already in {store.location}; run {', '.join(runs)}",
                          markup=False, highlight=False)
    if not as_json:
        console.print(f"compare: edgeprof compare --run {' --run '.join(runs)} --run YOUR_RUN", markup=False,
                      highlight=False)
