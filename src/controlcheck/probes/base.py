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


class TargetSession:
    """State shared by all checks of one target during one run.

    The transport is opened lazily on the first command, so checks that never
    talk to the host (network reachability) cost no connection, and a host
    gets exactly one connection for all its checks.  ``memo`` caches command
    results by argv so e.g. ``sshd -T`` runs once per host, not once per check.
    """

    def __init__(self, target: Target, open_transport: Callable[[], Transport] | None) -> None:
        self.target = target
        self._open = open_transport
        self._transport: Transport | None = None
        self._transport_error: Exception | None = None
        self.memo: dict[Any, Any] = {}

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            if self._transport_error is not None:
                raise self._transport_error  # do not retry a failed connect per check
            if self._open is None:
                raise RuntimeError(f"{self.target.name}: this target has no transport")
            try:
                self._transport = self._open()
            except Exception as exc:
                self._transport_error = exc
                raise
        return self._transport

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


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
                         meta={"exit_status": result.exit_status, "argv": list(result.argv)})

    def note(self, title: str, content: bytes | str, *, kind: str = "note",
             media_type: str = "text/plain", meta: Mapping[str, Any] | None = None) -> str:
        ev_id = self.evidence.add(self.target.name, kind, title, content,
                                  media_type=media_type, meta=meta)
        if ev_id not in self.collected:
            self.collected.append(ev_id)
        return ev_id
