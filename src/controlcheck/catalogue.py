"""The control catalogue: one YAML file per family, validated with file:line errors.

Controls are data.  A control quotes the promise it enforces, maps to
framework clauses, names the target kinds it applies to and lists its checks
(stable ids from the probe registry) with parameters.  Parameters are checked
against the probe's declared parameters so a typo fails ``validate``, not a
run three hours later.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from controlcheck.model import Severity, TargetKind
from controlcheck.yamlio import ConfigError, Document, load_yaml, validate

FRAMEWORKS = {
    "gdpr": "GDPR (EU 2016/679)",
    "iso27001": "ISO/IEC 27001:2022 Annex A",
    "cis": "CIS Controls v8",
    "nist": "NIST SP 800-53 Rev. 5",
}


@dataclass(frozen=True)
class CheckRef:
    id: str
    params: Mapping[str, Any]
    severity: Severity | None = None


@dataclass(frozen=True)
class Control:
    id: str
    family: str
    title: str
    promise_nl: str
    promise_en: str
    severity: Severity
    applies_to: tuple[TargetKind, ...]
    frameworks: Mapping[str, tuple[str, ...]]
    checks: tuple[CheckRef, ...]
    description: str = ""
    remediation: str = ""
    only: tuple[str, ...] = ()
    source: str = ""

    def severity_of(self, check: CheckRef) -> Severity:
        return check.severity or self.severity


@dataclass
class Catalogue:
    controls: list[Control]
    digest: str
    files: list[Path] = field(default_factory=list)

    def get(self, control_id: str) -> Control:
        for c in self.controls:
            if c.id == control_id:
                return c
        raise KeyError(control_id)

    def select(self, only: Sequence[str] = (), framework: str | None = None) -> Catalogue:
        """Controls whose id, family or check id matches ``only``; mapped to ``framework``."""
        chosen = self.controls
        if only:
            wanted = {o.lower() for o in only}
            picked = []
            for c in chosen:
                if c.id.lower() in wanted or c.family.lower() in wanted:
                    picked.append(c)
                    continue
                # A check id selects just that check, not its siblings in the control.
                checks = tuple(ch for ch in c.checks if ch.id.lower() in wanted)
                if checks:
                    picked.append(dataclasses.replace(c, checks=checks))
            chosen = picked
        if framework:
            chosen = [c for c in chosen if c.frameworks.get(framework)]
        return Catalogue(chosen, self.digest, self.files)


def default_catalogue_dir() -> Path:
    return Path(str(resources.files("controlcheck") / "data" / "controls"))


def load_catalogue(directory: Path | None = None,
                   checks: Mapping[str, Any] | None = None) -> Catalogue:
    """Load every ``*.yaml`` in ``directory`` (default: the packaged catalogue).

    ``checks`` is the probe registry that decides which check ids exist
    (default: the real one).
    """
    from controlcheck.probes import registry

    directory = directory or default_catalogue_dir()
    if directory.is_file():
        files = [directory]
    elif directory.is_dir():
        files = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml"))
    else:
        raise ConfigError(directory, None, "catalogue directory not found; pass -c DIR")
    if not files:
        raise ConfigError(directory, None, "no *.yaml control files in this directory")
    checks = registry() if checks is None else checks
    controls: list[Control] = []
    seen: dict[str, str] = {}
    hasher = hashlib.sha256()
    for path in files:
        doc = load_yaml(path)
        hasher.update(path.name.encode() + b"\0" + path.read_bytes())
        validate(doc, "catalogue.schema.json")
        for i, raw in enumerate(doc.data["controls"]):
            control = _control(doc, i, raw, checks)
            if control.id in seen:
                raise doc.error(("controls", i, "id"),
                                f"duplicate control id {control.id!r} (first at {seen[control.id]})")
            seen[control.id] = control.source
            controls.append(control)
    return Catalogue(controls, hasher.hexdigest(), files)


def _control(doc: Document, i: int, raw: Mapping[str, Any], checks: Mapping[str, Any]) -> Control:
    family = doc.data["family"]
    if not raw["id"].startswith(family + "-"):
        raise doc.error(("controls", i, "id"),
                        f"control id {raw['id']!r} must start with its family '{family}-'")
    applies = tuple(TargetKind(k) for k in raw["applies_to"])
    refs: list[CheckRef] = []
    seen_checks: set[str] = set()
    for j, ch in enumerate(raw["checks"]):
        where = ("controls", i, "checks", j)
        spec = checks.get(ch["id"])
        if spec is None:
            close = sorted(k for k in checks if k.split(".")[:2] == ch["id"].split(".")[:2])
            hint = f"; did you mean one of: {', '.join(close)}" if close else ""
            raise doc.error(where + ("id",), f"unknown check {ch['id']!r}{hint}")
        if ch["id"] in seen_checks:
            raise doc.error(where + ("id",), f"check {ch['id']!r} listed twice in {raw['id']}")
        seen_checks.add(ch["id"])
        if spec.target_kind not in applies:
            raise doc.error(where + ("id",),
                            f"check {ch['id']!r} runs on {spec.target_kind.value} targets but "
                            f"{raw['id']} applies_to {', '.join(a.value for a in applies)}")
        params = {**spec.defaults(), **ch.get("params", {})}
        _validate_params(doc, where, ch["id"], ch.get("params", {}), spec.params)
        sev = Severity(ch["severity"]) if "severity" in ch else None
        refs.append(CheckRef(ch["id"], params, sev))
    fw = {k: tuple(v) for k, v in raw["frameworks"].items()}
    return Control(
        id=raw["id"], family=family, title=raw["title"], promise_nl=raw["promise"]["nl"],
        promise_en=raw["promise"]["en"], severity=Severity(raw["severity"]), applies_to=applies,
        frameworks=fw, checks=tuple(refs), description=raw.get("description", ""),
        remediation=raw.get("remediation", ""), only=tuple(raw.get("only", [])),
        source=f"{doc.path}:{doc.line_of(('controls', i))}")


def _validate_params(doc: Document, where: tuple[str | int, ...], check_id: str,
                     given: Mapping[str, Any], declared: Mapping[str, Any]) -> None:
    schema = {"type": "object", "additionalProperties": False, "properties": dict(declared)}
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(given),
                    key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return
    err = errors[0]
    if err.validator == "additionalProperties":
        extra = sorted(set(given) - set(declared))
        known = ", ".join(sorted(declared)) or "none"
        raise doc.error(where + ("params", extra[0]),
                        f"unknown parameter {extra[0]!r} for {check_id}; known: {known}")
    key = where + ("params",) + tuple(err.absolute_path)
    raise doc.error(key, f"parameter {'/'.join(map(str, err.absolute_path))} of {check_id}: "
                         f"{err.message}")
