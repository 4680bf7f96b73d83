"""Pure parsers and judges for ClamAV output (no I/O; tested on captured output).

Sources of truth, in the order the probe prefers them:

* installed: ``clamscan --version`` / ``clamd --version`` / ``clamdscan --version`` exit 0;
* daemon running: the daemon *answers* on its socket (``clamdscan --version`` then
  prints the loaded database, ``ClamAV 1.4.6/27000/Sun Nov  1 10:00:00 2026``;
  without a daemon it prints only ``ClamAV 1.4.6``).  When clamdscan is absent the
  process table (a process whose ``comm`` is ``clamd``) decides.  Whether a systemd
  unit is *enabled* says nothing about whether the daemon runs, so it is not asked;
* signature age: ``sigtool --info`` on ``daily.{cvd,cld,cud}`` ("Build time: 01 Nov
  2026 10:00 +0000"), which carries its UTC offset, unlike the daemon's version line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from controlcheck.model import Outcome

DEFAULT_DATABASE_DIR = "/var/lib/clamav"
DEFAULT_CLAMD_CONF = "/etc/clamav/clamd.conf"
DEFAULT_FRESHCLAM_CONF = "/etc/clamav/freshclam.conf"
# Dated signature containers; daily is the one freshclam refreshes several times a day.
DATED_DATABASES = ("daily.cld", "daily.cvd", "daily.cud", "main.cld", "main.cvd", "main.cud",
                   "bytecode.cld", "bytecode.cvd", "bytecode.cud")

_VERSION_RE = re.compile(r"^ClamAV (?P<engine>[0-9][^/\s]*)(?:/(?P<db>\d+)/(?P<date>.+))?$")


def parse_conf(text: str) -> dict[str, list[str]]:
    """``clamd.conf``/``freshclam.conf``: ``Key value`` lines, ``#`` comments; repeats kept."""
    conf: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        conf.setdefault(key, []).append(value.strip().strip('"'))
    return conf


def conf_value(conf: Mapping[str, Sequence[str]], key: str) -> str | None:
    values = conf.get(key)
    return values[-1] if values else None


@dataclass(frozen=True)
class VersionLine:
    engine: str
    db_version: int | None = None
    db_date: str | None = None  # asctime in the daemon's local time; informative only


def parse_version(text: str) -> VersionLine | None:
    for line in text.splitlines():
        m = _VERSION_RE.match(line.strip())
        if m:
            db = m.group("db")
            return VersionLine(m.group("engine"), int(db) if db else None,
                               m.group("date").strip() if m.group("date") else None)
    return None


def parse_sigtool_build_time(text: str) -> datetime | None:
    """``Build time: 01 Nov 2026 10:00 +0000`` → aware datetime (None if absent/garbled)."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Build time":
            try:
                return datetime.strptime(value.strip(), "%d %b %Y %H:%M %z")
            except ValueError:
                return None
    return None


@dataclass(frozen=True)
class Process:
    pid: int
    comm: str
    args: str


def parse_ps(text: str) -> list[Process]:
    """``ps -eo pid,comm,args`` (header line first)."""
    procs = []
    for line in text.splitlines()[1:]:
        parts = line.split(None, 2)
        if len(parts) >= 2 and parts[0].isdigit():
            procs.append(Process(int(parts[0]), parts[1], parts[2] if len(parts) > 2 else ""))
    return procs


def clamd_processes(procs: Sequence[Process],
                    conf_path: str = DEFAULT_CLAMD_CONF) -> list[Process]:
    """clamd processes that serve ``conf_path``.

    A zombie (``[clamd] <defunct>``) has exited.  A clamd started with another
    config (``-c``/``--config-file``) is some other daemon, not this host's one.
    """
    found = []
    for p in procs:
        if p.comm != "clamd" or p.args.endswith("<defunct>"):
            continue
        conf = _config_arg(p.args.split())
        if (conf or DEFAULT_CLAMD_CONF) == conf_path:
            found.append(p)
    return found


def _config_arg(args: Sequence[str]) -> str | None:
    for i, arg in enumerate(args):
        if arg in ("-c", "--config-file") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config-file="):
            return arg.split("=", 1)[1]
    return None


@dataclass(frozen=True)
class EngineObservation:
    """What the engine check saw on one host."""

    engine_version: str | None  # None: no ClamAV binary answered
    daemon_answering: bool | None  # None: could not ask (clamdscan absent)
    daemon_version: VersionLine | None = None
    clamd_pids: tuple[int, ...] = ()
    socket: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def judge_engine(target: str, obs: EngineObservation) -> Outcome:
    facts: dict[str, Any] = {"engine_version": obs.engine_version, "clamd_pids": list(obs.clamd_pids),
             "daemon_answering": obs.daemon_answering, "socket": obs.socket}
    if obs.engine_version is None:
        return Outcome.failed(f"{target}: no antivirus engine installed (clamscan, clamd and "
                              "clamdscan not found); install clamav and clamav-daemon", **facts)
    where = f" on {obs.socket}" if obs.socket else ""
    if obs.daemon_answering:
        db = obs.daemon_version
        loaded = f", database {db.db_version} ({db.db_date})" if db and db.db_version else ""
        return Outcome.passed(f"{target}: ClamAV {obs.engine_version} installed and clamd "
                              f"answers{where}{loaded}", **facts)
    if obs.daemon_answering is False:
        if obs.clamd_pids:
            return Outcome.failed(
                f"{target}: ClamAV {obs.engine_version} installed and a clamd process runs "
                f"(pid {', '.join(map(str, obs.clamd_pids))}) but it does not answer{where}; "
                "check its log (it may still be loading signatures) and its LocalSocket", **facts)
        return Outcome.failed(f"{target}: ClamAV {obs.engine_version} installed but clamd not "
                              f"running (nothing answers{where}); start clamav-daemon", **facts)
    # clamdscan absent: the process table is the only witness.
    if obs.clamd_pids:
        return Outcome.passed(
            f"{target}: ClamAV {obs.engine_version} installed and clamd runs (pid "
            f"{', '.join(map(str, obs.clamd_pids))}; socket not probed: clamdscan absent)",
            **facts)
    return Outcome.failed(f"{target}: ClamAV {obs.engine_version} installed but clamd not "
                          "running (no clamd process); start clamav-daemon", **facts)


def judge_freshness(target: str, database_dir: str, build_times: Mapping[str, datetime],
                    now: datetime, max_age_days: float) -> Outcome:
    """Newest build time of the dated databases in ``database_dir`` against ``max_age_days``."""
    if not build_times:
        return Outcome.failed(f"{target}: no signature database (daily/main .cvd/.cld) in "
                              f"{database_dir}; run freshclam", database_dir=database_dir)
    name, newest = max(build_times.items(), key=lambda kv: kv[1])
    age = now - newest
    facts: dict[str, Any] = {"database_dir": database_dir, "newest": name, "build_time": newest.isoformat(),
             "age_hours": round(age.total_seconds() / 3600, 1), "max_age_days": max_age_days}
    stamp = newest.strftime("%Y-%m-%d %H:%M %z")
    if age > timedelta(days=max_age_days):
        return Outcome.failed(
            f"{target}: signatures are {_days(age)} old ({name} built {stamp}), more than the "
            f"{max_age_days:g} days allowed; check freshclam (service, proxy, mirror)", **facts)
    if age < timedelta(hours=-1):  # more than an hour in the future: a clock is wrong
        return Outcome.error(f"{target}: {name} claims a build time in the future ({stamp}); "
                             "check the host's and this machine's clocks", **facts)
    return Outcome.passed(f"{target}: signatures built {stamp} ({name}), "
                          f"within {max_age_days:g} days", **facts)


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:.1f} days"


def judge_eicar(target: str, scanner: str, exit_status: int, stdout: str, stderr: str) -> Outcome:
    """clamscan/clamdscan exit codes: 0 clean, 1 virus found, 2 error."""
    facts: dict[str, Any] = {"scanner": scanner, "exit_status": exit_status}
    found = [line for line in stdout.splitlines() if line.rstrip().endswith(" FOUND")]
    if exit_status == 1 and found:
        sig = found[0].rsplit(":", 1)[-1].strip().removesuffix(" FOUND")
        return Outcome.passed(f"{target}: {scanner} detected the EICAR test file ({sig})",
                              signature=sig, **facts)
    if exit_status == 0:
        return Outcome.failed(f"{target}: {scanner} did not detect the EICAR test file; the "
                              "signature database lacks basic signatures: run freshclam and "
                              "check the database directory", **facts)
    # The first error names the cause ("No supported database files found in ..."); the
    # last one is a generic "Can't open file or directory".
    lines = [ln.strip() for ln in (stderr or stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    detail = (errors or lines or ["no output"])[0][:300]
    return Outcome.error(f"{target}: {scanner} could not scan the EICAR test file "
                         f"(exit {exit_status}): {detail}", **facts)
