"""The bad-input suite: every input here ends in a clear message and the documented exit status (2: the
command could not do its job, see edgeprof/errors.py), never a traceback, and nothing is written where it
should not be. None of them reaches a board, so the CLI runs in-process (click's CliRunner); the cases that
need the lab are in tests/integration/test_bad_input.py. README.md lists the suite."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgeprof.cli import main


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A private HOME, results database and no inventory; files the cases refer to."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("EDGEPROF_DB", str(tmp_path / "results.sqlite"))
    monkeypatch.delenv("EDGEPROF_INVENTORY", raising=False)
    (tmp_path / "bad.prototxt").write_text('name: "x"\ninput: "data"\ninput_dim: 1\ninput_dim 8\n')
    (tmp_path / "binary.log").write_bytes(b"I0101 caffe.cpp:1] ok\n\xff\xfe\n")
    (tmp_path / "random.sqlite").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "damaged.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x01" * 2000)
    return tmp_path


INVENTORIES = {
    "not-toml": "[devices.b1\nhost = 'x'",
    "entry-is-a-string": '[devices]\nb1 = "10.0.0.1"\n',
    "devices-is-a-number": "devices = 3\n",
    "port-is-a-word": '[devices.b1]\nfamily = "tx2"\nhost = "10.0.0.1"\nport = "twenty-two"\n',
    "port-out-of-range": '[devices.b1]\nfamily = "tx2"\nhost = "10.0.0.1"\nport = 70000\n',
    "host-is-a-number": '[devices.b1]\nfamily = "tx2"\nhost = 12\n',
    "tags-is-a-string": '[devices.b1]\nfamily = "tx2"\nhost = "10.0.0.1"\ntags = "site=lab2"\n',
    "unknown-family": '[devices.b1]\nfamily = "tx3"\nhost = "10.0.0.1"\n',
    "no-host": '[devices.b1]\nfamily = "tx2"\n',
    "unknown-key": '[devices.b1]\nfamily = "tx2"\nhost = "10.0.0.1"\nhots = "x"\n',
    "clocks-unknown": '[devices.b1]\nfamily = "tx2"\nhost = "10.0.0.1"\nclocks = "turbo"\n',
}

PLAN = 'devices = ["local"]\nmodels = ["alexnet"]\n'
PLANS = {
    "cooldown-is-a-word": (PLAN + 'cooldown_s = "x"\n', "`cooldown_s` must be a number"),
    "models-not-strings": ('devices = ["local"]\nmodels = [1]\n', "`models` must be a non-empty string"),
    "iterations-is-a-boolean": (PLAN + "iterations = true\n", "`iterations` must be an integer"),
    "batches-of-booleans": (PLAN + "batches = [true]\n", "`batches` must be an integer"),
    "devices-is-a-number": ('devices = 3\nmodels = ["alexnet"]\n', "`devices` must be a non-empty list"),
    "lease-is-shell-code": (PLAN + 'lease_s = "a[$(touch /tmp/pwned)]"\n', "`lease_s` must be an integer"),
    "lease-too-short": (PLAN + "lease_s = 1\n", "`lease_s` must be an integer from 5"),
    "unknown-key": (PLAN + "batch = [1]\n", "unknown keys ['batch']"),
    "unknown-backend": (PLAN + 'backends = ["tensorflow"]\n', "unknown backend 'tensorflow'"),
    "batch-zero": (PLAN + "batches = [0]\n", "`batches` must be an integer from 1"),
    "batch-huge": (PLAN + "batches = [99999999]\n", "`batches` must be an integer from 1 to 65536"),
    "precision-unknown": (PLAN + 'precisions = ["fp64"]\n', "`precisions` must be one of"),
    "clocks-unknown": (PLAN + 'clocks = "turbo"\n', "`clocks` must be one of"),
    "shuffle-is-a-word": (PLAN + 'shuffle = "yes"\n', "`shuffle` must be true or false"),
    "seed-negative": (PLAN + "seed = -1\n", "`seed` must be an integer"),
    "name-is-a-number": (PLAN + "name = 5\n", "`name` must be a non-empty string"),
    "missing-models": ('devices = ["local"]\n', "needs `models`"),
    "not-toml": ("devices = [", "not valid TOML"),
    "not-utf8": (b"devices = [\"\xff\"]\n", "not UTF-8 text"),
}

# (arguments, a fragment the message must hold); {tmp} is the case's folder.
CASES = [
    # measure: models, options, devices (nothing reaches a board)
    (["measure", "--device", "local", "alexnt"], "Did you mean alexnet"),
    (["measure", "alexnet"], "name the board with one of --device"),
    (["measure", "--device", "local", "--backend", ",", "alexnet"], "names no backend"),
    (["measure", "--device", "local", "--backend", "tensorflow", "alexnet"], "tensorflow"),
    (["measure", "--device", "local", "--batch", "0", "alexnet"], "batch sizes must be from 1 to 65536"),
    (["measure", "--device", "local", "--batch", "99999999999999999999999", "alexnet"], "batch sizes must be"),
    (["measure", "--device", "local", "--batch", "a,b", "alexnet"], "a batch size or a comma-separated list"),
    (["measure", "--device", "local", "--batch", "1,,2", "alexnet"], "a batch size or a comma-separated list"),
    (["measure", "--device", "local", "--iterations", "0", "alexnet"], "--iterations"),
    (["measure", "--device", "local", "--iterations", "99999999999", "alexnet"], "--iterations"),
    (["measure", "--device", "local", "--duration", "10", "--iterations", "5", "alexnet"], "exclude each other"),
    (["measure", "--device", "local", "--duration", "2", "--window", "5", "alexnet"], "does not fit"),
    (["measure", "--device", "local", "--duration", "0", "alexnet"], "--duration"),
    (["measure", "--device", "local", "--lease", "1", "alexnet"], "--lease"),
    (["measure", "--device", "local", "--lease", "abc", "alexnet"], "--lease"),
    (["measure", "--device", "local", "--wait", "-1", "alexnet"], "--wait"),
    (["measure", "--device", "local", "--clocks", "turbo", "alexnet"], "--clocks"),
    (["measure", "--device", "nosuch", "alexnet"], "unknown device 'nosuch'"),
    (["measure", "--device", "[/x]", "alexnet"], "unknown device '[/x]'"),
    (["measure", "--device", "local", "/nonexistent/net.prototxt"], "net.prototxt"),
    (["measure", "--device", "local", "{tmp}/bad.prototxt"], "bad.prototxt:4:"),
    (["measure", "--device", "local", "{tmp}"], "unknown model"),
    (["measure", "--device", "local", "[/x]"], "unknown model '[/x]'"),
    (["measure", "--device", "local", "\x1b[2Jalexnet"], "unknown model '\\x1b[2Jalexnet'"),
    (["measure", "--device", "local", "--best", "--precision", "fp16", "alexnet"], "--best tries its own"),
    (["measure", "--device", "local", "--inventory", "/nonexistent.toml", "alexnet"], "does not exist"),
    # devices and inventories
    *[(["devices", "--inventory", f"{{tmp}}/{name}.toml"], f"{name}.toml") for name in INVENTORIES],
    # run: plans
    (["run", "{tmp}/nonexistent.toml"], "nonexistent.toml"),
    *[(["run", f"{{tmp}}/{name}.plan.toml"], fragment) for name, (_, fragment) in PLANS.items()],
    # parse
    *[(["parse", kind, "/dev/null"], "nothing recognizable") for kind in
      ("caffe-time", "nvpmodel", "jetson-clocks", "nvidia-smi", "tegrastats", "trtexec")],
    (["parse", "caffe-time", "{tmp}/binary.log"], "binary.log:2: not UTF-8 text"),
    (["parse", "caffe-time", "/nonexistent.log"], "/nonexistent.log"),
    (["parse", "caffe", "/dev/null"], "'caffe'"),
    (["parse", "caffe-time", "--fields", "x", "/dev/null"], "--fields only applies to nvidia-smi"),
    # results, compare, report: stores and ids
    (["results", "show", "99999999999999999999999"], "RESULT_ID"),
    (["results", "show", "12345"], "no result 12345"),
    (["results", "show", "abc"], "RESULT_ID"),
    (["results", "list", "--db", "{tmp}"], "is not a file"),
    (["results", "list", "--db", "/proc/version"], "is not a SQLite database"),
    (["results", "list", "--db", "{tmp}/random.sqlite"], "is not a SQLite database"),
    (["results", "list", "--db", "{tmp}/damaged.sqlite"], "move it aside"),
    (["results", "export", "--format", "xml"], "xml"),
    (["compare", "alexnet"], "--device"),
    (["compare", "--run", "nope"], "nope"),
    (["report", "--html", "{tmp}/r.html"], "no results"),
    (["report", "--html", "{tmp}/r.html", "--db", "{tmp}/random.sqlite"], "is not a SQLite database"),
]


@pytest.mark.parametrize("args, fragment", CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_input_gets_a_clear_error_and_exit_status_2(env: Path, args, fragment):
    for name, text in INVENTORIES.items():
        (env / f"{name}.toml").write_text(text)
    for name, (text, _) in PLANS.items():
        path = env / f"{name}.plan.toml"
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    before = {p: p.read_bytes() for p in env.glob("*.sqlite")}
    result = CliRunner().invoke(main, [a.replace("{tmp}", str(env)) for a in args])
    output = result.output
    assert isinstance(result.exception, SystemExit) and result.exit_code == 2, (result.exc_info, output)
    assert "Traceback" not in output
    assert fragment.replace("{tmp}", str(env)) in output, output
    assert "\x1b" not in output   # no terminal control reaches the terminal, whatever the input
    assert {p: p.read_bytes() for p in env.glob("*.sqlite") if p in before} == before   # nobody's file written
    assert not Path("/tmp/pwned").exists()


def test_the_suite_covers_at_least_sixty_inputs():
    assert len(CASES) >= 60


def test_a_stored_result_with_markup_in_its_names_lists_and_shows(env):
    """A failed result whose model, device and error hold rich markup and escapes is stored; listing and
    showing it print those names as they are."""
    from edgeprof.result import Result
    from edgeprof.storage import open_store
    with open_store(env / "results.sqlite") as store:
        store.add(Result(device="[/x]", model="[bold]net[/]", backend="caffe", batch=1, run_id="r1")
                  .fail("layer [/x] \x1b]52;c;cHduZWQ=\x07 unsupported"))
    for args in (["results", "list"], ["results", "show", "1"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert "[/x]" in result.output and "[bold]net[/]" in result.output
        assert "\x1b" not in result.output and "\\x1b]52;c;cHduZWQ=\\x07" in result.output
    assert sqlite3.connect(env / "results.sqlite").execute("SELECT count(*) FROM results").fetchone() == (1,)
