"""Pure judges of the PATCH family: an observation and the parameters in, an Outcome out.

No I/O here; the probes in ``patch.py`` collect.  Every judge that cannot decide
returns ``error`` with the reason; none returns ``pass`` on missing data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from controlcheck.model import Outcome
from controlcheck.probes.patch_parsers import PendingUpdate, names
from controlcheck.probes.patch_restart import DeletedLib, describe
from controlcheck.probes.patch_versions import dpkg_compare, newest, rpm_compare

# --------------------------------------------------------------------------- security updates


@dataclass(frozen=True)
class UpdateState:
    """What one host's package manager says about pending updates."""

    manager: str  # apt, dnf, yum, zypper, apk
    updates: tuple[PendingUpdate, ...]
    index_time: datetime | None  # newest evidence that the package index was current
    index_what: str  # how index_time was established, for the message
    has_security_source: bool = True  # apt: a *-security suite is in the index
    os_id: str = ""
    problems: tuple[str, ...] = ()  # why the collector could not get a full picture
    all_security: bool = False  # apk: no security metadata, every upgrade counts


def judge_security_updates(target: str, st: UpdateState, params: Mapping[str, Any],
                           now: datetime) -> Outcome:
    grace = timedelta(days=int(params["grace_days"]))
    max_index_age = timedelta(days=int(params["max_index_age_days"]))
    facts: dict[str, Any] = {"manager": st.manager,
                             "pending": len(st.updates),
                             "pending_security": sum(u.security for u in st.updates)}
    if st.problems:
        return Outcome.error(f"{target}: cannot tell pending security updates: "
                             + "; ".join(st.problems), **facts)
    if st.manager == "apt" and not st.has_security_source:
        if st.os_id in ("debian", "ubuntu"):
            return Outcome.failed(
                f"{target}: no security suite (*-security) in the apt package index: security "
                "updates cannot arrive; add the distribution's security repository to "
                "/etc/apt/sources.list(.d) and run apt-get update", **facts)
        return Outcome.error(
            f"{target}: no *-security suite in the apt index of this {st.os_id or 'unknown'} "
            "system, so security updates cannot be told apart", **facts)

    index_age = None if st.index_time is None else now - st.index_time
    stale = index_age is None or index_age > max_index_age
    age_text = ("unknown" if index_age is None else f"{index_age.days} days old")
    facts["index_age_days"] = None if index_age is None else round(index_age.total_seconds()
                                                                  / 86400, 1)
    security = [u for u in st.updates if u.security]
    overdue = [u for u in security if u.issued is None or now - u.issued > grace]
    undated = [u for u in overdue if u.issued is None]
    within = [u for u in security if u not in overdue]
    facts["overdue"] = len(overdue)
    if overdue:
        why = ""
        if undated:
            why = (f" ({st.manager} does not record when an update became available, so "
                   f"{len(undated)} of them count as pending longer than the "
                   f"{grace.days}-day grace period)")
        stale_note = (f"; the package index is also {age_text} ({st.index_what}), more may be "
                      "missing") if stale else ""
        kind = "pending upgrades (Alpine marks no security fixes; all count)" \
            if st.all_security else "security updates pending"
        return Outcome.failed(
            f"{target}: {len(overdue)} {kind} beyond the {grace.days}-day grace period: "
            f"{names(overdue)}{why}{stale_note}; install them "
            f"({_install_hint(st.manager)})", **facts)
    if stale:
        return Outcome.error(
            f"{target}: the package index is {age_text} ({st.index_what}; allowed "
            f"{max_index_age.days} days), so pending updates are unknown; refresh it "
            f"({_refresh_hint(st.manager)}) and check that the periodic refresh works",
            **facts)
    if within:
        return Outcome.passed(
            f"{target}: {len(within)} security update(s) pending but published within the "
            f"{grace.days}-day grace period: {names(within)} (index {age_text})", **facts)
    return Outcome.passed(
        f"{target}: no security update pending ({len(st.updates)} other update(s); "
        f"{st.manager} index {age_text}, {st.index_what})", **facts)


def _install_hint(manager: str) -> str:
    return {"apt": "apt-get upgrade", "dnf": "dnf upgrade --security",
            "yum": "yum update --security", "zypper": "zypper patch --category security",
            "apk": "apk upgrade"}.get(manager, "upgrade")


def _refresh_hint(manager: str) -> str:
    return {"apt": "apt-get update", "dnf": "dnf makecache", "yum": "yum makecache",
            "zypper": "zypper refresh", "apk": "apk update"}.get(manager, "refresh")


# --------------------------------------------------------------------------- auto updates


@dataclass(frozen=True)
class AutoUpdateState:
    manager: str
    tool_installed: bool | None  # None: could not tell
    settings: dict[str, str] = field(default_factory=dict)  # what the judge looks at
    origins: tuple[str, ...] = ()  # apt: unattended-upgrades origins
    timers: dict[str, str] = field(default_factory=dict)  # unit → systemctl is-enabled
    scheduler_fallback: bool | None = None  # cron job present when systemd is not there
    problems: tuple[str, ...] = ()


_TIMER_ON = {"enabled", "enabled-runtime", "static", "alias", "indirect", "generated"}


def _timer_verdict(st: AutoUpdateState, units: Sequence[str]) -> tuple[bool | None, str]:
    # Every unit must be on: apt needs apt-daily (refresh) *and* apt-daily-upgrade (install).
    states = [st.timers.get(u, "") for u in units]
    if states and all(s in _TIMER_ON for s in states):
        return True, ", ".join(f"{u} {s}" for u, s in zip(units, states, strict=True))
    if any(s in ("disabled", "masked", "masked-runtime", "not-found") for s in states):
        return False, ", ".join(f"{u} {s or 'unknown'}"
                                for u, s in zip(units, states, strict=True))
    if st.scheduler_fallback:
        return True, "no systemctl; the cron fallback job is present"
    return None, "the timer state could not be read (no usable systemctl, no cron job)"


def judge_auto_updates(target: str, st: AutoUpdateState) -> Outcome:
    if st.problems:
        return Outcome.error(f"{target}: cannot tell whether automatic updates are on: "
                             + "; ".join(st.problems))
    if st.manager == "apt":
        return _judge_apt_auto(target, st)
    if st.manager in ("dnf", "yum"):
        return _judge_dnf_auto(target, st)
    return Outcome.error(f"{target}: automatic updates are not assessed for {st.manager} "
                         "yet; attest them or add support")


def _periodic_on(value: str | None) -> bool:
    # APT::Periodic values are days ("1") or a systemd-ish "always"; "0"/absent is off.
    return value not in (None, "", "0")


def _judge_apt_auto(target: str, st: AutoUpdateState) -> Outcome:
    if st.tool_installed is False:
        return Outcome.failed(f"{target}: unattended-upgrades is not installed; install it "
                              "(apt-get install unattended-upgrades) and enable it with "
                              "dpkg-reconfigure -plow unattended-upgrades")
    problems = []
    if not _periodic_on(st.settings.get("APT::Periodic::Enable", "1")):
        problems.append('APT::Periodic::Enable is "0"')
    for key in ("APT::Periodic::Update-Package-Lists", "APT::Periodic::Unattended-Upgrade"):
        if not _periodic_on(st.settings.get(key)):
            problems.append(f'{key} is {st.settings.get(key, "unset")!r} (need "1")')
    security_origins = [o for o in st.origins if "security" in o.lower()]
    if not security_origins:
        problems.append("no security origin in Unattended-Upgrade::Origins-Pattern / "
                        "Allowed-Origins")
    timer_ok, timer_text = _timer_verdict(st, ("apt-daily.timer", "apt-daily-upgrade.timer"))
    if timer_ok is False:
        problems.append(f"timers off: {timer_text}")
    if problems:
        return Outcome.failed(f"{target}: automatic security updates are not configured: "
                              + "; ".join(problems)
                              + " (set them in /etc/apt/apt.conf.d/20auto-upgrades)")
    if timer_ok is None:
        return Outcome.error(f"{target}: apt is configured for unattended security upgrades "
                             f"but {timer_text}")
    return Outcome.passed(f"{target}: unattended-upgrades installed and enabled daily for "
                          f"{security_origins[0]} ({timer_text})")


def _judge_dnf_auto(target: str, st: AutoUpdateState) -> Outcome:
    if st.tool_installed is False:
        return Outcome.failed(f"{target}: dnf-automatic is not installed; install it and "
                              "enable dnf-automatic-install.timer")
    install_ok, install_text = _timer_verdict(st, ("dnf-automatic-install.timer",))
    plain_ok, plain_text = _timer_verdict(st, ("dnf-automatic.timer",))
    upgrade_type = st.settings.get("upgrade_type", "default")
    apply = st.settings.get("apply_updates", "no").lower() in ("yes", "true", "1", "on")
    if upgrade_type not in ("default", "security"):
        return Outcome.failed(f"{target}: dnf-automatic upgrade_type = {upgrade_type!r}; set "
                              "it to security or default in /etc/dnf/automatic.conf")
    if install_ok or (plain_ok and apply):
        return Outcome.passed(f"{target}: dnf-automatic applies {upgrade_type} updates "
                              f"({install_text if install_ok else plain_text})")
    if install_ok is None and plain_ok is None:
        return Outcome.error(f"{target}: dnf-automatic is configured but {install_text}")
    if plain_ok and not apply:
        return Outcome.failed(f"{target}: dnf-automatic.timer runs but apply_updates = no "
                              "(updates are downloaded, never installed); set apply_updates "
                              "= yes or enable dnf-automatic-install.timer")
    return Outcome.failed(f"{target}: no dnf-automatic timer enabled ({install_text}; "
                          f"{plain_text}); systemctl enable --now dnf-automatic-install.timer")


# --------------------------------------------------------------------------- reboot required


@dataclass(frozen=True)
class RebootState:
    running_kernel: str
    installed_kernels: tuple[str, ...]  # kernel release strings (as uname -r prints them)
    version_scheme: str  # "dpkg" or "rpm"
    marker: bool | None  # /var/run/reboot-required or needs-restarting -r; None: no such tool
    marker_what: str = ""
    marker_packages: tuple[str, ...] = ()
    container: str = ""  # systemd-detect-virt --container, "" when not a container
    problems: tuple[str, ...] = ()
    deleted_libs: tuple[DeletedLib, ...] = ()  # processes mapping deleted system libraries
    libs_unreadable: str = ""  # why (some) /proc/PID/maps could not be read; "" when all were
    libs_none_read: bool = False  # not one process's maps could be read


def judge_reboot(target: str, st: RebootState) -> Outcome:
    if st.problems:
        return Outcome.error(f"{target}: cannot tell whether a reboot is pending: "
                             + "; ".join(st.problems))
    facts: dict[str, Any] = {"running_kernel": st.running_kernel,
                             "installed_kernels": list(st.installed_kernels),
                             "stale_library_pids": sorted({d.pid for d in st.deleted_libs})}
    libs_note = f" ({st.libs_unreadable})" if st.libs_unreadable else ""
    if st.marker:
        pkgs = f" for {', '.join(st.marker_packages[:10])}" if st.marker_packages else ""
        return Outcome.failed(f"{target}: a reboot is pending{pkgs} ({st.marker_what}); "
                              "reboot to run the updated kernel/libraries", **facts)
    if st.deleted_libs:
        return Outcome.failed(
            f"{target}: {len(facts['stale_library_pids'])} process(es) still run deleted "
            f"(upgraded) libraries: {describe(st.deleted_libs)}; restart them or reboot"
            f"{libs_note}", **facts)
    if not st.installed_kernels:
        where = (f"the container host ({st.container} container)" if st.container
                 else "the hypervisor or container host (no kernel is installed here)")
        if st.libs_none_read:
            return Outcome.error(f"{target}: the running kernel belongs to {where} and no "
                                 f"process's libraries could be read{libs_note}", **facts)
        return Outcome.skipped(f"{target}: the running kernel {st.running_kernel} belongs to "
                               f"{where}; {st.marker_what or 'no reboot marker'}; no process "
                               f"runs a deleted library{libs_note}", **facts)
    best = newest(list(st.installed_kernels), st.version_scheme)
    assert best is not None
    cmp = dpkg_compare if st.version_scheme == "dpkg" else rpm_compare
    if st.running_kernel == best or cmp(st.running_kernel, best) == 0:
        libs = ("process libraries not checked" if st.libs_none_read
                 else "no process runs a deleted library")
        return Outcome.passed(f"{target}: running the newest installed kernel {best}"
                              f"{'; ' + st.marker_what if st.marker_what else ''}; {libs}"
                              f"{libs_note}", **facts)
    if cmp(st.running_kernel, best) < 0:
        return Outcome.failed(f"{target}: running kernel {st.running_kernel} is older than "
                              f"the installed {best}; reboot into it", **facts)
    return Outcome.error(f"{target}: running kernel {st.running_kernel} is newer than every "
                         f"installed kernel ({best}); it was not installed by the package "
                         "manager, so whether it is current cannot be told", **facts)
