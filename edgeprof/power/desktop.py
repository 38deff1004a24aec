"""Desktop/server NVIDIA GPUs: record clocks, power limit and throttle reasons; lock only when asked."""
from __future__ import annotations

from ..devices import Profile
from ..parsers import nvidia_smi
from ..transport import Transport
from ..transport.sudo import Sudo
from .jetson import PowerModeError

QUERY = ("index", "name", "clocks.sm", "clocks.mem", "clocks.max.sm", "clocks.max.mem", "power.draw",
         "power.limit", "clocks_throttle_reasons.active", "persistence_mode")


class DesktopPower:
    def __init__(self, transport: Transport, sudo: Sudo, profile: Profile, policy: str):
        if policy == "max":
            raise PowerModeError("--clocks max is for Jetson boards; on a desktop GPU use leave or lock")
        self.transport, self.sudo, self.profile, self.policy = transport, sudo, profile, policy
        self.readings: dict | None = None

    @staticmethod
    def needs_root_for(policy: str) -> bool:
        return policy == "lock"

    def needs_root(self) -> bool:
        return self.needs_root_for(self.policy)

    def snapshot(self) -> dict:
        self.readings = self._read()
        return self.readings

    def _read(self) -> dict:
        found = self.transport.run(["sh", "-c", "command -v nvidia-smi"], timeout=30)
        if not found.ok:
            return {"gpus": [], "note": "no nvidia-smi on this device"}
        query = self.transport.run(["nvidia-smi", f"--query-gpu={','.join(QUERY)}", "--format=csv"], timeout=30)
        if not query.ok:
            return {"gpus": [], "note": f"nvidia-smi failed: {query.stderr.strip() or query.stdout.strip()}"}
        return {"gpus": [row.to_dict() for row in nvidia_smi.parse(query.stdout)]}

    def begin(self, lease) -> dict:
        original = self.snapshot()
        recorded = {"clocks_policy": self.policy, "original": original, "power_mode": None}
        if self.policy == "leave":
            return {**recorded, "clocks_pinned": False}
        if not original["gpus"]:
            raise PowerModeError(f"{self.transport.name}: --clocks lock needs an NVIDIA GPU ({original['note']})")
        lease.write_restore(nvidia_smi_rgc=True)
        for gpu in original["gpus"]:
            top = gpu["clocks.max.sm"]
            result = self.sudo.run(["nvidia-smi", "-i", str(gpu["index"]), "-lgc", f"{top},{top}"], timeout=60)
            if not result.ok:
                raise PowerModeError(f"{self.transport.name}: nvidia-smi -lgc failed: {result.stdout.strip()}")
        return {**recorded, "clocks_pinned": True, "pinned": self.snapshot()}
