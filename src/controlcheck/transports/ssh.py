"""Run commands on a host over SSH (paramiko): one connection per host, one channel
per command; jump hosts shared by the run (``ssh_jumps``) when the caller passes a pool.

Connection: TCP connect with a timeout (directly, or as a ``direct-tcpip`` channel
through the jump hosts' connections), then banner, key exchange and auth each under
their own timeout.  The host key is checked against known_hosts before any
credential is offered.  Every paramiko/socket exception is mapped to the transport
exception tree (see ``base``) in ``_mapped`` — the one place that does it.

Commands: the argv is quoted once (``base.shell_command``) and run with
``LC_ALL=C``; the whole exchange has a deadline and each stream a byte cap, so a
host that hangs or prints megabytes costs at most the timeout.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import paramiko

from controlcheck.inventory import Target
from controlcheck.transports.base import (
    DEFAULT_MAX_OUTPUT,
    DEFAULT_TIMEOUT_S,
    AuthError,
    CommandResult,
    CommandTimeout,
    ConnectError,
    TransportError,
    shell_command,
)
from controlcheck.transports.ssh_auth import authenticate
from controlcheck.transports.ssh_hostkeys import check_host_key, prefer_known_key_types
from controlcheck.transports.ssh_jumps import JumpHosts
from controlcheck.transports.ssh_settings import Endpoint, Route, SSHOptions, resolve_route

_SUDO_PASSWORD_HINTS = (b"a password is required", b"a terminal is required")
_LOCALE = ("env", "LC_ALL=C", "LANG=C")  # stable, parseable output whatever the host's locale
# paramiko logs refused channels at ERROR; without a handler Python prints them on the
# user's terminal.  Our exceptions carry the same facts, naming the target.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
SLOT_WAIT_MIN_S = 120.0  # how long a command may queue behind others on one connection


@contextlib.contextmanager
def _mapped(name: str, hop: Endpoint, stage: str) -> Iterator[None]:
    """Translate paramiko/socket exceptions into the transport tree, once, here."""
    try:
        yield
    except TransportError:
        raise
    except paramiko.AuthenticationException as exc:
        raise AuthError(f"{name}: authentication as {hop.user} at {hop.hostname}:{hop.port} "
                        f"refused ({exc}); check the key or agent") from None
    except TimeoutError:
        raise ConnectError(f"{name}: {stage} with {hop.hostname}:{hop.port} timed out "
                           "(host down, filtered, or not an SSH server)") from None
    except paramiko.ChannelException as exc:
        raise ConnectError(f"{name}: jump host could not open a connection to "
                           f"{hop.hostname}:{hop.port} ({exc.text})") from None
    except paramiko.SSHException as exc:
        text = str(exc) or type(exc).__name__
        if "banner" in text.lower() or "timeout" in text.lower():
            raise ConnectError(f"{name}: {hop.hostname}:{hop.port} did not complete the SSH "
                               f"{stage} in time ({text})") from None
        raise ConnectError(f"{name}: SSH {stage} with {hop.hostname}:{hop.port} failed: "
                           f"{text}") from None
    except socket.gaierror as exc:
        raise ConnectError(f"{name}: cannot resolve {hop.hostname!r} ({exc.strerror})") from None
    except OSError as exc:
        raise ConnectError(f"{name}: cannot connect to {hop.hostname}:{hop.port} "
                           f"({exc.strerror or exc})") from None
    except EOFError:
        raise ConnectError(f"{name}: {hop.hostname}:{hop.port} closed the connection during "
                           f"the SSH {stage}") from None


def _open_hop(name: str, hop: Endpoint, route: Route, options: SSHOptions,
              via: paramiko.Transport | None) -> paramiko.Transport:
    """Connect, check the host key, authenticate: one hop of the route."""
    sock: socket.socket | paramiko.Channel
    with _mapped(name, hop, "connect"):
        if via is None:
            sock = socket.create_connection((hop.hostname, hop.port),
                                            timeout=options.connect_timeout)
            # Small request/reply packets: without this, Nagle + delayed ACK add
            # ~40 ms to every channel open.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            sock = via.open_channel("direct-tcpip", (hop.hostname, hop.port), ("127.0.0.1", 0),
                                    timeout=options.connect_timeout)
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = options.banner_timeout
        transport.handshake_timeout = options.banner_timeout
        transport.auth_timeout = options.auth_timeout
        prefer_known_key_types(transport, hop, route.known_hosts)
        with _mapped(name, hop, "handshake"):
            transport.start_client(timeout=options.banner_timeout + options.connect_timeout)
            check_host_key(name, hop, transport.get_remote_server_key(), route.known_hosts,
                           trust_new=options.trust_new_host_keys)
        with _mapped(name, hop, "authentication"):
            authenticate(name, transport, hop, use_agent=options.use_agent)
    except BaseException:
        transport.close()
        raise
    transport.set_keepalive(30)
    return transport


class SSHTransport:
    """One SSH connection to one host (plus its jump hosts), used for all its checks.

    Channels are opened per command, and several threads may run commands at once
    (a scanner host serves many targets): paramiko multiplexes channels on one
    connection safely, and nothing else here is shared between commands.  At most
    ``MAX_CHANNELS`` run at once, below OpenSSH's default ``MaxSessions 10``; a host
    configured lower refuses the extra channel, and the limit drops to what it took.
    """

    MAX_CHANNELS = 8

    connections_opened = 0  # per process, for the bench; guarded by _count_lock
    _count_lock = threading.Lock()

    def __init__(self, name: str, route: Route, options: SSHOptions, *,
                 use_sudo: bool = False, jumps: JumpHosts | None = None) -> None:
        self.name = name
        self.route = route
        self.use_sudo = use_sudo and route.target.user != "root"
        self._slots = threading.Condition()
        self._limit = self.MAX_CHANNELS
        self._in_flight = 0
        self._hops: list[paramiko.Transport] = []
        via: paramiko.Transport | None = None
        try:
            # With the run's jump-host pool, the jump connections are shared (not
            # ours to close); this transport owns only the target's connection.
            own = (route.target,) if jumps is not None else (*route.jumps, route.target)
            if jumps is not None:
                via = jumps.connect(name, route, options, _open_hop)
            for hop in own:
                via = _open_hop(name, hop, route, options, via)
                self._hops.append(via)
        except BaseException:
            self.close()
            raise
        with SSHTransport._count_lock:
            SSHTransport.connections_opened += 1
        self._conn = via

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT_S,
            sudo: bool = False, stdin: bytes | None = None,
            max_output: int = DEFAULT_MAX_OUTPUT) -> CommandResult:
        escalate = sudo and self.use_sudo
        line = shell_command([*_LOCALE, *argv], sudo=escalate)
        started = time.monotonic()
        out, err, status, truncated = self._exchange(argv, line, stdin, max_output, timeout)
        if escalate and status != 0 and any(h in err for h in _SUDO_PASSWORD_HINTS):
            raise AuthError(f"{self.name}: sudo -n needs a password for {argv[0]}; allow it "
                            f"NOPASSWD for {self.route.target.user} or connect as root")
        return CommandResult(tuple(argv), status, out, err, time.monotonic() - started,
                             truncated, sudo=escalate)

    def _exchange(self, argv: Sequence[str], line: str, stdin: bytes | None, cap: int,
                  timeout: float) -> tuple[bytes, bytes, int, bool]:
        hop = self.route.target
        conn = self._conn
        if conn is None or not conn.is_active():
            raise ConnectError(f"{self.name}: the SSH connection to {hop.hostname} was lost")
        self._take_slot(argv, timeout)
        # The command's deadline starts once it may run: waiting behind other
        # targets' commands on a shared connection is not this host being slow.
        deadline = time.monotonic() + timeout
        try:
            chan = self._open_channel(conn, deadline)
        except BaseException:
            self._free_slot()
            raise
        # paramiko waits for the answer to the exec request, and for window space in
        # sendall, without any timeout: a server that never answers would hold this
        # thread forever.  Closing the channel at the deadline wakes both up.
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            chan.close()

        watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            try:
                with _mapped(self.name, hop, "command"):
                    chan.exec_command(line)
                    if stdin is not None:
                        chan.sendall(stdin)
                    chan.shutdown_write()
            finally:
                watchdog.cancel()
            if expired.is_set():
                raise TransportError("watchdog")  # handled just below, same as a raise inside
            with _mapped(self.name, hop, "command"):
                return _collect(chan, deadline, cap, self.name, argv, timeout)
        except TransportError:
            if expired.is_set():
                raise CommandTimeout(
                    f"{self.name}: {' '.join(argv)} did not start within {timeout:g} s: the "
                    "server accepted the channel but did not answer the command") from None
            raise
        finally:
            chan.close()
            self._free_slot()

    def _take_slot(self, argv: Sequence[str], timeout: float) -> None:
        """Wait for one of the connection's channel slots.  Bounded: every holder ends
        within its own deadline, so only a wedged connection makes this give up."""
        give_up = time.monotonic() + max(SLOT_WAIT_MIN_S, 4 * timeout)
        with self._slots:
            while self._in_flight >= self._limit:
                if not self._slots.wait(give_up - time.monotonic()):
                    raise CommandTimeout(
                        f"{self.name}: {' '.join(argv)} could not start: {self._in_flight} "
                        "commands kept this connection busy for too long")
            self._in_flight += 1

    def _free_slot(self) -> None:
        with self._slots:
            self._in_flight -= 1
            self._slots.notify()

    def _open_channel(self, conn: paramiko.Transport, deadline: float) -> paramiko.Channel:
        """A session channel (our slot is taken).  A host whose ``MaxSessions`` is below
        ``MAX_CHANNELS`` refuses the extra one: lower the limit to what it took and wait
        for one of ours to finish instead of failing the command."""
        hop = self.route.target
        while True:
            try:
                return conn.open_session(timeout=max(0.1, deadline - time.monotonic()))
            except Exception as exc:
                if not (_refused_channel(exc) and conn.is_active()):
                    with _mapped(self.name, hop, "session"):
                        raise exc from None
                if not self._fewer_slots(deadline):
                    raise ConnectError(f"{self.name}: {hop} refused a session channel "
                                       f"({exc})") from None

    def _fewer_slots(self, deadline: float) -> bool:
        """After a refused channel: lower the limit to the channels open now and wait
        (keeping our slot's place) until one frees.  False: none was open or freed."""
        with self._slots:
            others = self._in_flight - 1
            if not others:
                return False
            self._limit = min(self._limit, others)
            self._in_flight -= 1
            self._slots.notify()
            while self._in_flight >= self._limit:
                if not self._slots.wait(max(0.0, deadline - time.monotonic())) \
                        and time.monotonic() >= deadline:
                    self._in_flight += 1  # the caller frees the slot it believes it holds
                    return False
            self._in_flight += 1
            return True

    def close(self) -> None:
        for t in reversed(self._hops):
            with contextlib.suppress(Exception):
                t.close()
        self._hops = []
        self._conn = None


def _refused_channel(exc: Exception) -> bool:
    """The server said no to a channel open.  paramiko keeps the refusal in one slot
    per connection, so with channels opened from several threads another thread may
    have taken our ``ChannelException`` and we see only its generic fallback."""
    return isinstance(exc, paramiko.ChannelException) or (
        type(exc) is paramiko.SSHException and str(exc) == "Unable to open channel.")


def _collect(chan: paramiko.Channel, deadline: float, cap: int, name: str,
             argv: Sequence[str], timeout: float) -> tuple[bytes, bytes, int, bool]:
    """Read stdout/stderr until exit, the deadline (raise) or the cap (stop, flag).

    Blocking ``recv`` with short timeouts, not ``select`` on ``chan.fileno()``:
    paramiko's event pipe is written after the channel closed it when a command
    still streams (a chatty host), which kills the whole connection with EBADF.
    """
    out, err = bytearray(), bytearray()
    stdout_open = True
    while True:
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
        if len(out) > cap or len(err) > cap:
            # Stop reading: closing the channel makes sshd hang up on the command.
            return bytes(out[:cap]), bytes(err[:cap]), -1, True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CommandTimeout(f"{name}: {' '.join(argv)} did not finish within "
                                 f"{timeout:g} s")
        if stdout_open:
            chan.settimeout(min(remaining, 0.05))
            try:
                chunk = chan.recv(65536)
            except TimeoutError:
                continue
            if chunk:
                out += chunk
            else:
                stdout_open = False
            continue
        if chan.status_event.wait(min(remaining, 0.05)):
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            return bytes(out), bytes(err[:cap]), chan.recv_exit_status(), len(err) > cap


def open_ssh(target: Target, options: SSHOptions | None = None,
             jumps: JumpHosts | None = None) -> SSHTransport:
    """Open the one SSH connection of ``target`` (raises a ``TransportError``);
    ``jumps`` is the run's pool of jump-host connections, if it shares them."""
    options = options or SSHOptions()
    spec = dict(target.spec)
    if spec.get("known_hosts"):
        # Inventory paths are relative to the inventory file (its line is in source).
        base = Path(target.source.rsplit(":", 1)[0]).parent if target.source else Path.cwd()
        files = spec["known_hosts"] if isinstance(spec["known_hosts"], list) \
            else [spec["known_hosts"]]
        spec["known_hosts"] = [str(p if (p := Path(f).expanduser()).is_absolute() else base / p)
                               for f in files]
    try:
        route = resolve_route(spec, target.name, options)
    except (ValueError, OSError) as exc:
        raise ConnectError(f"{target.name}: bad SSH settings: {exc}") from None
    return SSHTransport(target.name, route, options, use_sudo=bool(spec.get("sudo", False)),
                        jumps=jumps)
