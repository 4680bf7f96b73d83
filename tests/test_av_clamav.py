"""AV checks against real ClamAV: our own clamd, real scans, a lab signature database.

Every host here is this machine through the local transport; what differs is the
ClamAV configuration the inventory points at (``av: {clamd_conf, freshclam_conf}``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from av_fixtures import (
    OTHER_HDB,
    ClamSetup,
    by_check,
    evidence_text,
    make_setup,
    run_checks,
    start_clamd,
    stop,
    temp_dirs,
)

from controlcheck.model import Status

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="not root")

ALL = ("host.av.engine", "host.av.signatures-fresh", "host.av.detects-eicar")


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClamSetup]:
    setup = make_setup(tmp_path_factory.mktemp("clamd-up"), now() - timedelta(hours=3))
    proc = start_clamd(setup)
    yield setup
    stop(proc)


BASIC_TOOLS = ("sh", "cat", "ls", "ps", "mktemp", "rm")


def path_prefix(tmp_path: Path, tools: tuple[str, ...]) -> list[str]:
    """An exec prefix whose PATH holds only ``tools``: a host where the others are absent."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    return ["env", f"PATH={bin_dir}"]


@pytest.fixture
def no_clamav_path(tmp_path: Path) -> list[str]:
    return path_prefix(tmp_path, BASIC_TOOLS)


@pytest.fixture
def no_clamdscan_path(tmp_path: Path) -> list[str]:
    return path_prefix(tmp_path, (*BASIC_TOOLS, "clamscan", "clamd", "sigtool"))


def test_daemon_running_fresh_and_detecting(tmp_path: Path, running: ClamSetup) -> None:
    before = temp_dirs("controlcheck-eicar")
    run = run_checks(tmp_path, {"name": "av-good", "av": running.av_spec()}, ALL)
    r = by_check(run)
    assert r["host.av.engine"].status == Status.PASS, r["host.av.engine"].message
    assert "clamd answers" in r["host.av.engine"].message
    assert r["host.av.signatures-fresh"].status == Status.PASS
    eicar = r["host.av.detects-eicar"]
    assert eicar.status == Status.PASS, eicar.message
    assert eicar.facts["scanner"] == "clamdscan"  # the daemon itself scanned it
    assert temp_dirs("controlcheck-eicar") == before  # our temp dir is gone again
    # The EICAR string never lands in evidence (it went through stdin).
    assert "EICAR-STANDARD" not in evidence_text(run)


def test_installed_but_daemon_not_running(tmp_path: Path) -> None:
    setup = make_setup(tmp_path / "h", now() - timedelta(hours=3))
    r = by_check(run_checks(tmp_path, {"name": "av-stopped", "av": setup.av_spec()}, ALL))
    engine = r["host.av.engine"]
    assert engine.status == Status.FAIL
    assert "installed but clamd not running" in engine.message
    assert str(setup.socket) in engine.message
    # the on-demand scanner still works and is used instead
    assert r["host.av.detects-eicar"].status == Status.PASS
    assert r["host.av.detects-eicar"].facts["scanner"] == "clamscan"


def test_engine_missing(tmp_path: Path, no_clamav_path: list[str]) -> None:
    before = temp_dirs("controlcheck-eicar")
    r = by_check(run_checks(tmp_path, {"name": "av-none", "exec_prefix": no_clamav_path},
                            ALL))
    assert r["host.av.engine"].status == Status.FAIL
    assert "no antivirus engine installed" in r["host.av.engine"].message
    assert r["host.av.detects-eicar"].status == Status.FAIL
    assert temp_dirs("controlcheck-eicar") == before


def test_stale_signatures(tmp_path: Path) -> None:
    setup = make_setup(tmp_path / "h", now() - timedelta(days=30))
    r = by_check(run_checks(tmp_path, {"name": "av-stale", "av": setup.av_spec()},
                            ["host.av.signatures-fresh"]))
    fresh = r["host.av.signatures-fresh"]
    assert fresh.status == Status.FAIL
    assert "days old (daily.cud built" in fresh.message
    assert fresh.facts["database_dir"] == str(setup.db_dir)  # found via clamd.conf


def test_no_signature_database(tmp_path: Path) -> None:
    setup = make_setup(tmp_path / "h", None)
    r = by_check(run_checks(tmp_path, {"name": "av-nodb", "av": setup.av_spec()},
                            ["host.av.signatures-fresh", "host.av.detects-eicar"]))
    assert r["host.av.signatures-fresh"].status == Status.FAIL
    assert "no signature database" in r["host.av.signatures-fresh"].message
    # clamscan exits 2 ("No supported database files"): cannot decide, so error
    assert r["host.av.detects-eicar"].status == Status.ERROR
    assert "exit 2" in r["host.av.detects-eicar"].message


def test_database_without_eicar_signature(tmp_path: Path) -> None:
    setup = make_setup(tmp_path / "h", now() - timedelta(hours=1), hdb=OTHER_HDB)
    before = temp_dirs("controlcheck-eicar")
    r = by_check(run_checks(tmp_path, {"name": "av-blind", "av": setup.av_spec()},
                            ["host.av.detects-eicar"]))
    eicar = r["host.av.detects-eicar"]
    assert eicar.status == Status.FAIL
    assert "did not detect the EICAR test file" in eicar.message
    assert temp_dirs("controlcheck-eicar") == before


def test_database_dir_from_inventory_overrides_conf(tmp_path: Path) -> None:
    stale = make_setup(tmp_path / "conf", now() - timedelta(days=30))
    fresh = make_setup(tmp_path / "inv", now() - timedelta(hours=2))
    spec = {**stale.av_spec(), "database_dir": str(fresh.db_dir)}
    r = by_check(run_checks(tmp_path, {"name": "av-dir", "av": spec},
                            ["host.av.signatures-fresh"]))
    assert r["host.av.signatures-fresh"].status == Status.PASS


def test_sigtool_reads_what_the_fixture_writes(tmp_path: Path) -> None:
    """Guard for the fixture itself: the lab container is a real ClamAV database."""
    setup = make_setup(tmp_path / "h", datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
    out = subprocess.run(["sigtool", f"--info={setup.db_dir}/daily.cud"], capture_output=True,
                         text=True, check=True).stdout
    assert "Build time: 02 Jan 2026 03:04 +0000" in out


def test_without_clamdscan_the_process_table_decides(tmp_path: Path, running: ClamSetup,
                                                     no_clamdscan_path: list[str]) -> None:
    host = {"name": "av-ps", "av": running.av_spec(), "exec_prefix": no_clamdscan_path}
    r = by_check(run_checks(tmp_path, host, ["host.av.engine"]))
    assert r["host.av.engine"].status == Status.PASS
    assert "clamdscan absent" in r["host.av.engine"].message


def test_without_clamdscan_and_no_daemon(tmp_path: Path, no_clamdscan_path: list[str]) -> None:
    setup = make_setup(tmp_path / "h", now())
    host = {"name": "av-ps-down", "av": setup.av_spec(), "exec_prefix": no_clamdscan_path}
    r = by_check(run_checks(tmp_path, host, ["host.av.engine", "host.av.detects-eicar"]))
    assert r["host.av.engine"].status == Status.FAIL
    assert "no clamd process" in r["host.av.engine"].message
    assert r["host.av.detects-eicar"].status == Status.PASS
