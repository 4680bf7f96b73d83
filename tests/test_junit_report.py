"""JUnit reporter: every status maps to the right element; output validates against the
Jenkins xUnit ``junit-10.xsd`` (``/work/shared/schemas``) with ``xmlschema``."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import xmlschema
from conftest import SHARED_SCHEMAS

from controlcheck.catalogue import Catalogue
from controlcheck.engine import Run
from controlcheck.inventory import Inventory, Target
from controlcheck.model import CheckResult, Severity, Status, TargetKind
from controlcheck.probes.base import EvidenceStore
from controlcheck.reporters import FORMATS, junit

XSD = SHARED_SCHEMAS / "junit-10.xsd"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def sample_run() -> Run:
    rows = [
        CheckResult("TLS-01", "tls.protocol-versions", "shop", "endpoint", Status.PASS,
                    Severity.HIGH, "accepts only TLSv1.3", ("ev-1",), duration_s=0.01),
        CheckResult("TLS-01", "tls.cipher-suites", "shop", "endpoint", Status.FAIL,
                    Severity.HIGH, "accepts <RC4> & \"3DES\"", duration_s=0.02),
        CheckResult("TLS-02", "tls.certificate-trust", "api", "endpoint", Status.ERROR,
                    Severity.HIGH, "connect refused"),
        CheckResult("TLS-03", "http.https-redirect", "api", "endpoint", Status.SKIP,
                    Severity.MEDIUM, "no twin"),
        CheckResult("TLS-03", "http.hsts", "api", "endpoint", Status.WAIVED, Severity.MEDIUM,
                    "short max-age", waiver={"reason": "CHG-1"}),
        CheckResult("PHYS-01", "org.phys.access-review", "org", "organisation", Status.MANUAL,
                    Severity.LOW, "needs attestation"),
    ]
    inv = Inventory(None, Path("."), [
        Target("shop", TargetKind.ENDPOINT, {"name": "shop", "url": "https://shop.example/"}),
        Target("api", TargetKind.ENDPOINT, {"name": "api", "host": "::1", "port": 8443})],
        {}, {}, [], "d")
    return Run("run-1", T0, T0, Catalogue([], "c"), inv, rows, EvidenceStore(lambda: T0))


def test_junit_validates_and_maps_statuses() -> None:
    text = junit.render(sample_run())
    xmlschema.XMLSchema(str(XSD)).validate(text)
    root = ET.fromstring(text)
    assert root.get("tests") == "6" and root.get("failures") == "1" and root.get("errors") == "1"
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["tls.cipher-suites"].find("failure").get("message") == 'accepts <RC4> & "3DES"'
    assert cases["tls.certificate-trust"].find("error") is not None
    for name in ("http.https-redirect", "http.hsts", "org.phys.access-review"):
        assert cases[name].find("skipped") is not None
    assert cases["tls.protocol-versions"].find("failure") is None
    assert [s.get("name") for s in root.iter("testsuite")] == ["shop", "api", "org"]


def test_registered_for_run() -> None:
    assert FORMATS["junit"] == "controlcheck.reporters.junit"
