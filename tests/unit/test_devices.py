"""Profiles and inventories: built-in families, user entries, ~/.ssh/config aliases, clear errors."""
import os

import pytest

from edgeprof.devices import DeviceError, builtin_profiles, get_device, load_devices
from edgeprof.transport.ssh import SSHTarget, resolve_ssh_config

FAMILIES = {"tx2", "nano", "xavier", "xavier-nx", "orin-agx", "orin-nx", "orin-nano", "desktop"}


def test_every_family_has_a_profile_with_its_facts():
    profiles = builtin_profiles()
    assert set(profiles) == FAMILIES
    for family, profile in profiles.items():
        assert profile.caffe and profile.trtexec and profile.telemetry
        if family != "desktop":
            assert profile.kind == "jetson" and profile.max_power_mode and profile.clocks == "max"
    assert profiles["desktop"].clocks == "leave"


def test_local_is_built_in(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("EDGEPROF_INVENTORY", raising=False)
    local = get_device("local")
    assert local.is_local and local.profile.family == "desktop"


def test_inventory_entry_inherits_its_family_and_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "edgeprof" / "devices").mkdir(parents=True)
    (tmp_path / "edgeprof" / "devices" / "lab.toml").write_text(
        '[devices."tx2-lab"]\nfamily = "tx2"\nhost = "10.0.0.5"\nuser = "nvidia"\n'
        'caffe = "/opt/caffe/bin/caffe"\ntags = ["site=lab2"]\n')
    device = get_device("tx2-lab", None)
    assert device.profile.max_power_mode == "MAXN"
    assert device.profile.caffe == ("/opt/caffe/bin/caffe",)
    assert device.address == "nvidia@10.0.0.5" and device.tags == ("site=lab2",)


def test_unknown_device_suggests_close_names(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("EDGEPROF_INVENTORY", raising=False)
    with pytest.raises(DeviceError, match="Did you mean local"):
        get_device("locl")


@pytest.mark.parametrize("entry, message", [
    ('family = "tx3"\nhost = "h"', "family 'tx3' is not one of"),
    ('family = "tx2"', "needs `host`"),
    ('family = "tx2"\nhost = "h"\nhostname = "x"', "unknown keys \\['hostname'\\]"),
])
def test_bad_inventory_entries_say_what_is_wrong(tmp_path, entry, message):
    inventory = tmp_path / "inv.toml"
    inventory.write_text(f'[devices."b"]\n{entry}\n')
    with pytest.raises(DeviceError, match=message):
        load_devices(inventory)


def test_missing_inventory_file_is_named(tmp_path):
    with pytest.raises(DeviceError, match="does not exist"):
        load_devices(tmp_path / "nope.toml")


def test_ssh_config_alias_is_honoured(tmp_path):
    config = tmp_path / "config"
    config.write_text("Host tx2\n  HostName 192.0.2.7\n  User nvidia\n  Port 2200\n"
                      "  IdentityFile ~/.ssh/tx2_key\n  ProxyJump gate@jump.example:2022\n")
    target = resolve_ssh_config(SSHTarget(host="tx2"), [config])
    assert (target.host, target.user, target.port, target.proxy_jump) == (
        "192.0.2.7", "nvidia", 2200, "gate@jump.example:2022")
    assert target.identity_files == (os.path.expanduser("~/.ssh/tx2_key"),)
    # What the inventory says wins over ~/.ssh/config.
    assert resolve_ssh_config(SSHTarget(host="tx2", user="root"), [config]).user == "root"


@pytest.mark.parametrize("host, user, port, address", [
    ('"ssh://nvidia@10.0.0.5:2222"', "nvidia", 2222, "nvidia@10.0.0.5:2222"),
    ('"nvidia@tx2-lab"', "nvidia", None, "nvidia@tx2-lab"),
    ('"[fd00::5]:2200"', None, 2200, "[fd00::5]:2200"),
    ('"fd00::5"', None, None, "fd00::5"),
])
def test_inventory_host_forms(tmp_path, host, user, port, address):
    inventory = tmp_path / "inv.toml"
    inventory.write_text(f'[devices."b"]\nfamily = "tx2"\nhost = {host}\nproxy_jump = "ssh://gate@[fd00::1]:22,b2"\n')
    device = load_devices(inventory)["b"]
    assert (device.user, device.port, device.address) == (user, port, address)


@pytest.mark.parametrize("entry, message", [
    ('host = "ssh://nvidia@h:2222"\nport = 22', "gives port 2222 but port = 22: give the port once"),
    ('host = "nvidia@h"\nuser = "root"', "gives user 'nvidia' but user = 'root'"),
    ('host = "h:twenty"', "host 'h:twenty': port 'twenty' is not a number"),
    ('host = "h"\nproxy_jump = "gate,,b"', "proxy_jump '': '' is not a host name"),
])
def test_bad_host_forms_in_the_inventory(tmp_path, entry, message):
    inventory = tmp_path / "inv.toml"
    inventory.write_text(f'[devices."b"]\nfamily = "tx2"\n{entry}\n')
    with pytest.raises(DeviceError, match=message):
        load_devices(inventory)


def test_local_runs_python_backends_in_edgeprofs_own_interpreter(monkeypatch, tmp_path):
    import sys
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("EDGEPROF_INVENTORY", raising=False)
    assert get_device("local").profile.python == sys.executable


def test_select_by_name_glob_and_tag(monkeypatch, tmp_path):
    from edgeprof.devices import select_devices
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    inventory = tmp_path / "lab.toml"
    inventory.write_text("\n".join(
        f'[devices."{name}"]\nfamily = "{family}"\nhost = "10.0.0.{i}"\ntags = {tags}\n'
        for i, (name, family, tags) in enumerate([("tx2-a", "tx2", '["site=lab2"]'), ("tx2-b", "tx2", "[]"),
                                                  ("orin-a", "orin-agx", '["site=lab2"]')])))
    names = lambda selection: [d.name for d in select_devices(selection, inventory)]  # noqa: E731
    assert names("tx2-*") == ["tx2-a", "tx2-b"]
    assert names("tag:site=lab2") == ["tx2-a", "orin-a"]
    assert names("tag:family=tx2") == ["tx2-a", "tx2-b"]          # the family is an implicit tag
    assert names("orin-a,tx2-*,tx2-a") == ["orin-a", "tx2-a", "tx2-b"]   # no repeats, first mention first
    with pytest.raises(DeviceError, match=r"no device matches 'tag:site=lab9'.*site=lab2"):
        select_devices("tag:site=lab9", inventory)
    with pytest.raises(DeviceError, match="unknown device .tx2-c.. Did you mean tx2-"):
        select_devices("tx2-c", inventory)
