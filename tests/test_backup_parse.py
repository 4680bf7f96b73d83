"""Backup parsers and judges on real output of restic 0.14.0 and borg 1.2.4 (tests/data/backup/)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controlcheck.model import Status
from controlcheck.probes import backup_parse as bp

DATA = Path(__file__).parent / "data" / "backup"
NOW = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)


def text(name: str) -> str:
    return (DATA / name).read_text()


def test_restic_snapshots_after_stdin_password_banner() -> None:
    raw = text("restic_snapshots_stdin_password.txt")
    assert raw.startswith("reading repository password from stdin")  # on stdout, really
    snaps = bp.parse_restic_snapshots(raw)
    assert len(snaps) == 1 and snaps[0].id == "788b9843"
    assert snaps[0].time == datetime(2026, 11, 25, 15, 21, 56, 860426, tzinfo=UTC)


def test_restic_snapshot_times() -> None:
    two = bp.parse_restic_snapshots(text("restic_snapshots_two.json"))
    assert sorted(s.time for s in two)[0] == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    brussels = bp.parse_restic_snapshots(text("restic_snapshots_brussels.json"))
    assert brussels[0].time == datetime(2026, 11, 24, 8, 30, tzinfo=UTC)  # +01:00 honoured
    assert bp.parse_restic_snapshots(text("restic_snapshots_empty.json")) == []
    with pytest.raises(bp.ParseError):
        bp.parse_restic_snapshots(text("restic_wrong_password.stdout"))


def test_borg_list() -> None:
    last = bp.parse_borg_list(text("borg_list_last.json"))
    assert [(s.id, s.time) for s in last] == [("a2", datetime(2026, 11, 25, 15, 22, 6, tzinfo=UTC))]
    every = bp.parse_borg_list(text("borg_list_all.json"))
    assert [s.id for s in every] == ["a1", "a2"]
    assert every[0].time == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    with pytest.raises(bp.ParseError):
        bp.parse_borg_list('{"repository": {}}')


def test_find_and_sha256sum() -> None:
    times = bp.parse_find_times(text("find_mtimes.txt"))
    assert len(times) == 1 and bp.parse_time(times[0]).year == 2026
    assert bp.parse_sha256sum(text("sha256sum.txt")) == \
        "96424f1ce4c0d35acb8c7341691e43b5e4b0acc1978a7a1a53bf50cb2008e6f7"
    assert bp.parse_sha256sum("sha256sum: /x: No such file or directory") is None


def test_error_summaries() -> None:
    assert bp.summarise_error(1, text("restic_no_repo.stderr")) == \
        "exit 1: Fatal: unable to open config file: stat /tmp/bk/nope/config: " \
        "no such file or directory"
    for name in ("restic_no_repo.stderr", "restic_wrong_password.stderr",
                 "borg_wrong_password.stderr"):
        assert bp.is_access_error(text(name)), name
    assert not bp.is_access_error("Fatal: pack 1234 contains 2 errors")


@pytest.mark.parametrize(("raw", "finished", "status"), [
    ("finished=2026-11-20T03:00:00Z exit_status=0\n", datetime(2026, 11, 20, 3, tzinfo=UTC), 0),
    ('{"finished": 1795000000, "exit_status": 1}', datetime.fromtimestamp(1795000000, UTC), 1),
    ('{"finished": "2026-11-20T04:00:00+01:00", "exit_status": "0"}',
     datetime(2026, 11, 20, 3, tzinfo=UTC), 0),
])
def test_check_status_file(raw: str, finished: datetime, status: int) -> None:
    assert bp.parse_check_status(raw) == bp.CheckStatus(finished, status)


@pytest.mark.parametrize("raw", ["", "finished=yesterday exit_status=0", "exit_status=0",
                                 "{not json", "finished=2026-11-20T03:00:00Z exit_status=x"])
def test_check_status_file_garbled(raw: str) -> None:
    with pytest.raises(bp.ParseError):
        bp.parse_check_status(raw)


def latest(name: str, hours: float | None, error: str | None = None) -> bp.Latest:
    when = NOW - timedelta(hours=hours) if hours is not None else None
    return bp.Latest(name, when, "abc" if when else None, error)


def test_judge_recent() -> None:
    ok = bp.judge_recent("db1", [latest("main", 3)], 24, NOW)
    assert ok.status == Status.PASS and "3.0 h old" in ok.message
    stale = bp.judge_recent("db1", [latest("main", 3), latest("nas", 50)], 24, NOW)
    assert stale.status == Status.FAIL and "nas: newest snapshot" in stale.message
    assert "2.1 days old" in stale.message and "main" not in stale.message
    empty = bp.judge_recent("db1", [latest("main", None)], 24, NOW)
    assert empty.status == Status.FAIL and "no snapshot at all" in empty.message
    unknown = bp.judge_recent("db1", [latest("main", 3), latest("nas", None, "exit 1")], 24, NOW)
    assert unknown.status == Status.ERROR
    # a fail elsewhere outranks an unreadable repository
    both = bp.judge_recent("db1", [latest("a", 30), latest("b", None, "exit 1")], 24, NOW)
    assert both.status == Status.FAIL


def entries(*specs: tuple[str, bool, str | None]) -> list[bp.Entry]:
    return [bp.Entry(n, off, of) for n, off, of in specs]


def test_judge_copies() -> None:
    ents = entries(("main", False, None), ("nas", True, "main"))
    two = bp.judge_copies("db1", ents, {"main": latest("main", 2), "nas": latest("nas", 5)},
                          24, 2, 1, NOW)
    assert two.status == Status.PASS and "2 current copies (1 off-site)" in two.message
    one = bp.judge_copies("db1", ents[:1], {"main": latest("main", 2)}, 24, 2, 1, NOW)
    assert one.status == Status.FAIL and "need 2 with 1 off-site" in one.message
    stale_copy = bp.judge_copies("db1", ents, {"main": latest("main", 2),
                                               "nas": latest("nas", 90)}, 24, 2, 1, NOW)
    assert stale_copy.status == Status.FAIL and "not counted" in stale_copy.message
    onsite_only = entries(("main", False, None), ("usb", False, "main"))
    no_off = bp.judge_copies("db1", onsite_only, {"main": latest("main", 2),
                                                  "usb": latest("usb", 2)}, 24, 2, 1, NOW)
    assert no_off.status == Status.FAIL and "(0 off-site)" in no_off.message
    unreadable = bp.judge_copies("db1", ents, {"main": latest("main", 2),
                                               "nas": latest("nas", None, "exit 1")},
                                 24, 2, 1, NOW)
    assert unreadable.status == Status.ERROR
    dangling = bp.judge_copies("db1", entries(("main", False, None), ("x", True, "mian")),
                               {"main": latest("main", 2), "x": latest("x", 1)}, 24, 1, 0, NOW)
    assert dangling.status == Status.ERROR and "'mian'" in dangling.message


def test_judge_integrity() -> None:
    ok = bp.CheckStatus(NOW - timedelta(days=3), 0)
    assert bp.judge_integrity("main", ok, NOW, 30, "/s")[0] == Status.PASS
    assert bp.judge_integrity("main", ok, NOW, 2, "/s")[0] == Status.FAIL
    failed = bp.CheckStatus(NOW - timedelta(days=1), 1)
    st, msg = bp.judge_integrity("main", failed, NOW, 30, "/s")
    assert st == Status.FAIL and "failed with exit 1" in msg
    st, msg = bp.judge_integrity("main", None, NOW, 30, "/var/lib/backup/check.status")
    assert st == Status.FAIL and "/var/lib/backup/check.status does not exist" in msg


def test_judge_restore_and_fold() -> None:
    h = "a" * 64
    assert bp.judge_restore("main", "/c", h, h)[0] == Status.PASS
    assert bp.judge_restore("main", "/c", h, "b" * 64)[0] == Status.FAIL
    assert bp.judge_restore("main", "/c", None, h)[0] == Status.FAIL
    assert bp.judge_restore("main", "/c", h, None)[0] == Status.ERROR
    manual = bp.fold("db1", [(Status.PASS, "a ok"), (Status.MANUAL, "b: no canary")], "w", "f")
    assert manual.status == Status.MANUAL
    skipped = bp.fold("db1", [(Status.SKIP, "dir")], "w", "f")
    assert skipped.status == Status.SKIP
