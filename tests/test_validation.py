"""Broken catalogue and inventory files: one line with file:line and the fix, exit 2."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from controlcheck.cli import main

PACKAGED = Path(__file__).resolve().parent.parent / "controls"

GOOD_INVENTORY = """\
hosts:
  - name: web1
    address: 127.0.0.1
    transport: local
    allowed_ports: ["22/tcp", 443]
"""


def _catalogue(tmp_path: Path, patch_yaml: str) -> Path:
    d = tmp_path / "controls"
    shutil.copytree(PACKAGED, d)
    (d / "patch.yaml").write_text(patch_yaml)
    return d


PATCH_HEAD = """\
family: PATCH
title: Servers are updated regularly
controls:
  - id: PATCH-01
    title: Security updates
    promise: {nl: "de servers worden regelmatig geüpdatet.", en: "updated regularly"}
    severity: high
    applies_to: [host]
    frameworks: {gdpr: ["Art. 32(1)(b)"], iso27001: ["A.8.8"], cis: ["7.3"], nist: ["SI-2"]}
    checks:
"""

# (name, patch.yaml or None, inventory text or None, expected line, expected words)
CASES = [
    ("yaml-syntax",
     PATCH_HEAD + "      - id: host.patch.security-updates\n        params: {grace_days: [1}\n",
     None, 12, "invalid YAML"),
    ("unknown-check", PATCH_HEAD + "      - id: host.patch.security-updatez\n", None, 11,
     "unknown check 'host.patch.security-updatez'"),
    ("unknown-param", PATCH_HEAD + "      - id: host.patch.security-updates\n"
     "        params: {grace_dayz: 3}\n", None, 12, "unknown parameter 'grace_dayz'"),
    ("param-type", PATCH_HEAD + "      - id: host.patch.security-updates\n"
     "        params:\n          grace_days: soon\n", None, 13, "grace_days"),
    ("bad-severity", PATCH_HEAD.replace("severity: high", "severity: urgent")
     + "      - id: host.patch.security-updates\n", None, 7, "'urgent' is not one of"),
    ("missing-promise", PATCH_HEAD.replace(
        '    promise: {nl: "de servers worden regelmatig geüpdatet.", en: "updated regularly"}\n', "")
     + "      - id: host.patch.security-updates\n", None, 4, "'promise' is a required property"),
    ("duplicate-control", PATCH_HEAD + "      - id: host.patch.security-updates\n"
     + PATCH_HEAD.split("controls:\n", 1)[1] + "      - id: host.patch.auto-updates\n", None, 12,
     "duplicate control id 'PATCH-01'"),
    ("duplicate-key", PATCH_HEAD.replace("    severity: high\n", "    severity: high\n    severity: low\n")
     + "      - id: host.patch.security-updates\n", None, 8, "duplicate key 'severity'"),
    ("kind-mismatch", PATCH_HEAD + "      - id: tls.protocol-versions\n", None, 11,
     "runs on endpoint targets"),
    ("family-prefix", PATCH_HEAD.replace("id: PATCH-01", "id: FW-09")
     + "      - id: host.patch.security-updates\n", None, 4, "must start with its family 'PATCH-'"),
    ("inv-unknown-key", None, GOOD_INVENTORY.replace("address:", "adress:"), 3,
     "unknown key 'adress'"),
    ("inv-duplicate-host", None, GOOD_INVENTORY + "  - name: web1\n    transport: local\n", 6,
     "duplicate host name 'web1'"),
    ("inv-bad-port", None, GOOD_INVENTORY.replace("443", '"443/icmp"'), 5, "allowed_ports"),
    ("inv-unknown-zone", None, GOOD_INVENTORY + "    zone_access:\n      internet: [443]\n", 7,
     "unknown zone 'internet'"),
    ("inv-missing-register", None,
     "organisation:\n  name: Acme\n  registers:\n    staff: nowhere/staff.csv\n" + GOOD_INVENTORY, 4,
     "file 'nowhere/staff.csv' not found"),
    ("inv-wrong-type", None, GOOD_INVENTORY.replace("transport: local", "transport: telnet"), 4,
     "'telnet' is not one of"),
]


@pytest.mark.parametrize("name,catalogue,inventory,line,words", CASES, ids=[c[0] for c in CASES])
def test_broken_file_gives_one_line_with_file_and_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, catalogue: str | None,
        inventory: str | None, line: int, words: str) -> None:
    args = ["validate"]
    if catalogue is not None:
        args += ["-c", str(_catalogue(tmp_path, catalogue))]
        broken = tmp_path / "controls" / "patch.yaml"
    inv = tmp_path / "inventory.yaml"
    inv.write_text(inventory if inventory is not None else GOOD_INVENTORY)
    args += ["-i", str(inv)]
    if inventory is not None:
        broken = inv

    code = main(args)

    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    m = re.match(r"^controlcheck: error: (.+?):(\d+): (.+)$", lines[0])
    assert m, lines[0]
    assert Path(m.group(1)) == broken
    assert int(m.group(2)) == line, lines[0]
    assert words in m.group(3)


def test_good_files_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "inventory.yaml"
    inv.write_text(GOOD_INVENTORY)
    assert main(["validate", "-i", str(inv)]) == 0
    assert capsys.readouterr().out.startswith("ok: ")


def test_run_refuses_bad_inventory_before_probing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "inventory.yaml"
    inv.write_text(GOOD_INVENTORY.replace("address:", "adress:"))
    out = tmp_path / "report.json"
    assert main(["run", "-i", str(inv), "--output", str(out)]) == 2
    assert not out.exists()


def test_unknown_only_selection_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["run", "--only", "NOPE-99", "--output", str(tmp_path / "r.json")]) == 2
    assert "NOPE-99" in capsys.readouterr().err


def test_missing_inventory_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["validate", "-i", str(missing)]) == 2
    assert f"{missing}: file not found" in capsys.readouterr().err
