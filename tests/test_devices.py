"""device.av.coverage: asset list against our CSV and a Defender for Endpoint export."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from org_fixtures import render

from controlcheck.model import Status
from controlcheck.probes.devices import judge_coverage, records_from
from controlcheck.registers import DEVICE_AV_KINDS, detect_kind, load_register


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("org"))


def judge(org: Path, register: str, **kw):  # type: ignore[no-untyped-def]
    assets = load_register(org / "assets.csv", "assets").rows
    path = org / register
    reg = load_register(path, detect_kind(path, DEVICE_AV_KINDS))
    params = {"max_age_days": 7, "signature_max_age_days": 3,
              "device_types": ["desktop", "laptop"], **kw}
    return judge_coverage(assets, records_from(reg), datetime.now(UTC), **params)


def test_format_detection(org: Path) -> None:
    assert detect_kind(org / "defender_deviceavinfo.json", DEVICE_AV_KINDS) == \
        "defender_deviceavinfo"
    assert detect_kind(org / "av_export.csv", DEVICE_AV_KINDS) == "device_av"


def test_own_csv_all_healthy_passes(org: Path) -> None:
    outcome, details = judge(org, "av_export.csv")
    assert outcome.status == Status.PASS
    assert details["devices_in_scope"] == 5  # SRV-01 is a server: out of scope
    assert details["failing"] == []


def test_defender_export_reasons_per_device(org: Path) -> None:
    outcome, details = judge(org, "defender_deviceavinfo.json")
    assert outcome.status == Status.FAIL
    assert "4 of 5 desktop/laptop devices" in outcome.message
    assert "1 no record, 2 unhealthy, 1 signatures old, 1 not seen" in outcome.message
    failing = "\n".join(details["failing"])
    assert "LT-002 (Laptop, E002): unhealthy: Defender avMode 1 (passive)" in failing
    assert "Defender reports signatures out of date" in failing
    assert "DT-002 (desktop, E004): last seen" in failing
    assert "LT-003 (laptop, E005): no AV record in the export" in failing
    assert "LT-001" not in failing  # FQDN lt-001.corp.example.be matched by first label
    assert details["in_export_but_not_in_asset_list"] == ["kiosk-07.corp.example.be"]


def test_thresholds_are_parameters(org: Path) -> None:
    # a 60-day last-seen window forgives DT-002 (seen 30 days ago)
    _, details = judge(org, "defender_deviceavinfo.json", max_age_days=60)
    assert not any(f.startswith("DT-002") for f in details["failing"])
    # our export: LT-003 was seen 6 days ago; a 5-day window fails it
    outcome, details = judge(org, "av_export.csv", max_age_days=5)
    assert outcome.status == Status.FAIL and details["not_seen"] == 1


def test_only_servers_is_error_not_pass(org: Path) -> None:
    outcome, _ = judge(org, "av_export.csv", device_types=["tablet"])
    assert outcome.status == Status.ERROR


def test_duplicate_records_judge_the_most_recent(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    (tmp_path / "a.csv").write_text("device,type\nPC1,desktop\n")
    old = (now - timedelta(days=40)).isoformat()
    fresh = (now - timedelta(hours=2)).isoformat()
    (tmp_path / "r.csv").write_text(
        "device,av_product,healthy,signature_date,last_seen\n"
        f"PC1,X,false,{old},{old}\nPC1,X,true,{fresh},{fresh}\n")
    outcome, _ = judge_coverage(load_register(tmp_path / "a.csv", "assets").rows,
                                records_from(load_register(tmp_path / "r.csv", "device_av")),
                                now, max_age_days=7, signature_max_age_days=3,
                                device_types=["desktop"])
    assert outcome.status == Status.PASS


def test_missing_signature_date_fails(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    (tmp_path / "a.csv").write_text("device,type\nPC1,desktop\n")
    record = {"computerDnsName": "pc1", "avMode": "0", "lastSeenTime": now.isoformat()}
    (tmp_path / "r.json").write_text(json.dumps({"value": [record]}))
    outcome, details = judge_coverage(
        load_register(tmp_path / "a.csv", "assets").rows,
        records_from(load_register(tmp_path / "r.json", "defender_deviceavinfo")), now,
        max_age_days=7, signature_max_age_days=3, device_types=["desktop"])
    assert outcome.status == Status.FAIL
    assert "signature date unknown" in details["failing"][0]
