"""Organisation checks: AWARE registers and PHYS attestations.

Collect: read the registers/attestations the inventory names (already
validated by the preflight) and record each file as evidence with its
SHA-256, so the bundle carries exactly what was judged.  Judge: pure
functions below, given the rows and today's date.

- ``org.aware.training``: share of *current* staff (start_date <= today, no
  end_date or end_date >= today) with a training completed in the last
  ``period_days`` must reach ``min_share``.  Training records naming people
  not on the staff list are reported in the evidence, not failed on (former
  staff and contractors legitimately appear there).
- ``org.aware.confidentiality``: every current staff member has a signed
  confidentiality record dated today or earlier.
- ``org.phys.access-review``: decided by attestations only.
- Without their registers the AWARE checks fall back to an attestation for
  their control, and without that they are ``manual`` (see attestations.py
  for what attestations may decide).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from controlcheck.attestations import Attestation, judge_attestations, load_attestations
from controlcheck.model import Outcome, Status, TargetKind
from controlcheck.probes.base import CheckContext, CheckSpec
from controlcheck.registers import Register, Row, load_register

LIST_IN_MESSAGE = 10  # names shown in a message; the evidence lists all


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    keys: frozenset[str]  # lower-cased id and e-mail: how other registers name them


def current_staff(staff: Sequence[Row], today: date) -> list[Person]:
    people = []
    for row in staff:
        if row["start_date"] > today or (row["end_date"] is not None and row["end_date"] < today):
            continue
        keys = {row["id"].lower()} | ({row["email"].lower()} if row["email"] else set())
        people.append(Person(row["id"], row["name"], frozenset(keys)))
    return people


def _all_keys(staff: Sequence[Row]) -> set[str]:
    keys: set[str] = set()
    for row in staff:
        keys.add(row["id"].lower())
        if row["email"]:
            keys.add(row["email"].lower())
    return keys


def _names(people: Sequence[Person], limit: int = LIST_IN_MESSAGE) -> str:
    shown = ", ".join(p.name for p in people[:limit])
    return shown + (f" and {len(people) - limit} more" if len(people) > limit else "")


def judge_training(staff: Sequence[Row], training: Sequence[Row], today: date, *,
                   min_share: float, period_days: int, courses: Sequence[str] = (),
                   target: str = "organisation") -> tuple[Outcome, dict[str, Any]]:
    """Pure: (outcome, details for the evidence note)."""
    people = current_staff(staff, today)
    if not people:
        return Outcome.error(f"{target}: the staff list has no current staff (check start_date/"
                             f"end_date); cannot compute a training share"), {}
    since = today - timedelta(days=period_days)
    wanted = {c.lower() for c in courses}
    trained_keys: set[str] = set()
    future: list[Row] = []
    for row in training:
        if wanted and row["course"].lower() not in wanted:
            continue
        if row["completed_date"] > today:
            future.append(row)  # a typo or a planned session: it proves nothing yet
        elif row["completed_date"] > since:
            trained_keys.add(row["person"].lower())
    untrained = [p for p in people if not p.keys & trained_keys]
    known = _all_keys(staff)
    unknown = sorted({r["person"] for r in training if r["person"].lower() not in known})
    trained = len(people) - len(untrained)
    share = trained / len(people)
    details = {"current_staff": len(people), "trained": trained, "share": round(share, 4),
               "untrained": [f"{p.id} {p.name}" for p in untrained],
               "unknown_people_in_training_register": unknown,
               "future_dated_records": [f"{r['person']} {r['completed_date']}" for r in future]}
    summary = (f"{trained} of {len(people)} current staff ({share:.0%}) completed a training in "
               f"the last {period_days} days")
    if share >= min_share:
        return Outcome.passed(f"{target}: {summary} (threshold {min_share:.0%})",
                              **_facts(details)), details
    return Outcome.failed(
        f"{target}: {summary}, below the {min_share:.0%} threshold; {len(untrained)} untrained "
        f"({_names(untrained)}): schedule their training and record it in the training "
        f"register", **_facts(details)), details


def judge_confidentiality(staff: Sequence[Row], records: Sequence[Row], today: date, *,
                          target: str = "organisation") -> tuple[Outcome, dict[str, Any]]:
    people = current_staff(staff, today)
    if not people:
        return Outcome.error(f"{target}: the staff list has no current staff (check start_date/"
                             f"end_date); nothing to compare the confidentiality register "
                             f"with"), {}
    signed = {r["person"].lower() for r in records if r["signed_date"] <= today}
    missing = [p for p in people if not p.keys & signed]
    known = _all_keys(staff)
    details = {"current_staff": len(people), "signed": len(people) - len(missing),
               "missing": [f"{p.id} {p.name}" for p in missing],
               "unknown_people_in_register": sorted({r["person"] for r in records
                                                     if r["person"].lower() not in known}),
               "future_dated_records": [f"{r['person']} {r['signed_date']}" for r in records
                                        if r["signed_date"] > today]}
    if not missing:
        return Outcome.passed(f"{target}: all {len(people)} current staff have a signed "
                              f"confidentiality record", **_facts(details)), details
    return Outcome.failed(
        f"{target}: {len(missing)} of {len(people)} current staff have no signed "
        f"confidentiality record ({_names(missing)}): collect their signed commitment and "
        f"record it in the confidentiality register", **_facts(details)), details


def _facts(details: dict[str, Any]) -> dict[str, Any]:
    # Counts go in the report facts; the names stay in the evidence note.
    return {k: v for k, v in details.items() if not isinstance(v, list)}


# --- collecting --------------------------------------------------------------------------

def record_register(ctx: CheckContext, reg: Register) -> str:
    return ctx.note(f"{reg.kind} register {reg.path.name}", reg.content, kind="file",
                    media_type=_media_type(reg.path.suffix),
                    meta={"path": str(reg.path), "sha256": reg.sha256, "rows": len(reg.rows)})


def record_attestation(ctx: CheckContext, att: Attestation) -> None:
    ctx.note(f"attestation {att.path.name}", att.content, kind="file",
             media_type="application/yaml",
             meta={"path": str(att.path), "sha256": att.sha256, "attestation": True})
    for f in att.files:
        ctx.note(f"attached to {att.path.name}: {f.name}", f.path.read_bytes(), kind="file",
                 media_type="application/octet-stream",
                 meta={"path": str(f.path), "sha256": f.sha256, "size": f.size,
                       "attestation": str(att.path)})


def _media_type(suffix: str) -> str:
    return {".csv": "text/csv", ".json": "application/json", ".yaml": "application/yaml",
            ".yml": "application/yaml"}.get(suffix.lower(), "text/plain")


def _note_details(ctx: CheckContext, title: str, details: dict[str, Any]) -> None:
    lines = []
    for key, value in details.items():
        if isinstance(value, list):
            lines.append(f"{key} ({len(value)}):")
            lines.extend(f"  - {v}" for v in value)
        else:
            lines.append(f"{key}: {value}")
    ctx.note(title, "\n".join(lines) + "\n")


def _by_attestation(ctx: CheckContext, check_id: str) -> Outcome:
    atts = load_attestations(ctx.inventory)
    outcome, chosen = judge_attestations(atts, ctx.control.id, check_id, ctx.now.date(),
                                         ctx.target.name)
    if chosen is not None:
        record_attestation(ctx, chosen)
    return outcome


def _registers_or_fallback(ctx: CheckContext, needed: Sequence[str], check_id: str,
                           ) -> dict[str, Register] | Outcome:
    regs = ctx.target.spec.get("registers", {})
    missing = [k for k in needed if k not in regs]
    if missing:
        outcome = _by_attestation(ctx, check_id)
        if outcome.status != Status.MANUAL:
            return outcome
        wanted = " and ".join(f"organisation.registers.{k}" for k in missing)
        return Outcome.manual(f"{ctx.target.name}: no {' or '.join(missing)} register; add "
                              f"{wanted} to the inventory (or an attestation for "
                              f"{ctx.control.id} to organisation.attestations)")
    loaded = {k: load_register(ctx.inventory.resolve(regs[k]), k) for k in needed}
    for reg in loaded.values():
        record_register(ctx, reg)
    return loaded


def aware_training(ctx: CheckContext) -> Outcome:
    regs = _registers_or_fallback(ctx, ("staff", "training"), "org.aware.training")
    if isinstance(regs, Outcome):
        return regs
    outcome, details = judge_training(
        regs["staff"].rows, regs["training"].rows, ctx.now.date(),
        min_share=float(ctx.params["min_share"]), period_days=int(ctx.params["period_days"]),
        courses=ctx.params.get("courses", []), target=ctx.target.name)
    if details:
        _note_details(ctx, "training coverage", details)
    return outcome


def aware_confidentiality(ctx: CheckContext) -> Outcome:
    regs = _registers_or_fallback(ctx, ("staff", "confidentiality"), "org.aware.confidentiality")
    if isinstance(regs, Outcome):
        return regs
    outcome, details = judge_confidentiality(regs["staff"].rows, regs["confidentiality"].rows,
                                             ctx.now.date(), target=ctx.target.name)
    if details:
        _note_details(ctx, "confidentiality coverage", details)
    return outcome


def phys_access_review(ctx: CheckContext) -> Outcome:
    return _by_attestation(ctx, "org.phys.access-review")


CHECKS = (
    CheckSpec("org.aware.training", TargetKind.ORGANISATION, aware_training,
              "staff trained in the last 12 months below the threshold",
              {"min_share": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.95},
               "period_days": {"type": "integer", "minimum": 1, "default": 365},
               "courses": {"type": "array", "items": {"type": "string"}, "default": [],
                           "description": "only these courses count (default: any)"}}),
    CheckSpec("org.aware.confidentiality", TargetKind.ORGANISATION, aware_confidentiality,
              "a staff member has no signed confidentiality record", {}),
    CheckSpec("org.phys.access-review", TargetKind.ORGANISATION, phys_access_review,
              "no valid (unexpired) physical access review attestation", {}),
)
