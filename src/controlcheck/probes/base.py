"""What a check is (``CheckSpec``) and what it gets to work with (``CheckContext``).

A check function takes a context and returns an ``Outcome``.  It collects
through ``ctx.run`` (host commands, recorded as evidence automatically) or
its own helpers in ``controlcheck.transports``, then judges with a pure
function.  It never raises for "could not decide": it returns
``Outcome.error(reason)``.  If it raises anyway, the engine records
``error`` with the exception, so a bug never becomes a missing row.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from controlcheck.model import Evidence, Outcome, TargetKind
from controlcheck.transports.base import (
    DEFAULT_MAX_OUTPUT,
    DEFAULT_TIMEOUT_S,
    CommandResult,
    OutputTooLarge,
    Transport,
    TransportError,
)

if TYPE_CHECKING:
    from controlcheck.catalogue import Control
    from controlcheck.inventory import Inventory, Target

CheckFunc = Callable[["CheckContext"], Outcome]


@dataclass(frozen=True)
class CheckSpec:
    """One check id of the stable table in DESIGN.md, with its parameters.

    ``params`` is a JSON Schema ``properties`` mapping; each property may carry a
    ``default``.  The catalogue validator rejects parameters not listed here.
    """

    id: str
    target_kind: TargetKind
    func: CheckFunc
    summary: str  # "fails when ..." in one line
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def defaults(self) -> dict[str, Any]:
        return {k: v["default"] for k, v in self.params.items() if "default" in v}


class EvidenceStore:
    """Thread-safe, content-addressed store of everything probes saw in one run.

    ``secrets`` are literal values (from environment variables the inventory
    names) that are replaced by ``[REDACTED]`` before anything is stored: a
    safety net under the probes' own care not to record secrets.
    """

    def __init__(self, clock: Callable[[], datetime], secrets: Iterable[str] = ()) -> None:
        self._clock = clock
        self._items: dict[str, Evidence] = {}
        self._lock = threading.Lock()
        self._secrets = sorted({s.encode() for s in secrets if s and len(s) >= 4},
                               key=len, reverse=True)

    def add(self, target: str, kind: str, title: str, content: bytes | str, *,
            media_type: str = "text/plain", meta: Mapping[str, Any] | None = None) -> str:
        data = content.encode("utf-8") if isinstance(content, str) else content
        for secret in self._secrets:
            data = data.replace(secret, b"[REDACTED]")
        digest = hashlib.sha256(b"\0".join([target.encode(), kind.encode(), title.encode(), data]))
        ev_id = f"ev-{digest.hexdigest()[:16]}"
        with self._lock:
            if ev_id not in self._items:
                self._items[ev_id] = Evidence(ev_id, target, kind, title, data, self._clock(),
                                              media_type, dict(meta or {}))
        return ev_id

    def get(self, ev_id: str) -> Evidence:
        return self._items[ev_id]

    def all(self) -> list[Evidence]:
        with self._lock:
            return sorted(self._items.values(), key=lambda e: (e.target, e.collected_at, e.id))

    def redact(self, text: str) -> str:
        data = text.encode()
        for secret in self._secrets:
            data = data.replace(secret, b"[REDACTED]")
        return data.decode("utf-8", errors="replace")


class SharedTransports:
    """The run's host connections: one per inventory host, shared across threads.

    A target's own checks and other targets that need that host (a zone that
    scans ``via`` it) get the same connection, opened once with the run's
    factory, so the run's SSH options (host-key trust, timeouts) apply and a
    scanner host sees one login however many targets it scans.  Connections
    are reference-counted: one nobody holds any more is closed at once (a
    fleet of 500 hosts must not keep 500 connections open), except for hosts
    in ``keep``, which others are expected to borrow later (scanner hosts):
    those stay open until ``close()`` at the end of the run.  A failed open
    is remembered, so a dead scanner costs one connect timeout, not one per
    target.  Transports handed out must allow concurrent ``run`` calls.
    """

    def __init__(self, opener: Callable[[Target], Transport], *,
                 keep: Iterable[str] = ()) -> None:
        self._open = opener
        self._keep = frozenset(keep)
        self._lock = threading.Lock()
        self._opening: dict[str, threading.Lock] = {}
        self._open_now: dict[str, Transport] = {}
        self._users: dict[str, int] = {}
        self._failed: dict[str, Exception] = {}

    def acquire(self, target: Target) -> Transport:
        """The host's connection (opened on first use); pair with ``release``."""
        name = target.name
        with self._lock:
            gate = self._opening.setdefault(name, threading.Lock())
        with gate:  # one opener per host; other hosts open in parallel
            with self._lock:  # look up and count in one step: release may close meanwhile
                if name in self._failed:
                    raise self._failed[name]
                transport = self._open_now.get(name)
                if transport is not None:
                    self._users[name] = self._users.get(name, 0) + 1
                    return transport
            try:
                transport = self._open(target)
            except Exception as exc:
                with self._lock:
                    self._failed[name] = exc
                raise
            with self._lock:
                self._open_now[name] = transport
                self._users[name] = self._users.get(name, 0) + 1
        return transport

    def release(self, name: str) -> None:
        with self._lock:
            left = self._users.get(name, 0) - 1
            self._users[name] = max(0, left)
            done = self._open_now.pop(name, None) if left <= 0 and name not in self._keep \
                else None
        if done is not None:
            done.close()

    def close(self) -> None:
        with self._lock:
            held, self._open_now = list(self._open_now.values()), {}
        for transport in held:
            try:
                transport.close()
            except Exception:  # closing a broken connection must not hide results
                pass


class TargetSession:
    """State shared by all checks of one target during one run.

    The transport is opened lazily on the first command, so checks that never
    talk to the host (network reachability) cost no connection, and a host
    gets exactly one connection for all its checks.  ``memo`` caches command
    results by argv so e.g. ``sshd -T`` runs once per host, not once per check.
    With ``shared`` (the engine passes the run's pool) the connection comes
    from there, and ``other_host`` lends checks the connection of another
    inventory host; without it (a session built by hand) each session opens
    its own and other hosts are out of reach.
    """

    def __init__(self, target: Target, open_transport: Callable[[], Transport] | None,
                 shared: SharedTransports | None = None) -> None:
        self.target = target
        self._open = open_transport
        self._shared = shared
        self._transport: Transport | None = None
        self._transport_error: Exception | None = None
        self._borrowed: dict[str, Transport] = {}
        self._lock = threading.Lock()  # a check may scan from several zones at once
        self.memo: dict[Any, Any] = {}

    @property
    def transport(self) -> Transport:
        with self._lock:  # zones scanned in parallel may ask at the same moment
            if self._transport is None:
                if self._transport_error is not None:
                    raise self._transport_error  # do not retry a failed connect per check
                if self._open is None:
                    raise RuntimeError(f"{self.target.name}: this target has no transport")
                try:
                    self._transport = self._shared.acquire(self.target) \
                        if self._shared is not None else self._open()
                except Exception as exc:
                    self._transport_error = exc
                    raise
            return self._transport

    def other_host(self, host: Target) -> Transport:
        """The run's shared connection to another inventory host (held until ``close``)."""
        if host.name == self.target.name:
            return self.transport
        if self._shared is None:
            raise TransportError(f"{self.target.name}: no shared connections in this run, so "
                                 f"host {host.name} cannot be used from here")
        with self._lock:
            if host.name not in self._borrowed:
                self._borrowed[host.name] = self._shared.acquire(host)
            return self._borrowed[host.name]

    def close(self) -> None:
        if self._shared is not None:
            for name in self._borrowed:
                self._shared.release(name)
            self._borrowed = {}
            if self._transport is not None:
                self._shared.release(self.target.name)
        elif self._transport is not None:
            self._transport.close()
        self._transport = None


@dataclass
class CheckContext:
    """Everything a check may use; built by the engine, one per check × target."""

    target: Target
    params: Mapping[str, Any]
    control: Control
    session: TargetSession
    evidence: EvidenceStore
    clock: Callable[[], datetime]
    inventory: Inventory
    timeout: float = DEFAULT_TIMEOUT_S
    collected: list[str] = field(default_factory=list)

    @property
    def now(self) -> datetime:
        return self.clock()

    def run(self, argv: Sequence[str], *, sudo: bool | None = None, record: bool = True,
            timeout: float | None = None, max_output: int | None = None) -> CommandResult:
        """Run a command on the host (memoised per target) and record it as evidence.

        ``sudo`` defaults to the host's inventory setting.  Pass ``record=False``
        for output that may hold secrets and record a redacted summary with
        ``note`` instead.  Transport errors propagate: the engine maps them to
        ``error`` with the reason.
        """
        use_sudo = self.target.spec.get("sudo", False) if sudo is None else sudo
        key = ("run", tuple(argv), use_sudo)
        if key not in self.session.memo:
            kwargs: dict[str, Any] = {"timeout": timeout or self.timeout, "sudo": use_sudo}
            if max_output is not None:
                kwargs["max_output"] = max_output
            self.session.memo[key] = self.session.transport.run(argv, **kwargs)
        result: CommandResult = self.session.memo[key]
        if record:
            self.record_command(result)
        if result.truncated and max_output is None:
            # A judge must never decide on cut output: "no match found in the
            # first 4 MiB" is not "no match".  Callers that expect huge output
            # pass their own max_output and handle ``truncated`` themselves.
            raise OutputTooLarge(
                f"{self.target.name}: {result.command_line} printed more than "
                f"{DEFAULT_MAX_OUTPUT // (1024 * 1024)} MiB; output was cut, so nothing was decided")
        return result

    def record_command(self, result: CommandResult) -> str:
        body = (f"$ {result.command_line}\n# exit status {result.exit_status}"
                f"{' (output truncated)' if result.truncated else ''}\n"
                f"{result.text}")
        if result.stderr:
            body += f"\n# stderr\n{result.err_text}"
        return self.note(result.command_line, body, kind="command",
                         meta={"exit_status": result.exit_status, "argv": list(result.argv),
                               "duration_s": round(result.duration_s, 3)})

    def note(self, title: str, content: bytes | str, *, kind: str = "note",
             media_type: str = "text/plain", meta: Mapping[str, Any] | None = None) -> str:
        ev_id = self.evidence.add(self.target.name, kind, title, content,
                                  media_type=media_type, meta=meta)
        if ev_id not in self.collected:
            self.collected.append(ev_id)
        return ev_id
