"""Collecting steps of the PATCH family: commands through ``ctx.run``, no judging.

Every command is read-only: ``apt-get -s`` (simulation, ``Debug::NoLocking`` so it
never waits for or takes the dpkg lock), dnf/yum ``-C`` (cache only: no metadata
refresh, no network), ``zypper --no-refresh``.  The package manager is detected
once per host from ``/etc/os-release`` (ID, ID_LIKE) and confirmed by its binary
answering, the way testinfra picks its package backend.
"""

from __future__ import annotations

import configparser
import dataclasses
from dataclasses import dataclass
from datetime import datetime

from controlcheck.probes.base import CheckContext
from controlcheck.probes.patch_judges import AutoUpdateState, RebootState, UpdateState
from controlcheck.probes.patch_parsers import (
    PendingUpdate,
    UnrecognisedOutput,
    apt_indexes,
    apt_simulation_complete,
    apt_simulation_upgraded,
    parse_apk_version,
    parse_apt_config,
    parse_apt_simulation,
    parse_dnf_security_list,
    parse_find_mtimes,
    parse_os_release,
    parse_zypper_patches,
)
from controlcheck.probes.patch_restart import (
    DeletedLib,
    parse_comms,
    parse_deleted_maps,
    unreadable_pids,
)

APT_LISTS = "/var/lib/apt/lists"
APT_STAMP_DIR = "/var/lib/apt/periodic"

_FAMILIES: tuple[tuple[frozenset[str], tuple[str, ...]], ...] = (
    (frozenset({"debian", "ubuntu"}), ("apt",)),
    (frozenset({"rhel", "fedora", "centos", "rocky", "almalinux", "amzn", "ol"}), ("dnf", "yum")),
    (frozenset({"suse", "sles", "opensuse", "opensuse-leap", "opensuse-tumbleweed"}),
     ("zypper",)),
    (frozenset({"alpine"}), ("apk",)),
)
_PROBE_ARGV = {"apt": ["apt-get", "--version"], "dnf": ["dnf", "--version"],
               "yum": ["yum", "--version"], "zypper": ["zypper", "--version"],
               "apk": ["apk", "--version"]}


@dataclass(frozen=True)
class HostFacts:
    os_release: dict[str, str]
    manager: str | None
    why: str  # how the manager was chosen, or why none was


def host_facts(ctx: CheckContext) -> HostFacts:
    memo = ctx.session.memo
    if "patch.facts" not in memo:
        memo["patch.facts"] = _detect(ctx)
    facts: HostFacts = memo["patch.facts"]
    return facts


def _detect(ctx: CheckContext) -> HostFacts:
    res = ctx.run(["cat", "/etc/os-release"])
    if not res.ok:
        res = ctx.run(["cat", "/usr/lib/os-release"])
    osr = parse_os_release(res.text) if res.ok else {}
    ids = {osr.get("ID", "").lower(), *osr.get("ID_LIKE", "").lower().split()} - {""}
    for family, managers in _FAMILIES:
        if ids & family:
            for manager in managers:
                if ctx.run(_PROBE_ARGV[manager]).exit_status not in (126, 127):
                    return HostFacts(osr, manager, f"ID {sorted(ids & family)[0]}")
            return HostFacts(osr, None, f"{'/'.join(managers)} not found although the OS is "
                                        f"{osr.get('PRETTY_NAME', '?')}")
    return HostFacts(osr, None, "unsupported or unknown distribution "
                                f"(ID={osr.get('ID') or '?'}, ID_LIKE={osr.get('ID_LIKE') or '-'})")


def _mtimes(ctx: CheckContext, roots: list[str], name: str, depth: int) -> dict[str, datetime]:
    res = ctx.run(["find", *roots, "-maxdepth", str(depth), "-type", "f", "-name", name,
                   "-printf", r"%T@ %p\n"])
    return parse_find_mtimes(res.text)  # missing roots: find complains on stderr, lists the rest


# --------------------------------------------------------------------------- pending updates


def collect_updates(ctx: CheckContext, facts: HostFacts) -> UpdateState:
    manager = facts.manager or ""
    os_id = facts.os_release.get("ID", "")
    if manager == "apt":
        return _collect_apt(ctx, os_id)
    if manager in ("dnf", "yum"):
        return _collect_dnf(ctx, manager, os_id)
    if manager == "zypper":
        return _collect_zypper(ctx, os_id)
    if manager == "apk":
        return _collect_apk(ctx, os_id)
    return UpdateState(manager or "unknown", (), None, "", os_id=os_id,
                       problems=(f"no supported package manager: {facts.why}",))


def _collect_apt(ctx: CheckContext, os_id: str) -> UpdateState:
    problems: list[str] = []
    # --ignore-hold: a package on "apt-mark hold" is only "kept back" (no Inst line) in a
    # plain simulation, yet its pending security update is exactly what must be reported.
    sim = ctx.run(["apt-get", "-s", "-o", "Debug::NoLocking=1", "--ignore-hold",
                   "dist-upgrade"])
    if not sim.ok or not apt_simulation_complete(sim.text):
        first = (sim.err_text.strip() or sim.text.strip()).splitlines()[-1:] or ["no output"]
        problems.append(f"apt-get -s dist-upgrade exited {sim.exit_status}: {first[0]}")
    updates: tuple[PendingUpdate, ...] = ()
    try:
        updates = tuple(parse_apt_simulation(sim.text))
    except UnrecognisedOutput as exc:
        problems.append(str(exc))
    announced = apt_simulation_upgraded(sim.text)
    if announced is not None and announced != len(updates) and not problems:
        # An Inst line the parser did not understand must not vanish into "nothing pending".
        problems.append(f"apt-get -s dist-upgrade announced {announced} upgrades but "
                        f"{len(updates)} Inst lines could be read")
    mtimes = _mtimes(ctx, [APT_LISTS], "*Release", 1)
    grep = ctx.run(["grep", "-H", "-E", "^(Origin|Label|Suite|Codename|Date):",
                    *sorted(mtimes)]) if mtimes else None
    indexes = apt_indexes("\n".join(f"{t.timestamp()} {p}" for p, t in mtimes.items()),
                          grep.text if grep else "")
    security = [i for i in indexes if i.security]
    stamp = _mtimes(ctx, [APT_STAMP_DIR], "update-success-stamp", 1)
    # The stamp only vouches for an index that exists: with no Release file apt knows no
    # candidate version at all, and "nothing pending" would mean nothing.
    candidates = [i.freshness for i in (security or indexes)] + (
        list(stamp.values()) if indexes else [])
    what = ("newest of the security suite's Release date/fetch time"
            if security else "newest Release file")
    if stamp and indexes:
        what += " and update-success-stamp"
    if not indexes:
        what = f"no Release files in {APT_LISTS}: apt-get update never ran"
    return UpdateState("apt", updates, max(candidates) if candidates else None, what,
                       has_security_source=bool(security) or not indexes, os_id=os_id,
                       problems=tuple(problems))


def _collect_dnf(ctx: CheckContext, manager: str, os_id: str) -> UpdateState:
    base = [manager, "-q", "-C"]
    listed = ctx.run([*base, "updateinfo", "list", "--security"])
    problems = [] if listed.ok else [
        f"{manager} updateinfo list exited {listed.exit_status}: "
        f"{(listed.err_text.strip().splitlines() or ['no output'])[-1]}"]
    info = ctx.run([*base, "updateinfo", "info", "--security"]) if listed.ok else None
    updates: tuple[PendingUpdate, ...] = ()
    try:
        updates = tuple(parse_dnf_security_list(listed.text, info.text if info else ""))
    except UnrecognisedOutput as exc:
        problems.append(str(exc))
    repomd = _mtimes(ctx, ["/var/cache/dnf", "/var/cache/yum"], "repomd.xml", 5)
    return UpdateState(manager, updates, min(repomd.values()) if repomd else None,
                       "oldest cached repomd.xml" if repomd else "no cached repository metadata",
                       os_id=os_id, problems=tuple(problems))


def _collect_zypper(ctx: CheckContext, os_id: str) -> UpdateState:
    res = ctx.run(["zypper", "--non-interactive", "--no-refresh", "list-patches",
                   "--category", "security"])
    problems = [] if res.ok else [f"zypper list-patches exited {res.exit_status}: "
                                  f"{(res.err_text.strip().splitlines() or ['-'])[-1]}"]
    updates: tuple[PendingUpdate, ...] = ()
    try:
        updates = tuple(parse_zypper_patches(res.text))
    except UnrecognisedOutput as exc:
        problems.append(str(exc))
    repomd = _mtimes(ctx, ["/var/cache/zypp/raw"], "repomd.xml", 3)
    return UpdateState("zypper", updates,
                       min(repomd.values()) if repomd else None,
                       "oldest cached repomd.xml" if repomd else "no cached repository metadata",
                       os_id=os_id, problems=tuple(problems))


def _collect_apk(ctx: CheckContext, os_id: str) -> UpdateState:
    res = ctx.run(["apk", "version", "-l", "<"])
    problems = [] if res.ok else [f"apk version exited {res.exit_status}"]
    updates: tuple[PendingUpdate, ...] = ()
    try:
        updates = tuple(parse_apk_version(res.text))
    except UnrecognisedOutput as exc:
        problems.append(str(exc))
    idx = _mtimes(ctx, ["/var/cache/apk", "/etc/apk/cache", "/lib/apk/db"], "APKINDEX.*", 1)
    return UpdateState("apk", updates,
                       min(idx.values()) if idx else None,
                       "oldest APKINDEX" if idx else "no cached APKINDEX",
                       os_id=os_id, problems=tuple(problems), all_security=True)


# --------------------------------------------------------------------------- auto updates


def _timer_states(ctx: CheckContext, units: list[str]) -> tuple[dict[str, str], bool]:
    """``systemctl is-enabled`` per unit (works offline); False when systemctl is absent."""
    res = ctx.run(["systemctl", "is-enabled", *units])
    if res.exit_status in (126, 127):
        return {}, False
    lines = res.text.split()
    if len(lines) != len(units):  # e.g. "Failed to get unit file state" for a missing unit
        return {u: ("not-found" if u in res.err_text else "") for u in units}, True
    return dict(zip(units, lines, strict=True)), True


def collect_auto_updates(ctx: CheckContext, facts: HostFacts) -> AutoUpdateState:
    manager = facts.manager or "unknown"
    if manager == "apt":
        pkg = ctx.run(["dpkg-query", "-W", "-f=${Status}", "unattended-upgrades"])
        installed = pkg.ok and pkg.text.strip().endswith(" installed")
        dump = ctx.run(["apt-config", "dump"])
        if not dump.ok:
            return AutoUpdateState(manager, installed,
                                   problems=(f"apt-config dump exited {dump.exit_status}",))
        cfg = parse_apt_config(dump.text)
        settings = {k: v[-1] for k, v in cfg.items() if k.startswith("APT::Periodic::")}
        origins = tuple(cfg.get("Unattended-Upgrade::Origins-Pattern", [])
                        + cfg.get("Unattended-Upgrade::Allowed-Origins", []))
        timers, has_systemctl = _timer_states(ctx, ["apt-daily.timer", "apt-daily-upgrade.timer"])
        fallback = None
        if not has_systemctl:
            fallback = ctx.run(["test", "-x", "/etc/cron.daily/apt-compat"]).ok
        return AutoUpdateState(manager, installed, settings, origins, timers, fallback)
    if manager == "yum":  # RHEL/CentOS 7 use yum-cron, not dnf-automatic: do not fail on it
        return AutoUpdateState(manager, None, problems=(
            "yum-cron (RHEL/CentOS 7) is not assessed yet; attest it",))
    if manager == "dnf":
        pkg = ctx.run(["rpm", "-q", "dnf-automatic"])
        conf = ctx.run(["cat", "/etc/dnf/automatic.conf"])
        rpm_settings: dict[str, str] = {}
        if conf.ok:
            parser = configparser.ConfigParser(interpolation=None, strict=False)
            try:
                parser.read_string(conf.text)
            except configparser.Error as exc:
                return AutoUpdateState(manager, pkg.ok, problems=(
                    f"/etc/dnf/automatic.conf does not parse: {exc}",))
            if parser.has_section("commands"):
                rpm_settings = {k: v.strip() for k, v in parser.items("commands")}
        timers, _ = _timer_states(ctx, ["dnf-automatic.timer", "dnf-automatic-install.timer"])
        return AutoUpdateState(manager, pkg.ok, rpm_settings, (), timers, None)
    return AutoUpdateState(manager, None)


# --------------------------------------------------------------------------- reboot


def collect_reboot(ctx: CheckContext, facts: HostFacts) -> RebootState:
    state = _collect_kernel(ctx, facts)
    if state.problems:
        return state
    libs, unreadable, none_read = _deleted_libraries(ctx)
    return dataclasses.replace(state, deleted_libs=libs, libs_unreadable=unreadable,
                               libs_none_read=none_read)


def _deleted_libraries(ctx: CheckContext) -> tuple[tuple[DeletedLib, ...], str, bool]:
    """Processes mapping deleted system libraries: (found, why some maps were unreadable,
    whether none could be read).  Reading other users' maps needs root (sudo)."""
    listing = ctx.run(["find", "/proc", "-mindepth", "2", "-maxdepth", "2", "-name", "maps",
                       "-path", "/proc/[0-9]*/maps"])
    maps = sorted(p for p in listing.text.splitlines() if p)
    if not maps:
        return (), "no /proc/PID/maps found to look for deleted libraries", True
    grep = ctx.run(["grep", "-H", "-e", " (deleted)$", "--", *maps])
    denied = unreadable_pids(grep.err_text)
    if grep.exit_status == 2 and not denied and not grep.text:
        # Errors other than vanished processes or permission: nothing is known.
        err = grep.err_text.strip().splitlines()
        if err and not all("No such file" in e for e in err):
            return (), f"cannot read /proc/PID/maps: {err[-1][:160]}", True
    deleted = parse_deleted_maps(grep.text)
    comms: dict[int, str] = {}
    if deleted:
        comm = ctx.run(["grep", "-H", "", "--", *(f"/proc/{p}/comm" for p in sorted(deleted))])
        comms = parse_comms(comm.text)
    found = tuple(DeletedLib(pid, comms.get(pid, ""), path)
                  for pid, paths in sorted(deleted.items()) for path in paths)
    why = ""
    none_read = len(denied) >= len(maps)
    if denied:
        why = (f"the maps of {len(denied)} of {len(maps)} processes could not be read "
               "(permission denied): run as root or set 'sudo: true'")
        if none_read:
            why += "; libraries were not checked, only the kernel"
    return found, why, none_read


def _collect_kernel(ctx: CheckContext, facts: HostFacts) -> RebootState:
    uname = ctx.run(["uname", "-r"])
    running = uname.text.strip()
    container = ctx.run(["systemd-detect-virt", "--container"])
    where = container.text.strip() if container.ok and container.text.strip() != "none" else ""
    if not uname.ok or not running:
        return RebootState("", (), "dpkg", None, problems=("uname -r gave no kernel release",))
    if facts.manager == "apt":
        marker = ctx.run(["test", "-e", "/var/run/reboot-required"]).ok
        pkgs: tuple[str, ...] = ()
        if marker:
            pkgs = tuple(ctx.run(["cat", "/var/run/reboot-required.pkgs"]).text.split())
        q = ctx.run(["dpkg-query", "-W", "-f=${Package} ${db:Status-Abbrev}\n",
                     "linux-image-[0-9]*"])
        kernels = tuple(line.split()[0].removeprefix("linux-image-")
                        for line in q.text.splitlines()
                        if len(line.split()) >= 2 and line.split()[1].startswith("i"))
        return RebootState(running, kernels, "dpkg", marker,
                           "/var/run/reboot-required present" if marker
                           else "no /var/run/reboot-required", pkgs, where)
    if facts.manager in ("dnf", "yum"):
        q = ctx.run(["rpm", "-q", "--qf", r"%{VERSION}-%{RELEASE}.%{ARCH}\n",
                     "kernel-core", "kernel"])
        kernels = tuple(sorted({line.strip() for line in q.text.splitlines()
                                if line.strip() and " " not in line.strip()}))
        nr = ctx.run(["needs-restarting", "-r"])
        nr_marker = None if nr.exit_status in (126, 127) else nr.exit_status == 1
        what = {None: "needs-restarting not installed", True: "needs-restarting -r: reboot "
                "required", False: "needs-restarting -r: no reboot needed"}[nr_marker]
        return RebootState(running, kernels, "rpm", nr_marker, what, (), where)
    boot = ctx.run(["find", "/boot", "-maxdepth", "1", "-name", "vmlinuz-*", "-printf", r"%f\n"])
    kernels = tuple(n.removeprefix("vmlinuz-") for n in boot.text.split())
    if kernels and not any(k[:1].isdigit() for k in kernels):
        return RebootState(running, kernels, "rpm", None, problems=(
            f"/boot kernels {', '.join(kernels)} do not name a release to compare with "
            f"{running}",))
    return RebootState(running, kernels, "rpm", None, "", (), where)
