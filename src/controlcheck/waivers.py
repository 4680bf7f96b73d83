"""Waivers: accepted risks that turn a ``fail`` into ``waived`` until they expire.

The waiver file (named by ``organisation.waivers``; schema
``data/schemas/waivers.schema.json``)::

    waivers:
      - control: AV-02
        target: "devices"          # glob on the target name
        check: device.av.coverage  # optional: only this check of the control
        reason: Two kiosk PCs are replaced in December; AV cannot be installed.
        approver: Marie Dubois (CISO)
        expires: 2026-12-31        # last day the waiver applies
        reference: RISK-2026-014

Rules (applied by ``WaiverHook``, an engine result hook, so every reporter
sees the same status):

- only a ``fail`` is touched; ``pass``, ``error``, ``skip``, ``manual`` never are
  (a waiver must not hide that a check could not decide);
- a matching unexpired waiver makes it ``waived`` and the result carries the
  waiver (``CheckResult.waiver``); the original finding stays in the message;
- a matching waiver that has expired leaves the ``fail`` and appends
  "waiver expired on …" so the owner knows to renew or fix;
- waivers expiring within ``EXPIRY_WARNING_DAYS`` are listed by
  ``expiring_soon`` for the terminal summary.

A waiver naming a control that is not in the catalogue, or a check that is
not a check of its control, is a ``ConfigError`` with file:line at preflight.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controlcheck.model import CheckResult, Status
from controlcheck.registers import parse_date
from controlcheck.yamlio import ConfigError, load_yaml, validate

if TYPE_CHECKING:
    from controlcheck.catalogue import Catalogue
    from controlcheck.inventory import Inventory

EXPIRY_WARNING_DAYS = 14


@dataclass(frozen=True)
class Waiver:
    control: str
    target: str
    check: str | None
    reason: str
    approver: str
    expires: date
    reference: str
    source: str  # file:line

    def matches(self, result: CheckResult) -> bool:
        return (result.control == self.control and fnmatchcase(result.target, self.target)
                and self.check in (None, result.check))

    def active_on(self, today: date) -> bool:
        return today <= self.expires

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"control": self.control, "target": self.target,
                                "reason": self.reason, "approver": self.approver,
                                "expires": self.expires.isoformat(), "source": self.source}
        if self.check:
            data["check"] = self.check
        if self.reference:
            data["reference"] = self.reference
        return data


def load_waivers(path: Path) -> list[Waiver]:
    doc = load_yaml(path)
    if doc.data is None:
        raise ConfigError(path, 1, "empty waiver file; write 'waivers: []' or list waivers")
    validate(doc, "waivers.schema.json")
    out = []
    for i, raw in enumerate(doc.data["waivers"]):
        try:
            expires = parse_date(raw["expires"])
        except ValueError as exc:
            raise doc.error(("waivers", i, "expires"), f"expires: {exc}") from None
        out.append(Waiver(control=raw["control"], target=raw["target"], check=raw.get("check"),
                          reason=raw["reason"].strip(), approver=raw["approver"].strip(),
                          expires=expires, reference=raw.get("reference", ""),
                          source=f"{path}:{doc.line_of(('waivers', i))}"))
    return out


def waiver_path(inventory: Inventory) -> Path | None:
    rel = inventory.organisation.get("waivers")
    return inventory.resolve(rel) if rel else None


def check_waivers(catalogue: Catalogue, inventory: Inventory) -> None:
    """Preflight: the waiver file parses and every waiver names a real control (and check)."""
    from controlcheck.attestations import control_checks

    path = waiver_path(inventory)
    if path is None:
        return
    waivers = load_waivers(path)
    if not waivers:
        return
    known = control_checks(catalogue)
    doc = load_yaml(path)
    for i, w in enumerate(waivers):
        if w.control not in known:
            raise doc.error(("waivers", i, "control"),
                            f"unknown control {w.control!r}; see 'controlcheck controls' for ids")
        if w.check is not None and w.check not in known[w.control]:
            raise doc.error(("waivers", i, "check"),
                            f"check {w.check!r} is not a check of {w.control} "
                            f"({', '.join(known[w.control])})")


class WaiverHook:
    """Engine result hook; ``today`` is fixed when the run starts (one rule for the run)."""

    def __init__(self, waivers: Iterable[Waiver], today: date) -> None:
        self.waivers = list(waivers)
        self.today = today

    def __call__(self, result: CheckResult) -> CheckResult:
        if result.status != Status.FAIL:
            return result
        matching = [w for w in self.waivers if w.matches(result)]
        if not matching:
            return result
        active = [w for w in matching if w.active_on(self.today)]
        if active:
            w = max(active, key=lambda x: x.expires)
            return dataclasses.replace(
                result, status=Status.WAIVED, waiver=w.as_dict(),
                message=f"waived until {w.expires} ({w.approver}: {w.reason}) — {result.message}")
        w = max(matching, key=lambda x: x.expires)
        return dataclasses.replace(
            result, message=f"{result.message} — waiver expired on {w.expires} "
                            f"({w.source}); renew it or fix the finding")


def waiver_hooks(inventory: Inventory, clock: Callable[[], datetime]) -> list[WaiverHook]:
    """The hooks ``controlcheck run`` passes to the engine (none without a waiver file)."""
    path = waiver_path(inventory)
    if path is None:
        return []
    return [WaiverHook(load_waivers(path), clock().date())]


def expiring_soon(results: Iterable[CheckResult], today: date,
                  days: int = EXPIRY_WARNING_DAYS) -> list[tuple[CheckResult, int]]:
    """Waived results whose waiver ends within ``days`` (result, days left)."""
    out = []
    for r in results:
        if r.status == Status.WAIVED and r.waiver and "expires" in r.waiver:
            left = (date.fromisoformat(str(r.waiver["expires"])) - today).days
            if left <= days:
                out.append((r, left))
    return out
