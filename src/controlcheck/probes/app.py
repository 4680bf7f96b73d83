"""app checks — scaffold: every check answers error until its probe lands."""

from __future__ import annotations

from controlcheck.model import Outcome, TargetKind
from controlcheck.probes.base import CheckContext, CheckSpec


def _not_implemented(ctx: CheckContext) -> Outcome:
    return Outcome.error("this check's probe is not implemented yet")


CHECKS = (
    CheckSpec('app.access.anonymous-refused', TargetKind.APPLICATION, _not_implemented,
              'an endpoint that needs login answers an anonymous request with content',
              {}),
    CheckSpec('app.access.tenant-isolation', TargetKind.APPLICATION, _not_implemented,
              "one customer's credentials read another customer's resource",
              {}),
)
