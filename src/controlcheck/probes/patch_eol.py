"""The OS end-of-life table (``data/os_eol.yaml``) and its pure judge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from controlcheck.model import Outcome
from controlcheck.yamlio import load_yaml, validate

# os-release IDs that name the same table entry (RHEL clones keep their own entries).
_ID_ALIASES = {"redhat": "rhel", "sled": "sles", "opensuse": "opensuse-leap", "alma": "almalinux"}


@dataclass(frozen=True)
class EolEntry:
    distro: str
    name: str
    release: str
    eol: date
    source: str
    codename: str = ""
    extended_name: str = ""
    extended_kind: str = ""  # "free" or "subscription"
    extended_until: date | None = None


def default_table_path() -> Path:
    return Path(str(resources.files("controlcheck") / "data" / "os_eol.yaml"))


def load_table(path: Path | None = None) -> dict[str, Any]:
    """Load and schema-validate the table (ConfigError with file:line when wrong)."""
    doc = load_yaml(path or default_table_path())
    validate(doc, "os_eol.schema.json")
    data: dict[str, Any] = doc.data
    return data


def _release_key(version_id: str, match: str) -> str:
    parts = version_id.split(".")
    if match == "major":
        return parts[0]
    if match == "major.minor":
        return ".".join(parts[:2])
    return version_id


def lookup(table: Mapping[str, Any], os_release: Mapping[str, str]) -> EolEntry | None:
    os_id = os_release.get("ID", "").lower()
    version_id = os_release.get("VERSION_ID", "")
    distros = table["distributions"]
    distro_id = _ID_ALIASES.get(os_id, os_id)
    if distro_id not in distros or not version_id:
        return None
    dist = distros[distro_id]
    rel = dist["releases"].get(_release_key(version_id, dist["match"]))
    if rel is None:
        return None
    ext = rel.get("extended") or {}
    return EolEntry(
        distro=distro_id, name=dist["name"], release=_release_key(version_id, dist["match"]),
        eol=date.fromisoformat(rel["eol"]), source=dist["source"],
        codename=rel.get("codename", ""), extended_name=ext.get("name", ""),
        extended_kind=ext.get("kind", ""),
        extended_until=date.fromisoformat(ext["until"]) if ext else None)


def judge_os_supported(target: str, os_release: Mapping[str, str], entry: EolEntry | None,
                       params: Mapping[str, Any], now: datetime) -> Outcome:
    pretty = os_release.get("PRETTY_NAME") or \
        f"{os_release.get('ID', '?')} {os_release.get('VERSION_ID', '?')}"
    if not os_release.get("ID"):
        return Outcome.error(f"{target}: /etc/os-release has no ID; cannot tell the OS release")
    if entry is None:
        return Outcome.error(
            f"{target}: {pretty} (ID={os_release.get('ID')}, "
            f"VERSION_ID={os_release.get('VERSION_ID') or 'none'}) is not in the end-of-life "
            "table; add it to os_eol.yaml")
    today = now.date()
    warn_days = int(params["warn_days"])
    accept_sub = bool(params["accept_subscription_support"])
    facts = {"os": pretty, "eol": entry.eol.isoformat(), "source": entry.source}
    end, label = entry.eol, "regular security support"
    if entry.extended_until and (entry.extended_kind == "free" or accept_sub):
        if today > entry.eol:
            end, label = entry.extended_until, entry.extended_name
    facts["supported_until"] = end.isoformat()
    if today > end:
        extra = ""
        if entry.extended_until and today <= entry.extended_until:
            extra = (f"; {entry.extended_name} runs until {entry.extended_until} but needs a "
                     "subscription (set accept_subscription_support: true if this host has it)")
        return Outcome.failed(f"{target}: {pretty} reached end of life on {end} ({label}); "
                              f"upgrade to a supported release{extra} [source: {entry.source}]",
                              **facts)
    left = (end - today).days
    soon = (f"; only {left} days left (fewer than {warn_days}): plan the upgrade"
            if left < warn_days else "")
    return Outcome.passed(f"{target}: {pretty} is supported until {end} ({label}){soon} "
                          f"[source: {entry.source}]", days_left=left, **facts)
