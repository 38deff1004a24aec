"""What a wheel of edgeprof holds: setuptools takes only the packages pyproject.toml lists (no discovery), so a
package folder missing there is missing from every non-editable install. edgeprof.cli was (found when a wheel
installed on the lent H100 had no `edgeprof` command: "No module named 'edgeprof.cli'")."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "edgeprof").rglob("__init__.py")}
    assert folders - listed == set()
