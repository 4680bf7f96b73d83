"""PATCH family: "the servers are updated regularly".

Each check collects through ``patch_collect`` (commands via ``ctx.run``) and judges
with a pure function from ``patch_judges`` / ``patch_eol``.  Design choices a user
should know (also in the messages):

* apt does not record when an update became available.  A pending apt security
  update therefore counts as beyond ``grace_days`` (fail) unless its publication
  date is known; dnf/yum advisories carry an ``Updated`` date, which is used.
* A package index older than ``max_index_age_days`` with no overdue update found
  is ``error`` ("pending updates unknown"), not ``pass``: an old index cannot show
  the updates published since.  Overdue updates found in a stale index still fail.
* In a container (no kernel installed) the kernel comparison is ``skip``: the
  running kernel belongs to the container host.
"""

from __future__ import annotations

from controlcheck.model import Outcome, TargetKind
from controlcheck.probes.base import CheckContext, CheckSpec
from controlcheck.probes.patch_collect import (
    collect_auto_updates,
    collect_reboot,
    collect_updates,
    host_facts,
)
from controlcheck.probes.patch_eol import judge_os_supported, load_table, lookup
from controlcheck.probes.patch_judges import (
    judge_auto_updates,
    judge_reboot,
    judge_security_updates,
)


def check_security_updates(ctx: CheckContext) -> Outcome:
    facts = host_facts(ctx)
    state = collect_updates(ctx, facts)
    return judge_security_updates(ctx.target.name, state, ctx.params, ctx.now)


def check_auto_updates(ctx: CheckContext) -> Outcome:
    facts = host_facts(ctx)
    if facts.manager is None:
        return Outcome.error(f"{ctx.target.name}: no supported package manager: {facts.why}")
    return judge_auto_updates(ctx.target.name, collect_auto_updates(ctx, facts))


def check_reboot_required(ctx: CheckContext) -> Outcome:
    facts = host_facts(ctx)
    return judge_reboot(ctx.target.name, collect_reboot(ctx, facts))


def check_os_supported(ctx: CheckContext) -> Outcome:
    facts = host_facts(ctx)
    table = load_table()
    entry = lookup(table, facts.os_release)
    return judge_os_supported(ctx.target.name, facts.os_release, entry, ctx.params, ctx.now)


CHECKS = (
    CheckSpec('host.patch.security-updates', TargetKind.HOST, check_security_updates,
              'a security update is pending longer than grace_days',
              {'grace_days': {'type': 'integer', 'minimum': 0, 'default': 14,
                              'description': 'days a published security update may stay '
                                             'pending; apt cannot date updates, so there '
                                             'every pending one counts as overdue'},
               'max_index_age_days': {'type': 'integer', 'minimum': 1, 'default': 7,
                                      'description': 'an older package index makes the '
                                                     'result error (pending updates unknown)'}}),
    CheckSpec('host.patch.auto-updates', TargetKind.HOST, check_auto_updates,
              'automatic security updates are not configured',
              {}),
    CheckSpec('host.patch.reboot-required', TargetKind.HOST, check_reboot_required,
              'the running kernel/libraries are older than installed ones',
              {}),
    CheckSpec('host.patch.os-supported', TargetKind.HOST, check_os_supported,
              'the OS release is past its end of life',
              {'warn_days': {'type': 'integer', 'minimum': 0, 'default': 90},
               'accept_subscription_support': {
                   'type': 'boolean', 'default': False,
                   'description': 'count paid extended support (Ubuntu Pro ESM, RHEL ELS, '
                                  'SLES LTSS) as supported'}}),
)
