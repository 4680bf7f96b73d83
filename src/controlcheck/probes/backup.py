"""backup checks — scaffold: every check answers error until its probe lands."""

from __future__ import annotations

from controlcheck.model import Outcome, TargetKind
from controlcheck.probes.base import CheckContext, CheckSpec


def _not_implemented(ctx: CheckContext) -> Outcome:
    return Outcome.error("this check's probe is not implemented yet")


CHECKS = (
    CheckSpec('host.backup.recent', TargetKind.HOST, _not_implemented,
              'newest snapshot older than the RPO',
              {'rpo_hours': {'type': 'number', 'exclusiveMinimum': 0, 'default': 24}}),
    CheckSpec('host.backup.copies', TargetKind.HOST, _not_implemented,
              'fewer than the required copies, or none off-site',
              {'min_copies': {'type': 'integer', 'minimum': 1, 'default': 2}, 'min_offsite': {'type': 'integer', 'minimum': 0, 'default': 1}}),
    CheckSpec('host.backup.integrity', TargetKind.HOST, _not_implemented,
              'no successful repository check within max_age_days',
              {'max_age_days': {'type': 'integer', 'minimum': 0, 'default': 30}}),
    CheckSpec('host.backup.restore-test', TargetKind.HOST, _not_implemented,
              'restoring the canary file fails or its hash differs',
              {}),
)
