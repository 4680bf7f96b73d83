"""Inventory: what controls are checked against, loaded and validated with file:line.

An inventory is one YAML file (or a directory of them) with sections
``hosts``, ``endpoints``, ``applications``, ``devices``, ``organisation``,
``zones`` and ``access_register``.  Each entry becomes a ``Target``; the
validated mapping stays available as ``Target.spec`` so a probe reads the
fields it needs without this module knowing every family.
"""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from importlib import resources
from pathlib import Path
from typing import Any

from controlcheck.model import TargetKind
from controlcheck.yamlio import ConfigError, Document, load_yaml, validate

_PORT_RE = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?(?:/(tcp|udp))?$")


@dataclass(frozen=True)
class PortRule:
    first: int
    last: int
    proto: str = "tcp"

    def covers(self, port: int, proto: str = "tcp") -> bool:
        return self.proto == proto and self.first <= port <= self.last

    def __str__(self) -> str:
        span = str(self.first) if self.first == self.last else f"{self.first}-{self.last}"
        return f"{span}/{self.proto}"


def parse_ports(specs: Iterable[int | str]) -> tuple[PortRule, ...]:
    """``[22, "80/tcp", "8000-8010/tcp", "53/udp"]`` → rules (schema already checked form)."""
    rules = []
    for spec in specs:
        m = _PORT_RE.match(str(spec))
        if not m:
            raise ValueError(f"bad port spec {spec!r}")
        first = int(m.group(1))
        last = int(m.group(2) or first)
        if not (1 <= first <= last <= 65535):
            raise ValueError(f"bad port range {spec!r}")
        rules.append(PortRule(first, last, m.group(3) or "tcp"))
    return tuple(rules)


def ports_cover(rules: Sequence[PortRule], port: int, proto: str = "tcp") -> bool:
    return any(r.covers(port, proto) for r in rules)


@dataclass(frozen=True)
class Target:
    """Something a control is checked against."""

    name: str
    kind: TargetKind
    spec: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    source: str = ""  # "file:line" of its definition, for messages

    def matches(self, pattern: str) -> bool:
        """Glob on name, any group or any tag (``web*``, ``prod``)."""
        return any(fnmatchcase(v, pattern) for v in (self.name, *self.groups, *self.tags))

    @property
    def allowed_ports(self) -> tuple[PortRule, ...]:
        return parse_ports(self.spec.get("allowed_ports", []))


@dataclass
class Inventory:
    path: Path | None
    base_dir: Path
    targets: list[Target]
    organisation: Mapping[str, Any]
    zones: Mapping[str, Mapping[str, Any]]
    access_register: list[Mapping[str, Any]]
    digest: str
    documents: list[Document] = field(default_factory=list)

    def of_kind(self, kind: TargetKind) -> list[Target]:
        return [t for t in self.targets if t.kind == kind]

    def resolve(self, relative: str) -> Path:
        """A path written in the inventory, relative to the inventory's folder."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def limited(self, patterns: Sequence[str]) -> Inventory:
        """Only targets matching any pattern (organisation-level targets always stay)."""
        if not patterns:
            return self
        keep = [t for t in self.targets
                if t.kind == TargetKind.ORGANISATION or any(t.matches(p) for p in patterns)]
        return Inventory(self.path, self.base_dir, keep, self.organisation, self.zones,
                         self.access_register, self.digest, self.documents)


_SECTION_KIND = {"hosts": TargetKind.HOST, "endpoints": TargetKind.ENDPOINT,
                 "applications": TargetKind.APPLICATION}


def default_inventory_path() -> Path:
    return Path(str(resources.files("controlcheck") / "data" / "inventory" / "default.yaml"))


def load_inventory(path: Path | None = None) -> Inventory:
    """Load and validate an inventory file or directory; ``None`` → the local machine."""
    path = path or default_inventory_path()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        if not files:
            raise ConfigError(path, None, "no *.yaml inventory files in this directory")
        base_dir = path
    else:
        files = [path]
        base_dir = path.parent
    docs = [_load_one(f) for f in files]
    return _build(path, base_dir, docs)


def _load_one(path: Path) -> Document:
    if path.suffix in (".ini", ".cfg") or path.name == "hosts":
        from controlcheck.ansible_inventory import load_ansible_inventory

        return load_ansible_inventory(path)
    doc = load_yaml(path)
    if doc.data is None:
        doc.data = {}
    if isinstance(doc.data, dict) and "all" in doc.data and "hosts" not in doc.data:
        from controlcheck.ansible_inventory import load_ansible_inventory

        return load_ansible_inventory(path)
    validate(doc, "inventory.schema.json")
    return doc


def _build(path: Path, base_dir: Path, docs: list[Document]) -> Inventory:
    targets: list[Target] = []
    seen: dict[tuple[TargetKind, str], str] = {}
    organisation: dict[str, Any] = {}
    zones: dict[str, Mapping[str, Any]] = {}
    access: list[Mapping[str, Any]] = []
    hasher = hashlib.sha256()
    for doc in docs:
        hasher.update(doc.path.name.encode() + b"\0")
        hasher.update(doc.path.read_bytes() if doc.path.exists() else b"")
        data = doc.data
        organisation.update(data.get("organisation", {}))
        for name, zone in data.get("zones", {}).items():
            zones[name] = zone
        access.extend(data.get("access_register", []))
        defaults = data.get("defaults", {})
        for section, kind in _SECTION_KIND.items():
            for i, entry in enumerate(data.get(section, [])):
                spec = {**defaults, **entry} if kind == TargetKind.HOST else dict(entry)
                where = f"{doc.path}:{doc.line_of((section, i))}"
                key = (kind, spec["name"])
                if key in seen:
                    raise doc.error((section, i, "name"),
                                    f"duplicate {kind.value} name {spec['name']!r} "
                                    f"(first defined at {seen[key]}); names must be unique")
                seen[key] = where
                _check_host_refs(doc, section, i, spec, data.get("zones", {}) or zones)
                targets.append(Target(spec["name"], kind, spec, tuple(spec.get("tags", [])),
                                      tuple(spec.get("groups", [])), where))
        if "devices" in data:
            targets.append(Target("devices", TargetKind.DEVICES, data["devices"], (), (),
                                  f"{doc.path}:{doc.line_of(('devices',))}"))
        _check_files(doc, base_dir)
    org_name = organisation.get("name") or "organisation"
    targets.append(Target(org_name, TargetKind.ORGANISATION, organisation))
    return Inventory(path, base_dir, targets, organisation, zones, access,
                     hasher.hexdigest(), docs)


def _check_host_refs(doc: Document, section: str, i: int, spec: Mapping[str, Any],
                     zones: Mapping[str, Any]) -> None:
    for zone in spec.get("zone_access", {}):
        if zone not in zones:
            known = ", ".join(sorted(zones)) or "none defined"
            raise doc.error((section, i, "zone_access", zone),
                            f"unknown zone {zone!r}; define it under 'zones:' (known: {known})")
    if section == "hosts" and spec.get("transport", "ssh") == "ssh" and not spec.get("address"):
        # An SSH host without an address uses its name; that is fine only if it is a real name.
        if not re.match(r"^[A-Za-z0-9.-]+$", spec["name"]):
            raise doc.error((section, i, "name"),
                            f"host {spec['name']!r} has no 'address' and its name is not a hostname")


def _check_files(doc: Document, base_dir: Path) -> None:
    """Registers, attestations and waivers must exist before any probe runs."""
    org = doc.data.get("organisation", {})
    refs: list[tuple[tuple[str | int, ...], str]] = []
    for key, rel in org.get("registers", {}).items():
        refs.append((("organisation", "registers", key), rel))
    for j, rel in enumerate(org.get("attestations", [])):
        refs.append((("organisation", "attestations", j), rel))
    if "waivers" in org:
        refs.append((("organisation", "waivers"), org["waivers"]))
    dev = doc.data.get("devices")
    if dev:
        refs += [(("devices", "assets"), dev["assets"]), (("devices", "register"), dev["register"])]
    for key, rel in refs:
        p = Path(rel).expanduser()
        p = p if p.is_absolute() else base_dir / p
        if not p.is_file():
            raise doc.error(key, f"file {rel!r} not found (looked at {p}); fix the path")


def local_hostname() -> str:
    return socket.gethostname() or "localhost"
