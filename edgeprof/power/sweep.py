"""A power-mode sweep (`measure --power-modes all|NAME,...`): the same items measured in each nvpmodel mode of
a Jetson, inside the run's lease.

The modes are the board's own: the names and ids of its /etc/nvpmodel.conf (ids differ per board and
release). Each mode is entered once, before its first item: `nvpmodel -m ID`, then `jetson_clocks` pins every
clock at the highest that mode allows, so each mode is measured at its own ceiling and the clocks reached are
recorded (state.pinned, and clocks_start / clocks_end of each item). A mode whose switch asks for a reboot is
refused (never answered yes), its items are stored as failed saying so, and the sweep goes on. The lease
records how to put the board back before the first switch (the max mode first, every CPU online, then the
stored clocks, then the original mode: edgeprof.power.lease.Restore), so the original mode comes back at the
end, on any failure, and through the board's guard if this process dies.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..board import Board, BoardPolicy
from ..devices import Device
from ..errors import BoardControlError, InputError
from . import clocks_policy
from .jetson import JetsonPower


def check_sweep(device: Device, policy: BoardPolicy) -> None:
    """What can be refused before connecting: a board without nvpmodel, or a policy that changes nothing."""
    if device.profile.kind != "jetson":
        raise InputError(f"--power-modes: {device.name} is a {device.profile.family} device; nvpmodel power modes "
                         f"exist on Jetson boards only")
    clocks = clocks_policy(device, policy)
    if clocks != "max":
        raise InputError(f"--power-modes switches modes and pins the clocks in each; drop --clocks {clocks}")


@dataclass
class ModeSweep:
    """Which mode the board is in during a sweep, and the modes that could not be entered (with why)."""
    power: JetsonPower
    board: Board
    status: Callable[[str], None]
    current: str | None = None
    refused: dict[str, str] = field(default_factory=dict)

    def enter(self, name: str) -> str | None:
        """Put the board in power mode `name` unless it is there; None when it is, else why it cannot be
        (the reason is kept: the mode is not tried again)."""
        if name == self.current or name in self.refused:
            return self.refused.get(name)
        self.status(f"{self.board.device.name}: power mode {name}")
        try:
            entered = self.power.enter_mode(name)
        except BoardControlError as e:
            self.refused[name] = f"not measured in power mode {name}: {e}"
            self.status(f"notice: {self.refused[name]}")
            return self.refused[name]
        self.current = name
        self.board.power_state = {**(self.board.power_state or {}), **entered,
                                  "power_sweep": {"mode_name": name, "mode_id": self.power.modes[name]}}
        return None
