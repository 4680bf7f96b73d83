"""Pure parsers and judges for the BACKUP family (no I/O; tested on captured output).

One inventory ``backups:`` entry is one repository.  An entry without
``copy_of`` is a *dataset*; an entry with ``copy_of: X`` is another copy of
dataset X.  Every judge here takes one observation per entry and folds them
into one outcome for the host: any ``fail`` wins, then any ``error`` (could
not decide), then ``manual``; only a host whose every entry passed passes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from controlcheck.model import Outcome, Status

_FRACTION_RE = re.compile(r"(\.\d{1,6})\d*")

# Messages that mean "could not open the repository", not "the backup is broken".
ACCESS_ERRORS = ("wrong password", "no key found", "unable to open config file",
                 "an empty password is not a password", "passphrase supplied",
                 "does not exist", "is not a valid repository", "Failed to create/acquire the lock",
                 "unable to create lock", "Permission denied", "command not found",
                 "Could not resolve", "Connection refused")


class ParseError(ValueError):
    """Output did not have the expected shape."""


def parse_time(value: str | int | float) -> datetime:
    """RFC 3339 / ISO 8601 (restic's nanoseconds cut to micro) or a Unix time → aware UTC.

    A naive ISO time is taken as UTC: the probe runs borg with ``TZ=UTC``.
    """
    if isinstance(value, (int, float)) or re.fullmatch(r"\d+(\.\d+)?", str(value).strip()):
        return datetime.fromtimestamp(float(value), UTC)
    text = _FRACTION_RE.sub(r"\1", str(value).strip()).replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ParseError(f"not a time: {value!r}") from exc
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass(frozen=True)
class Snapshot:
    id: str
    time: datetime


def parse_restic_snapshots(text: str) -> list[Snapshot]:
    """``restic snapshots --json`` → snapshots (any order).

    restic prints "reading repository password from stdin" on *stdout* before the
    JSON when the password comes through stdin, so the JSON starts at the first
    line that opens a list.
    """
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("[")), None)
    if start is None:
        raise ParseError("restic snapshots printed no JSON list")
    try:
        data = json.loads("\n".join(lines[start:]))
    except json.JSONDecodeError as exc:
        raise ParseError(f"restic snapshots output is not JSON: {exc}") from exc
    if not isinstance(data, list):
        raise ParseError("restic snapshots output is not a JSON list")
    return [Snapshot(str(s.get("short_id") or s.get("id", "?")), parse_time(s["time"]))
            for s in data]


def parse_borg_list(text: str) -> list[Snapshot]:
    """``borg list --json`` (borg 1.x; times naive, in the TZ the probe set: UTC)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"borg list output is not JSON: {exc}") from exc
    archives = data.get("archives") if isinstance(data, dict) else None
    if not isinstance(archives, list):
        raise ParseError("borg list output has no 'archives' list")
    return [Snapshot(str(a["name"]), parse_time(a.get("time") or a["start"])) for a in archives]


def parse_find_times(text: str) -> list[float]:
    """``find ... -printf '%T@\\n'`` → Unix times."""
    times = []
    for line in text.split():
        try:
            times.append(float(line))
        except ValueError as exc:
            raise ParseError(f"find printed {line!r}, not a time") from exc
    return times


@dataclass(frozen=True)
class CheckStatus:
    finished: datetime
    exit_status: int


def parse_check_status(text: str) -> CheckStatus:
    """The status file a check job writes: JSON or ``finished=... exit_status=N`` tokens."""
    raw: Mapping[str, Any]
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            raw = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ParseError(f"status file is not valid JSON: {exc}") from exc
    else:
        raw = dict(tok.split("=", 1) for tok in stripped.split() if "=" in tok)
    if "finished" not in raw or "exit_status" not in raw:
        raise ParseError("status file needs 'finished' and 'exit_status'")
    try:
        status = int(raw["exit_status"])
    except (TypeError, ValueError) as exc:
        raise ParseError(f"exit_status {raw['exit_status']!r} is not a number") from exc
    return CheckStatus(parse_time(raw["finished"]), status)


# ----------------------------------------------------------------------------- judging


@dataclass(frozen=True)
class Latest:
    """Newest snapshot of one repository, or why it is unknown."""

    entry: str
    time: datetime | None = None
    snapshot: str | None = None
    error: str | None = None  # could not ask the repository

    @property
    def empty(self) -> bool:
        return self.time is None and self.error is None


def _age(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def freshness(latest: Latest, rpo: timedelta, now: datetime) -> tuple[Status, str]:
    """One repository against the RPO: (status, phrase)."""
    if latest.error is not None:
        return Status.ERROR, f"{latest.entry}: cannot read snapshots ({latest.error})"
    if latest.time is None:
        return Status.FAIL, f"{latest.entry}: no snapshot at all"
    age = now - latest.time
    stamp = latest.time.strftime("%Y-%m-%d %H:%M UTC")
    if age > rpo:
        return Status.FAIL, f"{latest.entry}: newest snapshot {stamp} is {_age(age)} old"
    return Status.PASS, f"{latest.entry}: newest snapshot {stamp} ({_age(age)} old)"


def fold(target: str, parts: Sequence[tuple[Status, str]], what: str, fix: str,
         **facts: Any) -> Outcome:
    """Combine per-entry verdicts: fail > error > manual > pass (skip only if all skip)."""
    for status in (Status.FAIL, Status.ERROR, Status.MANUAL):
        bad = [msg for st, msg in parts if st == status]
        if bad:
            tail = f"; {fix}" if status == Status.FAIL else ""
            return Outcome(status, f"{target}: {what}: " + "; ".join(bad) + tail, (), facts)
    passed = [msg for st, msg in parts if st == Status.PASS]
    if not passed:
        return Outcome.skipped(f"{target}: {what}: " + "; ".join(m for _, m in parts), **facts)
    return Outcome.passed(f"{target}: " + "; ".join(passed), **facts)


def judge_recent(target: str, latest: Sequence[Latest], rpo_hours: float,
                 now: datetime) -> Outcome:
    rpo = timedelta(hours=rpo_hours)
    parts = [freshness(lt, rpo, now) for lt in latest]
    facts = {"rpo_hours": rpo_hours,
             "newest": {lt.entry: lt.time.isoformat() if lt.time else None for lt in latest}}
    return fold(target, parts, f"backup older than the {rpo_hours:g} h RPO",
                "check the backup job and its schedule", **facts)


@dataclass(frozen=True)
class Entry:
    name: str
    offsite: bool = False
    copy_of: str | None = None
    repository: str = ""  # as the inventory names it; two entries naming one are one copy

    @property
    def location(self) -> str:
        return self.repository.rstrip("/") or f"<entry {self.name}>"


def judge_copies(target: str, entries: Sequence[Entry], latest: Mapping[str, Latest],
                 rpo_hours: float, min_copies: int, min_offsite: int, now: datetime) -> Outcome:
    """Per dataset: copies (itself + entries with ``copy_of``) with a snapshot within the RPO."""
    rpo = timedelta(hours=rpo_hours)
    names = {e.name for e in entries}
    parts: list[tuple[Status, str]] = []
    counts: dict[str, dict[str, int]] = {}
    for e in entries:
        if e.copy_of is not None and e.copy_of not in names:
            parts.append((Status.ERROR, f"{e.name} is a copy_of {e.copy_of!r}, which is not a "
                                        "backup entry of this host; fix the inventory"))
    for dataset in (e for e in entries if e.copy_of is None):
        group = [dataset, *(e for e in entries if e.copy_of == dataset.name)]
        # The same repository listed twice is one copy, whatever the entries claim; it is
        # off-site only if no entry for it says otherwise.
        first: dict[str, Entry] = {}
        dupes: list[str] = []
        for e in group:
            if e.location in first:
                dupes.append(f"{e.name} is the same repository as {first[e.location].name}")
            else:
                first[e.location] = e
        onsite = {e.location for e in group if not e.offsite}
        group = [replace(e, offsite=e.offsite and e.location not in onsite)
                 for e in first.values()]
        fresh = [e for e in group if freshness(latest[e.name], rpo, now)[0] == Status.PASS]
        unknown = [e for e in group if latest[e.name].error is not None]
        off = [e for e in fresh if e.offsite]
        off_unknown = [e for e in unknown if e.offsite]
        counts[dataset.name] = {"copies": len(fresh), "offsite": len(off)}
        stale = [e.name for e in group if e not in fresh and e not in unknown]
        detail = (f"{dataset.name}: {len(fresh)} current cop{'y' if len(fresh) == 1 else 'ies'}"
                  f" ({len(off)} off-site)")
        if stale:
            detail += f", not counted (no snapshot within {rpo_hours:g} h): {', '.join(stale)}"
        if dupes:
            detail += f", counted once: {', '.join(dupes)}"
        if len(fresh) >= min_copies and len(off) >= min_offsite:
            parts.append((Status.PASS, detail))
        elif (len(fresh) + len(unknown) < min_copies
              or len(off) + len(off_unknown) < min_offsite):
            parts.append((Status.FAIL, f"{detail}; need {min_copies} with {min_offsite} "
                                       "off-site"))
        else:
            parts.append((Status.ERROR, f"{detail}; unreadable: "
                                        f"{', '.join(e.name for e in unknown)}"))
    if not parts:
        return Outcome.error(f"{target}: every backup entry is a copy_of another; "
                             "mark the primary dataset (no copy_of)")
    return fold(target, parts, "too few backup copies",
                "add a repository with copy_of (off-site where required) and keep it current",
                min_copies=min_copies, min_offsite=min_offsite, rpo_hours=rpo_hours,
                counts=counts)


def judge_integrity(entry: str, status: CheckStatus | None, now: datetime,
                    max_age_days: float, source: str) -> tuple[Status, str]:
    """One repository's last recorded check: (status, phrase)."""
    if status is None:
        return Status.FAIL, f"{entry}: no repository check recorded ({source} does not exist)"
    age = now - status.finished
    stamp = status.finished.strftime("%Y-%m-%d %H:%M UTC")
    if status.exit_status != 0:
        return Status.FAIL, (f"{entry}: the last repository check ({stamp}) failed with exit "
                             f"{status.exit_status}")
    if age > timedelta(days=max_age_days):
        return Status.FAIL, (f"{entry}: last successful check {stamp} is {_age(age)} old, "
                             f"more than {max_age_days:g} days")
    if age < timedelta(hours=-1):
        return Status.ERROR, f"{entry}: check time {stamp} lies in the future; check clocks"
    return Status.PASS, f"{entry}: repository checked successfully {stamp}"


def judge_restore(entry: str, canary: str, restored: str | None, live: str | None) -> \
        tuple[Status, str]:
    """Hashes of the restored and the live canary: (status, phrase)."""
    if restored is None:
        return Status.FAIL, f"{entry}: {canary} is not in the newest snapshot"
    if live is None:
        return Status.ERROR, f"{entry}: live {canary} cannot be read to compare"
    if restored != live:
        return Status.FAIL, (f"{entry}: restored {canary} differs from the live file "
                             f"(sha256 {restored[:12]}… vs {live[:12]}…)")
    return Status.PASS, f"{entry}: {canary} restored, sha256 {restored[:12]}… matches"


def summarise_error(exit_status: int, stderr: str, stdout: str = "") -> str:
    """One line for a message: restic's "Fatal: ..." line, else the last line printed."""
    lines = [ln.strip() for ln in (stderr or stdout).splitlines() if ln.strip()]
    fatal = [ln for ln in lines if ln.startswith("Fatal:")]
    line = fatal[0] if fatal else (lines[-1] if lines else "no output")
    return f"exit {exit_status}: {line[:200]}"


def is_access_error(stderr: str) -> bool:
    return any(marker.lower() in stderr.lower() for marker in ACCESS_ERRORS)


def parse_sha256sum(text: str) -> str | None:
    first = text.split()
    return first[0] if first and re.fullmatch(r"[0-9a-f]{64}", first[0]) else None
