"""BACKUP family: per dataset in the host's ``backups:`` list, a recent snapshot, enough
copies (one off-site), a recent repository check and a real restore of a canary file.

How the repository password reaches the host without argv or evidence:

* ``password_file`` (a path on the host): restic gets ``--password-file PATH``; borg
  gets its stdin from the file (a constant ``sh -c 'exec < "$1" ...'``) and
  ``BORG_PASSPHRASE_FD=0``.
* ``password_env`` (a variable on the machine running controlcheck): the value is
  written to the command's **stdin** — restic reads its password from stdin when no
  other source is set, borg reads it from ``BORG_PASSPHRASE_FD=0``.  Stdin works the
  same over the local transport and over SSH (no ``AcceptEnv`` needed) and is never
  recorded; the evidence store also redacts the value should it ever echo back.

Read-only on the repository: restic runs with ``--no-cache --no-lock``, borg with
``--bypass-lock``.  The restore test writes only into its own ``mktemp -d`` directory
and removes it afterwards.  A repository check is *not* run by default (a full
``restic check`` can take hours): ``host.backup.integrity`` reads the status file
the check job writes (``check_status_file``), unless ``run_check: true``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from controlcheck.model import Outcome, Status, TargetKind
from controlcheck.probes import backup_parse as bp
from controlcheck.probes.base import CheckContext, CheckSpec
from controlcheck.probes.hostops import (
    HostOpError,
    in_directory,
    make_temp_dir,
    remove_temp_dir,
    run_fresh,
    stdin_from_host_file,
)
from controlcheck.transports.base import CommandResult

Entry = Mapping[str, Any]
NO_BACKUPS = ("no backups listed for this host in the inventory; add a 'backups:' entry per "
              "protected dataset (or waive the control for a host that holds no data)")
_BORG_ENV = ["env", "TZ=UTC", "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes",
             "BORG_RELOCATED_REPO_ACCESS_IS_OK=yes"]


class SecretMissing(Exception):
    pass


def _entries(ctx: CheckContext) -> list[Entry]:
    return list(ctx.target.spec.get("backups") or [])


def _secret(entry: Entry) -> bytes | None:
    var = entry.get("password_env")
    if not var:
        return None
    value = os.environ.get(str(var))
    if not value:
        raise SecretMissing(f"environment variable {var} (password_env of backup "
                            f"{entry['name']}) is not set on the machine running controlcheck")
    return value.encode() + b"\n"


def _repo_command(entry: Entry, args: list[str]) -> tuple[list[str], bytes | None]:
    """argv + stdin for a restic/borg command on ``entry``'s repository."""
    repo = str(entry.get("repository", ""))
    secret = _secret(entry)
    if entry["type"] == "restic":
        if secret is None and not entry.get("password_file"):
            raise SecretMissing(f"backup {entry['name']} has neither password_env nor "
                                "password_file; restic needs the repository password")
        pw = ["--password-file", str(entry["password_file"])] if secret is None else []
        return ["restic", "-r", repo, "--no-cache", "--no-lock", *pw, *args], secret
    env = list(_BORG_ENV)
    if secret is not None or entry.get("password_file"):
        env.append("BORG_PASSPHRASE_FD=0")
    argv = [*env, "borg", "--bypass-lock", *args]
    if secret is None and entry.get("password_file"):
        argv = stdin_from_host_file(str(entry["password_file"]), argv)
    return argv, secret


def _why(result: CommandResult) -> str:
    return bp.summarise_error(result.exit_status, result.err_text, result.text)


def _restic_filter(entry: Entry) -> list[str]:
    # A restic repository is often shared by several hosts: without this filter another
    # host's fresh snapshot would make this one look backed up.
    return ["--host", str(entry["snapshot_host"])] if entry.get("snapshot_host") else []


def _borg_filter(entry: Entry) -> list[str]:
    return ["--glob-archives", str(entry["archive_glob"])] if entry.get("archive_glob") else []


def latest_snapshot(ctx: CheckContext, entry: Entry) -> tuple[bp.Latest, str | None]:
    """Newest snapshot of one repository (memoised per host); also the borg archive name."""
    key = ("backup-latest", entry["name"])
    if key not in ctx.session.memo:
        ctx.session.memo[key] = _collect_latest(ctx, entry)
    result: tuple[bp.Latest, str | None] = ctx.session.memo[key]
    return result


def _collect_latest(ctx: CheckContext, entry: Entry) -> tuple[bp.Latest, str | None]:
    name = str(entry["name"])
    repo = entry.get("repository")
    if not repo:
        return bp.Latest(name, error="no 'repository' in the inventory entry"), None
    try:
        if entry["type"] == "directory":
            result = run_fresh(ctx, ["find", str(repo), "-type", "f", "-printf", "%T@\\n"])
            if not result.ok:
                return bp.Latest(name, error=_why(result)), None
            times = bp.parse_find_times(result.text)
            if not times:
                return bp.Latest(name), None
            return bp.Latest(name, bp.parse_time(max(times)), "newest file"), None
        args = (["snapshots", "--json", "--latest", "1", *_restic_filter(entry)]
                if entry["type"] == "restic"
                else ["list", "--json", "--last", "1", *_borg_filter(entry), str(repo)])
        argv, stdin = _repo_command(entry, args)
        result = run_fresh(ctx, argv, stdin=stdin)
        if not result.ok:
            return bp.Latest(name, error=_why(result)), None
        snaps = (bp.parse_restic_snapshots(result.text) if entry["type"] == "restic"
                 else bp.parse_borg_list(result.text))
    except SecretMissing as exc:
        return bp.Latest(name, error=str(exc)), None
    except bp.ParseError as exc:
        return bp.Latest(name, error=str(exc)), None
    if not snaps:
        return bp.Latest(name), None
    newest = max(snaps, key=lambda s: s.time)
    return bp.Latest(name, newest.time, newest.id), newest.id


def check_recent(ctx: CheckContext) -> Outcome:
    entries = _entries(ctx)
    if not entries:
        return Outcome.manual(f"{ctx.target.name}: {NO_BACKUPS}")
    latest = [latest_snapshot(ctx, e)[0] for e in entries]
    return bp.judge_recent(ctx.target.name, latest, float(ctx.params["rpo_hours"]), ctx.now)


def check_copies(ctx: CheckContext) -> Outcome:
    entries = _entries(ctx)
    if not entries:
        return Outcome.manual(f"{ctx.target.name}: {NO_BACKUPS}")
    latest = {str(e["name"]): latest_snapshot(ctx, e)[0] for e in entries}
    model = [bp.Entry(str(e["name"]), bool(e.get("offsite", False)), e.get("copy_of"),
                      str(e.get("repository") or "")) for e in entries]
    return bp.judge_copies(ctx.target.name, model, latest, float(ctx.params["rpo_hours"]),
                           int(ctx.params["min_copies"]), int(ctx.params["min_offsite"]),
                           ctx.now)


def _integrity_of(ctx: CheckContext, entry: Entry, now: datetime) -> tuple[Status, str]:
    name = str(entry["name"])
    if entry["type"] == "directory":
        return Status.SKIP, f"{name}: a plain directory has no repository to check"
    if ctx.params.get("run_check"):
        args = (["check", f"--read-data-subset={ctx.params['read_data_subset']}"]
                if entry["type"] == "restic" else ["check", str(entry.get("repository", ""))])
        try:
            argv, stdin = _repo_command(entry, args)
        except SecretMissing as exc:
            return Status.ERROR, str(exc)
        result = run_fresh(ctx, argv, stdin=stdin, timeout=max(ctx.timeout, 600.0))
        if result.ok:
            return Status.PASS, f"{name}: {entry['type']} check passed just now"
        if bp.is_access_error(result.err_text):
            return Status.ERROR, f"{name}: cannot open the repository ({_why(result)})"
        return Status.FAIL, f"{name}: {entry['type']} check failed now ({_why(result)})"
    path = entry.get("check_status_file")
    if not path:
        # Neither restic nor borg records when it was last checked, so without the job's
        # status file nothing on the host can tell: "could not decide", not a verdict.
        return Status.ERROR, (f"{name}: no check_status_file in the inventory entry: nothing "
                              "records when the repository was last checked; have the check "
                              "job write one, or set run_check")
    result = ctx.run(["cat", "--", str(path)])
    if not result.ok:
        if "No such file" in result.err_text:
            return bp.judge_integrity(name, None, now, 0, str(path))
        return Status.ERROR, f"{name}: cannot read {path} ({_why(result)})"
    try:
        status = bp.parse_check_status(result.text)
    except bp.ParseError as exc:
        return Status.ERROR, f"{name}: {path}: {exc}"
    return bp.judge_integrity(name, status, now, float(ctx.params["max_age_days"]), str(path))


def check_integrity(ctx: CheckContext) -> Outcome:
    entries = _entries(ctx)
    if not entries:
        return Outcome.manual(f"{ctx.target.name}: {NO_BACKUPS}")
    parts = [_integrity_of(ctx, e, ctx.now) for e in entries]
    return bp.fold(ctx.target.name, parts, "repository integrity not verified",
                   "schedule 'restic check' / 'borg check' and record its result",
                   max_age_days=ctx.params["max_age_days"])


def _sha256(ctx: CheckContext, path: str) -> str | None:
    result = run_fresh(ctx, ["sha256sum", "--", path])
    return bp.parse_sha256sum(result.text) if result.ok else None


def _restore_one(ctx: CheckContext, entry: Entry) -> tuple[Status, str]:
    name, canary = str(entry["name"]), str(entry["canary"])
    latest, archive = latest_snapshot(ctx, entry)
    if latest.error is not None:
        return Status.ERROR, f"{name}: cannot read snapshots ({latest.error})"
    if latest.time is None:
        return Status.FAIL, f"{name}: no snapshot to restore from"
    live = _sha256(ctx, canary)
    if entry["type"] == "directory":
        copy = f"{str(entry['repository']).rstrip('/')}/{canary.lstrip('/')}"
        return bp.judge_restore(name, canary, _sha256(ctx, copy), live)
    tmp = make_temp_dir(ctx, "restore")
    try:
        if entry["type"] == "restic":
            argv, stdin = _repo_command(entry, ["restore", "latest", *_restic_filter(entry),
                                                "--target", tmp, "--include", canary])
        else:
            argv, stdin = _repo_command(entry, ["extract", f"{entry['repository']}::{archive}",
                                                canary.lstrip("/")])
            argv = in_directory(tmp, argv)
        result = run_fresh(ctx, argv, stdin=stdin, timeout=max(ctx.timeout, 300.0))
        if not result.ok:
            status = Status.ERROR if bp.is_access_error(result.err_text) else Status.FAIL
            return status, f"{name}: restore of {canary} failed ({_why(result)})"
        return bp.judge_restore(name, canary, _sha256(ctx, f"{tmp}/{canary.lstrip('/')}"), live)
    finally:
        remove_temp_dir(ctx, tmp)


def check_restore_test(ctx: CheckContext) -> Outcome:
    entries = _entries(ctx)
    if not entries:
        return Outcome.manual(f"{ctx.target.name}: {NO_BACKUPS}")
    parts: list[tuple[Status, str]] = []
    for entry in entries:
        if not entry.get("canary"):
            if entry.get("copy_of") is None:  # every dataset needs one; copies may omit it
                parts.append((Status.MANUAL, f"{entry['name']}: no canary; add 'canary: "
                                             "<path of a stable backed-up file>' to the entry"))
            continue
        try:
            parts.append(_restore_one(ctx, entry))
        except (SecretMissing, HostOpError) as exc:
            parts.append((Status.ERROR, f"{entry['name']}: {exc}"))
    return bp.fold(ctx.target.name, parts, "restore test", "investigate the backup: a "
                   "restore does not give back the live file")


CHECKS = (
    CheckSpec("host.backup.recent", TargetKind.HOST, check_recent,
              "newest snapshot older than the RPO",
              {"rpo_hours": {"type": "number", "exclusiveMinimum": 0, "default": 24}}),
    CheckSpec("host.backup.copies", TargetKind.HOST, check_copies,
              "fewer than the required copies, or none off-site",
              {"min_copies": {"type": "integer", "minimum": 1, "default": 2},
               "min_offsite": {"type": "integer", "minimum": 0, "default": 1},
               "rpo_hours": {"type": "number", "exclusiveMinimum": 0, "default": 24,
                             "description": "a copy counts only with a snapshot this recent"}}),
    CheckSpec("host.backup.integrity", TargetKind.HOST, check_integrity,
              "no successful repository check within max_age_days",
              {"max_age_days": {"type": "number", "minimum": 0, "default": 30},
               "run_check": {"type": "boolean", "default": False,
                             "description": "run 'restic check --read-data-subset' / 'borg "
                                            "check' now instead of reading the status file"},
               "read_data_subset": {"type": "string", "default": "1%"}}),
    CheckSpec("host.backup.restore-test", TargetKind.HOST, check_restore_test,
              "restoring the canary file fails or its hash differs",
              {}),
)
