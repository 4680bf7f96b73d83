"""AV family, servers: ClamAV installed with its daemon answering, fresh signatures,
and a real detection of the EICAR test file.

Collect here (through the host's transport), judge in ``clamav_parse`` (pure).
The inventory may say where ClamAV lives on a host (``av: {clamd_conf,
freshclam_conf, database_dir}``); the defaults are Debian's.

``host.av.detects-eicar`` is the one check in the family that writes on the
target: it creates a private temp dir (``mktemp -d``), writes the EICAR test
string into it, scans it and removes the dir again, whatever happened.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controlcheck.model import Outcome, TargetKind
from controlcheck.probes import clamav_parse as cp
from controlcheck.probes.base import CheckContext, CheckSpec
from controlcheck.probes.hostops import (
    HostOpError,
    make_temp_dir,
    remove_temp_dir,
    run_fresh,
    write_file,
)

_NOT_FOUND = 127


def _av(ctx: CheckContext) -> dict[str, Any]:
    return dict(ctx.target.spec.get("av") or {})


def _conf(ctx: CheckContext, key: str, default: str) -> tuple[str, dict[str, list[str]] | None]:
    """(path, parsed) of a ClamAV config file on the host; parsed is None if unreadable."""
    path = str(_av(ctx).get(key) or default)
    result = ctx.run(["cat", "--", path])
    return path, (cp.parse_conf(result.text) if result.ok else None)


def _database_dir(ctx: CheckContext) -> str:
    if _av(ctx).get("database_dir"):
        return str(_av(ctx)["database_dir"])
    for key, default in (("clamd_conf", cp.DEFAULT_CLAMD_CONF),
                         ("freshclam_conf", cp.DEFAULT_FRESHCLAM_CONF)):
        _, conf = _conf(ctx, key, default)
        if conf and cp.conf_value(conf, "DatabaseDirectory"):
            return str(cp.conf_value(conf, "DatabaseDirectory"))
    return cp.DEFAULT_DATABASE_DIR


def _engine_version(ctx: CheckContext) -> str | None:
    for tool in ("clamscan", "clamd", "clamdscan"):
        result = ctx.run([tool, "--version"])
        version = cp.parse_version(result.text) if result.ok else None
        if version:
            return version.engine
    return None


def _clamdscan_base(ctx: CheckContext) -> list[str]:
    path, conf = _conf(ctx, "clamd_conf", cp.DEFAULT_CLAMD_CONF)
    return ["clamdscan", f"--config-file={path}"] if conf is not None else ["clamdscan"]


def _socket(ctx: CheckContext) -> str | None:
    _, conf = _conf(ctx, "clamd_conf", cp.DEFAULT_CLAMD_CONF)
    if not conf:
        return None
    if cp.conf_value(conf, "LocalSocket"):
        return cp.conf_value(conf, "LocalSocket")
    if cp.conf_value(conf, "TCPSocket"):
        return f"{cp.conf_value(conf, 'TCPAddr') or 'localhost'}:{cp.conf_value(conf, 'TCPSocket')}"
    return None


def _daemon(ctx: CheckContext) -> tuple[bool | None, cp.VersionLine | None]:
    """Does clamd answer?  None when clamdscan is not installed (cannot ask)."""
    result = ctx.run([*_clamdscan_base(ctx), "--version"])
    if result.exit_status == _NOT_FOUND:
        return None, None
    version = cp.parse_version(result.text) if result.ok else None
    # Only the daemon knows its database; the client alone prints the bare engine version.
    answering = version is not None and version.db_version is not None
    return answering, version if answering else None


def check_engine(ctx: CheckContext) -> Outcome:
    engine = _engine_version(ctx)
    answering, version = _daemon(ctx) if engine else (None, None)
    pids: tuple[int, ...] = ()
    if engine and not answering:
        ps = ctx.run(["ps", "-eo", "pid,comm,args"])
        if ps.ok:
            conf_path = str(_av(ctx).get("clamd_conf") or cp.DEFAULT_CLAMD_CONF)
            pids = tuple(p.pid for p in cp.clamd_processes(cp.parse_ps(ps.text), conf_path))
        elif answering is None:
            return Outcome.error(f"{ctx.target.name}: clamdscan is not installed and ps failed "
                                 f"(exit {ps.exit_status}): cannot tell whether clamd runs")
    obs = cp.EngineObservation(engine, answering, version, pids, _socket(ctx))
    return cp.judge_engine(ctx.target.name, obs)


def check_signatures_fresh(ctx: CheckContext) -> Outcome:
    db_dir = _database_dir(ctx)
    listing = ctx.run(["ls", "-1A", "--", db_dir])
    if not listing.ok:
        if "No such file" in listing.err_text:
            return cp.judge_freshness(ctx.target.name, db_dir, {}, ctx.now,
                                      float(ctx.params["max_age_days"]))
        return Outcome.error(f"{ctx.target.name}: cannot list the signature directory {db_dir} "
                             f"(exit {listing.exit_status}): {listing.err_text.strip()[:200]}")
    present = set(listing.text.split())
    build_times: dict[str, datetime] = {}
    for name in cp.DATED_DATABASES:
        if name not in present:
            continue
        info = ctx.run(["sigtool", f"--info={db_dir.rstrip('/')}/{name}"])
        when = cp.parse_sigtool_build_time(info.text) if info.ok else None
        if when is None:
            return Outcome.error(f"{ctx.target.name}: sigtool --info could not read {name} in "
                                 f"{db_dir} (exit {info.exit_status}): "
                                 f"{(info.err_text or info.text).strip()[:200]}")
        build_times[name] = when
    return cp.judge_freshness(ctx.target.name, db_dir, build_times, ctx.now,
                              float(ctx.params["max_age_days"]))


def eicar_bytes() -> bytes:
    """The EICAR test string, assembled at run time so no file in the repo holds it."""
    head = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$"
    tail = "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    return (head + tail).encode("ascii")


def check_detects_eicar(ctx: CheckContext) -> Outcome:
    if _engine_version(ctx) is None:
        return Outcome.failed(f"{ctx.target.name}: no antivirus engine installed, so nothing "
                              "can detect the EICAR test file; install clamav")
    answering, _ = _daemon(ctx)
    try:
        tmp = make_temp_dir(ctx, "eicar")
    except HostOpError as exc:
        return Outcome.error(f"{ctx.target.name}: cannot create a temp dir for the EICAR test: "
                             f"{exc}")
    try:
        sample = f"{tmp}/eicar-test.txt"
        write_file(ctx, sample, eicar_bytes())
        if answering:
            scanner, argv = "clamdscan", [*_clamdscan_base(ctx), "--fdpass", "--no-summary",
                                          sample]
        else:
            scanner, argv = "clamscan", ["clamscan", "--no-summary",
                                         f"--database={_database_dir(ctx)}", sample]
        result = run_fresh(ctx, argv, timeout=max(ctx.timeout, 120.0))
        return cp.judge_eicar(ctx.target.name, scanner, result.exit_status, result.text,
                              result.err_text)
    except HostOpError as exc:
        return Outcome.error(f"{ctx.target.name}: EICAR test could not run: {exc}")
    finally:
        removed = remove_temp_dir(ctx, tmp)
        if removed is not None and not removed.ok:
            ctx.note("cleanup failed", f"could not remove {tmp}: {removed.err_text}")


CHECKS = (
    CheckSpec("host.av.engine", TargetKind.HOST, check_engine,
              "no antivirus engine installed or its daemon not running",
              {}),
    CheckSpec("host.av.signatures-fresh", TargetKind.HOST, check_signatures_fresh,
              "signatures older than max_age_days",
              {"max_age_days": {"type": "number", "minimum": 0, "default": 2,
                                "description": "newest signature database may be this old"}}),
    CheckSpec("host.av.detects-eicar", TargetKind.HOST, check_detects_eicar,
              "the engine does not detect the EICAR test file",
              {}),
)
