"""Waivers as an engine result hook: only fail changes; expired adds a message."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from org_fixtures import render, today

from controlcheck.catalogue import load_catalogue
from controlcheck.engine import Engine
from controlcheck.inventory import load_inventory
from controlcheck.model import CheckResult, Severity, Status
from controlcheck.preflight import preflight
from controlcheck.transports.factory import open_transport
from controlcheck.waivers import WaiverHook, expiring_soon, load_waivers, waiver_hooks
from controlcheck.yamlio import ConfigError


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


# --- items: a waiver names what it accepts ------------------------------------------------

def write_waivers(path: Path, body: str, timezone: str | None = None) -> Path:
    head = f"timezone: {timezone}\n" if timezone else ""
    path.write_text(head + "waivers:\n" + body, encoding="utf-8")
    return path


def item_result(check: str, control: str, fact: str, items: list[str],
                target: str = "web1") -> CheckResult:
    return CheckResult(control=control, check=check, target=target, target_kind="host",
                       status=Status.FAIL, severity=Severity.HIGH, message=f"{target}: bad",
                       facts={fact: items})


ADMINS = """  - control: ACCESS-02
    target: web1
    check: host.access.admins-approved
    items: [alice, "svc-*"]
    reason: approval paperwork in progress
    approver: CISO
    expires: 2099-01-01
"""


def test_items_waiver_applies_only_when_every_admin_is_covered(tmp_path: Path) -> None:
    hook = WaiverHook(load_waivers(write_waivers(tmp_path / "w.yaml", ADMINS)), today())
    ok = hook(item_result("host.access.admins-approved", "ACCESS-02", "unapproved",
                          ["alice", "svc-backup"]))
    assert ok.status == Status.WAIVED and ok.waiver and ok.waiver["items"] == ["alice", "svc-*"]
    bad = hook(item_result("host.access.admins-approved", "ACCESS-02", "unapproved",
                           ["alice", "mallory", "Alice"]))
    assert bad.status == Status.FAIL and bad.waiver is None
    # user names are case-sensitive on Linux: 'Alice' is not 'alice'
    assert bad.message.endswith("does not cover admins mallory, Alice; fix them or add them "
                                "to the waiver's items")
    assert "w.yaml:2" in bad.message


def test_items_waiver_on_a_fail_without_item_facts_does_not_apply(tmp_path: Path) -> None:
    hook = WaiverHook(load_waivers(write_waivers(tmp_path / "w.yaml", ADMINS)), today())
    r = CheckResult(control="ACCESS-02", check="host.access.admins-approved", target="web1",
                    target_kind="host", status=Status.FAIL, severity=Severity.HIGH,
                    message="web1: bad")
    out = hook(r)
    assert out.status == Status.FAIL
    assert "lists items but this result names no failing items" in out.message


def test_listener_items_glob(tmp_path: Path) -> None:
    body = ADMINS.replace("ACCESS-02", "FW-01").replace(
        "host.access.admins-approved", "host.firewall.listening-allowed").replace(
        '[alice, "svc-*"]', '["8080/tcp *"]')
    hook = WaiverHook(load_waivers(write_waivers(tmp_path / "w.yaml", body)), today())
    covered = hook(item_result("host.firewall.listening-allowed", "FW-01", "unexpected",
                               ["8080/tcp on 0.0.0.0 (nginx)", "8080/tcp on [::] (nginx)"]))
    assert covered.status == Status.WAIVED
    missed = hook(item_result("host.firewall.listening-allowed", "FW-01", "unexpected",
                              ["8080/tcp on 0.0.0.0 (nginx)", "6379/tcp on 0.0.0.0 (redis)"]))
    assert missed.status == Status.FAIL
    assert "does not cover listeners 6379/tcp on 0.0.0.0 (redis);" in missed.message


def test_a_whole_check_waiver_still_waives_next_to_an_items_waiver(tmp_path: Path) -> None:
    whole = ADMINS.replace('    items: [alice, "svc-*"]\n', "")
    hook = WaiverHook(load_waivers(write_waivers(tmp_path / "w.yaml", ADMINS + whole)), today())
    out = hook(item_result("host.access.admins-approved", "ACCESS-02", "unapproved", ["eve"]))
    assert out.status == Status.WAIVED and out.waiver and "items" not in out.waiver


def test_items_on_a_check_without_item_facts_is_a_config_error(tmp_path: Path) -> None:
    body = ADMINS.replace("ACCESS-02", "PATCH-01").replace(
        "host.access.admins-approved", "host.patch.security-updates")
    with pytest.raises(ConfigError) as exc:
        load_waivers(write_waivers(tmp_path / "w.yaml", body))
    assert exc.value.one_line().startswith(f"{tmp_path / 'w.yaml'}:5: items: "
                                           "host.patch.security-updates records no failing")


# --- timezone: 'expires' is the last day in the file's time zone ---------------------------

AV_WAIVER = """  - control: AV-02
    target: devices
    check: device.av.coverage
    reason: LT-001 is being re-imaged
    approver: CISO
    expires: 2030-06-15
"""


@pytest.mark.parametrize("timezone,clock_utc,expected", [
    # UTC+14: 2030-06-15 ends at 10:00Z
    ("Pacific/Kiritimati", "2030-06-15T09:59:00", Status.WAIVED),
    ("Pacific/Kiritimati", "2030-06-15T10:00:00", Status.FAIL),
    # UTC-11: 2030-06-15 ends at 11:00Z on the 16th
    ("Pacific/Pago_Pago", "2030-06-16T10:59:00", Status.WAIVED),
    ("Pacific/Pago_Pago", "2030-06-16T11:00:00", Status.FAIL),
    (None, "2030-06-15T23:59:00", Status.WAIVED),  # default UTC
    (None, "2030-06-16T00:00:00", Status.FAIL),
])
def test_expiry_day_is_read_in_the_waiver_file_timezone(
        tmp_path: Path, timezone: str | None, clock_utc: str, expected: Status) -> None:
    now = datetime.fromisoformat(clock_utc).replace(tzinfo=UTC)

    def clock() -> datetime:
        return now

    org = render(tmp_path / "org", now)  # register dates relative to the fixed clock
    write_waivers(org / "waivers-tz.yaml", AV_WAIVER, timezone)
    (org / "inventory-tz.yaml").write_text(
        "organisation: {name: x, waivers: waivers-tz.yaml}\n"
        "devices: {assets: assets.csv, register: av_export_one_fail.csv}\n", encoding="utf-8")
    catalogue = load_catalogue().select(["AV-02"])
    inventory = load_inventory(org / "inventory-tz.yaml")
    preflight(catalogue, inventory)
    run = Engine(catalogue, inventory, transport_factory=open_transport, clock=clock,
                 result_hooks=waiver_hooks(inventory, clock)).run()
    [av] = [r for r in run.results if r.control == "AV-02"]
    assert av.status == expected, av.message
    if expected == Status.FAIL:
        assert "waiver expired on 2030-06-15" in av.message
        assert "1 of 5 desktop/laptop devices lack healthy, recent AV" in av.message
    else:
        assert av.waiver is not None
        assert av.waiver.get("timezone") == timezone  # absent for the UTC default


def test_unknown_timezone_is_a_config_error_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_waivers(write_waivers(tmp_path / "w.yaml", AV_WAIVER, "Mars/Olympus_Mons"))
    assert exc.value.one_line() == (f"{tmp_path / 'w.yaml'}:1: timezone: unknown IANA time "
                                    "zone 'Mars/Olympus_Mons' (e.g. Europe/Brussels, UTC)")
