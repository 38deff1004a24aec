"""reproduce.sh: the `edgeprof measure` commands that measure a bundle's items again, on a board of the reader's
inventory.

Each result's settings (what its backend recorded it ran) are turned back into measure's options; a --repeat
group becomes one command with --repeat, and its summary none; the modes of a power-mode sweep one
--power-modes list. Every word is quoted with shlex.quote; only
"$here" (the bundle's folder) and the device variables are left for the shell to expand.
"""
from __future__ import annotations

import json
import shlex

from ..backends import PROCESSORS
from ..result import Result

# The torch device names the PyTorch backend records as its processor, as measure's --processor words.
_PROCESSOR_WORDS = {"cuda": "gpu", "cpu": "cpu"}


def _options(result: Result) -> list[str]:
    """measure's options that give this result's settings again (defaults left out)."""
    settings, argv = result.settings, []
    if type(settings.get("iterations")) is int:
        argv += ["--iterations", str(settings["iterations"])]
    for key, default in (("precision", "fp32"), ("span", "compute"), ("mode", "inference"), ("source", "onnx")):
        value = settings.get(key)
        if isinstance(value, str) and value != default:
            argv += [{"source": "--trt-from"}.get(key, f"--{key}"), value]
    processor = _PROCESSOR_WORDS.get(settings.get("processor"), settings.get("processor"))
    if processor in PROCESSORS and processor != "auto":
        argv += ["--processor", processor]
    for key in ("channels_last", "cuda_graph"):
        if settings.get(key) is True:
            argv.append("--" + key.replace("_", "-"))
    if isinstance(settings.get("compile"), str):
        argv.append(f"--compile={settings['compile']}")
    for key, flag in (("threads", "--threads"), ("dla_core", "--dla-core")):
        if type(settings.get(key)) is int:
            argv += [flag, str(settings[key])]
    # --input's images are not bundled: their path (or board:/path) as measured, which the reader must supply, as
    # for a model file the bundle lacks.
    if isinstance(settings.get("input"), str):
        argv += ["--input", settings["input"]]
    if type(settings.get("prefetch")) is int and settings["prefetch"] > 0:
        argv += ["--prefetch", str(settings["prefetch"])]
    policy = result.state.get("clocks_policy")
    if isinstance(policy, str):
        argv += ["--clocks", policy]
    if result.repeat and type(result.repeat.get("of")) is int:
        argv += ["--repeat", str(result.repeat["of"])]
    return argv


def _model(result: Result, included: dict[str, str]) -> str:
    """The model word: the bundled file ("$here"/...) where the bundle holds it, else its name as measured
    (a catalog name, torchvision:NAME, or the path it had, which the reader must supply)."""
    sha = result.model_info.get("sha256")
    member = included.get(sha) if isinstance(sha, str) else None
    if member:
        return '"$here"/' + shlex.quote(member.split("/", 1)[1])
    if result.model_info.get("catalog") is True or result.model_info.get("kind") == "torchvision":
        return shlex.quote(str(result.model_info.get("path") if result.model_info.get("kind") == "torchvision"
                               else result.model))
    return shlex.quote(str(result.model_info.get("path") or result.model))


def script(results: list[Result], included: dict[str, str], made_by: str) -> str:
    """The text of reproduce.sh for `results`; `included` maps a model sha256 to its member in the bundle."""
    devices = list(dict.fromkeys(r.device for r in results))
    lines = ["#!/bin/sh",
             f"# Measures this bundle's items again with edgeprof ({made_by} made the bundle). Run it from anywhere:",
             f"#   sh reproduce.sh {' '.join(f'DEVICE{i + 1}' for i in range(len(devices)))}",
             "# naming a device of your inventory (edgeprof devices) for each board the bundle was measured on:"]
    # Names are the store's data: written as JSON strings, a newline in one cannot end the comment.
    lines += [f"#   DEVICE{i + 1}: instead of {json.dumps(name)} ({_family(results, name)})"
              for i, name in enumerate(devices)]
    lines += ["# The results go to your results database; then `edgeprof import` the bundle and `edgeprof compare`",
              "# the two runs (edgeprof results list shows the new run id).",
              "set -u", 'here=$(cd "$(dirname "$0")" && pwd)']
    usage = " ".join(f"DEVICE{j + 1}" for j in range(len(devices)))
    lines += [f'device{i + 1}=${{{i + 1}:?"usage: sh reproduce.sh {usage} (see edgeprof devices)"}}'
              for i in range(len(devices))]
    lines.append("status=0")
    commands: dict[str, list[str]] = {}     # a command -> the power modes of a sweep to run it in
    for result in results:
        if result.repeat and (result.repeat.get("summary") or result.repeat.get("index") != 1):
            continue    # the group's first run stands for the whole --repeat command
        command = " ".join(["edgeprof measure", f'--device "$device{devices.index(result.device) + 1}"',
                            "--backend", shlex.quote(result.backend), "--batch", str(result.batch),
                            *map(shlex.quote, _options(result)), _model(result, included)])
        modes = commands.setdefault(command, [])
        swept = result.state.get("power_sweep")
        if isinstance(swept, dict) and isinstance(swept.get("mode_name"), str) and swept["mode_name"] not in modes:
            modes.append(swept["mode_name"])
    lines += [f"{command}{' --power-modes ' + shlex.quote(','.join(modes)) if modes else ''} || status=$?"
              for command, modes in commands.items()]
    lines.append("exit $status")
    return "\n".join(lines) + "\n"


def _family(results: list[Result], device: str) -> str:
    family = next((r.device_facts.get("family") for r in results if r.device == device), None)
    return f"family {json.dumps(family)}" if isinstance(family, str) else "family unknown"
