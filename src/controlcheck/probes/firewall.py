"""firewall checks — scaffold: every check answers error until its probe lands."""

from __future__ import annotations

from controlcheck.model import Outcome, TargetKind
from controlcheck.probes.base import CheckContext, CheckSpec


def _not_implemented(ctx: CheckContext) -> Outcome:
    return Outcome.error("this check's probe is not implemented yet")


CHECKS = (
    CheckSpec('host.firewall.default-deny', TargetKind.HOST, _not_implemented,
              'no active firewall with a default-deny input policy',
              {}),
    CheckSpec('host.firewall.listening-allowed', TargetKind.HOST, _not_implemented,
              "a socket listens on a port outside the host's allowlist",
              {}),
)
