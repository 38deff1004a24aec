"""The board runners laid out as a board gets them: their files side by side in one folder, so that a test
runs a runner exactly as the board does, importing timing.py and the rest of the bundle from beside it."""
from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path


def board_folder(files: dict[str, str]) -> Path:
    """A fresh folder holding `files` (name -> text, edgeprof.onboard.bundle()), removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="edgeprof-board-"))
    atexit.register(shutil.rmtree, folder, True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder
