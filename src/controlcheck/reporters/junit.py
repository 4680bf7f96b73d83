"""JUnit XML: one ``<testsuite>`` per target, one ``<testcase>`` per result.

Validates against the Jenkins xUnit ``junit-10.xsd`` (the de-facto schema GitLab,
Jenkins and most CI readers accept).  ``fail`` → ``<failure>``, ``error`` → ``<error>``
(could not decide), ``skip``/``manual``/``waived`` → ``<skipped>`` with the reason.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from controlcheck.engine import Run
from controlcheck.model import CheckResult, Severity, Status


def _time(seconds: float) -> str:
    return f"{max(0.0, seconds):.3f}"


def render(run: Run, fail_on: Severity = Severity.LOW) -> str:
    by_target: dict[str, list[CheckResult]] = {}
    for r in run.results:
        by_target.setdefault(r.target, []).append(r)
    root = ET.Element("testsuites", name="controlcheck",
                      tests=str(len(run.results)), time=_time(_duration(run)),
                      failures=str(sum(r.status == Status.FAIL for r in run.results)),
                      errors=str(sum(r.status == Status.ERROR for r in run.results)))
    for target, rows in by_target.items():
        suite = ET.SubElement(root, "testsuite", _suite_attrs(run, target, rows))
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="run.id", value=run.id)
        ET.SubElement(props, "property", name="catalogue.digest", value=run.catalogue.digest)
        for r in rows:
            case = ET.SubElement(suite, "testcase", name=r.check, classname=f"{r.control}.{target}",
                                 time=_time(r.duration_s))
            detail = f"{r.control} {r.check} on {target} [{r.severity.value}]: {r.message}"
            if r.evidence:
                detail += "\nevidence: " + ", ".join(r.evidence)
            if r.status == Status.FAIL:
                ET.SubElement(case, "failure", message=r.message, type=r.severity.value).text = detail
            elif r.status == Status.ERROR:
                ET.SubElement(case, "error", message=r.message, type="undecided").text = detail
            elif r.status in (Status.SKIP, Status.MANUAL, Status.WAIVED):
                ET.SubElement(case, "skipped", message=f"{r.status.value}: {r.message}")
            else:
                ET.SubElement(case, "system-out").text = detail
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _duration(run: Run) -> float:
    if run.finished is None:
        return 0.0
    return (run.finished - run.started).total_seconds()


def _suite_attrs(run: Run, target: str, rows: Sequence[CheckResult]) -> dict[str, str]:
    return {
        "name": target,
        "tests": str(len(rows)),
        "failures": str(sum(r.status == Status.FAIL for r in rows)),
        "errors": str(sum(r.status == Status.ERROR for r in rows)),
        "skipped": str(sum(r.status in (Status.SKIP, Status.MANUAL, Status.WAIVED) for r in rows)),
        "time": _time(sum(r.duration_s for r in rows)),
        "timestamp": run.started.strftime("%Y-%m-%dT%H:%M:%S"),
    }
