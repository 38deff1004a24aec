"""SSH transport (paramiko): one connection per board, reused for every command and file.

Choices an OpenSSH user would expect:
- ssh_config as ssh(1) reads it: ~/.ssh/config, then /etc/ssh/ssh_config, with their Includes; for each
  keyword the first value obtained wins (ssh_config(5)). HostName, User, Port, IdentityFile, ProxyJump (any
  number of hops, each resolved through ssh_config itself; `none`), ProxyCommand (run through the shell with
  %h %n %p %r; `none`), UserKnownHostsFile, GlobalKnownHostsFile and HashKnownHosts are honoured; what the
  inventory gives wins, as ssh's command-line options do. An inventory host or a hop may be `[user@]host[:port]`,
  `ssh://[user@]host[:port]` or `[IPv6]:port`.
- Host keys are checked against the device's own known_hosts file, the user's known_hosts files and the
  system's (/etc/ssh/ssh_known_hosts), read by edgeprof itself (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT":
  wildcards, negation, hashed names, `[host]:port`, @revoked and @cert-authority lines). An unknown host is
  refused unless the caller accepts new keys (then its key is recorded); a changed or revoked key is always
  refused. edgeprof does not check host certificates.
- TCP_NODELAY on the socket: without it every exec waits ~40 ms on Nagle + delayed ACK (48 ms vs 3-5 ms
  measured on our lab).
- Commands end with `; exit $?`: otherwise the shell execs the last command itself, a SIGABRT (caffe's
  failed CHECK) reaches sshd as an exit *signal* and paramiko reports -1 instead of 134.
- Every command first prints its shell's PID; the shell leads its own process group (sshd setsid()s it), so
  Ctrl-C or a timeout can kill the whole remote process group through a second channel.
"""
from __future__ import annotations

import base64
import binascii
import getpass
import glob
import hashlib
import hmac
import logging
import os
import re
import select
import shlex
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

import paramiko

from . import CommandResult, CommandTimeout, RemoteFileError, TransportError, shell_command

_PID_PREFIX = "EDGEPROF-PID "

# paramiko logs a failed connection ("Exception (client): Error reading SSH protocol banner" and a traceback)
# at ERROR; with no logging configured, Python's last-resort handler prints that on stderr around edgeprof's
# own one-line error. edgeprof's connections log to this logger instead, which keeps the records to itself:
# add a handler to it to see paramiko's view of a connection.
PARAMIKO_LOG = "edgeprof.transport.ssh.paramiko"
logging.getLogger(PARAMIKO_LOG).addHandler(logging.NullHandler())
logging.getLogger(PARAMIKO_LOG).propagate = False

# ssh_config(5): UserKnownHostsFile and GlobalKnownHostsFile defaults.
DEFAULT_USER_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
DEFAULT_GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
SYSTEM_SSH_CONFIG = Path("/etc/ssh/ssh_config")
# A ProxyJump in a jump host's own ssh_config entry can lead back to itself; ssh(1) would start ssh processes
# until something gives out, edgeprof stops here.
MAX_JUMP_HOPS = 8


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


# --- addresses ---------------------------------------------------------------------------------------

def parse_destination(text: str) -> tuple[str | None, str, int | None]:
    """(user, host, port) of `[user@]host[:port]` or `ssh://[user@]host[:port]`, the host possibly an IPv6
    address in brackets: the forms ssh_config(5) gives for ProxyJump and ssh(1) for its destination. A bare
    IPv6 address (more than one colon, no brackets) is a host without a port. ValueError says what is wrong."""
    rest = text.strip()
    if rest[:6].lower() == "ssh://":
        rest = rest[6:].removesuffix("/")
        if "/" in rest:
            raise ValueError(f"{text!r}: an ssh:// address has no path (ssh://[user@]host[:port])")
    user, at, hostport = rest.rpartition("@")
    if at and not user:
        raise ValueError(f"{text!r}: nothing before '@' (write user@host, or leave the user out)")
    port_text = None
    if hostport.startswith("["):
        host, bracket, after = hostport[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise ValueError(f"{text!r}: write an IPv6 address with a port as [address]:port")
        port_text = after[1:] if after else None
    elif hostport.count(":") == 1:
        host, port_text = hostport.split(":")
    else:
        host = hostport
    if not host or any(c.isspace() or c in ",/[]@" for c in host):
        raise ValueError(f"{text!r}: {host!r} is not a host name or address")
    if port_text is not None and not (port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536):
        raise ValueError(f"{text!r}: port {port_text!r} is not a number from 1 to 65535")
    return user or None, host, int(port_text) if port_text else None


def parse_jump_hosts(text: str) -> list[tuple[str | None, str, int | None]]:
    """The hops of a ProxyJump value, first hop first; [] for `none`."""
    if text.strip().lower() == "none":
        return []
    return [parse_destination(hop) for hop in text.split(",")]


def _address(user: str | None, host: str, port: int | None) -> str:
    shown = f"[{host}]" if port and ":" in host else host
    return f"{user + '@' if user else ''}{shown}{':' + str(port) if port else ''}"


def known_hosts_name(host: str, port: int) -> str:
    """The name a host's key is filed under: sshd(8) SSH_KNOWN_HOSTS FILE FORMAT, `[host]:port` for a port
    other than 22."""
    return host.lower() if port == 22 else f"[{host.lower()}]:{port}"


@dataclass
class SSHTarget:
    host: str
    user: str | None = None
    port: int | None = None
    key_filename: str | None = None
    known_hosts: str | None = None          # extra known_hosts file for this device (read and written)
    proxy_jump: str | None = None           # given here it wins over ssh_config, as `ssh -J` does; "none" too
    accept_new_host_key: bool = False
    connect_timeout: float = 10.0
    # What resolve_ssh_config fills in from ssh_config:
    alias: str | None = None                # the name looked up in ssh_config, when HostName replaced it
    identity_files: tuple[str, ...] = ()
    proxy_command: str | None = None        # tokens already substituted
    user_known_hosts: tuple[str, ...] = ()
    global_known_hosts: tuple[str, ...] = ()
    hash_known_hosts: bool = False
    server_alive_interval: float = 0.0      # ssh_config ServerAliveInterval; 0: edgeprof's KEEPALIVE_S

    @property
    def label(self) -> str:
        address = _address(self.user, self.host, self.port)
        return f"{self.alias} ({address})" if self.alias and self.alias != self.host else address


# --- ssh_config ----------------------------------------------------------------------------------------

class _SSHConfig(paramiko.SSHConfig):
    """paramiko's ssh_config reader (Host, Match, first value wins), without its substitution of %h %p %r in
    ProxyCommand and ProxyJump: it takes those from ssh_config alone, while the inventory's user and port win
    over ssh_config as ssh's -l and -p do. edgeprof substitutes them once the final values are known."""
    TOKENS_BY_CONFIG_KEY = {key: tokens for key, tokens in paramiko.SSHConfig.TOKENS_BY_CONFIG_KEY.items()
                            if key not in ("proxycommand", "proxyjump")}


def default_ssh_config_paths() -> tuple[Path, ...]:
    """ssh(1) FILES: the user's ~/.ssh/config, then the system-wide /etc/ssh/ssh_config."""
    return Path.home() / ".ssh" / "config", SYSTEM_SSH_CONFIG


# ssh_config(5) Include: OpenSSH's limit on nesting (readconf.c READCONF_MAX_DEPTH).
_MAX_INCLUDE_DEPTH = 16
_KEYWORD = re.compile(r"\s*(\w+)(?:\s*=\s*|\s+)(.*)")


def _config_lines(path: Path, depth: int = 0, block: str = "Host *") -> list[str]:
    """The file's lines with each Include replaced by the files it names, which paramiko does not read.
    ssh_config(5) Include: glob patterns, ~, a relative path taken from ~/.ssh for the user's file and /etc/ssh
    for the system's (the folder of the file here). ssh(1) reads each included file, and what follows the
    Include, in the block the Include stood in (`block`), so that block's Host or Match line is repeated
    before each."""
    lines = []
    for line in path.read_text().splitlines():
        keyword = _KEYWORD.match(line)
        name = keyword.group(1).lower() if keyword else ""
        if name in ("host", "match"):
            block = line
        if name != "include":
            lines.append(line)
            continue
        if depth >= _MAX_INCLUDE_DEPTH:
            raise TransportError(f"{path}: Include nested more than {_MAX_INCLUDE_DEPTH} deep: a file includes itself?")
        for pattern in shlex.split(keyword.group(2)):
            pattern = os.path.expanduser(pattern)
            for included in sorted(glob.glob(pattern if os.path.isabs(pattern) else str(path.parent / pattern))):
                lines += [block] + _config_lines(Path(included), depth + 1, block)
        lines.append(block)
    return lines


def _lookup(host: str, paths: Sequence[Path]) -> dict:
    config = _SSHConfig()
    for path in paths:
        try:
            config.parse(_config_lines(Path(path)))
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as e:
            raise TransportError(f"cannot read ssh_config {path}: {getattr(e, 'strerror', None) or e}") from None
        except paramiko.ConfigParseError as e:
            raise TransportError(f"{path}: {e}: fix that line (see ssh_config(5))") from None
    try:
        return config.lookup(host)
    except paramiko.ConfigParseError as e:
        raise TransportError(f"ssh_config ({', '.join(map(str, paths))}) for {host}: {e}") from None


# ssh_config(5) TOKENS: which keywords take which tokens.
_PROXY_TOKENS = set("%hnpr")
_KNOWN_HOSTS_TOKENS = set("%dhiklLnpru")


def _expand_tokens(text: str, keyword: str, allowed: set[str], *, host: str, alias: str, port: int,
                   user: str) -> str:
    local = socket.gethostname()
    values = {"%": "%", "h": host, "n": alias, "p": str(port), "r": user, "u": getpass.getuser(),
              "d": str(Path.home()), "i": str(os.getuid()), "k": alias, "l": local, "L": local.split(".")[0]}

    def token(match: re.Match) -> str:
        letter = match.group(1)
        if letter not in allowed:
            raise TransportError(f"ssh_config {keyword} {text!r}: edgeprof does not know the token %{letter} "
                                 f"there (it takes {', '.join('%' + t for t in sorted(allowed))})")
        return values[letter]
    return re.sub(r"%(.?)", token, text)


def _expand_environment(text: str, keyword: str) -> str:
    """ssh_config(5) ENVIRONMENT VARIABLES: ${NAME} in UserKnownHostsFile."""
    def variable(match: re.Match) -> str:
        if match.group(1) not in os.environ:
            raise TransportError(f"ssh_config {keyword} {text!r}: environment variable {match.group(1)} is not set")
        return os.environ[match.group(1)]
    return re.sub(r"\$\{(\w+)\}", variable, text)


def resolve_ssh_config(target: SSHTarget, config_paths: Sequence[Path] | None = None) -> SSHTarget:
    """The target as ssh(1) would connect to it: what the target leaves open filled from ssh_config (explicit
    fields win), ProxyJump/ProxyCommand settled, known_hosts files named."""
    paths = default_ssh_config_paths() if config_paths is None else config_paths
    conf = _lookup(target.host, paths)
    where = f"ssh_config for {target.host}"
    user = target.user or conf.get("user")
    port = target.port
    if port is None and "port" in conf:
        if not (conf["port"].isascii() and conf["port"].isdigit() and 0 < int(conf["port"]) < 65536):
            raise TransportError(f"{where}: Port {conf['port']!r} is not a number from 1 to 65535")
        port = int(conf["port"])
    host = conf.get("hostname", target.host)
    tokens = dict(host=host, alias=target.host, port=port or 22, user=user or getpass.getuser())
    # ssh_config(5) ProxyJump: "if both are specified, whichever is specified first will prevent later
    # instances of the other from taking effect"; paramiko keeps the options in the order first obtained.
    proxy_jump, proxy_command = target.proxy_jump, None
    if proxy_jump is None:
        first = next((key for key in conf if key in ("proxyjump", "proxycommand")), None)
        if first == "proxyjump":
            proxy_jump = _expand_tokens(conf["proxyjump"], "ProxyJump", _PROXY_TOKENS, **tokens)
        elif first == "proxycommand" and conf["proxycommand"] is not None:   # paramiko reads `none` as None
            proxy_command = _expand_tokens(conf["proxycommand"], "ProxyCommand", _PROXY_TOKENS, **tokens)
    if proxy_jump is not None:
        try:
            proxy_jump = ",".join(_address(*hop) for hop in parse_jump_hosts(proxy_jump)) or None
        except ValueError as e:
            raise TransportError(f"{where}: ProxyJump {e}") from None

    def files(keyword: str, default: tuple[str, ...], expand) -> tuple[str, ...]:
        value = conf.get(keyword.lower())
        words = default if value is None else shlex.split(value)
        if [w.lower() for w in words] == ["none"]:   # ssh_config(5): none ignores those files
            return ()
        return tuple(os.path.expanduser(expand(w)) for w in words)

    return replace(
        target, host=host, user=user, port=port, proxy_jump=proxy_jump, proxy_command=proxy_command,
        alias=target.host if target.host != host else None,
        identity_files=tuple(os.path.expanduser(f) for f in conf.get("identityfile", [])),
        user_known_hosts=files("UserKnownHostsFile", DEFAULT_USER_KNOWN_HOSTS, lambda w: _expand_environment(
            _expand_tokens(w, "UserKnownHostsFile", _KNOWN_HOSTS_TOKENS, **tokens), "UserKnownHostsFile")),
        global_known_hosts=files("GlobalKnownHostsFile", DEFAULT_GLOBAL_KNOWN_HOSTS, lambda w: w),
        hash_known_hosts=conf.get("hashknownhosts", "no").lower() == "yes",
        server_alive_interval=_seconds(conf.get("serveraliveinterval"), "ServerAliveInterval", where))


def _seconds(value: str | None, keyword: str, where: str) -> float:
    """A whole number of seconds from ssh_config, 0 when unset."""
    if value is None:
        return 0.0
    if not value.strip().isdigit():
        raise TransportError(f"{where}: {keyword} {value!r} is not a whole number of seconds")
    return float(value)


def route(target: SSHTarget, config_paths: Sequence[Path] | None = None, *, depth: int = 0) -> list[SSHTarget]:
    """The SSH connections to make for target, first hop first, target last; each resolved through ssh_config.

    As ssh(1) does for `ProxyJump a,b` (it runs `ssh -J a -W host:port b`): the last hop b is reached through
    the hops before it, which override b's own ProxyJump/ProxyCommand, and the first hop a through its own
    ssh_config entry (which may name hops of its own). A user or port written in the hop wins over
    ssh_config's, as -l and -p do."""
    resolved = resolve_ssh_config(target, config_paths)
    if not resolved.proxy_jump:
        return [resolved]
    if depth >= MAX_JUMP_HOPS:
        raise TransportError(f"{target.label}: more than {MAX_JUMP_HOPS} jump hosts in a row: check ProxyJump "
                             f"in ssh_config for a loop (a jump host whose own entry leads back to it)")
    hops = resolved.proxy_jump.split(",")
    user, host, port = parse_destination(hops[-1])
    jump = SSHTarget(host=host, user=user, port=port, known_hosts=target.known_hosts,
                     proxy_jump=",".join(hops[:-1]) or None, accept_new_host_key=target.accept_new_host_key,
                     connect_timeout=target.connect_timeout)
    return route(jump, config_paths, depth=depth + 1) + [resolved]


# --- known_hosts -----------------------------------------------------------------------------------------

def fingerprint(key: paramiko.PKey | bytes) -> str:
    digest = hashlib.sha256(key if isinstance(key, bytes) else key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _key_type(blob: bytes) -> str | None:
    """The algorithm name a public key blob starts with (RFC 4253 section 6.6: string, then the key)."""
    size = int.from_bytes(blob[:4], "big")
    name = blob[4:4 + size]
    return name.decode("ascii", "replace") if size and len(name) == size else None


def _hashed_name(salt: bytes, name: str) -> bytes:
    """HashKnownHosts: HMAC-SHA1 of the name keyed with the salt (sshd(8), `|1|salt|hash`)."""
    return hmac.new(salt, name.encode(), hashlib.sha1).digest()


@dataclass(frozen=True)
class KnownHostsEntry:
    path: str
    line: int
    marker: str | None     # "@cert-authority", "@revoked" or None (sshd(8) SSH_KNOWN_HOSTS FILE FORMAT)
    names: str             # comma-separated patterns, or one hashed name |1|salt|hash
    key_type: str
    key: bytes

    def matches(self, name: str) -> bool:
        """sshd(8): patterns with * and ?, a pattern negated with ! that matches excludes the host, hashed
        names compared by their HMAC. Names compare in lower case: ssh(1) lowercases the host name."""
        name = name.lower()
        if self.names.startswith("|1|"):
            _, _, salt, digest = (self.names.split("|") + ["", ""])[:4]
            try:
                return hmac.compare_digest(_hashed_name(base64.b64decode(salt), name), base64.b64decode(digest))
            except (binascii.Error, ValueError):
                return False
        found = False
        for pattern in self.names.lower().split(","):
            negated = pattern.startswith("!")
            wildcard = re.escape(pattern.removeprefix("!")).replace(r"\*", ".*").replace(r"\?", ".")
            if re.fullmatch(wildcard, name):
                if negated:
                    return False
                found = True
        return found

    @property
    def where(self) -> str:
        return f"{self.path} line {self.line}"


def read_known_hosts(path: str) -> list[KnownHostsEntry]:
    """A known_hosts file's entries; lines ssh(1) would skip (comments, unknown markers, malformed keys)
    are skipped. A missing file has none."""
    try:
        text = Path(path).read_text(errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as e:
        raise TransportError(f"cannot read known_hosts file {path}: {e.strerror or e}") from None
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        marker = None
        if fields and fields[0] in ("@cert-authority", "@revoked"):
            marker, fields = fields[0], fields[1:]
        if len(fields) < 3 or fields[0].startswith(("#", "@")):
            continue
        try:
            blob = base64.b64decode(fields[2], validate=True)
        except binascii.Error:
            continue
        key_type = _key_type(blob)
        if key_type:
            entries.append(KnownHostsEntry(path, number, marker, fields[0], key_type, blob))
    return entries


class KnownHosts:
    """The host keys a target is checked against, from every known_hosts file it names."""

    def __init__(self, files: Sequence[str]):
        self.files = tuple(dict.fromkeys(files))
        self.entries = [entry for path in self.files for entry in read_known_hosts(path)]

    @classmethod
    def of(cls, target: SSHTarget) -> "KnownHosts":
        own = (os.path.expanduser(target.known_hosts),) if target.known_hosts else ()
        return cls(own + target.user_known_hosts + target.global_known_hosts)

    def key_types(self, name: str) -> set[str]:
        return {e.key_type for e in self.entries if e.marker is None and e.matches(name)}

    def check(self, name: str, key: bytes) -> tuple[str, KnownHostsEntry | None]:
        """("revoked" | "known" | "changed" | "unknown", the entry that says so). As ssh(1) decides
        (OpenSSH hostfile.c check_key_in_hostkeys): a revoked key is refused even where another line lists
        it; a key of a type on file for the host but with other bits is a changed key; a @cert-authority
        line vouches only for certificates, which edgeprof does not check, so it is returned with "unknown"
        for the message."""
        mine = [e for e in self.entries if e.matches(name)]
        revoked = next((e for e in mine if e.marker == "@revoked" and e.key == key), None)
        if revoked:
            return "revoked", revoked
        plain = [e for e in mine if e.marker is None]
        known = next((e for e in plain if e.key == key), None)
        if known:
            return "known", known
        changed = next((e for e in plain if e.key_type == _key_type(key)), None)
        if changed:
            return "changed", changed
        return "unknown", next((e for e in mine if e.marker == "@cert-authority"), None)


def record_host_key(path: Path, name: str, key: paramiko.PKey, hashed: bool) -> None:
    """Append the key as ssh(1) would, hashing the name when ssh_config says HashKnownHosts yes."""
    if hashed:
        salt = os.urandom(20)
        name = "|1|%s|%s" % (base64.b64encode(salt).decode(), base64.b64encode(_hashed_name(salt, name)).decode())
    line = f"{name} {key.get_name()} {key.get_base64()}\n"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        size = f.seek(0, os.SEEK_END)
        if size:
            f.seek(size - 1)
            if f.read(1) != b"\n":
                line = "\n" + line   # a last line without its newline would swallow ours
        f.write(line.encode())


class _HostKeyCheck(paramiko.MissingHostKeyPolicy):
    """Every host-key decision. edgeprof gives paramiko no known keys of its own (paramiko's reader crashes
    on @cert-authority and @revoked lines and knows no wildcards), so paramiko hands each key here."""

    def __init__(self, target: SSHTarget, known: KnownHosts):
        self.target = target
        self.known = known
        self.name = known_hosts_name(target.host, target.port or 22)
        own = target.known_hosts or (target.user_known_hosts[0] if target.user_known_hosts else None)
        self.record_in = Path(os.path.expanduser(own)) if own else None

    def missing_host_key(self, client, hostname, key):
        t = self.target
        status, entry = self.known.check(self.name, key.asbytes())
        shown = f"{key.get_name()} {fingerprint(key)}"
        if status == "known":
            return
        if status == "revoked":
            raise TransportError(
                f"{t.label}: the board's host key {shown} is marked @revoked in {entry.where}. Refusing to "
                f"connect, with or without --accept-new-host-key. Ask whoever revoked it which key the board has "
                f"now and check that one on the board (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub).")
        if status == "changed":
            raise TransportError(
                f"{t.label}: HOST KEY CHANGED: the board presented {shown}, but {entry.where} has "
                f"{entry.key_type} {fingerprint(entry.key)}. Refusing to connect: someone may be impersonating "
                f"the board, or it was reinstalled. If you know it was reinstalled, remove its old key with "
                f"ssh-keygen -R {shlex.quote(self.name)} -f {shlex.quote(entry.path)}")
        certificate = (f" {entry.where} is a @cert-authority line for this host, but edgeprof does not check host "
                       f"certificates: the board's own key has to be in known_hosts." if entry else "")
        if self.record_in is None:
            raise TransportError(
                f"{t.label}: host key not known ({shown}).{certificate} UserKnownHostsFile is none and the device "
                f"names no known_hosts file, so edgeprof has nowhere to record it: set `known_hosts` in the "
                f"device's inventory entry.")
        if not t.accept_new_host_key:
            raise TransportError(
                f"{t.label}: host key not known ({shown}).{certificate} Check the fingerprint on the board "
                f"(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then re-run with --accept-new-host-key to record "
                f"it in {self.record_in}.")
        record_host_key(self.record_in, self.name, key, t.hash_known_hosts)


def _prefer_known_key_types(offered: Sequence[str], known: set[str]) -> list[str]:
    """Host key algorithms with the types on file first, as ssh(1) orders HostKeyAlgorithms for a known host:
    else a board with several host keys may show one nobody recorded. An RSA key is filed as ssh-rsa and
    signs as rsa-sha2-*."""
    def on_file(algorithm: str) -> bool:
        return ("ssh-rsa" if algorithm.startswith("rsa-sha2-") else algorithm) in known
    return sorted(offered, key=lambda algorithm: not on_file(algorithm))


class _LabTransport(paramiko.Transport):
    """paramiko's Transport, cheaper on the host's CPU when many boards are connected at once:
    - AES-GCM preferred (any OpenSSH since 6.2 has it; other servers get paramiko's usual order): with
      CTR + HMAC, paramiko checks every packet's MAC in a Python loop, a quarter of the host's CPU in a
      16-board lab run; GCM's tag is checked inside OpenSSL;
    - its reader thread wakes once a second instead of ten times to see whether it should stop (close()
      does not wait for that: it closes the packetizer, which ends the thread), and every IDLE_CHECK_S once
      connected (SSHTransport: the greeting's timeout needs the short one)."""
    _preferred_ciphers = tuple(sorted(paramiko.Transport._preferred_ciphers, key=lambda c: "-gcm@" not in c))
    _active_check_timeout = 1.0


# How often a connected transport's reader thread wakes to see whether to stop or send a keepalive. Each
# wake-up is a socket timeout handled in Python: once a second they cost 0.08 ms of host CPU per board-second
# on the build VM (24 idle connections), a sixth of what a lab may spend (issue 18); every 5 s, 0.017 ms.
# Keepalives (KEEPALIVE_S) then go out at most this late.
IDLE_CHECK_S = 5.0


class _ProxyCommandSocket:
    """ProxyCommand's process, talking SSH over one end of a socket pair; paramiko gets the other end, a real
    socket. (paramiko.ProxyCommand spins at 100 % CPU once the command has exited, until the banner timeout,
    and never reads the command's stderr pipe, which stalls a chatty command.)

    ssh_config(5) ProxyCommand: the command line is run with the user's shell, with `exec`. It gets a session
    of its own so that the terminal's Ctrl-C reaches edgeprof only: edgeprof still needs the connection to
    stop what it started on the board. Its stderr goes to a file, for the message if it fails."""

    def __init__(self, command: str, label: str):
        self.command = command
        ours, theirs = socket.socketpair()
        self.errors = tempfile.TemporaryFile()
        try:
            self.process = subprocess.Popen([os.environ.get("SHELL") or "/bin/sh", "-c", "exec " + command],
                                            stdin=theirs, stdout=theirs, stderr=self.errors, start_new_session=True)
        except OSError as e:
            ours.close()
            raise TransportError(f"{label}: cannot run ProxyCommand {command!r}: {e.strerror or e}") from None
        finally:
            theirs.close()
        self.socket = ours

    def failure(self) -> str | None:
        """How the command ended, once it has: its exit status and the end of its stderr."""
        try:
            status = self.process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            return None
        self.errors.seek(0)
        said = " ".join(self.errors.read().decode(errors="replace").split()[-60:])
        return f"ProxyCommand {self.command!r} exited with status {status}" + (f": {said}" if said else "")

    def close(self) -> None:
        self.socket.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.errors.close()


# At most this many SSH handshakes (TCP connect, key exchange, authentication) at once in this process. A lab
# of a hundred boards connecting together is a storm of key exchanges that a 2-core host serves so slowly
# that greetings time out, and sshd itself drops unauthenticated connections beyond MaxStartups (10 by
# default, sshd_config(5)) from one host. Waiting for a turn does not count against a hop's ConnectTimeout.
MAX_HANDSHAKES = 8
_HANDSHAKES = threading.BoundedSemaphore(MAX_HANDSHAKES)
# A keepalive every this many seconds on every hop unless ssh_config's ServerAliveInterval says otherwise
# (paramiko Transport.set_keepalive): an idle link through NAT or a firewall is not forgotten during a
# long measurement, and a dead one shows as a failed send instead of a silent wait.
KEEPALIVE_S = 15.0


class SSHTransport:
    def __init__(self, name: str, target: SSHTarget, config_paths: Sequence[Path] | None = None):
        self.name = name
        self.route = route(target, config_paths)
        self.target = self.route[-1]
        self._clients: list[paramiko.SSHClient] = []      # one per hop, the board's last
        self._proxy: _ProxyCommandSocket | None = None
        try:
            for hop, t in enumerate(self.route):
                with _HANDSHAKES:
                    started = time.monotonic()
                    client = self._connect(t, self._open_socket(t, hop), started)
                client.get_transport().set_keepalive(int(t.server_alive_interval or KEEPALIVE_S))
                client.get_transport().sock.settimeout(IDLE_CHECK_S)
                self._clients.append(client)
        except BaseException:
            self.close()
            raise
        self._client = self._clients[-1]
        self._sftp: paramiko.SFTPClient | None = None

    # --- connection ----------------------------------------------------------------------------------
    def _open_socket(self, t: SSHTarget, hop: int):
        port = t.port or 22
        if hop > 0:
            jump = self.route[hop - 1]
            try:
                return self._clients[-1].get_transport().open_channel(
                    "direct-tcpip", (t.host, port), ("127.0.0.1", 0), timeout=t.connect_timeout)
            except paramiko.ChannelException as e:
                raise TransportError(
                    f"{t.label}: jump host {jump.label} could not reach {_address(None, t.host, port)} "
                    f"({e.text or e}). Is the address right as the jump host sees it, and may it forward "
                    f"(AllowTcpForwarding in its sshd_config)?") from None
            except (paramiko.SSHException, OSError) as e:
                raise TransportError(f"{t.label}: jump host {jump.label} did not open a connection to "
                                     f"{_address(None, t.host, port)}: {e}") from None
        if t.proxy_command:
            self._proxy = _ProxyCommandSocket(t.proxy_command, t.label)
            return self._proxy.socket
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

    def _connect(self, t: SSHTarget, sock, started: float) -> paramiko.SSHClient:
        """SSH over sock, opened at `started` (time.monotonic())."""
        known = KnownHosts.of(t)
        check = _HostKeyCheck(t, known)

        def transport(sock, **options) -> paramiko.Transport:
            made = _LabTransport(sock, **options)
            security = made.get_security_options()
            security.key_types = _prefer_known_key_types(security.key_types, known.key_types(check.name))
            return made

        client = paramiko.SSHClient()
        client.set_log_channel(PARAMIKO_LOG)
        client.set_missing_host_key_policy(check)
        # ssh(1) tries -i first, then ssh_config's IdentityFile (a missing one is skipped), then the defaults.
        keys = ([t.key_filename] if t.key_filename else []) + [f for f in t.identity_files if os.path.exists(f)]
        # The SSH greeting, key exchange and authentication share what is left of the connect timeout, so a
        # port that accepts but never speaks SSH fails within it. paramiko's reader thread notices the
        # greeting's timeout at its next socket wake-up (_active_check_timeout), while start_client
        # (`timeout`, on sock we opened) stops waiting at its own deadline and lets connect() go on to
        # authenticate on a dead transport ("No existing session"): start_client waits one wake-up longer, so
        # the greeting's own error is the one raised.
        left = max(0.5, t.connect_timeout - (time.monotonic() - started))
        try:
            client.connect(
                t.host, port=t.port or 22, username=t.user, key_filename=keys or None, sock=sock,
                timeout=left + _LabTransport._active_check_timeout + 0.5, banner_timeout=left,
                auth_timeout=t.connect_timeout,
                allow_agent=True, look_for_keys=not keys, transport_factory=transport)
        except BaseException as e:
            client.close()
            if isinstance(e, TransportError):
                raise
            raise self._connect_error(t, e, time.monotonic() - started) from None
        return client

    def _connect_error(self, t: SSHTarget, e: BaseException, waited: float) -> BaseException:
        """One line that says what failed on the way to t and what to do about it."""
        proxy_ended = self._proxy.failure() if self._proxy and len(self._clients) == 0 else None
        if proxy_ended:
            return TransportError(f"{t.label}: {proxy_ended}. Check ProxyCommand in ssh_config.")
        if isinstance(e, paramiko.AuthenticationException):
            tried = ([t.key_filename] if t.key_filename else []) + list(t.identity_files)
            which = f"key {', '.join(tried)}" if tried else "your SSH agent and default keys"
            return TransportError(
                f"{t.label}: authentication failed with {which} ({e}). Add the public key to "
                f"~{t.user or ''}/.ssh/authorized_keys on the board, or set `key` in the device's inventory "
                f"entry.")
        if isinstance(e, paramiko.SSHException) and "No authentication methods available" in str(e):
            return TransportError(
                f"{t.label}: no key to log in with: no `key` in the inventory, no IdentityFile in ssh_config for "
                f"{t.alias or t.host}, no SSH agent and no default key in ~/.ssh. Name the key in one of them.")
        if isinstance(e, paramiko.SSHException) and "protocol banner" in str(e):
            what = (f"sent no SSH greeting within {t.connect_timeout:g} s" if waited >= t.connect_timeout - 0.1
                    else "closed the connection without an SSH greeting")
            return TransportError(
                f"{t.label}: port {t.port or 22} took the connection but {what}: no SSH server there. Is it "
                f"the port sshd listens on? Check `port` in the inventory or ssh_config.")
        if isinstance(e, (paramiko.SSHException, EOFError)):
            return TransportError(f"{t.label}: SSH failed: {e or type(e).__name__}")
        if isinstance(e, OSError):
            return TransportError(f"{t.label}: connection failed: {e.strerror or e}")
        return e

    def close(self) -> None:
        if getattr(self, "_sftp", None):
            self._sftp.close()
        # The board's connection first: each hop carries the one after it.
        for client in reversed(self._clients):
            client.close()
        if self._proxy:
            self._proxy.close()

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
        # EOFError: paramiko raises the reader thread's own error when the connection died under a waiting call
        # (Channel._wait_for_event re-raises Transport.get_exception(), EOF from the socket among them).
        except (paramiko.SSHException, EOFError, OSError, AttributeError) as e:
            raise self._lost(e) from None
        out, err = bytearray(), bytearray()
        found, pid = False, None
        # poll, not select: select takes no file descriptor past 1023 (FD_SETSIZE), and a lab of 128 boards
        # holds about 6 a board (its socket, its SQLite files, a pipe per channel it waits on).
        readable = select.poll()
        try:
            readable.register(channel, select.POLLIN)
            while True:
                if timeout is not None and time.monotonic() - started > timeout:
                    self._kill(pid)
                    raise CommandTimeout(f"{self.name}: `{command}` did not finish within {timeout:g} s "
                                         f"(stopped it on the board)")
                # Data and the channel's close (also when the connection dies) wake this at once; otherwise
                # it sleeps until the command's own timeout, without waking to look (a lab waits on many
                # boards at once, each wake-up host CPU).
                readable.poll(None if timeout is None
                              else max(0.0, timeout - (time.monotonic() - started)) * 1000)
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
                # A connection that died (sshd killed, link reset) closes the channel without an EOF, and a
                # closed channel is always readable: without this the loop would spin until the timeout.
                if channel.closed and not channel.recv_ready() and not channel.recv_stderr_ready():
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

    def _lost(self, error: BaseException) -> TransportError:
        self._sftp = None   # its channel died with the connection
        return TransportError(f"{self.name}: lost the SSH connection ({error or type(error).__name__})")

    def _file_error(self, error: Exception, doing: str, path: str) -> TransportError:
        """A failed SFTP call: a lost connection (paramiko's own errors, or "Socket is closed" from the SFTP
        channel of a dead transport), or the board's answer about the file (no such file, permission)."""
        transport = self._client.get_transport()
        if isinstance(error, (paramiko.SSHException, EOFError)) or transport is None or not transport.is_active():
            return self._lost(error)
        return RemoteFileError(f"{self.name}: cannot {doing} {path}: {getattr(error, 'strerror', None) or error}")

    def put_bytes(self, path: str, data: bytes) -> None:
        try:
            with self.sftp.open(path, "wb") as f:
                f.write(data)
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise self._file_error(e, "write", path) from None

    def get_bytes(self, path: str) -> bytes:
        try:
            with self.sftp.open(path, "rb") as f:
                return f.read()
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise self._file_error(e, "read", path) from None

    def put_text(self, path: str, text: str) -> None:
        self.put_bytes(path, text.encode())

    def get_text(self, path: str) -> str:
        return self.get_bytes(path).decode(errors="replace")
