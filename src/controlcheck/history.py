"""What changed between two runs: the weekly question "what broke since last week?".

Results are matched on (control, check, target).  A change is classified by
the worse-is-bigger order of statuses so "pass → error" is a regression too
(we lost the ability to decide), while "fail → waived" is not a fix.
A history directory keeps one report per run, named by start time, so the
previous run is found without the user keeping track of files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controlcheck.yamlio import ConfigError

Key = tuple[str, str, str]

# How bad a status is, for deciding whether a change is a regression.
_BADNESS = {"pass": 0, "skip": 0, "waived": 1, "manual": 2, "error": 3, "fail": 4}


@dataclass(frozen=True)
class Change:
    control: str
    check: str
    target: str
    before: str | None  # None: not in the older run
    after: str | None  # None: gone from the newer run
    message: str

    @property
    def kind(self) -> str:
        if self.before is None:
            return "new-failure" if self.after == "fail" else "added"
        if self.after is None:
            return "removed"
        worse = _BADNESS[self.after] - _BADNESS[self.before]
        if self.after == "fail":
            return "new-failure"
        if worse > 0:
            return "regressed"
        if self.before in ("fail", "error") and self.after == "pass":
            return "fixed"
        return "changed"


@dataclass(frozen=True)
class Diff:
    older: Mapping[str, Any]  # run metadata of each side
    newer: Mapping[str, Any]
    changes: list[Change]

    def of_kind(self, *kinds: str) -> list[Change]:
        return [c for c in self.changes if c.kind in kinds]

    def to_json(self) -> dict[str, Any]:
        return {
            "older": dict(self.older), "newer": dict(self.newer),
            "changes": [{"control": c.control, "check": c.check, "target": c.target,
                         "before": c.before, "after": c.after, "kind": c.kind,
                         "message": c.message} for c in self.changes],
        }


def load_report(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, None, "report not found") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(path, exc.lineno, f"not a JSON report: {exc.msg}") from None
    if not isinstance(data, dict) or "results" not in data or "run" not in data:
        raise ConfigError(path, None, "not a controlcheck report.json (no 'run'/'results')")
    return data


def _index(results: Iterable[Mapping[str, Any]]) -> dict[Key, Mapping[str, Any]]:
    return {(r["control"], r["check"], r["target"]): r for r in results}


def diff_reports(older: Mapping[str, Any], newer: Mapping[str, Any]) -> Diff:
    old, new = _index(older["results"]), _index(newer["results"])
    changes = []
    for key in sorted(old.keys() | new.keys()):
        before = old.get(key, {}).get("status")
        after = new.get(key, {}).get("status")
        if before == after:
            continue
        message = (new.get(key) or old.get(key) or {}).get("message", "")
        changes.append(Change(*key, before=before, after=after, message=message))
    return Diff(older["run"], newer["run"], changes)


_SAFE = re.compile(r"[^0-9A-Za-z.-]")


def store(history_dir: Path, report_text: str, report: Mapping[str, Any]) -> Path:
    """Keep a copy of this run's report; names sort by start time."""
    history_dir.mkdir(parents=True, exist_ok=True)
    name = _SAFE.sub("-", report["run"]["started"]) + "-" + report["run"]["id"][:8] + ".json"
    path = history_dir / name
    path.write_text(report_text, encoding="utf-8")
    return path


def previous(history_dir: Path, exclude: Path | None = None) -> Path | None:
    """The newest stored report other than ``exclude``."""
    if not history_dir.is_dir():
        return None
    runs = sorted(p for p in history_dir.glob("*.json") if p != exclude)
    return runs[-1] if runs else None
