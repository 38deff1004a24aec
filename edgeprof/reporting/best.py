"""The fastest variant of each model x backend x batch x device among results (what `--best` reports)."""
from __future__ import annotations

from ..result import Result
from .table import headline


def fastest_variants(results: list[Result]) -> list[tuple[Result, Result]]:
    """(fastest, reference) per group of ok results that differ only in variant, for groups of two or more;
    the reference is the first result of the group (eager fp32 in --best's order). The jobs of a --jobs run are
    left out: their aggregate stands for them, and they differ in load, not in variant."""
    groups: dict[tuple, list[Result]] = {}
    for r in results:
        if r.status == "ok" and headline(r)[0] is not None and not (r.jobs and not r.jobs.get("aggregate")):
            groups.setdefault((r.device, r.model, r.backend, r.batch), []).append(r)
    return [(min(group, key=lambda r: headline(r)[0]), group[0]) for group in groups.values() if len(group) > 1]


def describe_fastest(fastest: Result, reference: Result) -> str:
    latency, what = headline(fastest)
    line = (f"fastest {fastest.backend} variant for {fastest.model} batch {fastest.batch} on {fastest.device}: "
            f"{fastest.figures.get('variant') or 'default'}, {latency:.4g} ms ({what})")
    if fastest is not reference:
        line += f", {headline(reference)[0] / latency:.2f}x {reference.figures.get('variant') or 'the first'}"
    compile_s = fastest.figures.get("compile_s")
    if compile_s:
        line += f"; compiling took {compile_s:.1f} s, not counted in latency"
    return line
