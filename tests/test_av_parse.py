"""AV judges and parsers on real output captured from ClamAV 1.4.6 (tests/data/av/).

Captured on Debian 12 with the lab database of ``av_fixtures.write_cud``; see
``tests/data/av/README`` for the exact commands.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controlcheck.model import Status
from controlcheck.probes import clamav_parse as cp
from controlcheck.probes.av import eicar_bytes

DATA = Path(__file__).parent / "data" / "av"
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def text(name: str) -> str:
    return (DATA / name).read_text()


def test_eicar_string_is_assembled_correctly() -> None:
    import hashlib

    data = eicar_bytes()
    assert len(data) == 68
    assert hashlib.md5(data).hexdigest() == "44d88612fea8a8f36de82e1278abb02f"


def test_debian_clamd_conf() -> None:
    conf = cp.parse_conf(text("debian_clamd.conf"))
    assert cp.conf_value(conf, "LocalSocket") == "/var/run/clamav/clamd.ctl"
    assert cp.conf_value(conf, "DatabaseDirectory") == "/var/lib/clamav"
    assert cp.conf_value(conf, "TCPSocket") is None
    fresh = cp.parse_conf(text("debian_freshclam.conf"))
    assert cp.conf_value(fresh, "DatabaseDirectory") == "/var/lib/clamav"


def test_version_lines() -> None:
    assert cp.parse_version(text("clamscan_version_nodb.txt")) == cp.VersionLine("1.4.6")
    # Without a daemon clamdscan prints the error first, then its own bare version.
    nodaemon = cp.parse_version(text("clamdscan_version_nodaemon.txt"))
    assert nodaemon is not None and nodaemon.db_version is None
    daemon = cp.parse_version(text("clamdscan_version_daemon.txt"))
    assert daemon is not None
    assert (daemon.engine, daemon.db_version) == ("1.4.6", 27000)
    assert daemon.db_date == "Sun Nov  1 10:00:00 2026"
    assert cp.parse_version("bash: clamscan: command not found") is None


def test_sigtool_build_time() -> None:
    assert cp.parse_sigtool_build_time(text("sigtool_info_cud.txt")) == \
        datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert cp.parse_sigtool_build_time(text("sigtool_info_missing.txt")) is None
    assert cp.parse_sigtool_build_time("Build time: yesterday") is None
    # Official databases carry a non-UTC offset sometimes; it must be honoured.
    assert cp.parse_sigtool_build_time("Build time: 24 Nov 2026 04:19 -0500") == \
        datetime(2026, 11, 24, 9, 19, tzinfo=UTC)


def test_ps_clamd_detection() -> None:
    procs = cp.parse_ps(text("ps_with_clamd.txt"))
    with_clamd = cp.clamd_processes(procs, "/tmp/avlab/clamd.conf")
    assert [p.args for p in with_clamd] == ["clamd -c /tmp/avlab/clamd.conf"]
    # that daemon serves another config than Debian's default one
    assert cp.clamd_processes(procs) == []
    debian = cp.parse_ps("PID COMMAND COMMAND\n 612 clamd /usr/sbin/clamd --foreground=true\n")
    assert [p.pid for p in cp.clamd_processes(debian)] == [612]
    long_opt = cp.parse_ps("PID COMMAND COMMAND\n 9 clamd clamd --config-file=/etc/c.conf\n")
    assert [p.pid for p in cp.clamd_processes(long_opt, "/etc/c.conf")] == [9]
    # Captured right after the kill: the exited clamd is still a zombie in the table.
    assert "[clamd] <defunct>" in text("ps_without_clamd.txt")
    assert cp.clamd_processes(cp.parse_ps(text("ps_without_clamd.txt")),
                              "/tmp/avlab/clamd.conf") == []
    # clamdscan or an editor of clamd.conf is not the daemon.
    assert cp.clamd_processes(cp.parse_ps(
        "PID COMMAND COMMAND\n 7 clamdscan clamdscan x\n 8 vi vi /etc/clamav/clamd.conf\n")) == []


def obs(**kw: object) -> cp.EngineObservation:
    base: dict[str, object] = {"engine_version": "1.4.6", "daemon_answering": True,
                               "socket": "/run/clamav/clamd.ctl"}
    base.update(kw)
    return cp.EngineObservation(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("observation", "status", "words"), [
    (obs(daemon_version=cp.parse_version(text("clamdscan_version_daemon.txt"))), Status.PASS,
     "clamd answers on /run/clamav/clamd.ctl, database 27000"),
    (obs(engine_version=None, daemon_answering=None), Status.FAIL, "no antivirus engine"),
    (obs(daemon_answering=False), Status.FAIL, "installed but clamd not running"),
    (obs(daemon_answering=False, clamd_pids=(412,)), Status.FAIL, "does not answer"),
    (obs(daemon_answering=None, clamd_pids=(412,)), Status.PASS, "clamdscan absent"),
    (obs(daemon_answering=None), Status.FAIL, "installed but clamd not running"),
])
def test_judge_engine(observation: cp.EngineObservation, status: Status, words: str) -> None:
    outcome = cp.judge_engine("web1", observation)
    assert outcome.status == status
    assert words in outcome.message and outcome.message.startswith("web1: ")


def test_judge_freshness() -> None:
    built = cp.parse_sigtool_build_time(text("sigtool_info_cud.txt"))
    assert built is not None
    stale = cp.judge_freshness("web1", "/var/lib/clamav", {"daily.cud": built}, NOW, 2)
    assert stale.status == Status.FAIL
    assert "24.2 days old" in stale.message and "daily.cud" in stale.message
    fresh = cp.judge_freshness("web1", "/db", {"daily.cud": built}, built + timedelta(days=1), 2)
    assert fresh.status == Status.PASS
    # the newest of several databases decides
    both = cp.judge_freshness("web1", "/db", {"main.cvd": built - timedelta(days=300),
                                              "daily.cld": NOW - timedelta(hours=5)}, NOW, 2)
    assert both.status == Status.PASS and both.facts["newest"] == "daily.cld"
    edge = cp.judge_freshness("web1", "/db", {"daily.cld": NOW - timedelta(days=2, seconds=1)},
                              NOW, 2)
    assert edge.status == Status.FAIL
    none = cp.judge_freshness("web1", "/db", {}, NOW, 2)
    assert none.status == Status.FAIL and "no signature database" in none.message
    future = cp.judge_freshness("web1", "/db", {"daily.cld": NOW + timedelta(days=3)}, NOW, 2)
    assert future.status == Status.ERROR


def test_judge_eicar_on_real_scanner_output() -> None:
    found = cp.judge_eicar("web1", "clamscan", 1, text("clamscan_found.stdout"),
                           text("clamscan_found.stderr"))
    assert found.status == Status.PASS
    assert found.facts["signature"] == "Lab.EICAR.Test.UNOFFICIAL"
    via_daemon = cp.judge_eicar("web1", "clamdscan", 1, text("clamdscan_found.txt"), "")
    assert via_daemon.status == Status.PASS
    clean = cp.judge_eicar("web1", "clamscan", 0, text("clamscan_clean.stdout"),
                           text("clamscan_clean.stderr"))
    assert clean.status == Status.FAIL and "did not detect" in clean.message
    nodb = cp.judge_eicar("web1", "clamscan", 2, text("clamscan_nodb.stdout"),
                          text("clamscan_nodb.stderr"))
    assert nodb.status == Status.ERROR and "No supported database files" in nodb.message
    nodaemon = cp.judge_eicar("web1", "clamdscan", 2, text("clamdscan_nodaemon.stdout"),
                              text("clamdscan_nodaemon.stderr"))
    assert nodaemon.status == Status.ERROR and "Could not connect to clamd" in nodaemon.message
    # exit 1 without a FOUND line is not a detection
    odd = cp.judge_eicar("web1", "clamscan", 1, "", "something else")
    assert odd.status == Status.ERROR
