"""A labgrid coordinator and exporter on loopback for the tests (labgrid from PyPI, the `labgrid` extra),
with one place per lab board: the board's NetworkService, tagged with its family."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


class LabgridServer:
    def __init__(self, workdir: Path):
        self.dir = workdir   # the coordinator keeps its places there
        self.dir.mkdir(parents=True, exist_ok=True)
        self.processes: list[subprocess.Popen] = []
        self.address = ""

    def _start(self, argv: list[str], log: str) -> subprocess.Popen:
        process = subprocess.Popen(argv, cwd=self.dir, stdout=(self.dir / log).open("w"), stderr=subprocess.STDOUT,
                                   env={**os.environ, "LG_COORDINATOR": self.address})
        self.processes.append(process)
        return process

    def _wait_for(self, what: str, ready, process: subprocess.Popen, log: str) -> None:
        deadline = time.monotonic() + 60
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"labgrid {what} did not start: {(self.dir / log).read_text()}")
            time.sleep(0.2)

    def start(self, boards: dict[str, dict]) -> "LabgridServer":
        """boards: place name -> {"address", "username", "family"}."""
        coordinator = self._start([str(BIN / "labgrid-coordinator"), "-l", "127.0.0.1:0"], "coordinator.log")
        listening = lambda: re.search(r"listening on 127\.0\.0\.1:(\d+)", (self.dir / "coordinator.log").read_text())
        self._wait_for("coordinator", listening, coordinator, "coordinator.log")
        self.address = f"127.0.0.1:{listening().group(1)}"
        (self.dir / "exports.yaml").write_text("".join(
            f"{name}:\n  NetworkService:\n    address: {b['address']}\n    username: {b['username']}\n"
            for name, b in boards.items()))
        exporter = self._start([str(BIN / "labgrid-exporter"), "-n", "lab", "--hostname", "127.0.0.1",
                                "exports.yaml"], "exporter.log")
        self._wait_for("exporter", lambda: self.client("resources").count("NetworkService") == len(boards),
                       exporter, "exporter.log")
        for name, board in boards.items():
            self.client("-p", name, "create")
            self.client("-p", name, "add-match", f"lab/{name}/NetworkService")
            self.client("-p", name, "set-tags", f"family={board['family']}")
        return self

    def client(self, *args: str, user: str | None = None) -> str:
        """labgrid-client against this coordinator (as another labgrid user if given); its output."""
        env = {**os.environ, **({"LG_USERNAME": user} if user else {})}
        proc = subprocess.run([str(BIN / "labgrid-client"), "-x", self.address, *args], capture_output=True, text=True,
                              timeout=60, env=env)
        if proc.returncode:
            raise RuntimeError(f"labgrid-client {' '.join(args)}: {proc.stdout}{proc.stderr}")
        return proc.stdout

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
