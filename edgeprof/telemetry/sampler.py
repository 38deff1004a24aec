"""Running edgeprof/onboard/board_sampler.py on the board around one measurement, from the host.

Start: the script and the two modules it imports are uploaded once per work folder, as one zip application
(python runs a zip's __main__.py with the zip first on its path; one upload, not three: a lab host pays for
each), then started detached (setsid, stdio to files) in one round trip that returns when its first record is
written, so it is sampling before the backend starts.
Stop: one round trip creates the stop file, waits for the finished file and prints it. The sampler's
command line holds the work folder, so the lease guard's `pkill -TERM -f WORKDIR/` (host death) and the
lease release's restore script (Ctrl-C, errors) stop it too; a sampler that misses the stop file is
killed by its pid.
"""
from __future__ import annotations

import contextlib
import io
import json
import sys
import time
import zipfile
from dataclasses import dataclass, field
from functools import cache
from typing import Iterator

from ..errors import BoardControlError
from ..onboard import source
from ..power.lease import BoardBusy
from ..storage.documents import usable_sample
from ..transport import CommandResult, TransportError
from ..transport.sudo import Sudo
from . import timeline
from .summary import (CONTENDED_CPU_SHARE, NVIDIA_SMI_FIELDS, NVIDIA_SMI_POWER_TOTAL, energy_not_attributed,
                      ran_on_host_cpu, summarize)

# --quiet-board: how long each look at the other processes lasts (the sampler's once-a-second pass, twice).
QUIET_SAMPLE_S = 2.0
# --start-below: how often the thermal zones are read while waiting (a board cools by degrees a minute).
COOL_CHECK_S = 5.0

DEFAULT_INTERVAL_MS = 100
SCRIPT = "board_sampler.py"
# What it imports, in its zip beside it.
SCRIPT_MODULES = ("tegrastats_line.py", "window_stats.py")
ARCHIVE = "board_sampler.pyz"


@cache
def archive() -> bytes:
    """board_sampler.py as the zip's __main__.py and SCRIPT_MODULES beside it, with fixed dates (the same
    bytes every time)."""
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, text in [("__main__.py", source(SCRIPT)), *((name, source(name)) for name in SCRIPT_MODULES)]:
            zipped.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), text, zipfile.ZIP_DEFLATED)
    return data.getvalue()


# $1: the output file; the rest: the sampler's command. Prints the start record once the sampler wrote it
# (or its log, when it died first). The /proc status check ends the wait early for a sampler that
# exited (a zombie until this shell exits) instead of waiting the full 10 s.
_START = r'''out=$1; shift
setsid "$@" </dev/null >"$out.log" 2>&1 &
pid=$!; i=0
while [ ! -s "$out.part" ] && [ ! -f "$out" ] && [ $i -lt 200 ]; do
  grep -qs '^State:[[:space:]]*[^Z]' "/proc/$pid/status" || break
  sleep 0.05; i=$((i+1))
done
if [ -s "$out.part" ]; then head -n 1 "$out.part"; exit 0; fi
cat "$out.log" >&2; exit 3'''
# $1: the output file. Exit 3 (and whatever it wrote so far) when the sampler did not finish in 10 s.
_STOP = r'''out=$1; i=0
: > "$out.stop"
while [ ! -f "$out" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
if [ -f "$out" ]; then cat "$out"; exit 0; fi
cat "$out.part" 2>/dev/null; exit 3'''


def source_args(telemetry: str, facts: dict) -> tuple[str, list[str]]:
    """What to sample on this board: tegrastats where the profile says so (Jetsons); nvidia-smi (NVML's
    command-line face; the board side uses no Python binding) and /proc on desktops with an NVIDIA GPU;
    /proc alone elsewhere."""
    if telemetry == "tegrastats":
        return "tegrastats", ["--tegrastats"]
    if facts.get("gpu") and facts["gpu"] != "integrated (Tegra)":
        return "nvidia-smi+proc", ["--nvidia-smi", ",".join(NVIDIA_SMI_FIELDS), "--proc"]
    return "proc", ["--proc"]


@dataclass
class Recording:
    """One sampler run: what it recorded, and what went wrong with it."""
    source: str
    interval_ms: int
    power_total: str | None
    records: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    commands: list = field(default_factory=list)    # the start and stop (CommandResult.to_dict()), kept
                                                    # apart from the backend's own result.commands
    out: str = ""                                   # the sampler's output file on the board
    pid: int | None = None                          # the sampler's, once it runs

    def attach(self, result) -> None:
        """Put the window's summary, the raw samples and (for a result that succeeded) the flags on result."""
        errors = self.errors + [r["message"] for r in self.records if r.get("kind") == "error"]
        inferences = result.batch * result.iterations if result.iterations else None
        summary, flags = summarize(self.records, result.timed_window, inferences=inferences,
                                   power_total=self.power_total, state=result.state, interval_ms=self.interval_ms,
                                   errors=errors)
        gpu_board_power = summary.get("power_total", {}).get("definition") == NVIDIA_SMI_POWER_TOTAL
        if gpu_board_power and ran_on_host_cpu(result.settings):
            energy_not_attributed(summary)
        result.telemetry = {"source": self.source, "interval_ms": self.interval_ms, **summary, "errors": errors,
                            "commands": self.commands, "samples": self.records}
        if result.status == "ok":
            result.flags = result.flags + flags  # the backend's own flags (e.g. provider_fallback) stay
            result.flags = result.flags + timeline.analyse(result, self.records, self.power_total)


class BoardTelemetry:
    """The sampler for one board during one measure call: `with telemetry.sampling() as recording:`."""

    def __init__(self, board, sudo: Sudo | None = None, interval_ms: int = DEFAULT_INTERVAL_MS):
        profile = board.device.profile
        self.board = board
        self.sudo = sudo
        self.interval_ms = interval_ms
        self.source, self._source_args = source_args(profile.telemetry, board.facts)
        self.power_total = profile.power_total if self.source == "tegrastats" else None
        # `local` runs the sampler with edgeprof's own interpreter, as the PyTorch backend does.
        self.python = sys.executable if board.device.is_local else profile.python
        self._script: str | None = None
        self._count = 0

    def _run(self, argv: list[str]) -> CommandResult:
        return self.sudo.run(argv, timeout=60) if self.sudo else self.board.run(argv, timeout=60)

    @contextlib.contextmanager
    def sampling(self) -> Iterator[Recording]:
        """Sample while the block runs; the sampler is stopped however the block ends. Never raises for the
        sampler's sake: what failed is in the recording's errors (and becomes a flag)."""
        recording = Recording(self.source, self.interval_ms, self.power_total)
        self._start(recording)
        try:
            yield recording
        finally:
            self._stop(recording)

    def _uploaded(self) -> str:
        if self._script is None:
            self._script = f"{self.board.workdir}/{ARCHIVE}"
            self.board.put_bytes(self._script, archive())
        return self._script

    def _look(self, args: list[str], purpose: str) -> dict:
        """One of the sampler's single looks at the board (`--idle-sample`, `--temperatures`): the JSON object
        it prints, or BoardControlError saying it could not look."""
        looked = self.board.run([self.python, self._uploaded(), *args], timeout=60)
        try:
            found = json.loads(looked.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            found = None
        if not isinstance(found, dict):
            raise BoardControlError(f"{self.board.device.name}: could not {purpose} (exit {looked.exit_status}): "
                                    f"{looked.stderr.strip()[-300:]}")
        return found

    def wait_until_quiet(self, wait_s: float, on_status) -> dict:
        """--quiet-board: look at the other processes QUIET_SAMPLE_S at a time until they use at most
        CONTENDED_CPU_SHARE of a CPU (what `contended` flags), as perf tools ask users to check by hand;
        returns the quiet look. Raises BoardBusy naming the busiest once wait_s has passed."""
        deadline = time.monotonic() + wait_s
        name = self.board.device.name
        while True:
            purpose = "look at its other processes for --quiet-board"
            record = self._look(["--idle-sample", str(QUIET_SAMPLE_S), "--others", self.board.workdir], purpose)
            try:
                share = record["cpu_s"] / record["interval_s"]
                busiest = ", ".join(f"{comm} ({pid}) {cpu:g} s" for comm, pid, cpu in record["top"][:3])
            except (KeyError, TypeError, ValueError, ZeroDivisionError):
                raise BoardControlError(f"{name}: could not {purpose}: {str(record)[:300]}") from None
            if share <= CONTENDED_CPU_SHARE:
                return record
            if time.monotonic() >= deadline:
                raise BoardBusy(f"{name} is not quiet: other processes used {share:.2f} CPUs over "
                                f"{record['interval_s']:g} s (busiest: {busiest}), still after --wait {wait_s:g} s; "
                                f"stop them, raise --wait, or measure without --quiet-board (results get "
                                f"`contended`)")
            on_status(f"{name}: not quiet yet ({share:.2f} CPUs used by others; busiest: {busiest}); waiting")

    def wait_until_cool(self, below_c: float, wait_s: float, on_status) -> dict:
        """--start-below: read the board's thermal zones every COOL_CHECK_S until the hottest is below
        below_c, so that a measurement starts from the same thermal state as the one it is compared with;
        returns the temperatures. Raises BoardControlError where no zone can be read, BoardBusy (still hot)
        once wait_s has passed."""
        deadline = time.monotonic() + wait_s
        name = self.board.device.name
        while True:
            purpose = "read its thermal zones for --start-below"
            temps = self._look(["--temperatures"], purpose).get("temps_c")
            try:
                hottest = max(temps.items(), key=lambda item: item[1]) if temps else None
            except (AttributeError, TypeError):
                raise BoardControlError(f"{name}: could not {purpose}: {str(temps)[:300]}") from None
            if hottest is None:
                raise BoardControlError(f"{name} has no readable thermal zone (/sys/class/thermal/thermal_zone*/"
                                        f"temp), so --start-below cannot tell when it has cooled; drop it")
            if hottest[1] < below_c:
                return temps
            if time.monotonic() >= deadline:
                raise BoardBusy(f"{name} is still hot: {hottest[0]} at {hottest[1]:g} C, not below {below_c:g} C "
                                f"after --wait {wait_s:g} s; let it cool longer (raise --wait) or raise --start-below")
            on_status(f"{name}: {hottest[0]} at {hottest[1]:g} C; waiting to start below {below_c:g} C")
            time.sleep(COOL_CHECK_S)

    def _start(self, recording: Recording) -> None:
        self._count += 1
        out = f"{self.board.workdir}/telemetry-{self._count}.jsonl"
        recording.out = out
        try:
            started = self._run(["sh", "-c", _START, "edgeprof-sampler", out, self.python, self._uploaded(),
                                 "--out", out, "--stop", out + ".stop", "--interval-ms", str(self.interval_ms),
                                 *self._source_args, "--others", self.board.workdir,
                                 *(["--power-total", self.power_total] if self.power_total else [])])
        except TransportError as e:
            recording.errors.append(f"the sampler could not be started: {e}")
            return
        recording.commands.append(started.to_dict())
        if not started.ok:
            recording.errors.append(f"the sampler did not start (exit {started.exit_status}): "
                                    f"{started.stderr.strip()[-500:] or 'no message'}")
            return
        recording.pid = json.loads(started.stdout.splitlines()[0])["pid"]

    def _stop(self, recording: Recording) -> None:
        if recording.pid is None:
            return
        try:
            # The login user may stop a root sampler: the stop file needs no signal.
            stopped = self.board.run(["sh", "-c", _STOP, "edgeprof-sampler-stop", recording.out], timeout=60)
            recording.commands.append(stopped.to_dict())
            if not stopped.ok:
                self._run(["kill", "-KILL", str(recording.pid)])
                recording.errors.append("the sampler did not stop within 10 s and was killed")
        except TransportError as e:
            recording.errors.append(f"the sampler could not be stopped from the host ({e}); the board's lease "
                                    f"guard stops it")
            return
        for line in stopped.stdout.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if usable_sample(record):
                recording.records.append(record)
            else:
                recording.errors.append(f"unreadable sampler record: {line[:200]}")
