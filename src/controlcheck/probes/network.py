"""network checks — scaffold: every check answers error until its probe lands."""

from __future__ import annotations

from controlcheck.model import Outcome, TargetKind
from controlcheck.probes.base import CheckContext, CheckSpec


def _not_implemented(ctx: CheckContext) -> Outcome:
    return Outcome.error("this check's probe is not implemented yet")


CHECKS = (
    CheckSpec('net.firewall.reachability', TargetKind.HOST, _not_implemented,
              'from a scanner zone, a port answers that the zone may not reach',
              {}),
    CheckSpec('net.access.management-exposure', TargetKind.HOST, _not_implemented,
              'a management port is reachable from an application/public zone',
              {}),
)
