"""Pure judges of the AWARE checks and the register loader, on the real fixture files."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from org_fixtures import render, today

from controlcheck.model import Status
from controlcheck.probes.org import current_staff, judge_confidentiality, judge_training
from controlcheck.registers import load_register, parse_bool, parse_date, parse_datetime
from controlcheck.yamlio import ConfigError


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("org"))


def rows(org: Path, name: str, kind: str):  # type: ignore[no-untyped-def]
    return load_register(org / name, kind).rows


def test_current_staff_excludes_leavers_and_future_hires(org: Path) -> None:
    people = current_staff(rows(org, "staff.csv", "staff"), today())
    assert [p.id for p in people] == ["E001", "E002", "E003", "E004", "E005"]
    assert "bart.peeters@example.be" in people[1].keys


def test_training_all_current_staff_trained(org: Path) -> None:
    outcome, details = judge_training(rows(org, "staff.csv", "staff"),
                                      rows(org, "training.csv", "training"), today(),
                                      min_share=0.95, period_days=365)
    assert outcome.status == Status.PASS
    assert outcome.facts["trained"] == 5 and outcome.facts["current_staff"] == 5
    # X901 is not on the staff list: noted, not failed on
    assert details["unknown_people_in_training_register"] == ["X901"]


def test_training_below_threshold_lists_untrained(org: Path) -> None:
    outcome, details = judge_training(rows(org, "staff.csv", "staff"),
                                      rows(org, "training_low.csv", "training"), today(),
                                      min_share=0.95, period_days=365)
    assert outcome.status == Status.FAIL
    assert "2 of 5 current staff (40%)" in outcome.message
    assert details["untrained"] == ["E002 Bart Peeters", "E003 Chloé Dubois", "E005 Els Willems"]
    assert details["future_dated_records"] == [f"E005 {today() + timedelta(days=7)}"]


def test_training_threshold_is_a_parameter(org: Path) -> None:
    outcome, _ = judge_training(rows(org, "staff.csv", "staff"),
                                rows(org, "training_low.csv", "training"), today(),
                                min_share=0.4, period_days=365)
    assert outcome.status == Status.PASS
    # a longer period counts E002 (400 days) and E003 (366 days) as well
    outcome, _ = judge_training(rows(org, "staff.csv", "staff"),
                                rows(org, "training_low.csv", "training"), today(),
                                min_share=0.95, period_days=400)
    assert outcome.status == Status.FAIL and outcome.facts["trained"] == 3
    outcome, _ = judge_training(rows(org, "staff.csv", "staff"),
                                rows(org, "training_low.csv", "training"), today(),
                                min_share=0.8, period_days=401)
    assert outcome.status == Status.PASS and outcome.facts["trained"] == 4


def test_training_course_filter(org: Path) -> None:
    outcome, _ = judge_training(rows(org, "staff.csv", "staff"),
                                rows(org, "training.csv", "training"), today(),
                                min_share=0.95, period_days=365, courses=["Fire safety"])
    assert outcome.status == Status.FAIL and outcome.facts["trained"] == 0


def test_no_current_staff_is_error_not_pass(org: Path) -> None:
    long_ago = date(2000, 1, 1)
    outcome, _ = judge_training(rows(org, "staff.csv", "staff"),
                                rows(org, "training.csv", "training"), long_ago,
                                min_share=0.95, period_days=365)
    assert outcome.status == Status.ERROR
    outcome, _ = judge_confidentiality(rows(org, "staff.csv", "staff"),
                                       rows(org, "confidentiality.csv", "confidentiality"),
                                       long_ago)
    assert outcome.status == Status.ERROR


def test_confidentiality_all_signed_semicolon_csv_and_email_match(org: Path) -> None:
    outcome, _ = judge_confidentiality(rows(org, "staff.csv", "staff"),
                                       rows(org, "confidentiality.csv", "confidentiality"),
                                       today())
    assert outcome.status == Status.PASS and outcome.facts["signed"] == 5


def test_confidentiality_missing_and_future_signature(org: Path) -> None:
    outcome, details = judge_confidentiality(
        rows(org, "staff.csv", "staff"),
        rows(org, "confidentiality_missing.csv", "confidentiality"), today())
    assert outcome.status == Status.FAIL
    assert details["missing"] == ["E004 Dirk Maes", "E005 Els Willems"]
    assert details["future_dated_records"] == [f"E005 {today() + timedelta(days=3)}"]
    assert details["unknown_people_in_register"] == []  # E006 is a former employee, known


def test_register_rows_keep_their_line(org: Path) -> None:
    reg = load_register(org / "training.csv", "training")
    assert [r.line for r in reg.rows][:2] == [2, 3]
    assert reg.where(reg.rows[0]).endswith("training.csv:2")
    assert len(reg.sha256) == 64


def test_yaml_and_json_registers(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "- person: E001\n  course: Awareness\n  completed: 2026-01-05\n"
        "- person: E002\n  course: Awareness\n  completed: 2026-13-05\n")
    with pytest.raises(ConfigError) as err:
        load_register(tmp_path / "t.yaml", "training")
    assert err.value.line == 6 and "2026-13-05" in err.value.message
    (tmp_path / "s.json").write_text(
        '[\n {"Employee ID": "E1", "Full name": "A", "Start": "2020-01-01"},\n'
        ' {"Employee ID": "E2", "Full name": "B", "Start": ""}\n]\n')
    with pytest.raises(ConfigError) as err:
        load_register(tmp_path / "s.json", "staff")
    assert err.value.line == 3 and "'start_date' is empty" in err.value.message


def test_header_aliases_and_bom(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_bytes(
        "\ufeffEmployee ID,Full Name,Start-Date\nE1,An,2020-01-01\n".encode())
    reg = load_register(tmp_path / "s.csv", "staff")
    assert reg.rows[0]["id"] == "E1" and reg.rows[0]["start_date"] == date(2020, 1, 1)


def test_value_parsers() -> None:
    assert parse_date("2026-11-02T08:00:00Z") == date(2026, 11, 2)
    assert parse_datetime("2022-08-02T18:40:15.882Z").microsecond == 882000
    assert parse_datetime("2026-11-02").tzinfo is not None
    assert parse_bool("Healthy") is True and parse_bool("no") is False
    for bad in ("02/11/2026", "yesterday"):
        with pytest.raises(ValueError):
            parse_date(bad)
    with pytest.raises(ValueError):
        parse_bool("maybe")
