"""Devices: built-in board-family profiles, the user's inventory of boards, and the built-in `local`.

A profile (device_profiles/<family>.toml, shipped as package edgeprof.device_profiles) holds what is true
of every board of a family. An inventory entry names one board and the family it inherits:

    [devices."tx2-lab"]
    family = "tx2"
    host = "tx2-lab"          # an address, or an alias from ~/.ssh/config (HostName, User, Port, IdentityFile,
    user = "nvidia"           #   ProxyJump, ProxyCommand, known-hosts files: keys given here win); also
                              #   user@host:port, ssh://user@host:port, [IPv6]:port
    port = 22
    key = "~/.ssh/id_ed25519"
    known_hosts = "~/.ssh/known_hosts"
    proxy_jump = "gate,bastion"   # jump hosts, first hop first ([user@]host[:port] or ssh_config aliases)
    tags = ["site=lab2"]
    caffe = "/home/nvidia/caffe/build/tools/caffe"   # any profile key may be overridden

Inventories are read from ~/.config/edgeprof/devices/*.toml, then from the file named by --inventory or
$EDGEPROF_INVENTORY (later entries override earlier ones of the same name).
"""
from __future__ import annotations

import difflib
import fnmatch
import os
import sys
import tomllib
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from .. import limits
from ..errors import InputError

from ..transport import Transport

LOCAL = "local"
_PROFILE_KEYS = {"description", "kind", "max_power_mode", "clocks", "telemetry", "power_total", "caffe",
                 "trtexec", "python"}
_DEVICE_KEYS = {"family", "host", "user", "port", "key", "known_hosts", "proxy_jump", "tags"} | _PROFILE_KEYS


class DeviceError(InputError, LookupError):
    """An unknown device or family, or a malformed inventory; the message says how to fix it."""


@dataclass(frozen=True)
class Profile:
    family: str
    description: str
    kind: str                       # "jetson" or "desktop"
    clocks: str                     # default clocks policy: "max", "leave" or "lock"
    telemetry: str
    caffe: tuple[str, ...]          # candidate paths/commands, first found wins
    trtexec: tuple[str, ...]
    python: str
    max_power_mode: str | None = None
    power_total: str | None = None

    @classmethod
    def from_toml(cls, family: str, data: dict, where: str) -> "Profile":
        unknown = set(data) - _PROFILE_KEYS
        if unknown:
            raise DeviceError(f"{where}: unknown profile keys {sorted(unknown)}; known: {sorted(_PROFILE_KEYS)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        try:
            return cls(family=family, **values)
        except TypeError as e:
            raise DeviceError(f"{where}: {e}") from None


@dataclass(frozen=True)
class Device:
    name: str
    profile: Profile
    host: str | None = None         # None for the local device
    user: str | None = None
    port: int | None = None
    key: str | None = None
    known_hosts: str | None = None
    proxy_jump: str | None = None
    tags: tuple[str, ...] = ()
    defined_in: str = "built in"

    @property
    def is_local(self) -> bool:
        return self.host is None

    @property
    def address(self) -> str:
        if self.is_local:
            return "this host"
        host = f"[{self.host}]" if self.port and ":" in self.host else self.host   # an IPv6 address
        return f"{self.user + '@' if self.user else ''}{host}{':' + str(self.port) if self.port else ''}"

    def to_dict(self) -> dict:
        return {"name": self.name, "family": self.profile.family, "address": self.address,
                "tags": list(self.tags), "defined_in": self.defined_in}


def builtin_profiles() -> dict[str, Profile]:
    profiles = {}
    for entry in resources.files("edgeprof.device_profiles").iterdir():
        if entry.name.endswith(".toml"):
            family = entry.name[:-len(".toml")]
            data = tomllib.loads(entry.read_text())
            profiles[family] = Profile.from_toml(family, data, str(entry))
    return profiles


def _local_device(profiles: dict[str, Profile]) -> Device:
    # The host's Python backends run in edgeprof's own interpreter (its venv has torch), not the first
    # python3 on PATH.
    return Device(name=LOCAL, profile=replace(profiles["desktop"], python=sys.executable))


def inventory_paths(inventory: str | os.PathLike | None = None) -> list[Path]:
    config = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "edgeprof" / "devices"
    paths = sorted(config.glob("*.toml")) if config.is_dir() else []
    named = inventory or os.environ.get("EDGEPROF_INVENTORY")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise DeviceError(f"inventory file {path} does not exist (from "
                              f"{'--inventory' if inventory else 'EDGEPROF_INVENTORY'})")
        paths.append(path)
    return paths


def load_devices(inventory: str | os.PathLike | None = None) -> dict[str, Device]:
    """Every device edgeprof knows: `local`, then the user's inventories in order."""
    profiles = builtin_profiles()
    devices = {LOCAL: _local_device(profiles)}
    for path in inventory_paths(inventory):
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise DeviceError(f"{path}: not valid TOML: {e}") from None
        except UnicodeDecodeError as e:
            raise DeviceError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
        except OSError as e:
            raise DeviceError(f"{path}: {e.strerror}") from None
        tables = data.get("devices", {})
        if not isinstance(tables, dict):
            raise DeviceError(f"{path}: `devices` must be tables, one per board: [devices.NAME]")
        for name, entry in tables.items():
            where = f"{path} [devices.{name}]"
            if not isinstance(entry, dict):
                raise DeviceError(f"{where}: must be a table of keys (host = ..., family = ...), got {entry!r}")
            devices[name] = _device_from_entry(name, entry, profiles, where)
    return devices


def _device_from_entry(name: str, entry: dict, profiles: dict[str, Profile], where: str) -> Device:
    if name == LOCAL:
        raise DeviceError(f"{where}: the name 'local' is reserved for this host")
    unknown = set(entry) - _DEVICE_KEYS
    if unknown:
        raise DeviceError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(_DEVICE_KEYS)}")
    family = entry.get("family")
    if family not in profiles:
        raise DeviceError(f"{where}: family {family!r} is not one of {', '.join(sorted(profiles))}")
    if "host" not in entry:
        raise DeviceError(f"{where}: needs `host` (an address or an alias from ~/.ssh/config)")
    _check_entry(entry, where)
    user, host, port = _destination(entry, where)
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items() if k in _PROFILE_KEYS}
    # A single path given for a tool means "this one", not a list of characters.
    for tool in ("caffe", "trtexec"):
        if isinstance(overrides.get(tool), str):
            overrides[tool] = (overrides[tool],)
    return Device(
        name=name, profile=replace(profiles[family], **overrides), host=host, user=user, port=port,
        key=entry.get("key"), known_hosts=entry.get("known_hosts"),
        proxy_jump=entry.get("proxy_jump"), tags=tuple(entry.get("tags", ())), defined_in=where)


def _destination(entry: dict, where: str) -> tuple[str | None, str, int | None]:
    """(user, host, port) from `host`, which may also be `user@host:port`, `ssh://user@host:port` or
    `[IPv6]:port` (the forms ssh(1) and ProxyJump take), and the `user` and `port` keys; `proxy_jump` checked
    hop by hop."""
    from ..transport.ssh import parse_destination, parse_jump_hosts
    try:
        user, host, port = parse_destination(entry["host"])
    except ValueError as e:
        raise DeviceError(f"{where}: host {e}") from None
    for key, given, in_host in (("user", entry.get("user"), user), ("port", entry.get("port"), port)):
        if given is not None and in_host is not None and given != in_host:
            raise DeviceError(f"{where}: host {entry['host']!r} gives {key} {in_host!r} but {key} = {given!r}: "
                              f"give the {key} once")
    if "proxy_jump" in entry:
        try:
            parse_jump_hosts(entry["proxy_jump"])
        except ValueError as e:
            raise DeviceError(f"{where}: proxy_jump {e} (hops are [user@]host[:port], comma-separated, or "
                              f"none)") from None
    return user or entry.get("user"), host, port or entry.get("port")


def _check_entry(entry: dict, where: str) -> None:
    """Each key's type (and range), as edgeprof.limits checks plans."""
    for key, value in entry.items():
        if key == "port":
            limits.integer(where, key, value, limits.PORT, DeviceError)
        elif key == "tags":
            limits.texts(where, key, value, DeviceError, may_be_empty=True)
        elif key == "clocks":
            from ..power import POLICIES
            limits.text(where, key, value, DeviceError, choices=POLICIES)
        elif key in ("caffe", "trtexec"):
            if not isinstance(value, str):
                limits.texts(where, key, value, DeviceError)
        else:
            limits.text(where, key, value, DeviceError)


def get_device(name: str, inventory: str | os.PathLike | None = None) -> Device:
    devices = load_devices(inventory)
    if name in devices:
        return devices[name]
    close = difflib.get_close_matches(name, list(devices), n=3)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise DeviceError(f"unknown device {name!r}.{hint} Known: {', '.join(devices)}. Add boards in "
                      f"~/.config/edgeprof/devices/*.toml or a file given with --inventory/EDGEPROF_INVENTORY.")


def _matches(device: Device, term: str) -> bool:
    if term.startswith("tag:"):
        tag = term[len("tag:"):]
        # The family is every device's implicit tag, so inventories need not repeat it.
        return tag in device.tags or tag == f"family={device.profile.family}"
    return fnmatch.fnmatchcase(device.name, term)


def select_devices(selection: str | list[str], inventory: str | os.PathLike | None = None) -> list[Device]:
    """Devices by name, glob (`sim-tx2-*`) or tag (`tag:site=lab2`, `tag:family=tx2`); terms comma-separated
    or a list, results in inventory order without repeats. A term that matches nothing is an error, with
    close names suggested."""
    terms = [t.strip() for t in (selection.split(",") if isinstance(selection, str) else selection) if t.strip()]
    if not terms:
        raise DeviceError("no device named: give a name, a glob such as 'jetson-*', or a tag such as tag:family=tx2")
    devices = load_devices(inventory)
    chosen = []
    for term in terms:
        found = [d for d in devices.values() if _matches(d, term)]
        if not found:
            if term.startswith("tag:") or any(c in term for c in "*?["):
                tags = sorted({t for d in devices.values() for t in d.tags}
                              | {f"family={d.profile.family}" for d in devices.values()})
                raise DeviceError(f"no device matches {term!r}. Tags in the inventory: {', '.join(tags)}")
            get_device(term, inventory)  # raises with the suggestions
        chosen += [d for d in found if d not in chosen]
    return chosen


def connect(device: Device, *, accept_new_host_key: bool = False, connect_timeout: float = 10.0) -> Transport:
    """An open transport to the device: SSH for boards, the host itself for `local`."""
    if device.is_local:
        from ..transport.local import LocalTransport
        return LocalTransport()
    from ..transport.ssh import SSHTarget, SSHTransport
    target = SSHTarget(
        host=device.host, user=device.user, port=device.port,
        key_filename=os.path.expanduser(device.key) if device.key else None,
        known_hosts=device.known_hosts, proxy_jump=device.proxy_jump,
        accept_new_host_key=accept_new_host_key, connect_timeout=connect_timeout)
    return SSHTransport(device.name, target)


__all__ = ["Device", "DeviceError", "LOCAL", "Profile", "builtin_profiles", "connect", "get_device",
           "load_devices", "select_devices"]
