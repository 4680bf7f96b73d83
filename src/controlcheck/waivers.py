"""Waivers: accepted risks that turn a ``fail`` into ``waived`` until they expire.

The waiver file (named by ``organisation.waivers``; schema
``data/schemas/waivers.schema.json``)::

    timezone: Europe/Brussels      # optional IANA name; default UTC
    waivers:
      - control: AV-02
        target: "devices"          # glob on the target name
        check: device.av.coverage  # optional: only this check of the control
        items: ["LT-0*", "DT-007"] # optional globs: the failing items it accepts
        reason: Two kiosk PCs are replaced in December; AV cannot be installed.
        approver: Marie Dubois (CISO)
        expires: 2026-12-31        # last day the waiver applies, in ``timezone``
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
  ``expiring_soon`` for the terminal summary;
- ``expires`` is inclusive and read in the file's ``timezone`` (default UTC):
  with ``Europe/Brussels`` a waiver ending 2026-12-31 stops at local midnight,
  not at 01:00 the next day.

``items``: one result can stand for many items (every device of the device
register, every admin of a host, every exposed listener).  A waiver without
``items`` accepts *any* failure of that check on that target, including ones
that appear after it was approved.  With ``items`` it applies only if every
failing item the result names (``ITEM_FACTS``: which fact holds them) matches
one of its globs; otherwise the result stays ``fail`` and the message names the
items the waiver does not cover.  ``items`` on a check that records no failing
items is a ``ConfigError``: we could not tell what it covers.

A waiver naming a control that is not in the catalogue, or a check that is
not a check of its control, is a ``ConfigError`` with file:line at preflight.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from controlcheck.model import CheckResult, Status
from controlcheck.registers import parse_date
from controlcheck.yamlio import ConfigError, Document, load_yaml, validate

if TYPE_CHECKING:
    from controlcheck.catalogue import Catalogue
    from controlcheck.inventory import Inventory

EXPIRY_WARNING_DAYS = 14


@dataclass(frozen=True)
class ItemFact:
    fact: str  # the CheckResult.facts key holding the failing items (a list of str)
    what: str  # for messages: "devices", "admins", ...
    casefold: bool  # device names are matched case-insensitively by the probe too


# Checks whose failing results name their failing items in a fact.  A waiver
# with ``items`` may only name one of these checks.
ITEM_FACTS: dict[str, ItemFact] = {
    "device.av.coverage": ItemFact("failing_items", "devices", True),
    "host.access.admins-approved": ItemFact("unapproved", "admins", False),
    # entries look like "8080/tcp on 0.0.0.0 (nginx)": glob "8080/tcp *"
    "host.firewall.listening-allowed": ItemFact("unexpected", "listeners", False),
}


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
    items: tuple[str, ...] | None = None  # None: the whole check on the target
    tz: tzinfo = UTC  # the day ``expires`` is read in

    def matches(self, result: CheckResult) -> bool:
        return (result.control == self.control and fnmatchcase(result.target, self.target)
                and self.check in (None, result.check))

    def active_on(self, when: date | datetime) -> bool:
        """``when`` as a date is taken as is; a date-time is read in the waiver's timezone."""
        if isinstance(when, datetime):
            aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
            when = aware.astimezone(self.tz).date()
        return when <= self.expires

    def uncovered(self, result: CheckResult) -> list[str] | None:
        """Failing items of ``result`` no glob of ``items`` matches ([] = all covered).

        None when the result names no failing items although the waiver lists
        some: then nobody can tell what it would hide, so it must not apply.
        """
        if self.items is None:
            return []
        spec = ITEM_FACTS.get(result.check)
        failing = result.facts.get(spec.fact) if spec else None
        if spec is None or not isinstance(failing, list) or not failing:
            return None
        fold: Callable[[str], str] = str.casefold if spec.casefold else str
        globs = [fold(g) for g in self.items]
        return [str(item) for item in failing
                if not any(fnmatchcase(fold(str(item)), g) for g in globs)]

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"control": self.control, "target": self.target,
                                "reason": self.reason, "approver": self.approver,
                                "expires": self.expires.isoformat(), "source": self.source}
        if self.check:
            data["check"] = self.check
        if self.reference:
            data["reference"] = self.reference
        if self.items is not None:
            data["items"] = list(self.items)
        if self.tz is not UTC:
            data["timezone"] = str(self.tz)
        return data


def load_waivers(path: Path) -> list[Waiver]:
    doc = load_yaml(path)
    if doc.data is None:
        raise ConfigError(path, 1, "empty waiver file; write 'waivers: []' or list waivers")
    validate(doc, "waivers.schema.json")
    tz: tzinfo = UTC
    if "timezone" in doc.data:
        name = doc.data["timezone"]
        try:
            tz = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise doc.error(("timezone",), f"timezone: unknown IANA time zone {name!r} "
                                           "(e.g. Europe/Brussels, UTC)") from None
    out = []
    for i, raw in enumerate(doc.data["waivers"]):
        try:
            expires = parse_date(raw["expires"])
        except ValueError as exc:
            raise doc.error(("waivers", i, "expires"), f"expires: {exc}") from None
        items = raw.get("items")
        check = raw.get("check")
        if items is not None and check is not None and check not in ITEM_FACTS:
            raise _no_items_error(doc, i, [check])
        out.append(Waiver(control=raw["control"], target=raw["target"], check=check,
                          reason=raw["reason"].strip(), approver=raw["approver"].strip(),
                          expires=expires, reference=raw.get("reference", ""),
                          source=f"{path}:{doc.line_of(('waivers', i))}",
                          items=None if items is None else tuple(items), tz=tz))
    return out


def _no_items_error(doc: Document, i: int, checks: Sequence[str]) -> ConfigError:
    return doc.error(
        ("waivers", i, "items"),
        f"items: {', '.join(checks)} records no failing items, so a waiver cannot be limited "
        f"to some of them; drop 'items' (the waiver then covers every failure of the check "
        f"on the target) or waive one of: {', '.join(sorted(ITEM_FACTS))}")


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
        if w.items is not None and w.check is None:
            # no 'check': the items must be decidable for every check of the control
            blind = [c for c in known[w.control] if c not in ITEM_FACTS]
            if blind:
                raise _no_items_error(doc, i, blind)


class WaiverHook:
    """Engine result hook; the day is fixed when the run starts (one rule for the run).

    ``when`` is the run's start: a date-time (read in each waiver's timezone)
    or, for callers that already know the day, a date.
    """

    def __init__(self, waivers: Iterable[Waiver], when: date | datetime) -> None:
        self.waivers = list(waivers)
        self.when = when

    def __call__(self, result: CheckResult) -> CheckResult:
        if result.status != Status.FAIL:
            return result
        matching = [w for w in self.waivers if w.matches(result)]
        if not matching:
            return result
        active = [w for w in matching if w.active_on(self.when)]
        covering = [w for w in active if w.uncovered(result) == []]
        if covering:
            w = max(covering, key=lambda x: x.expires)
            return dataclasses.replace(
                result, status=Status.WAIVED, waiver=w.as_dict(),
                message=f"waived until {w.expires} ({w.approver}: {w.reason}) — {result.message}")
        if active:  # every active waiver lists items and misses some: say which
            notes = []
            for w in active:
                left = w.uncovered(result)
                if left is None:
                    notes.append(f"the waiver at {w.source} lists items but this result names "
                                 "no failing items, so it cannot apply")
                else:
                    what = ITEM_FACTS[result.check].what
                    notes.append(f"the waiver at {w.source} does not cover {what} "
                                 f"{', '.join(left)}")
            return dataclasses.replace(
                result, message=f"{result.message} — not waived: {'; '.join(notes)}; fix "
                                "them or add them to the waiver's items")
        w = max(matching, key=lambda x: x.expires)
        return dataclasses.replace(
            result, message=f"{result.message} — waiver expired on {w.expires} "
                            f"({w.source}); renew it or fix the finding")


def waiver_hooks(inventory: Inventory, clock: Callable[[], datetime]) -> list[WaiverHook]:
    """The hooks ``controlcheck run`` passes to the engine (none without a waiver file)."""
    path = waiver_path(inventory)
    if path is None:
        return []
    return [WaiverHook(load_waivers(path), clock())]


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
