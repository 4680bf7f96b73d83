"""``report.json``: the contract of DESIGN.md, validated by ``schemas/report.schema.json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from controlcheck import __version__
from controlcheck.engine import Run
from controlcheck.model import CheckResult, Evidence, Severity, Status, count_by_status
from controlcheck.verdict import exit_code

INLINE_LIMIT = 256 * 1024

# Worst first: the status a control shows is the worst of its results.
_CONTROL_ORDER = [Status.FAIL, Status.ERROR, Status.MANUAL, Status.WAIVED, Status.PASS, Status.SKIP]


def control_status(results: Sequence[CheckResult]) -> Status:
    if not results:
        return Status.SKIP
    statuses = {r.status for r in results}
    for s in _CONTROL_ORDER:
        if s in statuses:
            # pass only when every applicable check passed; skips alone give skip
            return s
    return Status.SKIP


def evidence_json(ev: Evidence) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": ev.id, "target": ev.target, "kind": ev.kind, "title": ev.title,
        "sha256": ev.sha256, "size": ev.size, "collected_at": ev.collected_at.isoformat(),
        "media_type": ev.media_type, "meta": dict(ev.meta),
    }
    if ev.size <= INLINE_LIMIT:
        try:
            data["content"] = ev.content.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return data


def run_metadata(run: Run) -> dict[str, Any]:
    """What identifies a run; the same in report.json and in a bundle's manifest."""
    return {
        "id": run.id,
        "started": run.started.isoformat(),
        "finished": (run.finished or run.started).isoformat(),
        "catalogue_digest": run.catalogue.digest,
        "inventory_digest": run.inventory.digest,
        "partial": run.partial,
    }


def build_report(run: Run, fail_on: Severity = Severity.LOW) -> dict[str, Any]:
    by_control: dict[str, list[CheckResult]] = {}
    for r in run.results:
        by_control.setdefault(r.control, []).append(r)
    used = {e for r in run.results for e in r.evidence}
    return {
        "format_version": 1,
        "tool": {"name": "controlcheck", "version": __version__},
        "run": {
            **run_metadata(run),
            "fail_on": fail_on.value,
            "exit_code": exit_code(run.results, fail_on),
            "notes": list(run.notes),
        },
        "summary": count_by_status(run.results),
        "controls": [
            {
                "id": c.id, "family": c.family, "title": c.title, "severity": c.severity.value,
                "status": control_status(by_control.get(c.id, [])).value,
                "promise": {"nl": c.promise_nl, "en": c.promise_en},
                "frameworks": {k: list(v) for k, v in c.frameworks.items()},
            }
            for c in run.catalogue.controls
        ],
        "results": [r.to_json() for r in run.results],
        "evidence": [evidence_json(e) for e in run.evidence.all() if e.id in used],
    }


def dumps(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False, sort_keys=False, default=str) + "\n"


def render(run: Run, fail_on: Severity = Severity.LOW) -> str:
    return dumps(build_report(run, fail_on))
