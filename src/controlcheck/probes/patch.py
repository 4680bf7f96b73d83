"""patch checks — scaffold: every check answers error until its probe lands."""

from __future__ import annotations

from controlcheck.model import Outcome, TargetKind
from controlcheck.probes.base import CheckContext, CheckSpec


def _not_implemented(ctx: CheckContext) -> Outcome:
    return Outcome.error("this check's probe is not implemented yet")


CHECKS = (
    CheckSpec('host.patch.security-updates', TargetKind.HOST, _not_implemented,
              'a security update is pending longer than grace_days',
              {'grace_days': {'type': 'integer', 'minimum': 0, 'default': 14}}),
    CheckSpec('host.patch.auto-updates', TargetKind.HOST, _not_implemented,
              'automatic security updates are not configured',
              {}),
    CheckSpec('host.patch.reboot-required', TargetKind.HOST, _not_implemented,
              'the running kernel/libraries are older than installed ones',
              {}),
    CheckSpec('host.patch.os-supported', TargetKind.HOST, _not_implemented,
              'the OS release is past its end of life',
              {'warn_days': {'type': 'integer', 'minimum': 0, 'default': 90}}),
)
