"""Attestations: signed human statements that decide checks no probe can run.

What an attestation may decide (a deliberate limit): only **organisation
checks** (``org.*``), never an automated probe.  ``org.phys.access-review``
is decided by attestations alone; the AWARE checks are decided by their
registers and fall back to an attestation only when the registers are not
in the inventory.  An attestation naming a control that has no ``org.*``
check is a configuration error, so nobody believes a statement silently
overrides (or is silently ignored by) a TLS or firewall probe.

One YAML file per attestation (schema: ``data/schemas/attestation.schema.json``)::

    control: PHYS-01
    who: Jan Peeters
    role: Facility manager
    date: 2026-10-01
    valid_until: 2027-03-31
    statement: Badge access list reviewed against HR leavers; 3 badges revoked.
    files: [badge-review-2026Q4.pdf]      # or {path: ..., sha256: ...} to pin it

Valid means ``date <= today <= valid_until`` (both days included).  Attached
files are hashed when loaded; a pinned ``sha256`` that no longer matches is
a configuration error (the file changed after it was signed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controlcheck.model import Outcome
from controlcheck.registers import parse_date
from controlcheck.yamlio import ConfigError, Document, load_yaml, validate

if TYPE_CHECKING:
    from controlcheck.catalogue import Catalogue
    from controlcheck.inventory import Inventory

ORG_CHECK_PREFIX = "org."


@dataclass(frozen=True)
class AttachedFile:
    name: str  # as written in the attestation
    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class Attestation:
    path: Path
    line: int | None
    control: str | None
    check: str | None
    who: str
    role: str
    date: dt.date
    valid_until: dt.date
    statement: str
    reference: str = ""
    files: tuple[AttachedFile, ...] = ()
    sha256: str = ""
    content: bytes = field(default=b"", repr=False)

    def applies_to(self, control_id: str, check_id: str) -> bool:
        return self.control in (None, control_id) and self.check in (None, check_id)

    @property
    def subject(self) -> str:
        return self.control or self.check or "?"

    def signed_by(self) -> str:
        return f"{self.who} ({self.role})"

    def as_dict(self) -> dict[str, Any]:
        return {"file": str(self.path), "sha256": self.sha256, "control": self.control,
                "check": self.check, "who": self.who, "role": self.role,
                "date": self.date.isoformat(), "valid_until": self.valid_until.isoformat(),
                "reference": self.reference,
                "files": [{"path": str(f.path), "sha256": f.sha256, "size": f.size}
                          for f in self.files]}


def load_attestation(path: Path) -> Attestation:
    """Parse, schema-check and hash one attestation file and its attached files."""
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read attestation: {exc.strerror}") from None
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise ConfigError(path, 1, "an attestation is a mapping (control:, who:, role:, date:, "
                                   "valid_until:, statement:)")
    validate(doc, "attestation.schema.json")
    data = doc.data
    signed = _date(doc, "date", data["date"])
    until = _date(doc, "valid_until", data["valid_until"])
    if until < signed:
        raise doc.error(("valid_until",), f"valid_until {until} is before date {signed}; "
                                          f"fix one of them")
    files = tuple(_attached(doc, i, item) for i, item in enumerate(data.get("files", [])))
    return Attestation(path=path, line=doc.line_of(()), control=data.get("control"),
                       check=data.get("check"), who=data["who"].strip(), role=data["role"].strip(),
                       date=signed, valid_until=until, statement=data["statement"].strip(),
                       reference=data.get("reference", ""), files=files,
                       sha256=hashlib.sha256(content).hexdigest(), content=content)


def _date(doc: Document, key: str, value: str) -> dt.date:
    try:
        return parse_date(value)
    except ValueError as exc:
        raise doc.error((key,), f"{key}: {exc}") from None


def _attached(doc: Document, i: int, item: str | Mapping[str, str]) -> AttachedFile:
    name = item if isinstance(item, str) else item["path"]
    pinned = None if isinstance(item, str) else item.get("sha256")
    path = Path(name).expanduser()
    path = path if path.is_absolute() else doc.path.parent / path
    try:
        data = path.read_bytes()
    except OSError:
        raise doc.error(("files", i), f"attached file {name!r} not found (looked at {path}); "
                                      f"fix the path (relative to this attestation)") from None
    digest = hashlib.sha256(data).hexdigest()
    if pinned and pinned.lower() != digest:
        raise doc.error(("files", i), f"attached file {name!r} has sha256 {digest}, not the "
                                      f"pinned {pinned.lower()}: it changed after the attestation "
                                      f"was signed; re-attest or restore the file")
    return AttachedFile(name, path, digest, len(data))


def attestation_paths(inventory: Inventory) -> list[Path]:
    return [inventory.resolve(p) for p in inventory.organisation.get("attestations", [])]


def load_attestations(inventory: Inventory) -> list[Attestation]:
    return [load_attestation(p) for p in attestation_paths(inventory)]


def control_checks(catalogue: Catalogue) -> dict[str, tuple[str, ...]]:
    """control id → its check ids, over the *whole* catalogue.

    ``run --only AWARE`` hands us a selected catalogue; a waiver or attestation
    for a control outside the selection is still valid, so we read the ids
    back from every catalogue file.
    """
    known = {c.id: tuple(ch.id for ch in c.checks) for c in catalogue.controls}
    for path in catalogue.files:
        try:
            data = load_yaml(path).data
        except ConfigError:
            continue  # the catalogue loader already reported it
        for raw in (data or {}).get("controls", []) if isinstance(data, dict) else []:
            if isinstance(raw, dict) and "id" in raw:
                known.setdefault(str(raw["id"]), tuple(
                    str(ch.get("id")) for ch in raw.get("checks", []) if isinstance(ch, dict)))
    return known


def check_attestations(catalogue: Catalogue, inventory: Inventory) -> None:
    """Preflight: every attestation parses and names an organisation check that exists."""
    known = control_checks(catalogue)
    all_checks = {ch for checks in known.values() for ch in checks}
    for path in attestation_paths(inventory):
        att = load_attestation(path)
        doc = load_yaml(path)  # for line numbers of control/check
        if att.control is not None:
            if att.control not in known:
                raise doc.error(("control",), f"unknown control {att.control!r}; "
                                              f"see 'controlcheck controls' for the ids")
            org = [c for c in known[att.control] if c.startswith(ORG_CHECK_PREFIX)]
            if not org:
                raise doc.error(("control",), (
                    f"{att.control} is checked automatically ({', '.join(known[att.control])}); "
                    f"attestations decide only organisation checks (org.*): remove this "
                    f"attestation or, for an accepted failure, write a waiver"))
            if att.check is not None and att.check not in known[att.control]:
                raise doc.error(("check",), f"check {att.check!r} is not a check of "
                                            f"{att.control} ({', '.join(known[att.control])})")
        elif att.check not in all_checks:
            org_checks = sorted(c for c in all_checks if c.startswith(ORG_CHECK_PREFIX))
            raise doc.error(("check",), f"unknown check {att.check!r}; organisation checks: "
                                        f"{', '.join(org_checks)}")


def judge_attestations(atts: Sequence[Attestation], control_id: str, check_id: str,
                       today: dt.date, target: str) -> tuple[Outcome, Attestation | None]:
    """Pure: pass on a valid attestation, fail on expired/future ones, manual on none.

    With several, the valid one lasting longest wins; otherwise the most
    recently expired one is reported so the message says what to renew.
    """
    mine = [a for a in atts if a.applies_to(control_id, check_id)]
    if not mine:
        return Outcome.manual(
            f"{target}: no attestation for {control_id} ({check_id}); add an attestation for "
            f"{control_id} to organisation.attestations (who, role, date, valid_until, "
            f"statement, files)"), None
    valid = [a for a in mine if a.date <= today <= a.valid_until]
    if valid:
        best = max(valid, key=lambda a: (a.valid_until, a.date))
        left = (best.valid_until - today).days
        return Outcome.passed(
            f"{target}: {control_id} attested by {best.signed_by()} on {best.date}, valid until "
            f"{best.valid_until} ({left} days left): {_short(best.statement)}",
            attestation=best.as_dict(), days_left=left), best
    expired = [a for a in mine if a.valid_until < today]
    if expired:
        last = max(expired, key=lambda a: (a.valid_until, a.date))
        return Outcome.failed(
            f"{target}: the attestation for {control_id} by {last.signed_by()} expired on "
            f"{last.valid_until}; renew it: repeat the review and add a new attestation "
            f"to organisation.attestations", attestation=last.as_dict()), last
    future = min(mine, key=lambda a: a.date)
    return Outcome.failed(
        f"{target}: the attestation for {control_id} by {future.signed_by()} is dated "
        f"{future.date}, after today ({today}); correct its date",
        attestation=future.as_dict()), future


def _short(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
