"""av checks — scaffold: every check answers error until its probe lands."""

from __future__ import annotations

from controlcheck.model import Outcome, TargetKind
from controlcheck.probes.base import CheckContext, CheckSpec


def _not_implemented(ctx: CheckContext) -> Outcome:
    return Outcome.error("this check's probe is not implemented yet")


CHECKS = (
    CheckSpec('host.av.engine', TargetKind.HOST, _not_implemented,
              'no antivirus engine installed or its daemon not running',
              {}),
    CheckSpec('host.av.signatures-fresh', TargetKind.HOST, _not_implemented,
              'signatures older than max_age_days',
              {'max_age_days': {'type': 'integer', 'minimum': 0, 'default': 2}}),
    CheckSpec('host.av.detects-eicar', TargetKind.HOST, _not_implemented,
              'the engine does not detect the EICAR test file',
              {}),
)
