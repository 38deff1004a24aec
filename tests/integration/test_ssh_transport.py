"""The SSH transport against the lab's real sshd: exit codes, streams, timeouts and Ctrl-C; jump hosts,
ProxyCommand and known_hosts markers through the lab's bastions (tests/lab/lab)."""
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from edgeprof.devices import connect, get_device
from edgeprof.transport import CommandTimeout, TransportError
from edgeprof.transport.ssh import SSHTarget, SSHTransport

from ..conftest import board_entry, write_inventory

# tests/lab/lab: bastion2's address on its link into sim-tx2's namespace, and bastion1's on its link to bastion2.
BASTION2_TO_BOARD = "10.212.2.1"
BASTION1_TO_BASTION2 = "10.212.1.1"


@pytest.fixture
def board(lab_inventory):
    transport = connect(get_device("sim-tx2", lab_inventory))
    yield transport
    transport.close()


def remote_processes(board, pattern):
    # "[s]leep" matches "sleep" but not the command line of the shell running pgrep itself.
    return board.run(["pgrep", "-f", f"[{pattern[0]}]{pattern[1:]}"]).stdout.split()


def test_abort_comes_back_as_134_with_streams_apart(board):
    result = board.run(["sh", "-c", "echo out; echo err >&2; kill -ABRT $$"])
    assert (result.exit_status, result.stdout) == (134, "out\n")
    # The login shell adds its own report of the abort after the command's stderr.
    assert result.stderr.startswith("err\n") and "Aborted" in result.stderr


def test_arguments_reach_the_board_verbatim(board):
    weird = "a b; rm -rf / $(id) `id` 'quoted' \"double\" \\ * ~"
    assert board.run(["printf", "%s", weird]).stdout == weird


def test_one_connection_is_reused_and_fast(board):
    started = time.perf_counter()
    for _ in range(20):
        assert board.run(["true"]).ok
    assert board.run(["sh", "-c", "echo $SSH_CONNECTION"]).stdout == board.run(
        ["sh", "-c", "echo $SSH_CONNECTION"]).stdout
    # Not a speed assert: TCP_NODELAY makes ~20 commands take well under a second; without it ~1 s.
    print(f"20 commands: {time.perf_counter() - started:.3f} s")


def test_timeout_kills_the_remote_process(board):
    with pytest.raises(CommandTimeout, match="stopped it on the board"):
        board.run(["sleep", "47.5"], timeout=1)
    time.sleep(0.5)
    assert remote_processes(board, "sleep 47.5") == []


def test_ctrl_c_stops_the_measurement_on_the_board(edgeprof_cli, lab_inventory, tmp_path):
    env = {**os.environ, "HOME": str(edgeprof_cli.home), "EDGEPROF_DB": str(tmp_path / "r.sqlite"),
           "EDGEPROF_INVENTORY": str(lab_inventory)}
    proc = subprocess.Popen([sys.executable, "-m", "edgeprof.cli", "measure", "--device", "sim-tx2", "vgg16",
                             "--iterations", "1000", "--json"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    transport = connect(get_device("sim-tx2", lab_inventory))
    try:
        deadline = time.monotonic() + 60
        while not remote_processes(transport, "caffe time -model /tmp/edgeprof."):
            assert time.monotonic() < deadline, "caffe never started"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130 and "interrupted" in err
        time.sleep(0.5)
        assert remote_processes(transport, "caffe time -model /tmp/edgeprof.") == []
        # The per-run folder is cleaned up too.
        assert transport.run(["sh", "-c", "ls -d /tmp/edgeprof.* 2>/dev/null"]).stdout == ""
    finally:
        transport.close()
        if proc.poll() is None:
            proc.kill()


def test_a_login_shell_that_prints_first_still_works(board, lab_inventory):
    """A .bashrc that echoes before its interactive check (a lab's banner): sshd runs it for every command
    (Debian's bash reads .bashrc under sshd), so its text comes before edgeprof's PID line."""
    bashrc = "/home/edgeprof-pw/.bashrc"
    assert board.run(["sudo", "sh", "-c", f"cp {bashrc} {bashrc}.orig && "
                                          f"sed -i '1i echo \"Welcome to lab board 7\"' {bashrc}"]).ok
    try:
        other = connect(get_device("sim-tx2-pw", lab_inventory))
        try:
            done = other.run(["sh", "-c", "echo out; sleep 0.2; echo more"])
            assert (done.exit_status, done.stdout) == (0, "out\nmore\n")
            with pytest.raises(CommandTimeout):
                other.run(["sleep", "46.5"], timeout=1)
            time.sleep(0.5)
            assert remote_processes(board, "sleep 46.5") == []   # the PID was still found, and killed
        finally:
            other.close()
    finally:
        board.run(["sudo", "mv", f"{bashrc}.orig", bashrc])


# --- ssh_config and known_hosts as labs write them ------------------------------------------------------------

@pytest.fixture
def lab_ssh_config(lab_inventory, tmp_path, monkeypatch):
    """A HOME whose ~/.ssh/config is the lab's (tests/lab/lab writes the bastions' entries next to the
    inventory), as a lab user's would be; returns that file, for tests to add entries."""
    lab = lab_inventory.parent / "ssh_config"
    if not lab.exists():
        pytest.fail(f"{lab} is missing: the lab predates its bastions; run tests/lab/lab up")
    config = tmp_path / "home" / ".ssh" / "config"
    config.parent.mkdir(parents=True)
    config.write_text(lab.read_text())
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return config


def client_address(transport) -> str:
    """Where the board sees the connection come from (sshd's SSH_CONNECTION)."""
    return transport.run(["sh", "-c", "echo $SSH_CONNECTION"]).stdout.split()[0]


def test_two_jump_hosts_are_each_used(lab_inventory, lab_ssh_config):
    """`ProxyJump bastion1,bastion2`: sim-tx2 sees the connection come from bastion2's own link, which only
    bastion1 can reach; from the host, neither bastion2 nor, through bastion1 alone, the board's link is there."""
    device = replace(get_device("sim-tx2", lab_inventory), proxy_jump="bastion1,bastion2")
    transport = connect(device)
    try:
        assert [t.alias for t in transport.route] == ["bastion1", "bastion2", None]
        assert client_address(transport) == BASTION2_TO_BOARD
        assert transport.run(["cat", "/etc/hostname"]).ok   # a working session: files and commands
        transport.put_text("/tmp/edgeprof-via-bastions", "through two hops")
        assert transport.get_text("/tmp/edgeprof-via-bastions") == "through two hops"
        transport.run(["rm", "-f", "/tmp/edgeprof-via-bastions"])
    finally:
        transport.close()
    # Directly, the board is still the one it was (the bastions changed nothing on that path).
    direct = connect(get_device("sim-tx2", lab_inventory))
    try:
        assert client_address(direct) == "10.211.1.1"
    finally:
        direct.close()
    second = SSHTransport("bastion2", SSHTarget(host="bastion2", proxy_jump="bastion1"))
    try:
        assert client_address(second) == BASTION1_TO_BASTION2
    finally:
        second.close()
    with pytest.raises(TransportError, match="jump host bastion1 .* could not reach 10.211.1.2:22"):
        connect(replace(device, proxy_jump="bastion1"), connect_timeout=5)


def test_the_chain_from_ssh_config_alone(lab_ssh_config):
    """An alias whose ssh_config entry has `ProxyJump bastion1,bastion2`, its key and its known_hosts file."""
    transport = SSHTransport("via-config", SSHTarget(host="sim-tx2-via-bastions"))
    try:
        assert [t.host for t in transport.route] == ["10.211.3.2", "10.212.1.2", "10.211.1.2"]
        assert client_address(transport) == BASTION2_TO_BOARD
    finally:
        transport.close()


def test_uri_and_ipv6_hops_in_the_inventory(lab_inventory, lab_ssh_config, tmp_path):
    """proxy_jump = "ssh://root@[fd00:ed6e::2]:22,bastion2": bastion1 by its IPv6 address in URI form (its key
    from ssh_config's entry for that address), then bastion2 by alias."""
    key = board_entry(lab_inventory, "sim-tx2")["key"]
    with open(lab_ssh_config, "a") as f:
        f.write(f"Host fd00:ed6e::2\n    IdentityFile {key}\n")
    entry = {**board_entry(lab_inventory, "sim-tx2"), "proxy_jump": "ssh://root@[fd00:ed6e::2]:22,bastion2"}
    entry["host"] = f"ssh://{entry.pop('user')}@{entry['host']}:22"
    inventory = write_inventory(tmp_path / "inv.toml", hopped=entry)
    transport = connect(get_device("hopped", inventory))
    try:
        assert transport.route[0].label == "root@[fd00:ed6e::2]:22"
        assert client_address(transport) == BASTION2_TO_BOARD
    finally:
        transport.close()


def test_proxycommand_with_tokens(lab_inventory, lab_ssh_config):
    """ProxyCommand run through the shell with %h and %p: OpenSSH's own ssh -W through bastion1 to bastion2."""
    lab = lab_inventory.parent / "ssh_config"
    with open(lab_ssh_config, "a") as f:
        f.write(f"Host bastion2-by-command\n    HostName 10.212.1.2\n    User root\n"
                f"    IdentityFile {board_entry(lab_inventory, 'sim-tx2')['key']}\n"
                f"    UserKnownHostsFile {board_entry(lab_inventory, 'sim-tx2')['known_hosts']}\n"
                f"    ProxyCommand ssh -F {lab} -o BatchMode=yes -W '[%h]:%p' bastion1\n")
    transport = SSHTransport("by-command", SSHTarget(host="bastion2-by-command"))
    try:
        assert transport.target.proxy_command.endswith("-W '[10.212.1.2]:22' bastion1")
        assert client_address(transport) == BASTION1_TO_BASTION2
        proxy = transport._proxy.process
    finally:
        transport.close()
    assert proxy.poll() is not None     # closing the transport ends the command


def test_failing_proxycommand_says_what_it_said(lab_ssh_config):
    with open(lab_ssh_config, "a") as f:
        f.write("Host nowhere\n    ProxyCommand sh -c 'echo no route to the lab >&2; exit 3'\n")
    with pytest.raises(TransportError, match="ProxyCommand .* exited with status 3: no route to the lab"):
        SSHTransport("nowhere", SSHTarget(host="nowhere", connect_timeout=5))


def test_proxyjump_none_in_ssh_config_connects_directly(lab_inventory, lab_ssh_config):
    with open(lab_ssh_config, "a") as f:
        f.write("Host 10.211.1.2\n    ProxyJump none\nHost *\n    ProxyJump bastion1,bastion2\n")
    transport = connect(get_device("sim-tx2", lab_inventory))
    try:
        assert len(transport.route) == 1 and client_address(transport) == "10.211.1.1"
    finally:
        transport.close()


def test_revoked_and_certificate_authority_lines(lab_inventory, tmp_path):
    """A @cert-authority line no longer breaks every connection; a @revoked key is refused, also with
    --accept-new-host-key; a key only a CA line would vouch for is unknown, and the message says why."""
    entry = board_entry(lab_inventory, "sim-tx2")
    lab_known = Path(entry["known_hosts"]).read_text()
    tx2_key = next(line.split(" ", 1)[1] for line in lab_known.splitlines() if line.startswith(entry["host"] + " "))
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", tmp_path / "ca"], check=True)
    ca = (tmp_path / "ca.pub").read_text().split()
    known = tmp_path / "known_hosts"
    known.write_text(f"@cert-authority *.lab,10.211.* {ca[0]} {ca[1]}\n@revoked {entry['host']} {tx2_key}\n"
                     + lab_known)
    inventory = write_inventory(tmp_path / "inv.toml", tx2={**entry, "known_hosts": str(known)},
                                desktop={**board_entry(lab_inventory, "sim-desktop"), "known_hosts": str(known)})
    desktop = connect(get_device("desktop", inventory))
    desktop.close()
    with pytest.raises(TransportError, match=f"marked @revoked in {known} line 2"):
        connect(get_device("tx2", inventory), accept_new_host_key=True)
    only_ca = tmp_path / "only_ca"
    only_ca.write_text(f"@cert-authority *.lab,10.211.* {ca[0]} {ca[1]}\n")
    inventory = write_inventory(tmp_path / "inv2.toml", tx2={**entry, "known_hosts": str(only_ca)})
    with pytest.raises(TransportError, match="@cert-authority line for this host, but edgeprof does not check host "
                                             "certificates"):
        connect(get_device("tx2", inventory))


def test_a_port_that_never_speaks_ssh_fails_in_time_in_one_line(tmp_path):
    """A port that takes the TCP connection and then says nothing: one line within the connect timeout, and
    nothing from paramiko (its "Exception (client)" traceback) on stderr."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    script = (
        "import time\n"
        "from edgeprof.transport import TransportError\n"
        "from edgeprof.transport.ssh import SSHTarget, SSHTransport\n"
        "started = time.monotonic()\n"
        "try:\n"
        f"    SSHTransport('mute', SSHTarget(host='127.0.0.1', port={listener.getsockname()[1]}, "
        "connect_timeout=2))\n"
        "except TransportError as e:\n"
        "    print(f'{time.monotonic() - started:.2f}', e)\n")
    try:
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "HOME": str(tmp_path)})
    finally:
        listener.close()
    assert proc.stderr == ""
    elapsed, message = proc.stdout.split(" ", 1)
    assert float(elapsed) < 2.5
    assert message.count("\n") == 1 and "took the connection but sent no SSH greeting within 2 s" in message


def test_handshakes_are_bounded_and_every_link_keeps_alive(lab_inventory, monkeypatch):
    """Twelve boards connected at once (a lab's start): at most MAX_HANDSHAKES key exchanges at a time, all
    twelve connected, each transport sending keepalives."""
    import threading
    from edgeprof.transport import ssh
    inside, most, lock = [0], [0], threading.Lock()
    real_connect = SSHTransport._connect

    def counted(self, *args):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            time.sleep(0.2)   # long enough for the other threads to pile up at the gate
            return real_connect(self, *args)
        finally:
            with lock:
                inside[0] -= 1
    monkeypatch.setattr(SSHTransport, "_connect", counted)
    names = [f"sim-tx2-{n:02d}" for n in range(1, 13)]
    opened, errors = [], []

    def open_one(name):
        try:
            opened.append(connect(get_device(name, lab_inventory)))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"{name}: {e}")
    threads = [threading.Thread(target=open_one, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == [] and len(opened) == 12
        assert 1 < most[0] <= ssh.MAX_HANDSHAKES
        # paramiko keeps the interval only in the packetizer's private state (Packetizer.set_keepalive).
        assert {t._client.get_transport().packetizer._Packetizer__keepalive_interval for t in opened} == \
            {ssh.KEEPALIVE_S}
    finally:
        for transport in opened:
            transport.close()
