"""AV and backup checks over real SSH against a lab host (sudo as the auditor login).

This proves what the local tests cannot: the EICAR content and the restic password
travel through the SSH channel's stdin (no argv, no AcceptEnv), under ``sudo -n``,
and ClamAV is found through the host's own Debian config files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from av_fixtures import EICAR_HDB, by_check, evidence_text, run_checks, write_cud
from backup_fixtures import PASSWORD, PASSWORD_ENV, init_restic_template, restic_backup

if os.geteuid() != 0:
    pytest.skip("the lab needs root", allow_module_level=True)

try:
    from tests.lab import Lab
except ImportError:  # pragma: no cover - depends on how pytest set up sys.path
    from lab import Lab  # type: ignore[no-redef]
from fleet_fixtures import host_entry

from controlcheck.model import Status


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Path]]:
    work = tmp_path_factory.mktemp("avbk-lab")
    db = work / "daily.cud"
    write_cud(db, datetime.now(UTC) - timedelta(hours=6), EICAR_HDB)
    # The host sees the real /var as its overlay's lower layer: data and repository made
    # here before the host starts are visible inside it (the host's /tmp is not shared).
    site = Path(tempfile.mkdtemp(prefix="cc-avbk-", dir="/var/tmp"))
    data = site / "data"
    data.mkdir()
    (data / "canary.txt").write_text("lab canary\n")
    repo = init_restic_template(site / "repo")
    restic_backup(repo, data, datetime.now(UTC) - timedelta(hours=1))
    lab = Lab()
    try:
        host = lab.add_host("avbk1")
        host.write_file("/var/lib/clamav/daily.cud", db.read_bytes())
        lab.start_all()
        yield lab, site
    finally:
        lab.teardown()
        shutil.rmtree(site, ignore_errors=True)


def test_av_over_ssh(lab: tuple[Lab, Path], tmp_path: Path) -> None:
    the_lab, _ = lab
    host = the_lab.hosts["avbk1"]
    run = run_checks(tmp_path, host_entry(the_lab, host),
                     ["host.av.engine", "host.av.signatures-fresh", "host.av.detects-eicar"])
    r = by_check(run)
    # Debian's clamd.conf, no daemon started in the host
    assert r["host.av.engine"].status == Status.FAIL
    assert "installed but clamd not running" in r["host.av.engine"].message
    assert "/var/run/clamav/clamd.ctl" in r["host.av.engine"].message
    assert r["host.av.signatures-fresh"].status == Status.PASS
    assert r["host.av.signatures-fresh"].facts["database_dir"] == "/var/lib/clamav"
    eicar = r["host.av.detects-eicar"]
    assert eicar.status == Status.PASS, eicar.message
    assert "sudo -n" in evidence_text(run)


def test_restic_over_ssh(lab: tuple[Lab, Path], tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    the_lab, site = lab
    host = the_lab.hosts["avbk1"]
    data, repo = site / "data", site / "repo"
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    entry = {"name": "main", "type": "restic", "repository": str(repo),
             "password_env": PASSWORD_ENV, "canary": str(data / "canary.txt")}
    run = run_checks(tmp_path, host_entry(the_lab, host, backups=[entry]),
                     ["host.backup.recent", "host.backup.restore-test"])
    r = by_check(run)
    assert r["host.backup.recent"].status == Status.PASS, r["host.backup.recent"].message
    assert r["host.backup.restore-test"].status == Status.PASS, \
        r["host.backup.restore-test"].message
    assert PASSWORD not in evidence_text(run)
    host.write_file(data / "canary.txt", "changed on the live host\n")  # only inside the host
    r = by_check(run_checks(tmp_path, host_entry(the_lab, host, backups=[entry]),
                            ["host.backup.restore-test"]))
    assert r["host.backup.restore-test"].status == Status.FAIL
