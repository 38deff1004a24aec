"""Plans: devices x models x backends x batches x precisions, from a TOML file or built in Python.

    name = "backbones on the TX2s"
    devices = ["tag:family=tx2"]            # names, globs or tags (edgeprof.devices.select_devices)
    models = ["alexnet", "googlenet", "vgg16", "resnet50"]
    backends = ["caffe", "pytorch"]
    batches = [1, 8]
    precisions = ["fp32", "fp16"]           # framework backends; caffe gets fp32 items only, int8 is tensorrt's
    jobs = [1, 2, 4]                        # optional: concurrent processes per item (edgeprof.concurrency)
    gpus = ["0", "0,1", "all"]              # optional: desktops, the GPUs each item runs on at once
    iterations = 50                         # optional: each backend's default policy otherwise
    clocks = "max"                          # optional: each family's policy otherwise
    shuffle = true                          # per board, seeded: order does not bias the comparison
    seed = 1
    cooldown_s = 5                          # pause on each board between items

The plan's hash covers what decides the items and how they are measured (devices as selected, models with
their content hashes, backends, batches, precisions, jobs and GPUs where swept, iterations, clocks), not names,
comments or the order settings, so rerunning a plan that stopped resumes it, and any change starts a new one.
"""
from __future__ import annotations

import hashlib
import json
import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..backends import Options, backend_class, precisions
from ..concurrency import JobsError, parse_gpus
from ..backends import names as backend_names
from ..devices import Device, select_devices
from .. import limits
from ..errors import InputError
from ..models import resolve
from ..power import POLICIES

_KEYS = {"name", "devices", "models", "backends", "batches", "precisions", "jobs", "gpus", "iterations", "clocks",
         "shuffle", "seed", "cooldown_s", "lease_s"}


class PlanError(InputError):
    """A plan that cannot run; the message names the file and the key."""


@dataclass(frozen=True)
class Item:
    device: str
    model: str
    backend: str
    batch: int
    precision: str = "fp32"
    jobs: int = 1
    gpus: str | None = None     # as the plan gives it: "0,1" or "all"; None: the backend's default device

    @property
    def key(self) -> str:
        # Jobs and GPUs only where swept: the items of plans from before they existed keep their keys.
        return (f"{self.device}|{self.model}|{self.backend}|{self.batch}|{self.precision}"
                + (f"|jobs={self.jobs}" if self.jobs != 1 else "") + (f"|gpus={self.gpus}" if self.gpus else ""))


@dataclass
class Plan:
    devices: list[str]
    models: list[str]
    backends: list[str] = field(default_factory=lambda: ["caffe"])
    batches: list[int] = field(default_factory=lambda: [1])
    precisions: list[str] = field(default_factory=lambda: ["fp32"])
    jobs: list[int] = field(default_factory=lambda: [1])
    gpus: list[str] | None = None
    iterations: int | None = None
    clocks: str | None = None
    shuffle: bool = False
    seed: int = 0
    cooldown_s: float = 0.0
    lease_s: int = 180
    name: str = "plan"
    source: str = "python"

    @classmethod
    def from_toml(cls, path: str | Path) -> "Plan":
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except OSError as e:
            raise PlanError(f"{path}: {e.strerror}") from None
        except UnicodeDecodeError as e:
            raise PlanError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
        except tomllib.TOMLDecodeError as e:
            raise PlanError(f"{path}: not valid TOML: {e}") from None
        unknown = set(data) - _KEYS
        if unknown:
            raise PlanError(f"{path}: unknown keys {sorted(unknown)}; known: {sorted(_KEYS)}")
        for key in ("devices", "models"):
            if key not in data:
                raise PlanError(f"{path}: needs `{key}`")
        plan = cls(**{k: v for k, v in data.items()}, source=str(path))
        plan.name = data.get("name", path.stem)
        plan.validate()
        return plan

    def validate(self) -> None:
        """Every key's type and range (edgeprof.limits: the CLI's own); a PlanError names the file and key."""
        where, error = self.source, PlanError
        limits.text(where, "name", self.name, error)
        limits.texts(where, "devices", self.devices, error)
        limits.texts(where, "models", self.models, error)
        for backend in limits.texts(where, "backends", self.backends, error):
            if backend not in backend_names():
                raise PlanError(f"{where}: unknown backend {backend!r}; available: {', '.join(backend_names())}")
        limits.integers(where, "batches", self.batches, limits.BATCH, error)
        limits.texts(where, "precisions", self.precisions, error, choices=precisions())
        limits.integers(where, "jobs", self.jobs, limits.JOBS, error)
        for gpus in limits.texts(where, "gpus", self.gpus, error) if self.gpus is not None else ():
            try:
                parse_gpus(gpus)
            except JobsError as e:
                raise PlanError(f"{where}: gpus: {e}") from None
        if self.iterations is not None:
            limits.integer(where, "iterations", self.iterations, limits.ITERATIONS, error)
        if self.clocks is not None:
            limits.text(where, "clocks", self.clocks, error, choices=POLICIES)
        limits.flag(where, "shuffle", self.shuffle, error)
        limits.integer(where, "seed", self.seed, limits.SEED, error)
        limits.number(where, "cooldown_s", self.cooldown_s, limits.COOLDOWN_S, error)
        limits.integer(where, "lease_s", self.lease_s, limits.LEASE_S, error)

    def resolve_devices(self, inventory: str | None = None) -> list[Device]:
        return select_devices(self.devices, inventory)

    def fingerprint(self, devices: list[Device]) -> str:
        """The plan's identity (see the module docstring): 16 hex digits of a SHA-256."""
        identity = {
            "devices": [d.name for d in devices],
            "models": [[name, resolve(name).sha256] for name in self.models],
            "backends": self.backends, "batches": self.batches, "precisions": self.precisions,
            "iterations": self.iterations, "clocks": self.clocks,
        }
        # Only where swept, so that the hashes of plans from before they existed stay as they were.
        identity.update({key: value for key, value in (("jobs", self.jobs), ("gpus", self.gpus))
                         if value not in ([1], None)})
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]

    def items(self, device: str) -> list[Item]:
        """One board's items, in plan order or shuffled (seeded by the plan's seed and the board)."""
        items = [Item(device, model, backend, batch, precision, jobs, gpus)
                 for model in self.models for backend in self.backends for batch in self.batches
                 for precision in self.precisions if self._has(backend, precision)
                 for jobs in self.jobs for gpus in self.gpus or [None]]
        if self.shuffle:
            random.Random(f"{self.seed}|{device}").shuffle(items)
        return items

    @staticmethod
    def _has(backend: str, precision: str) -> bool:
        """Whether `backend` has items at `precision`: a plan's precisions apply to each backend that runs them."""
        return precision in backend_class(backend).precisions

    def options(self, item: Item) -> Options:
        return Options(iterations=self.iterations, precision=item.precision)


__all__ = ["Item", "Plan", "PlanError"]
