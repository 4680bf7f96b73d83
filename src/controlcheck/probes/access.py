"""access checks — scaffold: every check answers error until its probe lands."""

from __future__ import annotations

from controlcheck.model import Outcome, TargetKind
from controlcheck.probes.base import CheckContext, CheckSpec


def _not_implemented(ctx: CheckContext) -> Outcome:
    return Outcome.error("this check's probe is not implemented yet")


CHECKS = (
    CheckSpec('host.access.ssh-config', TargetKind.HOST, _not_implemented,
              'root login, password or empty-password login allowed (sshd -T)',
              {}),
    CheckSpec('host.access.admins-approved', TargetKind.HOST, _not_implemented,
              'an admin-group member is not in the approved access register',
              {}),
    CheckSpec('host.access.uid0', TargetKind.HOST, _not_implemented,
              'an account other than root has UID 0',
              {}),
)
