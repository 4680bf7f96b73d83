"""TLS profiles: packaged YAML data (``data/tls_profiles``), chosen by name or a path.

A profile is what one published guideline allows.  ``mozilla-intermediate`` (the
default) is Mozilla 6.0; versioned ids (``mozilla-intermediate-5.7``) pin a version.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from controlcheck.yamlio import ConfigError, load_yaml, validate

DEFAULT_PROFILE = "mozilla-intermediate"


@dataclass(frozen=True)
class Profile:
    id: str
    title: str
    source: str
    date: str
    protocols: frozenset[str]
    protocols_phase_out: frozenset[str]
    suites: frozenset[str]
    suites_phase_out: frozenset[str]
    groups: tuple[str, ...]
    rsa_min_bits: int
    rsa_phase_out_below: int
    ec_min_bits: int
    forbidden_hashes: frozenset[str]
    ssh: dict[str, tuple[str, ...]]
    path: str

    @property
    def label(self) -> str:
        return f"{self.title} ({self.date})"

    def suite_level(self, name: str) -> str:
        """``allowed``, ``phase-out`` or ``outside`` for an IANA suite name."""
        if name in self.suites:
            return "allowed"
        if name in self.suites_phase_out:
            return "phase-out"
        return "outside"


def profile_dir() -> Path:
    return Path(str(resources.files("controlcheck") / "data" / "tls_profiles"))


@cache
def _index() -> dict[str, Path]:
    names: dict[str, Path] = {}
    for path in sorted(profile_dir().glob("*.yaml")):
        doc = load_yaml(path)
        names[doc.data["id"]] = path
        for alias in doc.data.get("aliases", []):
            names[alias] = path
    return names


def known_profiles() -> list[str]:
    return sorted(_index())


@cache
def load_profile(name_or_path: str) -> Profile:
    """A packaged profile by id/alias, or a YAML file; ``ConfigError`` (file:line) if bad."""
    path = _index().get(name_or_path)
    if path is None:
        candidate = Path(name_or_path).expanduser()
        if not candidate.is_file():
            raise ConfigError(name_or_path, None,
                              f"unknown TLS profile; known: {', '.join(known_profiles())}, "
                              "or give the path of a profile YAML file")
        path = candidate
    doc = load_yaml(path)
    validate(doc, "tls_profile.schema.json")
    data: dict[str, Any] = doc.data
    from controlcheck.transports.tls_suites import NAME_TO_CODE

    for key in ("allowed", "phase_out"):
        for i, suite in enumerate(data["cipher_suites"].get(key, [])):
            if suite not in NAME_TO_CODE:
                raise doc.error(("cipher_suites", key, i),
                                f"unknown cipher suite {suite!r}; use its IANA name")
    cert = data["certificate"]
    ssh = data.get("ssh", {})
    return Profile(
        id=data["id"], title=data["title"], source=data["source"], date=str(data["date"]),
        protocols=frozenset(data["protocols"]["allowed"]),
        protocols_phase_out=frozenset(data["protocols"].get("phase_out", [])),
        suites=frozenset(data["cipher_suites"]["allowed"]),
        suites_phase_out=frozenset(data["cipher_suites"].get("phase_out", [])),
        groups=tuple(data.get("groups", [])),
        rsa_min_bits=int(cert.get("rsa_min_bits", 2048)),
        rsa_phase_out_below=int(cert.get("rsa_phase_out_below", 0)),
        ec_min_bits=int(cert.get("ec_min_bits", 256)),
        forbidden_hashes=frozenset(cert.get("forbidden_signature_hashes", ["md5", "sha1"])),
        ssh={k: tuple(v) for k, v in ssh.items() if k.startswith("weak_")},
        path=str(path))
