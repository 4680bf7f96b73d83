"""SARIF 2.1.0: one run, one rule per check id, one result per check result.

``kind``/``level`` follow the status: fail → ``fail`` with ``error`` (high/critical) or
``warning`` (low/medium); error → ``review``/``warning`` (undecided: a human must look);
pass → ``pass``/``none``; skip → ``notApplicable``/``none``; manual → ``review``/``note``;
waived → ``fail`` with an external suppression (code scanning shows it as dismissed).
Each result's location is the target as a URI (endpoints have no file in the repository),
plus a logical location naming the target and control.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from controlcheck import __version__
from controlcheck.engine import Run
from controlcheck.model import CheckResult, Severity, Status

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _kind_level(r: CheckResult) -> tuple[str, str]:
    if r.status in (Status.FAIL, Status.WAIVED):
        return "fail", "error" if r.severity.at_least(Severity.HIGH) else "warning"
    if r.status == Status.ERROR:
        return "review", "warning"
    if r.status == Status.MANUAL:
        return "review", "note"
    if r.status == Status.SKIP:
        return "notApplicable", "none"
    return "pass", "none"


def _uri(r: CheckResult, run: Run) -> str:
    spec: dict[str, Any] = {}
    for t in run.inventory.targets:
        if t.name == r.target:
            spec = dict(t.spec)
            break
    if spec.get("url"):
        return str(spec["url"])
    if spec.get("host"):
        host = spec["host"]
        host = f"[{host}]" if ":" in host else host
        return f"tls://{host}:{spec.get('port', 443)}"
    return f"controlcheck:target/{r.target}"


def build(run: Run, fail_on: Severity = Severity.LOW) -> dict[str, Any]:
    from controlcheck.probes import registry

    specs = registry()
    check_ids = sorted({r.check for r in run.results})
    rules = []
    for cid in check_ids:
        spec = specs.get(cid)
        rules.append({
            "id": cid, "name": cid.replace(".", "_").replace("-", "_"),
            "shortDescription": {"text": f"{cid}: fails when {spec.summary}" if spec else cid},
            "helpUri": "https://github.com/controlcheck/controlcheck#checks",
            "properties": {"tags": ["security", cid.split(".")[0]]},
        })
    index = {cid: i for i, cid in enumerate(check_ids)}
    results = []
    for r in run.results:
        kind, level = _kind_level(r)
        uri = _uri(r, run)
        res: dict[str, Any] = {
            "ruleId": r.check, "ruleIndex": index[r.check], "kind": kind, "level": level,
            "message": {"text": f"[{r.status.value}] {r.message}"},
            "locations": [{
                "physicalLocation": {"artifactLocation": {"uri": uri}},
                "logicalLocations": [{"name": r.target, "fullyQualifiedName":
                                      f"{r.control}/{r.target}", "kind": "resource"}],
            }],
            "partialFingerprints": {"controlcheck/v1": hashlib.sha256(
                f"{r.control}|{r.check}|{r.target}".encode()).hexdigest()},
            "properties": {"control": r.control, "status": r.status.value,
                           "severity": r.severity.value, "evidence": list(r.evidence),
                           "facts": json.loads(json.dumps(dict(r.facts), default=str))},
        }
        if r.status == Status.WAIVED:
            res["suppressions"] = [{"kind": "external", "status": "accepted",
                                    "justification": str((r.waiver or {}).get("reason", "waived"))}]
        results.append(res)
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "controlcheck", "version": __version__,
                                "informationUri": "https://github.com/controlcheck/controlcheck",
                                "rules": rules}},
            "automationDetails": {"id": f"controlcheck/{run.id}"},
            "invocations": [{"executionSuccessful": not run.partial,
                             "startTimeUtc": run.started.isoformat().replace("+00:00", "Z"),
                             "endTimeUtc": (run.finished or run.started).isoformat()
                             .replace("+00:00", "Z")}],
            "results": results,
        }],
    }


def render(run: Run, fail_on: Severity = Severity.LOW) -> str:
    return json.dumps(build(run, fail_on), indent=2, ensure_ascii=False) + "\n"
