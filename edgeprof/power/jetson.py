"""Jetson power mode (nvpmodel) and clocks (jetson_clocks), as users run them by hand, made a transaction."""
from __future__ import annotations

import re
import time

from ..devices import Profile
from ..errors import BoardControlError
from ..parsers import jetson_clocks, nvpmodel
from ..transport import Transport
from ..transport.sudo import Sudo

# "< POWER_MODEL ID=0 NAME=MAXN >" in /etc/nvpmodel.conf; ids differ per board and release.
_MODE_LINE = re.compile(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=([^\s>]+)")
_REBOOT_PROMPT = re.compile(r"reboot", re.IGNORECASE)
SETTLE_S = 5.0
_STATE_SEPARATOR = "\n@@edgeprof-power-state@@\n"
_STATE_SCRIPT = f'''nvpmodel -q && printf '{_STATE_SEPARATOR}' && jetson_clocks --show && printf '{_STATE_SEPARATOR}' \\
  && cat /etc/nvpmodel.conf'''
# "sudo: jetson_clocks: command not found", "sh: 1: nvpmodel: not found"
_NOT_FOUND = re.compile(r"([\w.-]+): (?:command )?not found")


class PowerModeError(BoardControlError):
    pass


class PowerModeRefused(PowerModeError):
    """Switching to the mode needs a reboot (nvpmodel asked; edgeprof declines): the board stays as it was."""


def mode_ids(conf_text: str) -> dict[str, int]:
    return {name: int(mode_id) for mode_id, name in _MODE_LINE.findall(conf_text)}


class JetsonPower:
    def __init__(self, transport: Transport, sudo: Sudo, profile: Profile, policy: str):
        if policy == "lock":
            raise PowerModeError("--clocks lock is for desktop GPUs (nvidia-smi -lgc); on a Jetson use max")
        self.transport, self.sudo, self.profile, self.policy = transport, sudo, profile, policy
        self.readings: dict | None = None

    @staticmethod
    def needs_root_for(policy: str) -> bool:
        # jetson_clocks --show needs root too, so recording the clocks needs sudo even under `leave`.
        return True

    def needs_root(self) -> bool:
        return self.needs_root_for(self.policy)

    def _root(self, *argv: str, shown: str | None = None, timeout: float = 60):
        """Run argv as root and return its stdout; PowerModeError when it fails, naming it as `shown` (a
        script's own text says little) and a tool the board lacks."""
        result = self.sudo.run(list(argv), timeout=timeout)
        if not result.ok:
            missing = _NOT_FOUND.search(result.stderr)
            # Not "--clocks leave": a Jetson family reads its clocks with jetson_clocks under every policy.
            hint = (f" {missing[1]} is missing: is {self.transport.name} a Jetson? If not, give it its family in "
                    f"the inventory (e.g. family = \"desktop\").") if missing else ""
            raise PowerModeError(f"{self.transport.name}: `{shown or ' '.join(argv)}` failed (exit "
                                 f"{result.exit_status}): {(result.stderr or result.stdout).strip()}.{hint}")
        return result.stdout

    def snapshot(self) -> dict:
        self.readings = jetson_clocks.parse(self._root("jetson_clocks", "--show")).to_dict()
        return self.readings

    def _state(self, pin: bool = False) -> tuple[dict, dict, str]:
        """(nvpmodel -q, jetson_clocks --show, /etc/nvpmodel.conf) in one round trip: a lab of many boards
        pays for every command on the host's CPU. pin: `jetson_clocks` first, in the same round trip."""
        shown = ("jetson_clocks, then " if pin else "") + "nvpmodel -q, jetson_clocks --show, cat /etc/nvpmodel.conf"
        # What jetson_clocks itself says goes to stderr: stdout is the three parts alone.
        parts = self._root("sh", "-c", ("jetson_clocks >&2 && " if pin else "") + _STATE_SCRIPT,
                           "edgeprof-power-state", shown=shown).split(_STATE_SEPARATOR)
        if len(parts) != 3:
            raise PowerModeError(f"{self.transport.name}: could not read the power state: {''.join(parts)[-500:]}")
        self.readings = jetson_clocks.parse(parts[1]).to_dict()
        return nvpmodel.parse(parts[0]).to_dict(), self.readings, parts[2]

    def begin(self, lease) -> dict:
        mode, clocks, conf = self._state()
        original = {"power_mode": mode, "clocks": clocks}
        recorded = {"clocks_policy": self.policy, "original": original}
        if self.policy == "leave":
            return {**recorded, "power_mode": original["power_mode"], "clocks_pinned": False}
        self.modes = mode_ids(conf)
        self._lease = lease
        target = self._max_mode_id(conf)
        original_id = self._original_mode_id(original["power_mode"], conf)
        lease.write_restore(store_clocks=True, jetson_clocks=True, nvpmodel=original_id)
        if target != original_id:
            self._switch(target, self.profile.max_power_mode,
                         "Switch by hand and reboot, or run with --clocks leave.")
        mode, pinned = self._settle()
        return {**recorded, "power_mode": mode, "clocks_pinned": True, "pinned": pinned}

    def _switch(self, mode_id: int, name: str, advice: str) -> None:
        switched = self.sudo.run(["nvpmodel", "-m", str(mode_id)], timeout=60)
        if _REBOOT_PROMPT.search(switched.stdout + switched.stderr):
            # nvpmodel asked on stdin, which is closed: the answer is no and the mode stays
            # (https://github.com/almond-bot/axol/pull/107: declining cancels the switch).
            raise PowerModeRefused(f"{self.transport.name}: switching to {name} (id {mode_id}) needs a reboot; "
                                   f"edgeprof does not reboot boards. {advice}")
        if not switched.ok:
            raise PowerModeError(f"{self.transport.name}: nvpmodel -m {mode_id} failed: "
                                 f"{(switched.stderr or switched.stdout).strip()}")

    def sweep_modes(self, asked: list[str]) -> list[str]:
        """The power modes a --power-modes sweep measures: ["all"] is every mode of the board's own
        /etc/nvpmodel.conf in id order, else the names asked, each checked against that conf."""
        if self.policy != "max":
            raise PowerModeError("--power-modes switches modes and pins the clocks in each; drop --clocks leave")
        if asked == ["all"]:
            return sorted(self.modes, key=self.modes.get)
        unknown = [name for name in asked if name not in self.modes]
        if unknown:
            raise PowerModeError(f"{self.transport.name}: no power mode {', '.join(unknown)} in its "
                                 f"/etc/nvpmodel.conf; its modes: {self._listed()}. Nothing was measured.")
        return list(dict.fromkeys(asked))

    def _listed(self) -> str:
        return ", ".join(f"{name} (id {mode_id})" for name, mode_id in sorted(self.modes.items(), key=lambda m: m[1]))

    def enter_mode(self, name: str) -> dict:
        """Switch to the power mode `name` of the board's conf and pin its clocks (jetson_clocks: the
        highest each reaches in that mode); returns the mode nvpmodel then reports and the clocks reached.
        PowerModeRefused when the switch needs a reboot; PowerModeError when it fails."""
        mode_id = self.modes[name]
        if self._lease.restore.nvpmodel_first is None:
            self._lease.write_restore(nvpmodel_first=self.modes[self.profile.max_power_mode])
        self._switch(mode_id, name, "Left out of the sweep; to measure it, switch to it by hand (sudo nvpmodel "
                                    f"-m {mode_id}, then reboot) and measure with --clocks leave.")
        mode, pinned = self._settle()
        if mode["mode_id"] != mode_id:
            raise PowerModeError(f"{self.transport.name}: after nvpmodel -m {mode_id} ({name}) the board reports "
                                 f"mode {mode['mode_name']} (id {mode['mode_id']})")
        return {"power_mode": mode, "clocks_pinned": True, "pinned": pinned}

    def _max_mode_id(self, conf: str) -> int:
        ids = mode_ids(conf)
        name = self.profile.max_power_mode
        if name not in ids:
            raise PowerModeError(
                f"{self.transport.name}: no power mode named {name} in /etc/nvpmodel.conf (modes: "
                f"{', '.join(f'{k}={v}' for k, v in ids.items()) or 'none found'}). Set max_power_mode in the "
                f"device's inventory entry.")
        return ids[name]

    def _original_mode_id(self, mode: dict, conf: str) -> int:
        """The id to switch back to: `nvpmodel -q`'s, or (a copy that lost the id line) the conf's id of its
        name; without one, nothing is changed."""
        found = mode["mode_id"] if mode["mode_id"] is not None else mode_ids(conf).get(mode["mode_name"])
        if found is None:
            raise PowerModeError(f"{self.transport.name}: cannot tell the id of the current power mode "
                                 f"{mode['mode_name']} to restore it later; nothing was changed. Run with "
                                 f"--clocks leave.")
        return found

    def _settle(self) -> tuple[dict, dict]:
        """Pin the clocks (jetson_clocks) and wait until GPU and EMC run at their pinned maximum (DVFS takes a
        moment); return the power mode then in force and the clock readings."""
        deadline = time.monotonic() + SETTLE_S
        pin = True
        while True:
            mode, show, _ = self._state(pin=pin)
            pin = False
            settled = all(show[unit] and show[unit]["cur_hz"] == show[unit]["max_hz"] for unit in ("gpu", "emc"))
            if settled or time.monotonic() > deadline:
                if not settled:
                    self.readings = None    # the first item reads them again, maybe settled by then
                return mode, {**show, "settled": settled}
            time.sleep(0.2)
