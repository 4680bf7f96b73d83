"""Attestations: loading, hashing attached files, and the pure verdict."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from org_fixtures import render, today

from controlcheck.attestations import judge_attestations, load_attestation
from controlcheck.model import Status


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("org"))


def test_load_hashes_attached_files(org: Path) -> None:
    att = load_attestation(org / "attestations" / "phys-review.yaml")
    attached = org / "attestations" / "badge-review-export.csv"
    assert att.files[0].sha256 == hashlib.sha256(attached.read_bytes()).hexdigest()
    assert att.sha256 == hashlib.sha256(att.content).hexdigest()
    assert att.control == "PHYS-01" and att.signed_by() == "Jan Peeters (Facility manager)"


def test_valid_attestation_passes(org: Path) -> None:
    att = load_attestation(org / "attestations" / "phys-review.yaml")
    outcome, chosen = judge_attestations([att], "PHYS-01", "org.phys.access-review", today(),
                                         "org")
    assert outcome.status == Status.PASS and chosen is att
    assert outcome.facts["days_left"] == 150


def test_boundaries_are_inclusive(org: Path) -> None:
    att = load_attestation(org / "attestations" / "phys-review.yaml")
    for day, status in ((att.date, Status.PASS), (att.valid_until, Status.PASS),
                        (att.valid_until + timedelta(days=1), Status.FAIL),
                        (att.date - timedelta(days=1), Status.FAIL)):
        outcome, _ = judge_attestations([att], "PHYS-01", "org.phys.access-review", day, "org")
        assert outcome.status == status, day


def test_expired_fails_with_date_and_renew(org: Path) -> None:
    att = load_attestation(org / "attestations" / "phys-review-expired.yaml")
    outcome, _ = judge_attestations([att], "PHYS-01", "org.phys.access-review", today(), "org")
    assert outcome.status == Status.FAIL
    assert f"expired on {today() - timedelta(days=35)}" in outcome.message
    assert "renew" in outcome.message


def test_valid_wins_over_expired(org: Path) -> None:
    atts = [load_attestation(org / "attestations" / n)
            for n in ("phys-review-expired.yaml", "phys-review.yaml")]
    outcome, chosen = judge_attestations(atts, "PHYS-01", "org.phys.access-review", today(),
                                         "org")
    assert outcome.status == Status.PASS and chosen is atts[1]


def test_none_for_this_control_is_manual(org: Path) -> None:
    att = load_attestation(org / "attestations" / "aware-02-attested.yaml")
    outcome, chosen = judge_attestations([att], "PHYS-01", "org.phys.access-review", today(),
                                         "org")
    assert outcome.status == Status.MANUAL and chosen is None
    assert "add an attestation for PHYS-01 to organisation.attestations" in outcome.message
    # a check-only attestation applies to that check in any control
    outcome, _ = judge_attestations([att], "AWARE-02", "org.aware.confidentiality", today(),
                                    "org")
    assert outcome.status == Status.PASS
