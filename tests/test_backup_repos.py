"""Backup checks against real restic and borg repositories made by the tests.

The "host" is this machine through the local transport; repositories, data and the
canary file live in per-test temp dirs.  Snapshot ages are real (``restic backup
--time``, ``borg create --timestamp``), judged against the real clock.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from av_fixtures import by_check, evidence_text, run_checks, temp_dirs
from backup_fixtures import (
    PASSWORD,
    PASSWORD_ENV,
    borg_create,
    borg_init,
    copy_repo,
    init_restic_template,
    restic_backup,
)

from controlcheck.model import Status

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="not root")

RECENT, COPIES = "host.backup.recent", "host.backup.copies"
INTEGRITY, RESTORE = "host.backup.integrity", "host.backup.restore-test"
ALL = (RECENT, COPIES, INTEGRITY, RESTORE)


def ago(**kw: float) -> datetime:
    return datetime.now(UTC) - timedelta(**kw)


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_restic_template(tmp_path_factory.mktemp("restic") / "template")


@pytest.fixture(autouse=True)
def password_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    yield


class Site:
    """Data with a canary file plus helpers to make repositories of it."""

    def __init__(self, root: Path, template: Path) -> None:
        self.root = root
        self.template = template
        self.data = root / "data"
        self.data.mkdir()
        self.canary = self.data / "canary.txt"
        self.canary.write_text("payroll canary 2026\n")
        (self.data / "other.txt").write_text("not the canary\n")
        self.pwfile = root / "restic.pw"
        self.pwfile.write_text(PASSWORD + "\n")

    def restic(self, name: str, *ages_h: float) -> Path:
        repo = copy_repo(self.template, self.root / name)
        for hours in ages_h:
            restic_backup(repo, self.data, ago(hours=hours))
        return repo

    def status_file(self, name: str, finished: datetime, exit_status: int = 0) -> str:
        path = self.root / f"{name}.check-status"
        path.write_text(f"finished={finished.strftime('%Y-%m-%dT%H:%M:%SZ')} "
                        f"exit_status={exit_status}\n")
        return str(path)

    def entry(self, name: str, repo: Path, **kw: Any) -> dict[str, Any]:
        return {"name": name, "type": "restic", "repository": str(repo),
                "password_env": PASSWORD_ENV, "canary": str(self.canary), **kw}


@pytest.fixture
def site(tmp_path: Path, template: Path) -> Site:
    return Site(tmp_path, template)


def good_host(site: Site) -> dict[str, Any]:
    main = site.entry("main", site.restic("main", 30, 2),
                      check_status_file=site.status_file("main", ago(days=3)))
    nas = site.entry("offsite", site.restic("offsite", 5), offsite=True, copy_of="main",
                     password_env=None, password_file=str(site.pwfile),
                     check_status_file=site.status_file("offsite", ago(days=10)))
    del nas["password_env"]
    return {"name": "bk-good", "backups": [main, nas]}


def test_good_host_passes_all_four(site: Site) -> None:
    before = temp_dirs("controlcheck-restore")
    run = run_checks(site.root, good_host(site), ALL)
    r = by_check(run)
    for check in ALL:
        assert r[check].status == Status.PASS, (check, r[check].message)
    assert "2 current copies (1 off-site)" in r[COPIES].message
    assert "sha256" in r[RESTORE].message
    assert temp_dirs("controlcheck-restore") == before
    text = evidence_text(run)
    assert PASSWORD not in text  # went through stdin or a file on the host
    assert "--no-lock" in text and "restore latest --target" in text


def test_stale_snapshot_fails_recent_and_copies(site: Site) -> None:
    host = {"name": "bk-stale", "backups": [
        site.entry("main", site.restic("main", 72)),
        site.entry("offsite", site.restic("offsite", 3), offsite=True, copy_of="main")]}
    r = by_check(run_checks(site.root, host, [RECENT, COPIES]))
    assert r[RECENT].status == Status.FAIL
    assert "main: newest snapshot" in r[RECENT].message and "3.0 days old" in r[RECENT].message
    assert r[COPIES].status == Status.FAIL and "not counted" in r[COPIES].message


def test_one_copy_is_not_enough(site: Site) -> None:
    host = {"name": "bk-single", "backups": [site.entry("main", site.restic("main", 1))]}
    r = by_check(run_checks(site.root, host, [RECENT, COPIES]))
    assert r[RECENT].status == Status.PASS
    assert r[COPIES].status == Status.FAIL
    assert "1 current copy (0 off-site); need 2 with 1 off-site" in r[COPIES].message


def test_two_copies_none_offsite(site: Site) -> None:
    host = {"name": "bk-onsite", "backups": [
        site.entry("main", site.restic("main", 1)),
        site.entry("usb", site.restic("usb", 1), copy_of="main")]}
    r = by_check(run_checks(site.root, host, [COPIES]))
    assert r[COPIES].status == Status.FAIL and "(0 off-site)" in r[COPIES].message


def test_same_repository_twice_is_one_copy(site: Site) -> None:
    # A copy_of entry naming the primary's own repository (a copy-paste slip) used to
    # count as a second, off-site copy and pass.
    repo = site.restic("main", 1)
    host = {"name": "bk-twice", "backups": [
        site.entry("main", repo),
        {**site.entry("offsite", repo, offsite=True, copy_of="main"),
         "repository": f"{repo}/"}]}
    r = by_check(run_checks(site.root, host, [COPIES]))
    assert r[COPIES].status == Status.FAIL, r[COPIES].message
    assert "1 current copy (0 off-site)" in r[COPIES].message
    assert "offsite is the same repository as main" in r[COPIES].message


def test_empty_repository_fails(site: Site) -> None:
    host = {"name": "bk-empty", "backups": [site.entry("main", site.restic("main"))]}
    r = by_check(run_checks(site.root, host, [RECENT, RESTORE]))
    assert r[RECENT].status == Status.FAIL and "no snapshot at all" in r[RECENT].message
    assert r[RESTORE].status == Status.FAIL


def test_changed_canary_fails_restore(site: Site) -> None:
    host = {"name": "bk-drift", "backups": [site.entry("main", site.restic("main", 1))]}
    site.canary.write_text("tampered after the backup\n")
    before = temp_dirs("controlcheck-restore")
    r = by_check(run_checks(site.root, host, [RESTORE]))
    assert r[RESTORE].status == Status.FAIL
    assert "differs from the live file" in r[RESTORE].message
    assert temp_dirs("controlcheck-restore") == before


def test_canary_not_in_snapshot_fails(site: Site) -> None:
    entry = site.entry("main", site.restic("main", 1), canary=str(site.root / "elsewhere.txt"))
    (site.root / "elsewhere.txt").write_text("never backed up\n")
    r = by_check(run_checks(site.root, {"name": "bk-missing", "backups": [entry]}, [RESTORE]))
    assert r[RESTORE].status == Status.FAIL and "not in the newest snapshot" in r[RESTORE].message


def test_no_canary_is_manual(site: Site) -> None:
    entry = site.entry("main", site.restic("main", 1))
    del entry["canary"]
    r = by_check(run_checks(site.root, {"name": "bk-nocanary", "backups": [entry]}, [RESTORE]))
    assert r[RESTORE].status == Status.MANUAL and "add 'canary:" in r[RESTORE].message


def test_no_backups_listed_is_manual(site: Site) -> None:
    r = by_check(run_checks(site.root, {"name": "bk-none"}, ALL))
    for check in ALL:
        assert r[check].status == Status.MANUAL
        assert "no backups listed for this host" in r[check].message


def test_wrong_password_is_error_and_not_leaked(site: Site,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    host = {"name": "bk-badpw", "backups": [site.entry("main", site.restic("main", 1))]}
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password-91b2")
    run = run_checks(site.root, host, [RECENT, RESTORE])
    r = by_check(run)
    assert r[RECENT].status == Status.ERROR
    assert "wrong password or no key found" in r[RECENT].message
    assert r[RESTORE].status == Status.ERROR
    assert "not-the-password-91b2" not in evidence_text(run)


def test_password_env_unset_is_error(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    host = {"name": "bk-nopw", "backups": [site.entry("main", site.restic("main", 1))]}
    monkeypatch.delenv(PASSWORD_ENV)
    r = by_check(run_checks(site.root, host, [RECENT]))
    assert r[RECENT].status == Status.ERROR
    assert f"environment variable {PASSWORD_ENV}" in r[RECENT].message


def test_integrity_status_file_cases(site: Site) -> None:
    repo = site.restic("main", 1)
    cases = {
        "failed": (site.status_file("failed", ago(days=1), exit_status=1), Status.FAIL,
                   "failed with exit 1"),
        "old": (site.status_file("old", ago(days=45)), Status.FAIL, "more than 30 days"),
        "absent": (str(site.root / "never-written.status"), Status.FAIL,
                   "no repository check recorded"),
        "unset": (None, Status.ERROR, "no check_status_file"),
    }
    for name, (path, status, words) in cases.items():
        entry = site.entry("main", repo)
        if path:
            entry["check_status_file"] = path
        r = by_check(run_checks(site.root, {"name": f"bk-{name}", "backups": [entry]},
                                [INTEGRITY]))
        assert r[INTEGRITY].status == status, (name, r[INTEGRITY].message)
        assert words in r[INTEGRITY].message, name


def test_integrity_run_check_on_real_repo(site: Site) -> None:
    good = site.restic("good", 1)
    broken = site.restic("broken", 1)
    for pack in (broken / "data").rglob("*"):
        if pack.is_file():
            pack.write_bytes(b"corrupted" + pack.read_bytes()[9:])
    params = {INTEGRITY: {"run_check": True, "read_data_subset": "100%"}}
    ok = by_check(run_checks(site.root, {"name": "bk-chk",
                                         "backups": [site.entry("good", good)]},
                             [INTEGRITY], params=params))
    assert ok[INTEGRITY].status == Status.PASS, ok[INTEGRITY].message
    bad = by_check(run_checks(site.root, {"name": "bk-chk-bad",
                                          "backups": [site.entry("broken", broken)]},
                              [INTEGRITY], params=params))
    assert bad[INTEGRITY].status == Status.FAIL, bad[INTEGRITY].message


def test_borg_repository(site: Site) -> None:
    repo = borg_init(site.root / "borg")
    borg_create(repo, "old", site.data, ago(days=5))
    borg_create(repo, "new", site.data, ago(hours=2))
    entry = {"name": "borg", "type": "borg", "repository": str(repo),
             "password_env": PASSWORD_ENV, "canary": str(site.canary)}
    before = temp_dirs("controlcheck-restore")
    r = by_check(run_checks(site.root, {"name": "bk-borg", "backups": [entry]},
                            [RECENT, RESTORE]))
    assert r[RECENT].status == Status.PASS, r[RECENT].message
    assert "2.0 h old" in r[RECENT].message  # newest archive, read as UTC
    assert r[RESTORE].status == Status.PASS, r[RESTORE].message
    assert temp_dirs("controlcheck-restore") == before
    site.canary.write_text("changed\n")
    stale = {"name": "borg", "type": "borg", "repository": str(repo),
             "password_file": str(site.pwfile), "canary": str(site.canary)}
    r = by_check(run_checks(site.root, {"name": "bk-borg2", "backups": [stale]},
                            [RECENT, RESTORE], params={RECENT: {"rpo_hours": 1}}))
    assert r[RECENT].status == Status.FAIL
    assert r[RESTORE].status == Status.FAIL and "differs" in r[RESTORE].message


def test_directory_copy(site: Site) -> None:
    copy = site.root / "rsync-copy"
    (copy / site.data.relative_to("/")).mkdir(parents=True)
    (copy / site.canary.relative_to("/")).write_bytes(site.canary.read_bytes())
    entry = {"name": "rsync", "type": "directory", "repository": str(copy),
             "canary": str(site.canary)}
    r = by_check(run_checks(site.root, {"name": "bk-dir", "backups": [entry]},
                            [RECENT, RESTORE, INTEGRITY]))
    assert r[RECENT].status == Status.PASS
    assert r[RESTORE].status == Status.PASS
    assert r[INTEGRITY].status == Status.SKIP
    old = ago(days=4).timestamp()
    for p in copy.rglob("*"):
        os.utime(p, (old, old))
    r = by_check(run_checks(site.root, {"name": "bk-dir-old", "backups": [entry]}, [RECENT]))
    assert r[RECENT].status == Status.FAIL


def test_shared_repository_counts_only_this_hosts_snapshots(site: Site) -> None:
    repo = site.restic("shared", 60)  # h1 (the fixture's host name): 60 h ago
    restic_backup(repo, site.data, ago(hours=1), host="h2")  # another host, fresh
    stale = site.entry("main", repo, snapshot_host="h1")
    r = by_check(run_checks(site.root, {"name": "bk-shared", "backups": [stale]}, [RECENT]))
    assert r[RECENT].status == Status.FAIL, r[RECENT].message
    fresh = site.entry("main", repo, snapshot_host="h2")
    r = by_check(run_checks(site.root, {"name": "bk-shared2", "backups": [fresh]}, [RECENT]))
    assert r[RECENT].status == Status.PASS
