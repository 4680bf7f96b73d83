"""`controlcheck run` on the embedded default inventory: the whole catalogue, every control."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import validate_report

from controlcheck.catalogue import load_catalogue


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controlcheck", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_default_run_reports_every_control_and_validates(tmp_path: Path) -> None:
    proc = _run("run", cwd=tmp_path)
    assert proc.returncode in (0, 1, 3), proc.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    validate_report(report)
    ids = {c.id for c in load_catalogue().controls}
    assert {c["id"] for c in report["controls"]} == ids
    assert {r["control"] for r in report["results"]} == ids
    # exit code agrees with the results
    statuses = {r["status"] for r in report["results"]}
    expected = 1 if "fail" in statuses else 3 if "error" in statuses else 0
    assert proc.returncode == expected == report["run"]["exit_code"]
    # targets the default inventory lacks are skipped with a hint, never passed
    for r in report["results"]:
        if r["target_kind"] in ("endpoint", "application", "devices"):
            assert r["status"] == "skip" and "inventory" in r["message"]
    assert "report written to report.json" in proc.stdout
    # every check is a real probe: no scaffold answers survive
    assert not [r for r in report["results"] if "not implemented" in r["message"]]


def test_report_to_stdout_keeps_stdout_pure_json(tmp_path: Path) -> None:
    proc = _run("run", "--only", "PATCH", "--output", "-", cwd=tmp_path)
    report = json.loads(proc.stdout)
    validate_report(report)
    assert {r["control"] for r in report["results"]} == {"PATCH-01", "PATCH-02", "PATCH-03"}


def test_controls_lists_framework_mapping(tmp_path: Path) -> None:
    proc = _run("controls", "--framework", "iso27001", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0
    listed = json.loads(proc.stdout)
    assert {c["id"] for c in listed} == {c.id for c in load_catalogue().controls}
    patch = next(c for c in listed if c["id"] == "PATCH-01")
    assert patch["frameworks"] == {"iso27001": ["A.8.8"]}


def test_ctrl_c_writes_a_partial_report(tmp_path: Path) -> None:
    import signal

    # Every command on this host first sleeps 2 s, so the run is still busy when interrupted.
    (tmp_path / "inv.yaml").write_text(
        "hosts:\n"
        "  - name: slow\n"
        "    transport: local\n"
        "    exec_prefix: [sh, -c, 'sleep 2; exec \"$0\" \"$@\"']\n")
    proc = subprocess.Popen([sys.executable, "-m", "controlcheck", "run", "-i", "inv.yaml",
                             "--workers", "1"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    import time

    time.sleep(2.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    report = json.loads((tmp_path / "report.json").read_text())
    validate_report(report)
    assert report["run"]["partial"] is True
    assert any("interrupted" in r["message"] for r in report["results"])
    # every planned row is there even though the run stopped early
    assert {r["control"] for r in report["results"]} == {c.id for c in load_catalogue().controls}
    assert "(partial run)" in out


def test_only_a_check_id_runs_just_that_check(tmp_path: Path) -> None:
    proc = _run("run", "--only", "host.patch.reboot-required", "--only", "FW-01", "--output", "-",
                cwd=tmp_path)
    report = json.loads(proc.stdout)
    checks = {(r["control"], r["check"]) for r in report["results"]}
    # PATCH-01 also has host.patch.security-updates: it must not run
    assert {ch for c, ch in checks if c == "PATCH-01"} == {"host.patch.reboot-required"}
    assert {c for c, _ in checks} == {"PATCH-01", "FW-01"}
    assert len({ch for c, ch in checks if c == "FW-01"}) == 3  # a control id keeps all its checks
