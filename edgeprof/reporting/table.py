"""The terminal table: one row per result, every latency labelled with its statistic and span."""
from __future__ import annotations

from rich.table import Table

from ..result import Result
from .terminal import styled


def headline(result: Result) -> tuple[float | None, str]:
    """The latency a row shows and what it is: the median where the backend measured one, else the mean."""
    value, statistic = result.latency.headline
    return (value, f"{statistic}, {result.span}") if statistic else (None, "")


def backend_label(result: Result, with_repeat: bool = True) -> str:
    """The backend and, where it ran a variant (fp16, CUDA graph...), which, on what processor (GPU), in which
    power mode of a --power-modes sweep, how many concurrent jobs or which of them (--jobs), and (unless
    with_repeat is false) which run of a --repeat it is."""
    repeat = (result.repeat or {}) if with_repeat else {}
    jobs = result.jobs or {}
    # The index --gpus ran it on (caffe's own settings.gpu says only whether it ran on a GPU at all); a stored
    # document from another writer may hold anything there.
    gpu = result.settings.get("gpu_index")
    gpu = gpu if isinstance(gpu, int) and not isinstance(gpu, bool) else None
    swept = result.state.get("power_sweep")
    mode = swept.get("mode_name") if isinstance(swept, dict) else None
    details = [d for d in (result.figures.get("variant"), result.settings.get("processor"),
                           f"mode {mode}" if isinstance(mode, str) else None,
                           f"GPU {gpu}" if gpu is not None else None,
                           f"{jobs['jobs']} jobs" + _on_gpus(jobs.get("gpus") or [None])
                           if jobs.get("aggregate") else
                           f"job {jobs['index']} of {jobs['of']}" if jobs else None,
                           f"summary of {repeat['runs']} runs" if repeat.get("summary") else
                           f"run {repeat['index']} of {repeat['of']}" if repeat else None) if d]
    return f"{result.backend} ({', '.join(details)})" if details else result.backend


def _on_gpus(gpus: list) -> str:
    """' on GPU 0', ' on GPUs 0,1' for an aggregate's jobs, each GPU once; '' for jobs on the default device."""
    named = list(dict.fromkeys(gpus))
    return "" if None in named else f" on GPU{'s' if len(named) > 1 else ''} {','.join(map(str, named))}"


def power_figures(result: Result) -> tuple[float | None, float | None]:
    """Board power (W, mean over the timed window) and energy per inference (J), where telemetry had them."""
    power = result.power
    return power.mean_w, power.energy_per_inference_j


def results_table(results: list[Result], title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    # Power and flag columns only appear when some result has them (boards without power rails, old results).
    with_power = any(v is not None for r in results for v in power_figures(r))
    with_flags = any(r.flags for r in results)
    columns = [("id", "right"), ("device", "left"), ("model", "left"), ("backend", "left"), ("batch", "right"),
               ("latency ms", "right"), ("statistic, span", "left"), ("img/s", "right"), ("iters", "right")]
    columns += [("W", "right"), ("J/img", "right")] if with_power else []
    columns += [("status", "left")] + ([("flags", "left")] if with_flags else [])
    for name, justify in columns:
        table.add_column(name, justify=justify, overflow="fold")
    for r in results:
        latency, what = headline(r)
        status = styled(("ok", "green")) if r.status == "ok" else styled(("failed", "red"), f": {r.error}")
        row = [str(r.id or ""), r.device, r.model, backend_label(r), str(r.batch),
               f"{latency:.4g}" if latency is not None else "-", what,
               f"{r.throughput_ips:.4g}" if r.throughput_ips is not None else "-",
               str(r.iterations) if r.iterations is not None else "-"]
        if with_power:
            row += [f"{v:.4g}" if v is not None else "-" for v in power_figures(r)]
        # A flagged result is still shown, marked: its figures may not compare with unflagged ones.
        row.append(status + styled(" ", ("!", "yellow")) if r.flags else status)
        if with_flags:
            row.append(", ".join(flag.code for flag in r.flag_list))
        table.add_row(*row)
    return table
