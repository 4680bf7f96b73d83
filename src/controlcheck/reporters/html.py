"""``report.html``: one self-contained page an auditor can read offline.

No external fetches: CSS is inline and the status filter is CSS-only (checkboxes
and sibling selectors), so the page works with scripts disabled and from
inside an unpacked bundle.  Jinja2 autoescaping is on for everything; evidence
is shown as escaped text inside ``<pre>``, never as markup.

``in_bundle=True`` adds links to ``evidence/<id>.<ext>`` next to each inline
evidence item, because the bundle holds those files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import jinja2

from controlcheck import __version__
from controlcheck.catalogue import FRAMEWORKS
from controlcheck.engine import Run
from controlcheck.model import CheckResult, Severity, Status, count_by_status
from controlcheck.reporters.evidence_paths import evidence_path, is_text
from controlcheck.reporters.json_report import control_status
from controlcheck.verdict import exit_code

INLINE_EVIDENCE_LIMIT = 32 * 1024
STATUS_ORDER = [s.value for s in (Status.FAIL, Status.ERROR, Status.MANUAL, Status.WAIVED,
                                  Status.PASS, Status.SKIP)]
_VERDICT = {0: "all checks at or above the fail-on severity passed",
            1: "at least one check failed", 3: "some checks could not be decided"}


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("controlcheck", "data/templates"),
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _evidence_view(run: Run, ids: Sequence[str], in_bundle: bool) -> list[dict[str, Any]]:
    items = []
    for ev_id in ids:
        try:
            ev = run.evidence.get(ev_id)
        except KeyError:
            items.append({"id": ev_id, "missing": True})
            continue
        text = None
        truncated = False
        if is_text(ev):
            text = ev.content.decode("utf-8")
            if len(ev.content) > INLINE_EVIDENCE_LIMIT:
                text = ev.content[:INLINE_EVIDENCE_LIMIT].decode("utf-8", errors="ignore")
                truncated = True
        items.append({"id": ev.id, "missing": False, "title": ev.title, "kind": ev.kind,
                      "sha256": ev.sha256, "size": ev.size, "text": text,
                      "truncated": truncated, "collected_at": ev.collected_at.isoformat(),
                      "href": evidence_path(ev) if in_bundle else None})
    return items


def _natural(ref: str) -> list[tuple[int, int | str]]:
    """'A.5.9' before 'A.5.15', '2.2' before '10.1': how an auditor reads clause numbers."""
    return [(0, int(t)) if t.isdigit() else (1, t) for t in re.split(r"(\d+)", ref) if t]


def _counts_line(results: Sequence[CheckResult]) -> dict[str, int]:
    counts = count_by_status(results)
    return {s: counts[s] for s in STATUS_ORDER}


def build_view(run: Run, fail_on: Severity = Severity.LOW, in_bundle: bool = False
               ) -> dict[str, Any]:
    by_control: dict[str, list[CheckResult]] = {}
    for r in run.results:
        by_control.setdefault(r.control, []).append(r)
    controls = []
    families: dict[str, dict[str, Any]] = {}
    for c in run.catalogue.controls:
        rows = by_control.get(c.id, [])
        status = control_status(rows).value
        controls.append({
            "id": c.id, "family": c.family, "title": c.title, "severity": c.severity.value,
            "status": status, "promise_nl": c.promise_nl, "promise_en": c.promise_en,
            "description": c.description, "remediation": c.remediation,
            "frameworks": [(FRAMEWORKS.get(k, k), ", ".join(v)) for k, v in c.frameworks.items()
                           if v],
            "counts": _counts_line(rows),
            "results": [{
                "check": r.check, "target": r.target, "target_kind": r.target_kind,
                "status": r.status.value, "severity": r.severity.value, "message": r.message,
                "waiver": dict(r.waiver) if r.waiver else None,
                "evidence": _evidence_view(run, r.evidence, in_bundle),
            } for r in rows],
        })
        fam = families.setdefault(c.family, {"name": c.family, "controls": 0,
                                             "by_status": dict.fromkeys(STATUS_ORDER, 0),
                                             "results": []})
        fam["controls"] += 1
        fam["by_status"][status] += 1
        fam["results"].extend(rows)
    frameworks = []
    for key, label in FRAMEWORKS.items():
        clauses: dict[str, list[dict[str, str]]] = {}
        for view in controls:
            cid, cstatus = str(view["id"]), str(view["status"])
            for ref in run.catalogue.get(cid).frameworks.get(key, ()):
                clauses.setdefault(ref, []).append({"id": cid, "status": cstatus})
        if clauses:
            worst = {ref: min(STATUS_ORDER.index(x["status"]) for x in cs)
                     for ref, cs in clauses.items()}
            frameworks.append({"key": key, "label": label, "clauses": [
                {"ref": ref, "controls": clauses[ref], "status": STATUS_ORDER[worst[ref]]}
                for ref in sorted(clauses, key=_natural)]})
    code = exit_code(run.results, fail_on)
    attention = [r for r in run.results if r.status in (Status.FAIL, Status.ERROR, Status.WAIVED)]
    attention.sort(key=lambda r: STATUS_ORDER.index(r.status.value))
    return {
        "run": {"id": run.id, "started": run.started.isoformat(timespec="seconds"),
                "finished": (run.finished or run.started).isoformat(timespec="seconds"),
                "catalogue_digest": run.catalogue.digest,
                "inventory_digest": run.inventory.digest, "partial": run.partial,
                "notes": list(run.notes), "fail_on": fail_on.value, "exit_code": code,
                "verdict": _VERDICT.get(code, "")},
        "tool_version": __version__,
        "statuses": STATUS_ORDER,
        "summary": _counts_line(run.results),
        "total": len(run.results),
        "families": [{**f, "counts": _counts_line(f["results"])} for f in families.values()],
        "frameworks": frameworks,
        "controls": controls,
        "attention": [{"control": r.control, "check": r.check, "target": r.target,
                       "status": r.status.value, "message": r.message} for r in attention],
        "in_bundle": in_bundle,
    }


def render(run: Run, fail_on: Severity = Severity.LOW, *, in_bundle: bool = False) -> str:
    return _env().get_template("report.html.j2").render(**build_view(run, fail_on, in_bundle))
