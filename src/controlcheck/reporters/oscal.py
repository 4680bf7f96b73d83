"""``--format oscal``: an OSCAL 1.2.1 assessment-results document.

Mapping (one ``result`` per run):

- every check result (control × check × target) is an **observation**: what
  was tested, on which subject, the message, and ``relevant-evidence`` linking
  the bundle file (``evidence/<id>.<ext>``) with its SHA-256;
- every control × target with at least one applicable check is a **finding**
  targeting the control (``objective-id`` = control id) with the state below;
- every target is an ``inventory-item`` in the result's local definitions;
- every evidence file is a back-matter resource with its hash.

OSCAL's objective state is only ``satisfied`` / ``not-satisfied``; it has no
"could not decide".  ``satisfied`` is given only when every applicable check
passed.  ``error`` → ``not-satisfied`` with reason ``undecided`` and a remark
that this is not a demonstrated failure; ``manual`` → reason ``manual``;
``waived`` → reason ``waived`` (it failed; the risk is accepted).  A control
whose checks were all skipped (not applicable) gets observations but no
finding, so it is neither claimed satisfied nor claimed failed.

UUIDs are version-5 UUIDs derived from the run id, so rendering the same run
twice gives the same document.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

from controlcheck import __version__
from controlcheck.engine import Run
from controlcheck.model import CheckResult, Severity, Status
from controlcheck.reporters.evidence_paths import evidence_path

OSCAL_VERSION = "1.2.1"
NS = "https://controlcheck.dev/ns/oscal"

_DESCRIBE = {
    Status.PASS: "Passed: {m}",
    Status.FAIL: "Failed: {m}",
    Status.ERROR: "Could not be decided: {m}",
    Status.SKIP: "Not applicable: {m}",
    Status.MANUAL: "Not assessed automatically; needs a human attestation: {m}",
    Status.WAIVED: "Failed, under an unexpired waiver (risk accepted): {m}",
}
# (status present, state, reason, remark) — first match wins, worst first.
_FINDING_STATE = [
    (Status.FAIL, "not-satisfied", "fail", "At least one check failed."),
    (Status.WAIVED, "not-satisfied", "waived",
     "A check failed; the failure is under an unexpired waiver (risk accepted, not fixed)."),
    (Status.ERROR, "not-satisfied", "undecided",
     "At least one check could not be decided. This is not a demonstrated failure, but the "
     "objective is not shown to be satisfied."),
    (Status.MANUAL, "not-satisfied", "manual",
     "Needs a human attestation that was not given; the objective is not shown to be "
     "satisfied."),
    (Status.PASS, "satisfied", "pass", "Every applicable check passed."),
]


def _line(text: str) -> str:
    """OSCAL single-line strings: no newlines, no leading/trailing space, not empty."""
    return re.sub(r"\s+", " ", text).strip() or "-"


def _prop(name: str, value: str) -> dict[str, str]:
    return {"name": name, "ns": NS, "value": _line(value)}


class _Ids:
    def __init__(self, run_id: str) -> None:
        self._ns = uuid.uuid5(uuid.NAMESPACE_URL, f"urn:controlcheck:run:{run_id}")

    def __call__(self, *parts: str) -> str:
        return str(uuid.uuid5(self._ns, "\x1f".join(parts)))


def _observation(run: Run, r: CheckResult, ids: _Ids, subjects: dict[str, str]) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "uuid": ids("observation", r.control, r.check, r.target),
        "title": _line(f"{r.check} on {r.target}"),
        "description": _DESCRIBE[r.status].format(m=r.message or "(no message)"),
        "props": [_prop("status", r.status.value), _prop("control-id", r.control),
                  _prop("check-id", r.check), _prop("severity", r.severity.value)],
        "methods": ["EXAMINE" if r.target_kind in ("organisation", "devices") else "TEST"],
        "types": ["control-objective"],
        "collected": (r.started or run.started).isoformat(),
    }
    if r.target in subjects:
        obs["subjects"] = [{"subject-uuid": subjects[r.target], "type": "inventory-item",
                            "title": _line(r.target)}]
    evidence = []
    for ev_id in r.evidence:
        try:
            ev = run.evidence.get(ev_id)
        except KeyError:
            continue
        evidence.append({
            "href": evidence_path(ev),
            "description": _line(f"{ev.title} ({ev.kind}, {ev.size} bytes)"),
            "props": [_prop("evidence-id", ev.id), _prop("sha256", ev.sha256)],
        })
    if evidence:
        obs["relevant-evidence"] = evidence
    if r.waiver:
        obs["remarks"] = "Waiver: " + "; ".join(f"{k}={v}" for k, v in r.waiver.items())
    return obs


def _finding(control_id: str, title: str, target: str, rows: Sequence[CheckResult],
             obs_ids: Sequence[str], ids: _Ids) -> dict[str, Any] | None:
    statuses = {r.status for r in rows}
    match = next((m for m in _FINDING_STATE if m[0] in statuses), None)
    if match is None:
        return None  # all skipped: not applicable, neither satisfied nor not
    status, state, reason, remark = match
    counts = ", ".join(f"{s.value} {sum(r.status == s for r in rows)}" for s in Status
                       if s in statuses)
    return {
        "uuid": ids("finding", control_id, target),
        "title": _line(f"{control_id} {title} on {target}"),
        "description": f"{control_id} on {target}: {len(rows)} check(s): {counts}.",
        "props": [_prop("status", status.value), _prop("target", target)],
        "target": {
            "type": "objective-id", "target-id": control_id,
            "status": {"state": state, "reason": reason, "remarks": remark},
        },
        "related-observations": [{"observation-uuid": o} for o in obs_ids],
    }


def build_oscal(run: Run, fail_on: Severity = Severity.LOW) -> dict[str, Any]:
    ids = _Ids(run.id)
    finished = (run.finished or run.started).isoformat()
    targets = sorted({(r.target, r.target_kind) for r in run.results if r.target != "-"})
    subjects = {name: ids("subject", kind, name) for name, kind in targets}
    items = [{"uuid": subjects[name], "description": f"{kind} target {name}",
              "props": [_prop("target-kind", kind), _prop("target-name", name)]}
             for name, kind in targets]
    observations = []
    findings = []
    groups: dict[tuple[str, str], list[tuple[CheckResult, str]]] = {}
    for r in run.results:
        obs = _observation(run, r, ids, subjects)
        observations.append(obs)
        groups.setdefault((r.control, r.target), []).append((r, obs["uuid"]))
    titles = {c.id: c.title for c in run.catalogue.controls}
    for (control_id, target), pairs in groups.items():
        f = _finding(control_id, titles.get(control_id, ""), target, [p[0] for p in pairs],
                     [p[1] for p in pairs], ids)
        if f is not None:
            findings.append(f)
    used = {e for r in run.results for e in r.evidence}
    plan_uuid = ids("plan")
    resources: list[dict[str, Any]] = [{
        "uuid": plan_uuid, "title": "controlcheck catalogue and inventory (the assessment plan)",
        "description": (f"No separate OSCAL assessment plan: this run assessed the controlcheck "
                        f"catalogue (sha256 {run.catalogue.digest}) against the inventory "
                        f"(sha256 {run.inventory.digest})."),
        "props": [_prop("catalogue-digest", run.catalogue.digest),
                  _prop("inventory-digest", run.inventory.digest)],
    }]
    for ev in run.evidence.all():
        if ev.id in used:
            resources.append({
                "uuid": ids("evidence", ev.id), "title": _line(ev.title),
                "props": [_prop("evidence-id", ev.id), _prop("target", ev.target),
                          _prop("kind", ev.kind)],
                "rlinks": [{"href": evidence_path(ev), "media-type": ev.media_type,
                            "hashes": [{"algorithm": "SHA-256", "value": ev.sha256}]}],
            })
    result: dict[str, Any] = {
        "uuid": ids("result"),
        "title": _line(f"controlcheck run {run.id}"),
        "description": ("Automated checks of promised security measures. Observations link "
                        "evidence files in the run's evidence bundle by relative path."),
        "start": run.started.isoformat(), "end": finished,
        "props": [_prop("run-id", run.id), _prop("partial", str(run.partial).lower()),
                  _prop("fail-on", fail_on.value)],
        "reviewed-controls": {"control-selections": [{"include-controls": [
            {"control-id": c.id} for c in run.catalogue.controls]}]},
    }
    if items:
        result["local-definitions"] = {"inventory-items": items}
    if observations:
        result["observations"] = observations
    if findings:
        result["findings"] = findings
    if run.notes:
        result["remarks"] = "\n".join(run.notes)
    return {"assessment-results": {
        "uuid": ids("assessment-results"),
        "metadata": {
            "title": _line(f"controlcheck assessment results {run.started.date().isoformat()}"),
            "last-modified": finished, "version": __version__, "oscal-version": OSCAL_VERSION,
            "props": [_prop("run-id", run.id)],
        },
        "import-ap": {"href": f"#{plan_uuid}",
                      "remarks": "Points at the back-matter resource naming the catalogue and "
                                 "inventory digests; no separate assessment plan is published."},
        "results": [result],
        "back-matter": {"resources": resources},
    }}


def render(run: Run, fail_on: Severity = Severity.LOW) -> str:
    return json.dumps(build_oscal(run, fail_on), indent=2, ensure_ascii=False) + "\n"
