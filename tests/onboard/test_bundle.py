"""edgeprof/onboard/'s Python bundle as a board gets it: every file uploaded under its repository name, each
importing only the standard library, its framework and its siblings, and no runner repeating another's code
(the runners' shared part lives in harness.py, timing.py and tensors.py). The Python 3.6 compile tests of
the bundle are the runners' (tests/backends/test_*_runner.py, parametrized over bundle())."""
import ast
from importlib import resources
from pathlib import Path

import pytest

from edgeprof.onboard import bundle

ONBOARD = Path(resources.files("edgeprof.onboard"))
# What the board's Python may import besides the standard library: the frameworks the runners drive, and the
# image decoders of --span end-to-end (image_inputs.py), imported only where present.
FRAMEWORKS = {"torch", "torchvision", "numpy", "onnxruntime", "tensorrt", "caffe", "cuda", "pycuda", "PIL", "cv2"}
REPEATED_LINES = 6


def test_the_bundle_is_every_python_file_under_its_own_name():
    assert sorted(bundle()) == sorted(p.name for p in ONBOARD.glob("*.py") if p.name != "__init__.py")
    assert all(text == (ONBOARD / name).read_text() for name, text in bundle().items())


def imported(tree) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add("." if node.level else node.module.split(".")[0])
    return found


@pytest.mark.parametrize("name", sorted(bundle()))
def test_imports_are_the_standard_library_frameworks_and_siblings(name):
    import sys
    siblings = {Path(n).stem for n in bundle()}
    unknown = {m for m in imported(ast.parse(bundle()[name])) if m != "."} - siblings - FRAMEWORKS \
        - set(sys.stdlib_module_names)
    assert not unknown, f"{name} imports {unknown}: the board has neither edgeprof nor other packages"


def test_no_block_of_lines_is_repeated_between_files():
    seen = {}
    for name, text in bundle().items():
        lines = [line.strip() for line in text.splitlines()]
        for start in range(len(lines) - REPEATED_LINES + 1):
            block = tuple(lines[start:start + REPEATED_LINES])
            if all(line and not line.startswith("#") for line in block):
                seen.setdefault(block, set()).add(name)
    repeated = {block: names for block, names in seen.items() if len(names) > 1}
    assert not repeated, "\n".join(f"{sorted(names)}:\n" + "\n".join(block) for block, names in repeated.items())
