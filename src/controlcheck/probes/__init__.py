"""The one explicit registry of checks.

Each family module exposes ``CHECKS: tuple[CheckSpec, ...]``; this list of
modules is the whole registry (no import-time magic, no decorators that
register as a side effect).  ``tests/test_registry.py`` checks that every
check named in the catalogue exists and every registered check is used.
"""

from __future__ import annotations

import importlib
from functools import cache

from controlcheck.probes.base import CheckSpec

FAMILY_MODULES = (
    "controlcheck.probes.patch",
    "controlcheck.probes.firewall",
    "controlcheck.probes.access",
    "controlcheck.probes.network",
    "controlcheck.probes.app",
    "controlcheck.probes.tls",
    "controlcheck.probes.av",
    "controlcheck.probes.devices",
    "controlcheck.probes.backup",
    "controlcheck.probes.org",
)


@cache
def registry() -> dict[str, CheckSpec]:
    checks: dict[str, CheckSpec] = {}
    for name in FAMILY_MODULES:
        module = importlib.import_module(name)
        for spec in module.CHECKS:
            if spec.id in checks:
                raise RuntimeError(f"check {spec.id} registered twice ({name})")
            checks[spec.id] = spec
    return checks
