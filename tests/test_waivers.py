"""Waivers as an engine result hook: only fail changes; expired adds a message."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from org_fixtures import render, today

from controlcheck.model import CheckResult, Severity, Status
from controlcheck.waivers import WaiverHook, expiring_soon, load_waivers


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("org"))


def result(status: Status, control: str = "AV-02", target: str = "devices",
           check: str = "device.av.coverage") -> CheckResult:
    return CheckResult(control=control, check=check, target=target, target_kind="devices",
                       status=status, severity=Severity.HIGH, message="3 devices lack AV")


def test_unexpired_waiver_turns_fail_into_waived(org: Path) -> None:
    hook = WaiverHook(load_waivers(org / "waivers.yaml"), today())
    out = hook(result(Status.FAIL))
    assert out.status == Status.WAIVED
    assert out.waiver is not None and out.waiver["reference"] == "RISK-2026-014"
    assert out.message.endswith("3 devices lack AV")  # the finding stays visible


@pytest.mark.parametrize("status", [Status.PASS, Status.ERROR, Status.MANUAL, Status.SKIP])
def test_waiver_never_touches_other_statuses(org: Path, status: Status) -> None:
    hook = WaiverHook(load_waivers(org / "waivers.yaml"), today())
    r = result(status)
    assert hook(r) is r


def test_waiver_matching_by_control_target_glob_and_check(org: Path) -> None:
    hook = WaiverHook(load_waivers(org / "waivers.yaml"), today())
    assert hook(result(Status.FAIL, target="laptops")).status == Status.FAIL  # 'dev*' only
    assert hook(result(Status.FAIL, control="AV-01")).status == Status.FAIL
    assert hook(result(Status.FAIL, check="other.check")).status == Status.FAIL
    # the PHYS-01 waiver has no check: any check of PHYS-01 on any target
    assert hook(result(Status.FAIL, control="PHYS-01", target="x",
                       check="org.phys.access-review")).status == Status.WAIVED


def test_expired_waiver_keeps_fail_and_says_so(org: Path) -> None:
    hook = WaiverHook(load_waivers(org / "waivers-expired.yaml"), today())
    out = hook(result(Status.FAIL))
    assert out.status == Status.FAIL and out.waiver is None
    assert "waiver expired on" in out.message and "waivers-expired.yaml:2" in out.message


def test_expiry_day_itself_is_still_covered(org: Path) -> None:
    waivers = load_waivers(org / "waivers-expired.yaml")
    expires = waivers[0].expires
    assert WaiverHook(waivers, expires)(result(Status.FAIL)).status == Status.WAIVED
    assert WaiverHook(waivers, date.fromordinal(expires.toordinal() + 1))(
        result(Status.FAIL)).status == Status.FAIL


def test_expiring_soon_lists_waivers_within_14_days(org: Path) -> None:
    hook = WaiverHook(load_waivers(org / "waivers.yaml"), today())
    waived = hook(result(Status.FAIL))
    assert [(r.control, left) for r, left in expiring_soon([waived], today())] == [("AV-02", 10)]
    assert expiring_soon([waived], today(), days=5) == []
