"""Desktops and laptops: the asset list against an AV/EDR/MDM export.

The inventory names both files (``devices: {assets: ..., register: ...,
max_age_days: N}``).  The export may be

- controlcheck's own CSV/JSON (``device, av_product, healthy, signature_date,
  last_seen``; see ``data/schemas/registers.schema.json`` ``device_av``), or
- Microsoft Defender for Endpoint's "Export device antivirus health details"
  (``GET /api/deviceavinfo``: ``{"value": [{computerDnsName, avMode,
  lastSeenTime, avSignaturePublishTime, avIsSignatureUpToDate, ...}]}``, or the
  same columns as CSV).  Field names and the avMode codes ('0' active,
  '1' passive, '2' disabled, '3' other, '4' EDR blocked, '5' passive audit)
  are from https://learn.microsoft.com/en-us/defender-endpoint/api/device-health-export-antivirus-health-report-api
  and .../api/device-health-api-methods-properties.  Only mode '0' counts
  as healthy: in passive mode Defender does not block, and the primary AV
  must then be shown by its own export.

A desktop/laptop fails when it has no record, its record is unhealthy, its
signatures are older than ``signature_max_age_days`` (or unknown), or it was
not seen within ``max_age_days``.  The inventory's ``devices.max_age_days``
can only make the last-seen limit stricter than the control's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from controlcheck.model import Outcome, TargetKind
from controlcheck.probes.base import CheckContext, CheckSpec
from controlcheck.registers import DEVICE_AV_KINDS, Register, Row, detect_kind, load_register

DEFENDER_PRODUCT = "Microsoft Defender Antivirus"
_DEFENDER_MODES = {"0": "active", "1": "passive", "2": "disabled", "3": "other",
                   "4": "EDR blocked", "5": "passive audit", "": "other"}
LIST_IN_MESSAGE = 10


@dataclass(frozen=True)
class DeviceRecord:
    device: str
    product: str
    healthy: bool
    health_detail: str  # why unhealthy, in the vendor's words
    signature_date: datetime | None
    last_seen: datetime | None
    source: str  # file:line


def records_from(reg: Register) -> list[DeviceRecord]:
    """Normalise either export shape to ``DeviceRecord``s."""
    out = []
    for row in reg.rows:
        if reg.kind == "defender_deviceavinfo":
            mode = str(row.get("avMode", "")).strip()
            healthy = mode == "0"
            detail = "" if healthy else f"Defender avMode {mode or '(empty)'} " \
                                        f"({_DEFENDER_MODES.get(mode, 'unknown')})"
            if str(row.get("avIsSignatureUpToDate", "")).strip().lower() == "false":
                healthy, detail = False, (detail + "; " if detail else "") + \
                    "Defender reports signatures out of date"
            sig = row["avSignaturePublishTime"] or row["avSignatureUpdateTime"]
            out.append(DeviceRecord(row["computerDnsName"], DEFENDER_PRODUCT, healthy, detail,
                                    _dt(sig), _dt(row["lastSeenTime"]), reg.where(row)))
        else:
            out.append(DeviceRecord(row["device"], row["av_product"], row["healthy"],
                                    "" if row["healthy"] else "marked unhealthy",
                                    row["signature_date"], row["last_seen"], reg.where(row)))
    return out


def _dt(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _name_keys(name: str) -> set[str]:
    """A device matches by full name or by its first DNS label (consoles report FQDNs)."""
    low = name.strip().lower()
    return {low, low.split(".", 1)[0]}


@dataclass(frozen=True)
class DeviceFinding:
    device: str
    type: str
    owner: str
    reasons: tuple[str, ...]
    record: str  # source of the record used, or "" when none


def judge_coverage(assets: Sequence[Row], records: Sequence[DeviceRecord], now: datetime, *,
                   max_age_days: int, signature_max_age_days: int,
                   device_types: Sequence[str], target: str = "devices",
                   ) -> tuple[Outcome, dict[str, Any]]:
    """Pure: every in-scope asset needs a healthy, fresh, recently seen record."""
    types = {t.lower() for t in device_types}
    scope = [a for a in assets if a["type"].strip().lower() in types]
    kinds = "/".join(sorted(types))
    if not scope:
        return Outcome.error(
            f"{target}: the asset list has no {kinds} (types found: "
            f"{', '.join(sorted({a['type'] for a in assets})) or 'none'}); check the 'type' "
            f"column or the control's device_types"), {}
    index: dict[str, list[DeviceRecord]] = {}
    for rec in records:
        for key in _name_keys(rec.device):
            index.setdefault(key, []).append(rec)
    seen_limit = now - timedelta(days=max_age_days)
    sig_limit = now - timedelta(days=signature_max_age_days)
    counts = {"no record": 0, "unhealthy": 0, "signatures old": 0, "not seen": 0}
    findings: list[DeviceFinding] = []
    for asset in scope:
        name = asset["device"]
        candidates = {id(r): r for k in _name_keys(name) for r in index.get(k, [])}
        if not candidates:
            counts["no record"] += 1
            findings.append(DeviceFinding(name, asset["type"], asset.get("owner", ""),
                                          ("no AV record in the export",), ""))
            continue
        # Duplicates happen (re-imaged machines): judge the most recently seen record.
        rec = max(candidates.values(), key=lambda r: r.last_seen or datetime.min.replace(
            tzinfo=now.tzinfo))
        reasons = []
        if not rec.healthy:
            counts["unhealthy"] += 1
            reasons.append(f"unhealthy: {rec.health_detail}")
        if rec.signature_date is None or rec.signature_date < sig_limit:
            counts["signatures old"] += 1
            reasons.append("signature date unknown" if rec.signature_date is None else
                           f"signatures from {rec.signature_date:%Y-%m-%d}, older than "
                           f"{signature_max_age_days} days")
        if rec.last_seen is None or rec.last_seen < seen_limit:
            counts["not seen"] += 1
            reasons.append("never seen" if rec.last_seen is None else
                           f"last seen {rec.last_seen:%Y-%m-%d}, more than {max_age_days} "
                           f"days ago")
        if reasons:
            findings.append(DeviceFinding(name, asset["type"], asset.get("owner", ""),
                                          tuple(reasons), rec.source))
    asset_keys = {k for a in assets for k in _name_keys(a["device"])}
    unknown = sorted({r.device for r in records if not _name_keys(r.device) & asset_keys})
    details: dict[str, Any] = {
        "devices_in_scope": len(scope), "compliant": len(scope) - len(findings),
        "max_age_days": max_age_days, "signature_max_age_days": signature_max_age_days,
        **{k.replace(" ", "_"): v for k, v in counts.items()},
        "failing": [f"{f.device} ({f.type}, {f.owner or 'no owner'}): {'; '.join(f.reasons)}"
                    + (f" [{f.record}]" if f.record else "") for f in findings],
        "in_export_but_not_in_asset_list": unknown,
    }
    facts = {k: v for k, v in details.items() if not isinstance(v, list)}
    if not findings:
        return Outcome.passed(
            f"{target}: all {len(scope)} {kinds} devices have healthy AV with signatures "
            f"newer than {signature_max_age_days} days, seen within {max_age_days} days",
            **facts), details
    parts = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    names = ", ".join(f.device for f in findings[:LIST_IN_MESSAGE])
    more = f" and {len(findings) - LIST_IN_MESSAGE} more" if len(findings) > LIST_IN_MESSAGE \
        else ""
    # failing_items: the device names, so a waiver with 'items:' can tell whether it
    # covers every failing device (a waiver for LT-001 must not hide a new DT-002).
    return Outcome.failed(
        f"{target}: {len(findings)} of {len(scope)} {kinds} devices lack healthy, recent AV "
        f"({parts}): {names}{more}; enrol them in the AV/EDR console or repair the agent",
        **facts, failing_items=[f.device for f in findings]), details


def av_coverage(ctx: CheckContext) -> Outcome:
    spec = ctx.target.spec
    assets = load_register(ctx.inventory.resolve(spec["assets"]), "assets")
    reg_path = ctx.inventory.resolve(spec["register"])
    register = load_register(reg_path, detect_kind(reg_path, DEVICE_AV_KINDS))
    for reg in (assets, register):
        ctx.note(f"{reg.kind} export {reg.path.name}", reg.content, kind="file",
                 media_type="application/json" if reg.path.suffix == ".json" else "text/csv",
                 meta={"path": str(reg.path), "sha256": reg.sha256, "rows": len(reg.rows),
                       "format": reg.kind})
    max_age = int(ctx.params["max_age_days"])
    if spec.get("max_age_days") is not None:
        max_age = min(max_age, int(spec["max_age_days"]))  # the inventory may only tighten
    outcome, details = judge_coverage(
        assets.rows, records_from(register), ctx.now, max_age_days=max_age,
        signature_max_age_days=int(ctx.params["signature_max_age_days"]),
        device_types=ctx.params["device_types"], target=ctx.target.name)
    if details:
        lines = [f"{k}: {v}" for k, v in details.items() if not isinstance(v, list)]
        for key in ("failing", "in_export_but_not_in_asset_list"):
            lines.append(f"{key} ({len(details[key])}):")
            lines.extend(f"  - {item}" for item in details[key])
        ctx.note("device AV coverage", "\n".join(lines) + "\n")
    return outcome


CHECKS = (
    CheckSpec("device.av.coverage", TargetKind.DEVICES, av_coverage,
              "a desktop/laptop of the asset list has no healthy, recent AV record",
              {"max_age_days": {"type": "integer", "minimum": 0, "default": 7,
                                "description": "a device must have been seen within this"},
               "signature_max_age_days": {"type": "integer", "minimum": 0, "default": 3},
               "device_types": {"type": "array", "items": {"type": "string"},
                                "default": ["desktop", "laptop"]}}),
)
