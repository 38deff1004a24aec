"""SSH transport (paramiko): one connection per board, reused for every command and file.

Choices an OpenSSH user would expect:
- Host keys are checked against ~/.ssh/known_hosts and the device's own known_hosts file. An unknown host is
  refused unless the caller accepts new keys (then its key is recorded); a changed key is always refused.
- Key files, the SSH agent and ~/.ssh/config (HostName, User, Port, IdentityFile, ProxyJump) are honoured.
- TCP_NODELAY on the socket: without it every exec waits ~40 ms on Nagle + delayed ACK (48 ms vs 3-5 ms
  measured on our lab).
- Commands end with `; exit $?`: otherwise the shell execs the last command itself, a SIGABRT (caffe's
  failed CHECK) reaches sshd as an exit *signal* and paramiko reports -1 instead of 134.
- Every command first prints its shell's PID; the shell leads its own process group (sshd setsid()s it), so
  Ctrl-C or a timeout can kill the whole remote process group through a second channel.
"""
from __future__ import annotations

import base64
import hashlib
import os
import select
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import paramiko

from . import CommandResult, CommandTimeout, TransportError, shell_command

_PID_PREFIX = "EDGEPROF-PID "


def _split_pid(out: bytearray) -> tuple[bool, int | None, bytearray]:
    """(found, the shell's PID, the command's own output) once edgeprof's PID line has arrived, else
    (False, None, out). What a login shell prints before it (a .bashrc echo, a banner) is not the command's
    output: dropped."""
    at = out.find(_PID_PREFIX.encode())
    end = out.find(b"\n", at) if at >= 0 else -1
    if end < 0:
        return False, None, out
    number = bytes(out[at + len(_PID_PREFIX):end]).strip()
    return True, (int(number) if number.isdigit() else None), out[end + 1:]


@dataclass
class SSHTarget:
    host: str
    user: str | None = None
    port: int | None = None
    key_filename: str | None = None
    known_hosts: str | None = None          # extra known_hosts file for this device (read and written)
    proxy_jump: str | None = None
    accept_new_host_key: bool = False
    connect_timeout: float = 10.0

    @property
    def label(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}{':' + str(self.port) if self.port else ''}"


def resolve_ssh_config(target: SSHTarget, config_path: Path | None = None) -> SSHTarget:
    """Fill what the target leaves open from ~/.ssh/config, as `ssh` would; explicit fields win."""
    path = config_path or Path.home() / ".ssh" / "config"
    if not path.exists():
        return target
    conf = paramiko.SSHConfig.from_path(str(path)).lookup(target.host)
    identity = (conf.get("identityfile") or [None])[0]
    return SSHTarget(
        host=conf.get("hostname", target.host),
        user=target.user or conf.get("user"),
        port=target.port or (int(conf["port"]) if "port" in conf else None),
        key_filename=target.key_filename or (os.path.expanduser(identity) if identity else None),
        known_hosts=target.known_hosts,
        proxy_jump=target.proxy_jump or conf.get("proxyjump"),
        accept_new_host_key=target.accept_new_host_key,
        connect_timeout=target.connect_timeout,
    )


class _LabTransport(paramiko.Transport):
    """paramiko's Transport, cheaper on the host's CPU when many boards are connected at once:
    - AES-GCM preferred (any OpenSSH since 6.2 has it; other servers get paramiko's usual order): with
      CTR + HMAC, paramiko checks every packet's MAC in a Python loop, a quarter of the host's CPU in a
      16-board lab run; GCM's tag is checked inside OpenSSL;
    - its reader thread wakes once a second instead of ten times to see whether it should stop (close()
      does not wait for that: it closes the packetizer, which ends the thread)."""
    _preferred_ciphers = tuple(sorted(paramiko.Transport._preferred_ciphers, key=lambda c: "-gcm@" not in c))
    _active_check_timeout = 1.0


def fingerprint(key: paramiko.PKey) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class _UnknownHostPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse unknown hosts, or record their key when the user said --accept-new-host-key."""

    def __init__(self, target: SSHTarget, record_in: Path):
        self.target = target
        self.record_in = record_in

    def missing_host_key(self, client, hostname, key):
        if not self.target.accept_new_host_key:
            raise TransportError(
                f"{self.target.label}: host key not known ({key.get_name()} {fingerprint(key)}). Check the "
                f"fingerprint on the board (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then re-run with "
                f"--accept-new-host-key to record it in {self.record_in}.")
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.record_in.parent.mkdir(parents=True, exist_ok=True)
        with open(self.record_in, "a") as f:
            f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


class SSHTransport:
    def __init__(self, name: str, target: SSHTarget):
        self.name = name
        self.target = resolve_ssh_config(target)
        self._client = self._connect(self.target)
        self._sftp: paramiko.SFTPClient | None = None

    # --- connection ----------------------------------------------------------------------------------
    def _connect(self, t: SSHTarget, sock=None) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        client.load_system_host_keys()
        record_in = Path.home() / ".ssh" / "known_hosts"
        if t.known_hosts:
            record_in = Path(os.path.expanduser(t.known_hosts))
            if record_in.exists():
                client.load_host_keys(str(record_in))
        client.set_missing_host_key_policy(_UnknownHostPolicy(t, record_in))
        port = t.port or 22
        if sock is None:
            sock = self._jump_socket(t, port) if t.proxy_jump else self._tcp_socket(t, port)
        try:
            client.connect(
                t.host, port=port, username=t.user, key_filename=t.key_filename, sock=sock,
                timeout=t.connect_timeout, banner_timeout=t.connect_timeout, auth_timeout=t.connect_timeout,
                allow_agent=True, look_for_keys=t.key_filename is None, transport_factory=_LabTransport)
        except paramiko.BadHostKeyException as e:
            raise TransportError(
                f"{t.label}: HOST KEY CHANGED: the board presented {e.key.get_name()} {fingerprint(e.key)}, "
                f"expected {fingerprint(e.expected_key)}. Refusing to connect: someone may be impersonating "
                f"the board, or it was reinstalled. If you know it was reinstalled, remove its old key with "
                f"ssh-keygen -R {t.host}" + (f" -f {t.known_hosts}" if t.known_hosts else "") + ".") from None
        except paramiko.AuthenticationException as e:
            which = f"key {t.key_filename}" if t.key_filename else "your SSH agent and default keys"
            raise TransportError(
                f"{t.label}: authentication failed with {which} ({e}). Add the public key to "
                f"~{t.user or ''}/.ssh/authorized_keys on the board, or set `key` in the device's inventory "
                f"entry.") from None
        except paramiko.SSHException as e:
            raise TransportError(f"{t.label}: SSH failed: {e}") from None
        except TransportError:
            raise
        except OSError as e:
            raise TransportError(f"{t.label}: connection failed: {e}") from None
        return client

    def _tcp_socket(self, t: SSHTarget, port: int) -> socket.socket:
        try:
            sock = socket.create_connection((t.host, port), timeout=t.connect_timeout)
        except (socket.timeout, TimeoutError):
            raise TransportError(
                f"{t.label}: no answer within {t.connect_timeout:g} s. Is the board on and on this network? "
                f"Check the address in the inventory (edgeprof devices).") from None
        except OSError as e:
            raise TransportError(
                f"{t.label}: cannot connect ({e.strerror or e}). Is sshd running on the board and the "
                f"address/port in the inventory right?") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _jump_socket(self, t: SSHTarget, port: int):
        user_host, _, jump_port = t.proxy_jump.split(",")[0].rpartition(":") if ":" in t.proxy_jump else (
            t.proxy_jump, "", "")
        user, _, host = user_host.rpartition("@")
        jump = resolve_ssh_config(SSHTarget(host=host, user=user or None,
                                            port=int(jump_port) if jump_port else None,
                                            known_hosts=t.known_hosts,
                                            accept_new_host_key=t.accept_new_host_key,
                                            connect_timeout=t.connect_timeout))
        self._jump = self._connect(jump)
        return self._jump.get_transport().open_channel("direct-tcpip", (t.host, port), ("127.0.0.1", 0),
                                                        timeout=t.connect_timeout)

    def close(self) -> None:
        if self._sftp:
            self._sftp.close()
        self._client.close()
        if getattr(self, "_jump", None):
            self._jump.close()

    # --- commands ------------------------------------------------------------------------------------
    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
            timeout: float | None = None, stdin: str | None = None) -> CommandResult:
        command = shell_command(argv, env)
        wire = f"echo '{_PID_PREFIX}'$$; {command}; exit $?"
        started = time.monotonic()
        try:
            channel = self._client.get_transport().open_session()
            channel.exec_command(wire)
            if stdin is not None:
                channel.sendall(stdin.encode())
            channel.shutdown_write()
        except (paramiko.SSHException, OSError, AttributeError) as e:
            raise TransportError(f"{self.name}: lost the SSH connection ({e or type(e).__name__})") from None
        out, err = bytearray(), bytearray()
        found, pid = False, None
        try:
            while True:
                if timeout is not None and time.monotonic() - started > timeout:
                    self._kill(pid)
                    raise CommandTimeout(f"{self.name}: `{command}` did not finish within {timeout:g} s "
                                         f"(stopped it on the board)")
                # Data and the channel's close wake this at once; the timeout only bounds how late a
                # command's own timeout is noticed, so it can be long (a lab waits on many boards at once).
                select.select([channel], [], [], 1.0)
                while channel.recv_ready():
                    out += channel.recv(65536)
                while channel.recv_stderr_ready():
                    err += channel.recv_stderr(65536)
                if not found:
                    found, pid, out = _split_pid(out)
                # EOF, not the exit status: sshd can send the exit status while output is still on its way
                # (a log of more than 64 KB came back cut), and the protocol puts EOF after all data.
                if channel.eof_received and not channel.recv_ready() and not channel.recv_stderr_ready():
                    break
            status = channel.recv_exit_status()
        except KeyboardInterrupt:
            self._kill(pid)
            raise
        finally:
            channel.close()
        if not found:  # the exit came before the loop split the PID line off
            _, _, out = _split_pid(out)
        if status == -1:  # no exit status: with `; exit $?` that only happens when the connection died
            raise TransportError(f"{self.name}: the SSH connection dropped while running `{command}`")
        return CommandResult(command, status, out.decode(errors="replace"), err.decode(errors="replace"),
                             time.monotonic() - started)

    def _kill(self, pid: int | None) -> None:
        if pid is None:
            return
        try:
            channel = self._client.get_transport().open_session()
            channel.exec_command(f"kill -TERM -- -{int(pid)} 2>/dev/null; exit 0")
            channel.recv_exit_status()
            channel.close()
        except (paramiko.SSHException, OSError):
            pass  # the connection is gone; sshd hangs up the session and the process gets SIGHUP

    # --- files ---------------------------------------------------------------------------------------
    @property
    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            self._sftp = self._client.open_sftp()
        return self._sftp

    def put_bytes(self, path: str, data: bytes) -> None:
        with self.sftp.open(path, "wb") as f:
            f.write(data)

    def get_bytes(self, path: str) -> bytes:
        try:
            with self.sftp.open(path, "rb") as f:
                return f.read()
        except OSError as e:
            raise TransportError(f"{self.name}: cannot read {path}: {e.strerror or e}") from None

    def put_text(self, path: str, text: str) -> None:
        self.put_bytes(path, text.encode())

    def get_text(self, path: str) -> str:
        return self.get_bytes(path).decode(errors="replace")
