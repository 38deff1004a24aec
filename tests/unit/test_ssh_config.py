"""ssh_config and known_hosts as OpenSSH reads them (ssh_config(5), sshd(8) SSH_KNOWN_HOSTS FILE FORMAT), from
real files written here; no network."""
import os
import shutil
import subprocess
from pathlib import Path

import paramiko
import pytest

from edgeprof.transport import TransportError
from edgeprof.transport.ssh import (KnownHosts, SSHTarget, _HostKeyCheck, _prefer_known_key_types,
                                    parse_destination, read_known_hosts, record_host_key, resolve_ssh_config,
                                    route)


def config(tmp_path, text):
    path = tmp_path / "ssh_config"
    path.write_text(text)
    return [path]


# --- destinations ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, parsed", [
    ("tx2", (None, "tx2", None)),
    ("nvidia@10.0.0.5:2222", ("nvidia", "10.0.0.5", 2222)),
    ("ssh://nvidia@10.0.0.5:2222", ("nvidia", "10.0.0.5", 2222)),
    ("SSH://gate.example/", (None, "gate.example", None)),
    ("[fd00::5]:2200", (None, "fd00::5", 2200)),
    ("ssh://root@[fd00::5]", ("root", "fd00::5", None)),
    ("fd00::5", (None, "fd00::5", None)),               # a bare IPv6 address: no port
    ("a@b@host", ("a@b", "host", None)),                 # the last @ separates, as ssh(1)
])
def test_destination_forms(text, parsed):
    assert parse_destination(text) == parsed


@pytest.mark.parametrize("text, message", [
    ("host:ssh", "port 'ssh' is not a number"),
    ("host:0", "port '0' is not a number from 1 to 65535"),
    ("host:65536", "port '65536'"),
    ("ssh://host/path", "has no path"),
    ("@host", "nothing before '@'"),
    ("[fd00::5", r"\[address\]:port"),
    ("[fd00::5]2200", r"\[address\]:port"),
    ("", "is not a host name"),
    ("two words", "is not a host name"),
])
def test_bad_destinations_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_destination(text)


# --- ssh_config --------------------------------------------------------------------------------------------

def test_proxyjump_none_wins_over_a_later_proxyjump(tmp_path):
    paths = config(tmp_path, "Host inside\n  ProxyJump none\nHost *\n  ProxyJump gate\n")
    assert route(SSHTarget(host="inside"), paths) == [resolve_ssh_config(SSHTarget(host="inside"), paths)]
    assert resolve_ssh_config(SSHTarget(host="inside"), paths).proxy_jump is None
    assert resolve_ssh_config(SSHTarget(host="other"), paths).proxy_jump == "gate"


@pytest.mark.parametrize("lines, jump, command", [
    ("ProxyCommand nc %h %p\n  ProxyJump gate", None, "nc 10.0.0.5 22"),
    ("ProxyJump gate\n  ProxyCommand nc %h %p", "gate", None),
    ("ProxyCommand none\n  ProxyJump gate", None, None),
    ("ProxyJump none\n  ProxyCommand nc %h %p", None, None),
])
def test_whichever_of_proxyjump_and_proxycommand_comes_first_wins(tmp_path, lines, jump, command):
    """ssh_config(5) ProxyJump: "whichever is specified first will prevent later instances of the other"."""
    paths = config(tmp_path, f"Host b\n  HostName 10.0.0.5\n  {lines}\n")
    resolved = resolve_ssh_config(SSHTarget(host="b"), paths)
    assert (resolved.proxy_jump, resolved.proxy_command) == (jump, command)


def test_inventory_proxy_jump_wins_over_ssh_config(tmp_path):
    paths = config(tmp_path, "Host b\n  ProxyCommand nc %h %p\n  ProxyJump gate\n")
    resolved = resolve_ssh_config(SSHTarget(host="b", proxy_jump="other:2022"), paths)
    assert (resolved.proxy_jump, resolved.proxy_command) == ("other:2022", None)
    assert route(SSHTarget(host="b", proxy_jump="none"), paths)[-1].proxy_command is None


def test_proxycommand_tokens_take_the_inventorys_user_and_port(tmp_path):
    paths = config(tmp_path, "Host b\n  HostName 10.0.0.5\n  User cfg\n  Port 2201\n"
                             "  ProxyCommand ssh -W [%h]:%p -l %r gate # %n 100%%\n")
    resolved = resolve_ssh_config(SSHTarget(host="b", user="nvidia", port=2200), paths)
    assert resolved.proxy_command == "ssh -W [10.0.0.5]:2200 -l nvidia gate # b 100%"
    assert resolve_ssh_config(SSHTarget(host="b"), paths).proxy_command == "ssh -W [10.0.0.5]:2201 -l cfg gate # b 100%"


def test_unknown_token_is_an_error(tmp_path):
    paths = config(tmp_path, "Host b\n  ProxyCommand nc %h %x\n")
    with pytest.raises(TransportError, match="does not know the token %x"):
        resolve_ssh_config(SSHTarget(host="b"), paths)


def test_several_hops_each_resolved_through_ssh_config(tmp_path):
    """`ProxyJump a,b` as ssh(1) runs it: b reached through a; a's own ProxyJump (c) applies, b's does not
    (the -J a that ssh passes overrides it); a user or port written in the hop wins."""
    paths = config(tmp_path, "\n".join([
        "Host a", "  HostName 192.0.2.1", "  User ua", "  Port 2201", "  ProxyJump c",
        "Host b", "  HostName 192.0.2.2", "  User ub", "  ProxyJump never-used",
        "Host c", "  HostName 192.0.2.3", "  IdentityFile ~/.ssh/c_key",
        "Host board", "  HostName 10.0.0.5", "  ProxyJump a,b", ""]))
    hops = route(SSHTarget(host="board", user="nvidia"), paths)
    assert [(t.alias, t.user, t.host, t.port) for t in hops] == [
        ("c", None, "192.0.2.3", None), ("a", "ua", "192.0.2.1", 2201), ("b", "ub", "192.0.2.2", None),
        ("board", "nvidia", "10.0.0.5", None)]
    assert hops[0].identity_files == (os.path.expanduser("~/.ssh/c_key"),)
    hops = route(SSHTarget(host="board", proxy_jump="ssh://other@a:2300,[fd00::7]:2222"), paths)
    assert [(t.user, t.host, t.port) for t in hops] == [
        (None, "192.0.2.3", None), ("other", "192.0.2.1", 2300), (None, "fd00::7", 2222), (None, "10.0.0.5", None)]
    assert hops[2].label == "[fd00::7]:2222"


def test_a_jump_loop_is_an_error(tmp_path):
    paths = config(tmp_path, "Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n")
    with pytest.raises(TransportError, match="loop"):
        route(SSHTarget(host="a"), paths)


def test_bad_proxyjump_in_ssh_config_names_it(tmp_path):
    paths = config(tmp_path, "Host b\n  ProxyJump gate:twenty\n")
    with pytest.raises(TransportError, match="ssh_config for b: ProxyJump 'gate:twenty': port"):
        resolve_ssh_config(SSHTarget(host="b"), paths)


def test_known_hosts_files_from_ssh_config(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB", str(tmp_path / "lab"))
    paths = config(tmp_path, "Host b\n  HostName 10.0.0.5\n"
                             "  UserKnownHostsFile ~/kh/%h_%p ${LAB}/known_hosts\n"
                             "  GlobalKnownHostsFile /srv/known\n  HashKnownHosts yes\n"
                             "Host c\n  UserKnownHostsFile none\n  GlobalKnownHostsFile none\n")
    resolved = resolve_ssh_config(SSHTarget(host="b"), paths)
    assert resolved.user_known_hosts == (os.path.expanduser("~/kh/10.0.0.5_22"), f"{tmp_path}/lab/known_hosts")
    assert resolved.global_known_hosts == ("/srv/known",) and resolved.hash_known_hosts
    nothing = resolve_ssh_config(SSHTarget(host="c"), paths)
    assert (nothing.user_known_hosts, nothing.global_known_hosts) == ((), ())
    defaults = resolve_ssh_config(SSHTarget(host="d"), paths)
    assert defaults.user_known_hosts == (os.path.expanduser("~/.ssh/known_hosts"),
                                         os.path.expanduser("~/.ssh/known_hosts2"))
    assert defaults.global_known_hosts == ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")


def test_include_inside_a_block_and_at_the_top(tmp_path):
    """ssh_config(5) Include: relative to the including file's folder, globbed in order; inside a Host block it
    applies to that host, and the block goes on after it even when the included file opens blocks of its own."""
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "a.conf").write_text("HostName 10.0.0.9\nHost other\n  User someone-else\n")
    (tmp_path / "conf.d" / "b.conf").write_text("Port 2201\n")
    (tmp_path / "common.conf").write_text("Host gate\n  HostName 192.0.2.1\n")
    paths = config(tmp_path, "Include common.conf\nHost board\n  Include conf.d/*.conf\n  User nvidia\n")
    board = resolve_ssh_config(SSHTarget(host="board"), paths)
    assert (board.host, board.port, board.user) == ("10.0.0.9", 2201, "nvidia")
    assert resolve_ssh_config(SSHTarget(host="gate"), paths).host == "192.0.2.1"
    assert resolve_ssh_config(SSHTarget(host="other"), paths).user == "someone-else"


def test_an_include_loop_is_an_error(tmp_path):
    paths = config(tmp_path, "Include ssh_config\n")
    with pytest.raises(TransportError, match="Include nested more than 16 deep"):
        resolve_ssh_config(SSHTarget(host="b"), paths)


def test_unparsable_ssh_config_names_the_file(tmp_path):
    paths = config(tmp_path, "Host b\n  =broken\n")
    with pytest.raises(TransportError, match=f"{paths[0]}: Unparsable line"):
        resolve_ssh_config(SSHTarget(host="b"), paths)


# --- known_hosts ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keys():
    """Two ECDSA keys and an RSA key, as a board's host keys."""
    return paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate(), paramiko.RSAKey.generate(2048)


def line(names, key, marker=""):
    return f"{marker + ' ' if marker else ''}{names} {key.get_name()} {key.get_base64()}\n"


def test_patterns_negation_and_ports(tmp_path, keys):
    board, other, _ = keys
    known = tmp_path / "known_hosts"
    known.write_text("# comment\n\n" + line("*.lab,!bad.lab", board) + line("[10.0.0.5]:2222", other)
                     + line("tx?", other))
    hosts = KnownHosts([str(known)])
    assert hosts.check("b1.lab", board.asbytes())[0] == "known"
    assert hosts.check("bad.lab", board.asbytes())[0] == "unknown"
    assert hosts.check("[10.0.0.5]:2222", other.asbytes())[0] == "known"
    assert hosts.check("10.0.0.5", other.asbytes())[0] == "unknown"
    assert hosts.check("TX2", other.asbytes())[0] == "known"
    entry = hosts.check("b1.lab", other.asbytes())
    assert entry[0] == "changed" and (entry[1].path, entry[1].line) == (str(known), 3)


def test_markers_and_malformed_lines_do_not_crash(tmp_path, keys):
    board, other, rsa = keys
    known = tmp_path / "known_hosts"
    known.write_text(line("*", other, "@cert-authority") + line("*", rsa, "@revoked") + line("tx2", rsa)
                     + "tx2 ssh-ed25519 not-base64!\n" + "@future tx2 " + board.get_name() + " "
                     + board.get_base64() + "\n" + "only-two fields\n" + "tx2 1024 35 1234567\n")
    entries = read_known_hosts(str(known))
    assert [(e.marker, e.line) for e in entries] == [("@cert-authority", 1), ("@revoked", 2), (None, 3)]
    hosts = KnownHosts([str(known)])
    assert hosts.check("tx2", rsa.asbytes())[0] == "revoked"       # revoked though line 3 lists it
    status, ca = hosts.check("tx2", board.asbytes())
    assert status == "unknown" and ca.marker == "@cert-authority"


@pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs OpenSSH's ssh-keygen")
def test_hashed_names_from_ssh_keygen_and_recorded_by_edgeprof(tmp_path, keys):
    board, other, _ = keys
    known = tmp_path / "known_hosts"
    known.write_text(line("10.0.0.5", board) + line("[10.0.0.6]:2222", other))
    subprocess.run(["ssh-keygen", "-H", "-f", known], check=True, capture_output=True)
    assert "10.0.0.5" not in known.read_text()
    hosts = KnownHosts([str(known)])
    assert hosts.check("10.0.0.5", board.asbytes())[0] == "known"
    assert hosts.check("[10.0.0.6]:2222", other.asbytes())[0] == "known"
    assert hosts.check("10.0.0.7", board.asbytes())[0] == "unknown"
    # What edgeprof records with HashKnownHosts yes, ssh-keygen finds.
    record_host_key(known, "[10.0.0.8]:2200", other, hashed=True)
    found = subprocess.run(["ssh-keygen", "-F", "[10.0.0.8]:2200", "-f", known], capture_output=True, text=True)
    assert found.returncode == 0 and other.get_base64() in found.stdout


def test_a_record_after_a_last_line_without_newline(tmp_path, keys):
    board, other, _ = keys
    known = tmp_path / "known_hosts"
    known.write_text(line("a", board).rstrip("\n"))
    record_host_key(known, "b", other, hashed=False)
    assert known.read_text() == line("a", board) + line("b", other)


def policy(tmp_path, known_text, **target):
    known = tmp_path / "device_known_hosts"
    known.write_text(known_text)
    t = SSHTarget(**{"host": "10.0.0.5", "known_hosts": str(known), **target})
    return _HostKeyCheck(t, KnownHosts.of(t)), known


def test_changed_key_names_the_file_and_the_bracketed_name(tmp_path, keys):
    board, other, _ = keys
    check, known = policy(tmp_path, line("[10.0.0.5]:2222", other), port=2222, accept_new_host_key=True)
    with pytest.raises(TransportError, match="HOST KEY CHANGED") as e:
        check.missing_host_key(None, "[10.0.0.5]:2222", board)
    assert f"ssh-keygen -R '[10.0.0.5]:2222' -f {known}" in str(e.value) and "line 1" in str(e.value)
    check, known = policy(tmp_path, line("10.0.0.5", other))
    with pytest.raises(TransportError, match=f"ssh-keygen -R 10.0.0.5 -f {known}"):
        check.missing_host_key(None, "10.0.0.5", board)


def test_revoked_key_is_refused_even_when_accepting_new_keys(tmp_path, keys):
    board, _, _ = keys
    check, known = policy(tmp_path, line("*", board, "@revoked"), accept_new_host_key=True)
    with pytest.raises(TransportError, match=f"marked @revoked in {known} line 1.*with or without"):
        check.missing_host_key(None, "10.0.0.5", board)
    assert board.get_base64() not in known.read_text().replace(line("*", board, "@revoked"), "")


def test_certificate_authority_alone_leaves_the_key_unknown(tmp_path, keys):
    board, other, _ = keys
    check, known = policy(tmp_path, line("*.lab,10.0.0.*", other, "@cert-authority"))
    with pytest.raises(TransportError, match="host key not known.*@cert-authority line.*does not check host "
                                             "certificates.*--accept-new-host-key"):
        check.missing_host_key(None, "10.0.0.5", board)


def test_new_key_is_recorded_hashed_when_ssh_config_says_so(tmp_path, keys):
    board, _, _ = keys
    check, known = policy(tmp_path, "", accept_new_host_key=True, hash_known_hosts=True)
    check.missing_host_key(None, "10.0.0.5", board)
    assert known.read_text().startswith("|1|") and KnownHosts([str(known)]).check(
        "10.0.0.5", board.asbytes())[0] == "known"


def test_nowhere_to_record_is_said(tmp_path, keys):
    board, _, _ = keys
    t = SSHTarget(host="10.0.0.5", accept_new_host_key=True)
    with pytest.raises(TransportError, match="UserKnownHostsFile is none.*set `known_hosts`"):
        _HostKeyCheck(t, KnownHosts.of(t)).missing_host_key(None, "10.0.0.5", board)


def test_key_types_on_file_are_negotiated_first():
    offered = ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256"]
    assert _prefer_known_key_types(offered, {"ssh-rsa"}) == [
        "rsa-sha2-512", "rsa-sha2-256", "ssh-ed25519", "ecdsa-sha2-nistp256"]
    assert _prefer_known_key_types(offered, set()) == offered


def test_default_known_hosts_files_are_read(tmp_path, keys, monkeypatch):
    """~/.ssh/known_hosts and the global file as ssh_config names them, besides the device's own file."""
    board, other, _ = keys
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "known_hosts").write_text(line("10.0.0.5", board))
    (tmp_path / "global").write_text(line("10.0.0.6", other))
    paths = config(tmp_path, f"GlobalKnownHostsFile {tmp_path / 'global'}\n")
    for host, key in (("10.0.0.5", board), ("10.0.0.6", other)):
        t = resolve_ssh_config(SSHTarget(host=host), paths)
        assert KnownHosts.of(t).check(host, key.asbytes())[0] == "known"
        assert _HostKeyCheck(t, KnownHosts.of(t)).record_in == Path(tmp_path / ".ssh" / "known_hosts")


def test_server_alive_interval_is_read_and_checked(tmp_path):
    paths = config(tmp_path, "Host far\n  ServerAliveInterval 60\nHost bad\n  ServerAliveInterval often\n")
    assert resolve_ssh_config(SSHTarget(host="far"), paths).server_alive_interval == 60.0
    assert resolve_ssh_config(SSHTarget(host="near"), paths).server_alive_interval == 0.0
    with pytest.raises(TransportError, match="ServerAliveInterval 'often' is not a whole number of seconds"):
        resolve_ssh_config(SSHTarget(host="bad"), paths)
