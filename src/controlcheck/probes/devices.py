"""devices checks — scaffold: every check answers error until its probe lands."""

from __future__ import annotations

from controlcheck.model import Outcome, TargetKind
from controlcheck.probes.base import CheckContext, CheckSpec


def _not_implemented(ctx: CheckContext) -> Outcome:
    return Outcome.error("this check's probe is not implemented yet")


CHECKS = (
    CheckSpec('device.av.coverage', TargetKind.DEVICES, _not_implemented,
              'a desktop/laptop of the asset list has no healthy, recent AV record',
              {'max_age_days': {'type': 'integer', 'minimum': 0, 'default': 7}}),
)
