"""org checks — scaffold: every check answers error until its probe lands."""

from __future__ import annotations

from controlcheck.model import Outcome, TargetKind
from controlcheck.probes.base import CheckContext, CheckSpec


def _not_implemented(ctx: CheckContext) -> Outcome:
    return Outcome.error("this check's probe is not implemented yet")


CHECKS = (
    CheckSpec('org.aware.training', TargetKind.ORGANISATION, _not_implemented,
              'staff trained in the last 12 months below the threshold',
              {'min_share': {'type': 'number', 'minimum': 0, 'maximum': 1, 'default': 0.95}, 'period_days': {'type': 'integer', 'minimum': 1, 'default': 365}}),
    CheckSpec('org.aware.confidentiality', TargetKind.ORGANISATION, _not_implemented,
              'a staff member has no signed confidentiality record',
              {}),
    CheckSpec('org.phys.access-review', TargetKind.ORGANISATION, _not_implemented,
              'no valid (unexpired) physical access review attestation',
              {}),
)
