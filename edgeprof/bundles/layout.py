"""The bundle's layout and the identity of a result, shared by writing and reading (see the package
docstring)."""
from __future__ import annotations

import hashlib
import re
import json

from ..errors import InputError
from ..result import Result

FORMAT = "edgeprof-bundle"
FORMAT_VERSION = 1
TOP = "edgeprof-bundle"
MANIFEST = f"{TOP}/manifest.json"
REPRODUCE = f"{TOP}/reproduce.sh"
MODEL_FILE_LIMIT_MB = 64      # model files larger than this are listed by hash, not included (--max-file-mb)


class BundleError(InputError):
    """A bundle that cannot be written or read as asked; the message says what was wrong and what to do."""


def identity(result: Result) -> str:
    """sha256 of a result's whole document except what a store assigns: its id, and the ids of a --repeat
    summary's runs. The same measurement has the same identity in every store it is imported into."""
    doc = result.to_dict(full=True)
    doc.pop("id")
    if doc.get("repeat"):
        doc["repeat"] = {k: v for k, v in doc["repeat"].items() if k != "result_ids"}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()



def result_member(result_id: int) -> str:
    return f"{TOP}/results/{result_id}.json"


def log_member(result_id: int) -> str:
    return f"{TOP}/logs/{result_id}.log"


def model_member(sha256: str, file_name: str) -> str:
    """models/<first 12 hex digits>/<the file's own name, in safe characters>: the name keeps the model's
    name (edgeprof names a model after its file's stem), the folder keeps two versions of one file apart."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", file_name).lstrip(".") or "model"
    return f"{TOP}/models/{sha256[:12]}/{safe}"


# Every name write_bundle gives a member; a reader refuses any other (read.py).
MEMBER_NAME = re.compile(rf"{TOP}/(manifest\.json|reproduce\.sh|results/\d{{1,19}}\.json|logs/\d{{1,19}}\.log"
                         rf"|models/[0-9a-f]{{12}}/[A-Za-z0-9_-][A-Za-z0-9._-]{{0,254}})")
