"""Results, statuses and evidence: the vocabulary every other module speaks.

Everything here is a frozen dataclass or an enum with no I/O, so reporters,
the engine and the probes can share it without importing each other.

A check either decides (``pass``/``fail``), cannot decide (``error`` with the
reason), does not apply (``skip``), needs a human statement (``manual``) or
failed under an unexpired waiver (``waived``).  There is no sixth state and no
missing row: the engine turns every crash into ``error``.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Status(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"
    MANUAL = "manual"
    WAIVED = "waived"


class Severity(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


_SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class TargetKind(enum.StrEnum):
    """What a control applies to; the inventory has one section per kind."""

    HOST = "host"  # a machine reached through a transport (local, ssh)
    ENDPOINT = "endpoint"  # a TLS/HTTP service
    APPLICATION = "application"  # an HTTP application with login/tenant rules
    DEVICES = "devices"  # desktops/laptops known through a register/EDR export
    ORGANISATION = "organisation"  # registers and attestations


@dataclass(frozen=True)
class Evidence:
    """One thing a probe saw, stored byte for byte and hashed.

    ``content`` is what was observed (command output, a PEM chain, HTTP
    headers); probes redact secrets *before* recording, never after.
    """

    id: str
    target: str
    kind: str  # "command", "file", "tls-handshake", "certificate-chain", "http", "note"
    title: str
    content: bytes
    collected_at: datetime
    media_type: str = "text/plain"
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class Outcome:
    """What a check decided, before the engine attaches control metadata."""

    status: Status
    message: str
    evidence: Sequence[str] = ()  # evidence ids
    facts: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def passed(cls, message: str, evidence: Sequence[str] = (), **facts: Any) -> Outcome:
        return cls(Status.PASS, message, tuple(evidence), facts)

    @classmethod
    def failed(cls, message: str, evidence: Sequence[str] = (), **facts: Any) -> Outcome:
        return cls(Status.FAIL, message, tuple(evidence), facts)

    @classmethod
    def error(cls, message: str, evidence: Sequence[str] = (), **facts: Any) -> Outcome:
        return cls(Status.ERROR, message, tuple(evidence), facts)

    @classmethod
    def skipped(cls, message: str, evidence: Sequence[str] = (), **facts: Any) -> Outcome:
        return cls(Status.SKIP, message, tuple(evidence), facts)

    @classmethod
    def manual(cls, message: str, evidence: Sequence[str] = (), **facts: Any) -> Outcome:
        return cls(Status.MANUAL, message, tuple(evidence), facts)


@dataclass(frozen=True)
class CheckResult:
    """One row of the report: exactly one per control × check × target."""

    control: str
    check: str
    target: str
    target_kind: str
    status: Status
    severity: Severity
    message: str
    evidence: tuple[str, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)
    started: datetime | None = None
    duration_s: float = 0.0
    waiver: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "control": self.control,
            "check": self.check,
            "target": self.target,
            "target_kind": self.target_kind,
            "status": self.status.value,
            "severity": self.severity.value,
            "message": self.message,
            "evidence": list(self.evidence),
            "facts": dict(self.facts),
            "duration_s": round(self.duration_s, 3),
        }
        if self.started is not None:
            data["started"] = self.started.isoformat()
        if self.waiver is not None:
            data["waiver"] = dict(self.waiver)
        return data


def count_by_status(results: Sequence[CheckResult]) -> dict[str, int]:
    counts = {s.value: 0 for s in Status}
    for r in results:
        counts[r.status.value] += 1
    return counts
