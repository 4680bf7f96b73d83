"""SARIF reporter: validates against the OASIS SARIF 2.1.0 schema; ruleId = check id,
kind/level by status, waived results suppressed."""

from __future__ import annotations

import json

from conftest import SHARED_SCHEMAS
from jsonschema import Draft4Validator
from test_junit_report import sample_run

from controlcheck.reporters import FORMATS, sarif

SCHEMA = json.loads((SHARED_SCHEMAS / "sarif-schema-2.1.0.json").read_text())


def test_sarif_validates_and_maps_statuses() -> None:
    doc = json.loads(sarif.render(sample_run()))
    errors = sorted(Draft4Validator(SCHEMA).iter_errors(doc), key=str)
    assert not errors, errors[0].message
    results = {r["ruleId"]: r for r in doc["runs"][0]["results"]}
    assert (results["tls.cipher-suites"]["kind"], results["tls.cipher-suites"]["level"]) == \
        ("fail", "error")
    assert (results["tls.protocol-versions"]["kind"], results["tls.protocol-versions"]["level"]) \
        == ("pass", "none")
    assert results["tls.certificate-trust"]["kind"] == "review"
    assert results["http.https-redirect"]["kind"] == "notApplicable"
    assert results["http.hsts"]["suppressions"][0]["kind"] == "external"
    assert results["http.hsts"]["level"] == "warning"  # medium severity
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in doc["runs"][0]["results"]}
    assert {"https://shop.example/", "tls://[::1]:8443"} <= uris
    rules = [r["id"] for r in doc["runs"][0]["tool"]["driver"]["rules"]]
    assert all(r["ruleIndex"] == rules.index(r["ruleId"]) for r in doc["runs"][0]["results"])


def test_registered_for_run() -> None:
    assert FORMATS["sarif"] == "controlcheck.reporters.sarif"
