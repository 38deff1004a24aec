"""Everything edgeprof runs on a board, as real files: the board runners and what they share (harness.py,
timing.py, tensors.py, caffe_layers.py, torch_models.py; Python 3.6+, standard library and the framework),
the telemetry sampler (board_sampler.py), and shell for the board lease (lease.sh) and the probe (probe.sh).
The tests compile every .py file with Python 3.6 and run shellcheck on every .sh file.

The host sends a file's text (source) or the Python bundle (bundle) into the board's work folder under the
file's own name; the runners import their siblings from there. The host also imports some of them as
modules (edgeprof.onboard.timing for a result's method, tensors to read outputs, caffe_layers and
torch_models for the ONNX export), so both sides run the same code.
"""
from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def source(name: str) -> str:
    """The text of the on-board file `name` (e.g. "lease.sh"), as it is sent to a board."""
    return resources.files(__name__).joinpath(name).read_text()


def bundle() -> dict[str, str]:
    """Every on-board Python file, name -> text: what a backend uploads into the work folder in prepare."""
    return {entry.name: source(entry.name) for entry in sorted(resources.files(__name__).iterdir(),
                                                               key=lambda e: e.name)
            if entry.name.endswith(".py") and entry.name != "__init__.py"}
