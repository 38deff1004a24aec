"""Power-mode and clock control: maximum performance during the run, the board's own state afterwards.

A clocks policy per device (`--clocks` overrides the family default):
- `max` (Jetson default): record nvpmodel mode and `jetson_clocks --show`, store the clocks on the board,
  switch to the family's max-performance mode and pin clocks; restore both afterwards (jetson.py).
- `leave` (desktop default): record what the clocks are, change nothing.
- `lock` (desktops, only when asked): `nvidia-smi -lgc` to the maximum, `-rgc` afterwards (desktop.py).

`power_session()` wraps it all in the board lease (lease.py): exclusive use of the board, and a guard on
the board that restores it if this host process dies or the network drops.
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Callable, Iterator, Protocol

from ..devices import Device
from ..transport import Transport
from ..transport.sudo import Sudo
from .lease import BoardBusy, Lease, Restore, acquire

if TYPE_CHECKING:
    from ..board import BoardPolicy

POLICIES = ("max", "leave", "lock")


class PowerControl(Protocol):
    policy: str
    sudo: Sudo
    # The clock readings of its last look at them (begin's included), as snapshot() gives them; None when
    # there was none or they were not settled yet. The first item starts from them rather than reading again.
    readings: dict | None


    def needs_root(self) -> bool: ...

    def begin(self, lease) -> dict: ...      # record the state, apply the policy; returns what it recorded

    def snapshot(self) -> dict: ...          # clock readings now (start/end of a measured window)


def _control_class(device: Device) -> type:
    if device.profile.kind == "jetson":
        from .jetson import JetsonPower
        return JetsonPower
    from .desktop import DesktopPower
    return DesktopPower


def control_for(device: Device, transport: Transport, sudo: Sudo, policy: str) -> PowerControl:
    if policy not in POLICIES:
        raise ValueError(f"unknown clocks policy {policy!r}; use one of {', '.join(POLICIES)}")
    return _control_class(device)(transport, sudo, device.profile, policy)


def clocks_policy(device: Device, policy: "BoardPolicy") -> str:
    """The clocks policy a run applies to the device: the run's (--clocks), else the family's default."""
    return policy.clocks or device.profile.clocks


def needs_root(device: Device, policy: "BoardPolicy") -> bool:
    """Whether the run's clocks policy on `device` runs anything as root: known before connecting, so that the
    board's probe checks sudo in its own round trip (edgeprof.board.probe) only where sudo will be used."""
    return _control_class(device).needs_root_for(clocks_policy(device, policy))


@contextlib.contextmanager
def power_session(device: Device, transport: Transport, *, run_id: str, policy: "BoardPolicy", workdir: str,
                  root_by: str | None = None,
                  status: Callable[[str], None] = lambda m: None) -> Iterator[tuple[PowerControl, dict, Lease]]:
    """Hold the board for the duration of the block with the clocks policy applied; always restore, and stop
    what runs from the work folder and remove it (Restore.stop_work). root_by: how the login gets root, as the
    board's probe found (None: not asked, the sudo check asks)."""
    sudo = Sudo(transport, password_env=policy.sudo_password_env, root_by=root_by)
    control = control_for(device, transport, sudo, clocks_policy(device, policy))
    if control.needs_root():
        sudo.check()  # a denied sudo stops here, before anything on the board changed
    lease = acquire(transport, sudo if control.needs_root() else None, run_id=run_id, lease_s=policy.lease_s,
                    wait_s=policy.wait_s, take_over_dead=policy.take_over_dead, restore=Restore(stop_work=workdir),
                    status=status)
    try:
        for notice in lease.notices:
            status(f"notice: {notice}")
        recorded = control.begin(lease)
        recorded["notices"] = lease.notices
        yield control, recorded, lease
    finally:
        lease.release()


__all__ = ["BoardBusy", "POLICIES", "PowerControl", "control_for", "needs_root", "power_session"]
