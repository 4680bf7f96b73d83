"""OSCAL assessment-results: schema-valid, honest about error/skip/manual/waived, reproducible."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import uuid
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import regex
from bundle_fixtures import real_run
from conftest import SHARED_SCHEMAS
from jsonschema import Draft7Validator, validators

from controlcheck.evidence.bundle import bundle_bytes_map
from controlcheck.reporters import FORMATS
from controlcheck.reporters.oscal import build_oscal, render

SCHEMA = SHARED_SCHEMAS / "oscal_assessment-results_schema.json"
GOLDEN = Path(__file__).parent / "data" / "evidence" / "oscal_structure.golden.json"


def _regex_pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Any:
    # OSCAL patterns use \p{L}/\p{N}, which Python's re cannot compile (SOURCES.md).
    if validator.is_type(instance, "string") and not regex.search(patrn, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")


OscalValidator = validators.extend(Draft7Validator, {"pattern": _regex_pattern})


@pytest.fixture(scope="module")
def validator() -> Any:
    schema = json.loads(SCHEMA.read_text())
    return OscalValidator(schema, format_checker=jsonschema.FormatChecker())


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return real_run(tmp_path_factory.mktemp("oscal"))


def _errors(validator: Any, doc: dict) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(doc)]


def test_validator_is_live(validator: Any, run: Any) -> None:
    """The schema check must be able to fail, or a green test proves nothing."""
    doc = build_oscal(run)
    bad = copy.deepcopy(doc)
    bad["assessment-results"]["results"][0]["findings"][0]["target"]["status"]["state"] = "error"
    assert len(_errors(validator, bad)) == 1
    bad = copy.deepcopy(doc)
    bad["assessment-results"]["uuid"] = str(uuid.uuid1())
    assert len(_errors(validator, bad)) == 1
    bad = copy.deepcopy(doc)
    del bad["assessment-results"]["import-ap"]
    assert len(_errors(validator, bad)) == 1


def test_real_run_validates_against_the_official_schema(validator: Any, run: Any) -> None:
    doc = json.loads(render(run))
    assert _errors(validator, doc) == []
    assert doc["assessment-results"]["metadata"]["oscal-version"] == "1.2.1"
    assert FORMATS["oscal"] == "controlcheck.reporters.oscal"


def _result(doc: dict) -> dict:
    return doc["assessment-results"]["results"][0]


def _findings_by_control(doc: dict) -> dict[str, dict]:
    return {f["target"]["target-id"]: f for f in _result(doc).get("findings", [])}


def _obs_by_check(doc: dict) -> dict[str, dict]:
    out = {}
    for o in _result(doc)["observations"]:
        props = {p["name"]: p["value"] for p in o["props"]}
        out[props["check-id"]] = o
    return out


def test_statuses_map_honestly(run: Any) -> None:
    doc = build_oscal(run)
    findings = _findings_by_control(doc)
    state = {cid: (f["target"]["status"]["state"], f["target"]["status"]["reason"])
             for cid, f in findings.items()}
    assert state == {
        "PATCH-90": ("satisfied", "pass"),
        "FW-90": ("not-satisfied", "fail"),  # one fail, one error: the fail decides
        "ACCESS-90": ("not-satisfied", "undecided"),  # error alone: never satisfied
        "PHYS-90": ("not-satisfied", "manual"),
        "BACKUP-90": ("not-satisfied", "waived"),
    }
    # Only skipped (no endpoints): no finding either way, the observation says why.
    assert "TLS-90" not in findings
    obs = _obs_by_check(doc)
    assert obs["test.bundle.undecided"]["description"].startswith("Could not be decided:")
    assert obs["test.bundle.endpoint"]["description"].startswith("Not applicable:")
    assert obs["test.bundle.manual"]["description"].startswith("Not assessed automatically")
    assert obs["test.bundle.waived-fail"]["description"].startswith("Failed, under an unexpired")
    assert "CISO" in obs["test.bundle.waived-fail"]["remarks"]
    assert "not a demonstrated failure" in findings["ACCESS-90"]["target"]["status"]["remarks"]
    # satisfied only where every result of the control × target passed
    for f in _result(doc)["findings"]:
        if f["target"]["status"]["state"] == "satisfied":
            related = {r["observation-uuid"] for r in f["related-observations"]}
            for o in _result(doc)["observations"]:
                if o["uuid"] in related:
                    assert {p["value"] for p in o["props"] if p["name"] == "status"} == {"pass"}


def test_findings_tie_to_observations_and_subjects(run: Any) -> None:
    doc = build_oscal(run)
    res = _result(doc)
    obs_ids = {o["uuid"] for o in res["observations"]}
    items = {i["uuid"]: i for i in res["local-definitions"]["inventory-items"]}
    for f in res["findings"]:
        assert {r["observation-uuid"] for r in f["related-observations"]} <= obs_ids
    for o in res["observations"]:
        for s in o.get("subjects", []):
            assert s["subject-uuid"] in items and s["type"] == "inventory-item"
    reviewed = {c["control-id"] for c in
                res["reviewed-controls"]["control-selections"][0]["include-controls"]}
    assert reviewed == {c.id for c in run.catalogue.controls}
    assert len(res["observations"]) == len(run.results)


def test_evidence_links_resolve_in_the_bundle_with_matching_hashes(run: Any) -> None:
    doc = build_oscal(run)
    files = bundle_bytes_map(run)
    with zipfile.ZipFile(io.BytesIO(_zip(files))) as zf:
        names = set(zf.namelist())
    seen = 0
    for o in _result(doc)["observations"]:
        for ev in o.get("relevant-evidence", []):
            props = {p["name"]: p["value"] for p in ev["props"]}
            assert ev["href"] in names
            assert hashlib.sha256(files[ev["href"]]).hexdigest() == props["sha256"]
            seen += 1
    assert seen >= 5
    for res in doc["assessment-results"]["back-matter"]["resources"][1:]:
        link = res["rlinks"][0]
        assert hashlib.sha256(files[link["href"]]).hexdigest() == link["hashes"][0]["value"]


def _zip(files: dict[str, bytes]) -> bytes:
    from controlcheck.evidence.zipcanon import canonical_zip

    return canonical_zip(files)


def test_same_run_renders_identically_with_uuid5(run: Any) -> None:
    a, b = render(run), render(run)
    assert a == b
    doc = json.loads(a)
    assert uuid.UUID(doc["assessment-results"]["uuid"]).version == 5
    assert all(uuid.UUID(o["uuid"]).version == 5 for o in _result(doc)["observations"])


def _structure(doc: dict) -> dict:
    """Run-independent shape: ids, times, hashes and machine facts removed."""
    res = _result(doc)
    return {
        "findings": sorted([f["target"]["target-id"], f["title"], f["target"]["status"]["state"],
                            f["target"]["status"]["reason"], len(f["related-observations"])]
                           for f in res["findings"]),
        "observations": sorted([o["title"], o["description"].split(":", 1)[0], o["methods"],
                                len(o.get("relevant-evidence", [])), len(o.get("subjects", []))]
                               for o in res["observations"]),
        "inventory_items": sorted(i["description"] for i in
                                  res["local-definitions"]["inventory-items"]),
        "top_level": sorted(doc["assessment-results"]),
        "result_keys": sorted(res),
    }


def test_structure_matches_golden_file(run: Any) -> None:
    got = _structure(build_oscal(run))
    if os.environ.get("CONTROLCHECK_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=1) + "\n")
    assert got == json.loads(GOLDEN.read_text())
