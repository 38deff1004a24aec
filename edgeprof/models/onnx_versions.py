"""Which ONNX files each runtime a board may carry reads: pure functions over a cited table, no I/O.

The export (edgeprof.models.onnx_export) asks `reader()` for the board's runtime and version (probed: trtexec's
banner or the tensorrt module, the onnxruntime module) and writes the file at the reader's opset and IR version,
so a TX2 on JetPack 4.6 (TensorRT 8.2, ONNX Runtime 1.10/1.11 for Python 3.6) gets a file its parser was made
for instead of the host's newest.

TensorRT's ONNX parser (onnx-tensorrt, one branch per release; docs/operators.md says the highest opset, the
README or Changelog the ONNX release the parser is built against, whose IR version onnx's Versioning.md gives):

  TensorRT    opset  ONNX release  IR  sources
  ----------  -----  ------------  --  ----------------------------------------------------------------------
  5.1         9      1.5.0         5   [OT-5.1] "TensorRT 5.1 supports operators up to Opset 9"; its
                                       third_party/onnx is 765f5ee8, the commit 6.0's README calls ONNX 1.5.0
  6.0         10     1.5.0         5   [OT-6.0] operators.md "up to Opset 10", README "ONNX release 1.5.0"
  7.0, 7.1    11     1.6.0         6   [OT-7.0] [OT-7.1] operators.md "up to Opset 11", README "1.6.0"
  7.2         13     1.6.0         6   [OT-7.2] docs/operators.md "up to Opset 13", README "1.6.0"
  8.0         13     1.8.0         7   [OT-8.0] "up to Opset 13"; third_party/onnx 994c6181, the commit that
                                       8.2's README calls ONNX 1.8.0 (8.0's README still says 1.6.0)
  8.2         13     1.8.0         7   [OT-8.2] "up to Opset 13", README "TensorRT 8.2.1.8 supports ONNX
                                       release 1.8.0"
  8.4, 8.5    17     1.12.0        8   [OT-8.4] [OT-8.5] "up to Opset 17", README "1.12.0"
  8.6         17     1.13.1        8   [OT-8.6] "up to Opset 17"; [OT-CL] "8.6 GA: Updated ONNX submodule to
                                       v1.13.1"
  10.0-10.14  20     1.16.0        10  [OT-10.0] "opset 9 to opset 20", README "1.16.0"; [OT-CL] 10.6 moved to
                                       ONNX 1.17.0 (IR 10 too). No operators.md of 10.2-10.14 was read: 10.0's
                                       range is kept, which their parsers still read.
  10.15       24     -             10  [OT-main] operators.md @6d0ab7be "TensorRT 10.15 supports operators in
                                       the inclusive range of opset 9 to opset 24"; its ONNX release was not
                                       read, the IR stays 10.x's
  11.x        24     -             10  ASSUMED: no 11.x operators.md was read; 10.15's row is taken as 11's
                                       floor. (The exporter writes at most opset 20 anyway, see onnx_export.)

TensorRT 9.x (LLM-only early access) has no row: commands.py refuses it too. Below 5.1 there is no parser row.

What the TensorRT parser does with a newer file (read in the sources, and in real logs): it does NOT refuse a
model for its opset or IR version. ModelImporter.cpp (8.2-GA @f42daeee, 10.1-GA @96e78110) warns only below
opset 7; the "ONNX model has a newer ir_version (0.0.5) than this parser was built against (0.0.3)" warning
comes from the onnx2trt tool's main.cpp (7.x-8.x), and real logs show parsing going on after it
(github.com/onnx/onnx-tensorrt/issues/211, /479). What fails is an operator: one with no importer in that
version is tried as a plugin and fails ("No importer registered for op: LayerNormalization. Attempting to
import as plugin." ... "Plugin not found, are the plugin name, version, and namespace correct?":
github.com/NVIDIA/TensorRT/issues/2875 (8.4.1), /1988 (8.2.3), /3346 (8.6)), or an importer reads an older
opset's attributes ("Attribute not found: axes" on 7.1.3 with an opset-13 Squeeze:
github.com/onnx/onnx-tensorrt/issues/742). So the opset here is the highest the parser documents: above it an
importer may read a node with an older opset's meaning, or refuse it.

ONNX Runtime (its compatibility page, docs/reference/compatibility.md @109c0baa; [ORT]) enforces both: a model
above the IR version fails at load ("Unsupported model IR version: 9, max supported IR version: 8",
github.com/microsoft/onnxruntime/issues/15874, 1.14.1), one above the opset fails validation ("ONNX Runtime
only *guarantees* support for models stamped with official released onnx opset versions. Opset 16 is under
development and support for this is limited. ... Current official support for domain ai.onnx is till opset
15.", github.com/onnxsim/onnxsim/issues/289) (from ORT's model_load_utils.h ValidateOpsetForDomain):

  ORT        ONNX   opset  IR      ORT        ONNX    opset  IR
  1.0-1.2    1.6    11     6       1.12-1.13  1.12    17     8
  1.3-1.5    1.7    12     7       1.14       1.13    18     8
  1.6-1.7    1.8    13     7       1.15       1.14    19     9 (the page says 8; ONNX 1.14 is IR 9, and
  1.8        1.9    14     7                                    real 1.15.1 loads IR 9 and refuses 10, as
  1.9-1.10   1.10   15     8                                    github.com/microsoft/onnxruntime/issues/16638
  1.11       1.11   16     8                                    says: the measured 9 is kept)
                                   1.16       1.14.1  19     9
                                   1.17       1.15    20     9
                                   1.18-1.20  1.16.x  21     10

Checked against real releases (tests/models/test_onnx_versions.py, x86 builds with the Python each was built for):
1.10.0 (Python 3.6), 1.11.1, 1.14.1, 1.15.1 and 1.16.3 each load the file edgeprof writes for their row and refuse one
opset more ("... Current official support for domain ai.onnx is till opset 15.") and one IR version more.

Versions newer than the last row get its limits (a newer runtime reads every older file). Jetson builds are
the same releases built for aarch64 (elinux.org/Jetson_Zoo#ONNX_Runtime lists 1.10/1.11 for JetPack 4.6's
Python 3.6): the table is by release, whichever build.

Operators that matter for the nets edgeprof builds (OP_LIMITS):
- LRN, Conv with `group` (grouped convolution): in every row of every source above (operators.md "Y" from 5.1
  on; ONNX LRN-1, Conv-1).
- Pooling that rounds up (Caffe's default, `ceil_mode` in PyTorch): ONNX has `ceil_mode` on MaxPool and
  AveragePool from opset 10 (MaxPool-10, AveragePool-10): a reader below opset 10 cannot take such a net.
- Detector post-processing (SSD's DetectionOutput would be NonMaxSuppression + TopK): edgeprof's exporter
  does not build those layers (netspec refuses them); for the record, NonMaxSuppression is "N" in 7.x,
  "Y [EXPERIMENTAL]" 8.0-8.4 and native from 8.5 ([OT-8.0] [OT-8.5], Changelog 8.5 "Added native support for
  the NonMaxSuppression operator").
- LayerNormalization (torchvision transformers and ConvNeXt; torch writes it from opset 17): "N" in 8.4/8.5,
  "Y" from 8.6 ([OT-8.4] [OT-8.6]).

Sources (github.com/onnx/onnx-tensorrt, branch and commit read):
  [OT-5.1] 5.1 @12b4487f operators.md   [OT-6.0] 6.0 @78ee76b9 operators.md, README.md
  [OT-7.0] 7.0 @6f649111                [OT-7.1] 7.1 @7994a464      [OT-7.2] 7.2.1 @803e699a docs/operators.md
  [OT-8.0] 8.0-GA @3f211d67             [OT-8.2] 8.2-GA @f42daeee   [OT-8.4] 8.4-GA @63d626b6
  [OT-8.5] 8.5-GA @fdeeaca8             [OT-8.6] 8.6-GA @ee0b139b   [OT-10.0] 10.0-GA @73f629e0
  [OT-CL] 10.1-GA @96e78110 docs/Changelog.md; a later Changelog (10.6: "Updated ONNX submodule version to 1.17.0")
  [OT-main] main @6d0ab7be docs/operators.md (10.15)
  [ORT] github.com/microsoft/onnxruntime docs/reference/compatibility.md @109c0baa (onnxruntime.ai/docs/reference/
        compatibility.html); IR per ONNX release: github.com/onnx/onnx/blob/main/docs/Versioning.md
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InputError

TENSORRT = "TensorRT"
ONNXRUNTIME = "ONNX Runtime"
# The opset from which ONNX's pooling takes ceil_mode (MaxPool-10, AveragePool-10).
CEIL_POOLING_OPSET = 10


@dataclass(frozen=True)
class Reader:
    """What one runtime version's ONNX parser reads: the highest opset and IR version it was made for."""
    runtime: str            # TENSORRT or ONNXRUNTIME
    version: str            # the version asked about, as probed
    row: str                # the table's row it falls in ("8.2", "1.10")
    opset: int
    ir_version: int
    enforced: bool          # the runtime refuses files above these (ONNX Runtime); TensorRT fails per operator
    sources: str

    def describe(self) -> str:
        rule = ("refuses files above them" if self.enforced else
                "reads newer files but may import a node with an older opset's meaning, or refuse it")
        return (f"{self.runtime} {self.version}'s parser reads opset {self.opset} and IR version {self.ir_version} "
                f"(table row {self.row}: {self.sources}); it {rule}")


# (first version of the row, opset, IR, sources), ascending; a version takes the last row at or below it.
_TENSORRT = (
    ((5, 1), 9, 5, "onnx-tensorrt 5.1 operators.md; its ONNX submodule is 6.0's 1.5.0"),
    ((6, 0), 10, 5, "onnx-tensorrt 6.0 operators.md and README (ONNX 1.5.0)"),
    ((7, 0), 11, 6, "onnx-tensorrt 7.0/7.1 operators.md and README (ONNX 1.6.0)"),
    ((7, 2), 13, 6, "onnx-tensorrt 7.2.1 docs/operators.md and README (ONNX 1.6.0)"),
    ((8, 0), 13, 7, "onnx-tensorrt 8.0-GA docs/operators.md; its ONNX submodule is 8.2's 1.8.0"),
    ((8, 2), 13, 7, "onnx-tensorrt 8.2-GA docs/operators.md and README (ONNX 1.8.0)"),
    ((8, 4), 17, 8, "onnx-tensorrt 8.4-GA/8.5-GA docs/operators.md and README (ONNX 1.12.0)"),
    ((8, 6), 17, 8, "onnx-tensorrt 8.6-GA docs/operators.md, Changelog (ONNX 1.13.1)"),
    ((9, 0), None, None, "TensorRT 9.x: LLM-only early access, no row"),
    ((10, 0), 20, 10, "onnx-tensorrt 10.0-GA docs/operators.md and README (ONNX 1.16.0)"),
    ((10, 15), 24, 10, "onnx-tensorrt main docs/operators.md (10.15)"),
    ((11, 0), 24, 10, "ASSUMED: 10.15's row, no 11.x operators.md read"),
    ((12, 0), None, None, "no source"),
)

# (first version of the row, opset, IR), ascending, from ORT's compatibility page (see the docstring).
_ONNXRUNTIME = (
    ((1, 0), 11, 6), ((1, 3), 12, 7), ((1, 6), 13, 7), ((1, 8), 14, 7), ((1, 9), 15, 8), ((1, 11), 16, 8),
    ((1, 12), 17, 8), ((1, 14), 18, 8), ((1, 15), 19, 9), ((1, 16), 19, 9), ((1, 17), 20, 9), ((1, 18), 21, 10),
)
_ORT_SOURCE = "onnxruntime.ai/docs/reference/compatibility.html"

# Operators with a first TensorRT version (major, minor) that reads them, from the operators.md rows above.
OP_LIMITS = {
    TENSORRT: {"LayerNormalization": (8, 6), "NonMaxSuppression": (8, 0)},
}

_VERSION = re.compile(r"(\d+)\.(\d+)")


def _major_minor(version: str) -> tuple[int, int]:
    found = _VERSION.search(version)
    if not found:
        raise InputError(f"no version number in {version!r}")
    return int(found.group(1)), int(found.group(2))


def _row_name(first: tuple[int, int]) -> str:
    return f"{first[0]}.{first[1]}"


def reader(runtime: str, version: str) -> Reader:
    """The Reader of `runtime` (TENSORRT or ONNXRUNTIME) at `version` ("8.2.1", "1.10.0"); InputError for a
    version the table has no row for."""
    key = _major_minor(version)
    if runtime == TENSORRT:
        rows = [row for row in _TENSORRT if row[0] <= key]
        if not rows or rows[-1][1] is None:
            raise InputError(f"TensorRT {version}: edgeprof has no source for what its ONNX parser reads "
                             f"({rows[-1][3] if rows else 'below 5.1, the first parser edgeprof has a row for'})")
        first, opset, ir, source = rows[-1]
        return Reader(TENSORRT, version, _row_name(first), opset, ir, False, source)
    if runtime == ONNXRUNTIME:
        rows = [row for row in _ONNXRUNTIME if row[0] <= key]
        if not rows:
            raise InputError(f"ONNX Runtime {version} is older than 1.0, the first release its compatibility "
                             f"page lists")
        first, opset, ir = rows[-1]
        newer = key > _ONNXRUNTIME[-1][0]
        source = _ORT_SOURCE + (f" (newer than its last row, {_row_name(first)}: that row's limits)" if newer else "")
        return Reader(ONNXRUNTIME, version, _row_name(first), opset, ir, True, source)
    raise ValueError(f"unknown runtime {runtime!r}; one of {TENSORRT!r}, {ONNXRUNTIME!r}")


def first_reading(runtime: str, op: str) -> tuple[int, int] | None:
    """The first (major, minor) of `runtime` whose parser reads `op`, where the table limits it; else None."""
    return OP_LIMITS.get(runtime, {}).get(op)


def unreadable(reader_: Reader, ops: dict[str, list[str]]) -> list[str]:
    """Why `reader_` cannot read a file with `ops` ({op_type: [node names]}): one sentence per operator its
    version lacks, naming the nodes and the first version that has it; [] when nothing is missing."""
    found = []
    for op, nodes in sorted(ops.items()):
        first = first_reading(reader_.runtime, op)
        if first is not None and _major_minor(reader_.version) < first:
            shown = ", ".join(nodes[:3]) + (f" and {len(nodes) - 3} more" if len(nodes) > 3 else "")
            found.append(f"{op} (layer {shown}) needs {reader_.runtime} {first[0]}.{first[1]} or newer; "
                         f"{reader_.runtime} {reader_.version}'s parser has no importer for it")
    return found


__all__ = ["CEIL_POOLING_OPSET", "ONNXRUNTIME", "OP_LIMITS", "Reader", "TENSORRT", "first_reading", "reader",
           "unreadable"]
