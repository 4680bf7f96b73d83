"""End to end: `controlcheck run/validate` on real register, attestation and waiver files.

Each inventory under tests/data/org exercises one path (pass, fail, manual,
waived, expired); every broken file gives exit 2 with one `file:line` line
before any probe runs (no report is written).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from org_fixtures import DATA, render

from controlcheck.cli import main
from controlcheck.yamlio import load_schema

ONLY = ["--only", "AWARE", "--only", "PHYS", "--only", "AV-02"]


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("org"))


def run_cli(inventory: Path, out: Path, *extra: str) -> tuple[int, dict, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "controlcheck", "run", "-i", str(inventory), *ONLY,
         "-o", str(out), *extra],
        capture_output=True, text=True, timeout=60)
    report = json.loads(out.read_text()) if out.exists() else {}
    return proc.returncode, report, proc.stdout + proc.stderr


def statuses(report: dict) -> dict[str, str]:
    return {r["control"]: r["status"] for r in report["results"]}


def by_control(report: dict, control: str) -> dict:
    return next(r for r in report["results"] if r["control"] == control)


def assert_valid_report(report: dict) -> None:
    jsonschema.Draft202012Validator(load_schema("report.schema.json")).validate(report)


def test_mixed_inventory_pass_fail_waived(org: Path, tmp_path: Path) -> None:
    code, report, output = run_cli(org / "inventory.yaml", tmp_path / "r.json")
    assert statuses(report) == {"AWARE-01": "pass", "AWARE-02": "fail", "PHYS-01": "pass",
                                "AV-02": "waived"}
    assert code == 1  # AWARE-02 fails; the waived AV-02 does not count
    assert_valid_report(report)
    av = by_control(report, "AV-02")
    assert av["waiver"]["approver"] == "Marie Dubois (CISO)"
    assert av["waiver"]["source"].endswith("waivers.yaml:2")
    assert "4 of 5 desktop/laptop devices lack healthy, recent AV" in av["message"]
    assert report["summary"]["waived"] == 1
    # the waiver ends in 10 days: flagged in the terminal summary
    assert "1 waiver(s) expire within 14 days" in output
    assert "AV-02 device.av.coverage on devices" in output
    # a waiver for PHYS-01 exists, but a pass stays a pass
    assert by_control(report, "PHYS-01")["status"] == "pass"
    nda = by_control(report, "AWARE-02")
    assert "2 of 5 current staff have no signed confidentiality record" in nda["message"]
    assert "Dirk Maes" in nda["message"] and "Els Willems" in nda["message"]


def test_attestation_files_are_evidence_with_sha256(org: Path, tmp_path: Path) -> None:
    _, report, _ = run_cli(org / "inventory.yaml", tmp_path / "r.json")
    phys = by_control(report, "PHYS-01")
    evidence = {e["id"]: e for e in report["evidence"]}
    files = [evidence[i] for i in phys["evidence"] if evidence[i]["kind"] == "file"]
    attached = org / "attestations" / "badge-review-export.csv"
    import hashlib
    digest = hashlib.sha256(attached.read_bytes()).hexdigest()
    assert any(e["meta"].get("sha256") == digest and e["sha256"] == digest for e in files)
    assert any(e["title"] == "attestation phys-review.yaml" for e in files)


def test_all_pass(org: Path, tmp_path: Path) -> None:
    code, report, _ = run_cli(org / "inventory-allpass.yaml", tmp_path / "r.json")
    assert statuses(report) == {"AWARE-01": "pass", "AWARE-02": "pass", "PHYS-01": "pass",
                                "AV-02": "pass"}
    assert code == 0
    assert_valid_report(report)


def test_expired_attestation_training_and_waiver_fail(org: Path, tmp_path: Path) -> None:
    code, report, _ = run_cli(org / "inventory-expired.yaml", tmp_path / "r.json")
    assert statuses(report) == {"AWARE-01": "fail", "AWARE-02": "pass", "PHYS-01": "fail",
                                "AV-02": "fail"}
    assert code == 1
    assert_valid_report(report)
    assert "expired on" in by_control(report, "PHYS-01")["message"]
    assert "renew" in by_control(report, "PHYS-01")["message"]
    av = by_control(report, "AV-02")
    assert "waiver expired on" in av["message"] and "waiver" not in av
    training = by_control(report, "AWARE-01")
    assert "2 of 5 current staff (40%)" in training["message"]
    assert "3 untrained" in training["message"]


def test_waiver_items_do_not_hide_a_second_failing_device(org: Path, tmp_path: Path) -> None:
    # waiver names LT-001 only; LT-001 and DT-002 fail → still fail, DT-002 named
    code, report, _ = run_cli(org / "inventory-items-two.yaml", tmp_path / "r.json")
    av = by_control(report, "AV-02")
    assert av["status"] == "fail" and "waiver" not in av
    assert code == 1
    assert_valid_report(report)
    assert av["facts"]["failing_items"] == ["LT-001", "DT-002"]
    assert "2 of 5 desktop/laptop devices lack healthy, recent AV" in av["message"]
    assert "not waived: the waiver at " in av["message"]
    assert "waivers-items.yaml:4 does not cover devices DT-002;" in av["message"]
    assert "LT-001;" not in av["message"].split("not waived:")[1]


def test_waiver_items_cover_the_only_failing_device(org: Path, tmp_path: Path) -> None:
    code, report, _ = run_cli(org / "inventory-items-one.yaml", tmp_path / "r.json")
    av = by_control(report, "AV-02")
    assert av["status"] == "waived"
    assert code == 0
    assert_valid_report(report)
    assert av["facts"]["failing_items"] == ["LT-001"]
    assert av["waiver"]["items"] == ["lt-001"]  # device names match case-insensitively
    assert av["waiver"]["timezone"] == "Europe/Brussels"
    assert "1 of 5 desktop/laptop devices lack healthy, recent AV" in av["message"]


def test_nothing_given_is_manual(org: Path, tmp_path: Path) -> None:
    code, report, _ = run_cli(org / "inventory-manual.yaml", tmp_path / "r.json")
    assert statuses(report) == {"AWARE-01": "manual", "AWARE-02": "manual",
                                "PHYS-01": "manual", "AV-02": "skip"}
    assert code == 0
    assert_valid_report(report)
    assert "add an attestation for PHYS-01 to organisation.attestations" in \
        by_control(report, "PHYS-01")["message"]
    assert "organisation.registers.staff" in by_control(report, "AWARE-01")["message"]
    assert "organisation.registers.training" in by_control(report, "AWARE-01")["message"]


def test_attestation_stands_in_for_missing_registers(org: Path, tmp_path: Path) -> None:
    code, report, _ = run_cli(org / "inventory-attested.yaml", tmp_path / "r.json")
    assert statuses(report) == {"AWARE-01": "manual", "AWARE-02": "pass", "PHYS-01": "pass",
                                "AV-02": "skip"}
    assert code == 0
    assert "attested by Sofie Lambert (HR director)" in by_control(report, "AWARE-02")["message"]


def test_validate_accepts_every_example(org: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for inv in sorted(org.glob("inventory*.yaml")):
        assert main(["validate", "-i", str(inv)]) == 0, capsys.readouterr().err


# (broken file, the file it replaces, inventory, line, fragment of the message)
BROKEN = [
    ("staff_no_start.csv", "staff.csv", "inventory.yaml", 1, "missing column 'start_date'"),
    ("training_bad_date.csv", "training.csv", "inventory.yaml", 3,
     "'31/12/2025' is not a date"),
    ("confidentiality_extra_field.csv", "confidentiality_missing.csv", "inventory.yaml", 4,
     "row has 5 fields but the header has 3"),
    ("av_export_bad_bool.csv", "av_export.csv", "inventory-allpass.yaml", 3,
     "'maybe' is not true/false"),
    ("defender_trailing_comma.json", "defender_deviceavinfo.json", "inventory.yaml", 5,
     "invalid JSON"),
    ("phys_review_syntax.yaml", "attestations/phys-review.yaml", "inventory.yaml", 7,
     "invalid YAML: mapping values are not allowed here"),
    ("phys_review_no_role.yaml", "attestations/phys-review.yaml", "inventory.yaml", 1,
     "'role' is a required property"),
    ("phys_review_unknown_control.yaml", "attestations/phys-review.yaml", "inventory.yaml", 2,
     "unknown control 'PHYS-99'"),
    ("attestation_automated_control.yaml", "attestations/phys-review.yaml", "inventory.yaml", 5,
     "attestations decide only organisation checks"),
    ("phys_review_until_before.yaml", "attestations/phys-review.yaml", "inventory.yaml", 5,
     "is before date"),
    ("phys_review_tampered.yaml", "attestations/phys-review.yaml", "inventory.yaml", 8,
     "changed after the attestation was signed"),
    ("waivers_unknown_control.yaml", "waivers.yaml", "inventory.yaml", 7,
     "unknown control 'AV-09'"),
    ("waivers_bad_date.yaml", "waivers.yaml", "inventory.yaml", 6, "'2026-02-30' is not a date"),
    ("waivers_wrong_check.yaml", "waivers.yaml", "inventory.yaml", 4,
     "'host.av.engine' is not a check of AV-02"),
    ("waivers_missing_approver.yaml", "waivers.yaml", "inventory.yaml", 2,
     "'approver' is a required property"),
    ("waivers_items_no_facts.yaml", "waivers.yaml", "inventory.yaml", 5,
     "items: host.patch.security-updates records no failing items"),
    ("waivers_items_whole_control.yaml", "waivers.yaml", "inventory.yaml", 7,
     "items: host.patch.security-updates, host.patch.reboot-required records no failing items"),
    ("waivers_bad_timezone.yaml", "waivers.yaml", "inventory.yaml", 2,
     "unknown IANA time zone 'Belgium/Brussels'"),
]


@pytest.mark.parametrize("broken,replaces,inventory,line,fragment", BROKEN,
                         ids=[b[0] for b in BROKEN])
def test_broken_file_is_a_one_line_config_error(
        org: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], broken: str,
        replaces: str, inventory: str, line: int, fragment: str) -> None:
    work = tmp_path / "org"
    shutil.copytree(org, work)
    shutil.copyfile(work / "broken" / broken, work / replaces)
    inv = str(work / inventory)
    expected = f"{work / replaces}:{line}: "
    for argv in (["validate", "-i", inv],
                 ["run", "-i", inv, *ONLY, "-o", str(tmp_path / "report.json")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert expected in err, err
        assert fragment in err, err
    assert not (tmp_path / "report.json").exists()  # stopped before any probe ran


def test_broken_fixture_list_covers_every_file() -> None:
    assert {b[0] for b in BROKEN} == {p.name for p in (DATA / "broken").iterdir()}


def test_shipped_example_validates(capsys: pytest.CaptureFixture[str]) -> None:
    example = Path(__file__).parent.parent / "inventory" / "examples" / "organisation.yaml"
    assert main(["validate", "-i", str(example)]) == 0, capsys.readouterr().err
